"""The fused training forward conv2d -> max_pool2d that keeps the argmax
(``_C.conv2d_max_pool2d_argmax``, csrc/conv/conv2d.cpp: the chunked route of conv2d_max_pool2d,
never the register-fused pool, with max_pool2d_forward_argmax on each chunk). Its pooled values
and its argmax are those of the two calls it replaces (``_C.conv2d`` then ``_C.max_pool2d_argmax``)
bit for bit, on every conv path, cropped or not, at batch 1 and in chunks, at 1-8 threads, NaN
and signed zeros included; so the backward from its argmax is the two calls' backward. Bad
pooling arguments raise before any work."""
import numpy as np
import pytest
from conv_reference import at_threads, conv_case, im2col_path
from test_conv_max_pool_fused import CASES, REGISTER_CASES

from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

R = np.random.default_rng(29)


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint32)


def _two_calls(C, x, w, b, s, pad, d, act, ps, pst, ppad):
    return C.max_pool2d_argmax(C.conv2d(x, w, b, s, pad, d, act, 0.0), ps, pst, ppad)


def _same(got, want):
    (y, idx), (y0, idx0) = got, want
    assert idx.dtype == np.uint8 and idx.shape == y.shape == y0.shape
    np.testing.assert_array_equal(_bits(y), _bits(y0))
    np.testing.assert_array_equal(idx, idx0)


# The inference cases (every conv path, cropped and not) and the register-fused ones, as (x shape,
# kernel, C_out, strides, dilation, padding, pool size, pool strides, pool padding).
ALL = [(xs, k, c, s, (1, 1), pad, ps, pst, ppad) for xs, k, c, s, pad, ps, pst, ppad in CASES] + \
      [(xs, k, c, s, d, pad, (2, 2), (2, 2), ppad) for xs, k, c, s, d, pad, ppad in REGISTER_CASES]


@pytest.mark.parametrize("case", ALL)
@pytest.mark.parametrize("act", ["relu", None])
def test_fused_conv_max_pool_argmax_is_bitwise_the_two_calls_at_any_thread_count(case, act):
    from pynn import _C
    x_shape, k, cout, s, d, pad, ps, pst, ppad = case
    x, w, b = conv_case(R, x_shape, k, cout)
    want = _two_calls(_C, x, w, b, s, pad, d, act, ps, pst, ppad)
    for n in (1, 2, 3, 4, 7, 8):
        _same(at_threads(lambda: _C.conv2d_max_pool2d_argmax(x, w, b, s, pad, d, act, 0.0, ps, pst, ppad), n), want)
    assert _C.conv2d_max_pool2d_path(x.shape, w.shape, s, pad, d, act, ps, pst, ppad, argmax=True) != "registers"


@pytest.mark.parametrize("case", CASES[:3])
def test_fused_argmax_on_the_portable_im2col_path(case):
    from pynn import _C
    x_shape, k, cout, s, pad, ps, pst, ppad = case
    x, w, b = conv_case(R, x_shape, k, cout)
    got = im2col_path(lambda: _C.conv2d_max_pool2d_argmax(x, w, b, s, pad, (1, 1), "relu", 0.0, ps, pst, ppad))
    _same(got, im2col_path(lambda: _two_calls(_C, x, w, b, s, pad, (1, 1), "relu", ps, pst, ppad)))


def test_fused_argmax_routes_ties_nan_and_signed_zero_as_the_two_calls():
    from pynn import _C
    x, w, b = conv_case(R, (5, 12, 12, 1), (3, 3), 32)
    x[0, 2, 3, 0] = np.nan        # NaN conv outputs around it: the argmax names the first NaN
    x[1, 4:, :, 0] = 0.0          # whole windows of equal values (ties: the first cell wins)
    b[:16] = -0.0                 # -0.0 conv outputs where x = 0
    w[..., :16] = -np.abs(w[..., :16])
    for act in ("relu", None):
        want = _two_calls(_C, x, w, b, (1, 1), "valid", (1, 1), act, (2, 2), (2, 2), "valid")
        assert np.isnan(want[0]).any() and (np.signbit(want[0]) & (want[0] == 0)).any()
        for n in (1, 2, 7):
            _same(at_threads(lambda: _C.conv2d_max_pool2d_argmax(x, w, b, (1, 1), "valid", (1, 1), act, 0.0), n),
                  want)


def test_backward_from_the_fused_argmax_matches_the_numpy_reference():
    """The gradient the training step takes from it: pooled dy routed through the argmax
    with the ReLU mask (max_pool2d_backward_argmax, relu_y), against the numpy backend's
    conv + relu + pool backward in float64."""
    from pynn import _C
    x, w, b = conv_case(R, (6, 13, 13, 8), (3, 3), 16)
    y, idx = _C.conv2d_max_pool2d_argmax(x, w, b, (1, 1), "valid", (1, 1), "relu", 0.0, (2, 2), (2, 2), "valid")
    dy = R.standard_normal(y.shape).astype(np.float32)
    dz = _C.max_pool2d_backward_argmax(idx, dy, (6, 11, 11, 16), (2, 2), (2, 2), "valid", y)
    nb = backend.numpy_backend
    z = np.maximum(nb.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)), 0)
    ref_y, ref_idx = nb.max_pool2d_argmax(z, (2, 2), (2, 2), "valid")
    ref = nb.max_pool2d_backward_argmax(ref_idx, dy.astype(np.float64), z.shape, (2, 2), (2, 2), "valid", ref_y)
    np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dz, ref, rtol=1e-4, atol=1e-5)


def test_fused_argmax_rejects_bad_pooling_before_work():
    from pynn import _C
    x, w, b = conv_case(R, (2, 20, 20, 3), (3, 3), 4)
    with pytest.raises(ValueError, match="conv2d_max_pool2d_argmax"):
        _C.conv2d_max_pool2d_argmax(x, w, b, (1, 1), "valid", (1, 1), "relu", 0.0, (19, 19), (1, 1), "valid")
    with pytest.raises(ValueError, match="conv2d_max_pool2d_argmax.*256 cells"):
        _C.conv2d_max_pool2d_argmax(x, w, b, (1, 1), "valid", (1, 1), "relu", 0.0, (17, 17), (1, 1), "valid")
    with pytest.raises(ValueError, match="conv2d_max_pool2d_argmax"):
        _C.conv2d_max_pool2d_argmax(x, w, b, (1, 1), "valid", (1, 1), "relu", 0.0, (2, 2), (2, 2), "full")
