"""The fused inference call conv2d -> max_pool2d (``_C.conv2d_max_pool2d``, csrc/conv/conv2d.cpp:
chunks of images convolved into an L2-sized scratch block and pooled from there; conv pixels no
pooling window reads are not computed; small-channel 'valid' convs with a 2x2/2 pool pool in registers). Its values are
those of the two calls it replaces, bit for bit, on every conv path (small-channel, implicit GEMM,
im2col, pointwise), at batch 1 (no chunks) and batches split into chunks, at 1-8 threads; and the
numpy reference's to float32 tolerance. Bad pooling arguments raise before any work."""
import numpy as np
import pytest
from conv_reference import at_threads, conv_case, im2col_path

import pynn
from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

R = np.random.default_rng(23)

# (x shape NHWC, (kh, kw), C_out, strides, padding, pool size, pool strides, pool padding)
CASES = [
    ((64, 28, 28, 1), (3, 3), 32, (1, 1), "valid", (2, 2), (2, 2), "valid"),   # MNIST first layer
    ((9, 13, 13, 32), (3, 3), 64, (1, 1), "valid", (2, 2), (2, 2), "valid"),   # its second conv
    ((5, 10, 9, 3), (3, 3), 20, (1, 1), "same", (3, 3), (2, 2), "same"),       # padded pooling
    ((1, 12, 12, 8), (3, 3), 17, (2, 2), "same", (2, 2), (1, 1), "valid"),     # batch 1, stride 2
    ((7, 6, 6, 24), (1, 1), 16, (1, 1), "valid", (2, 2), (2, 2), "valid"),     # pointwise
    ((40, 8, 8, 16), (3, 3), 8, (1, 1), "same", (2, 3), (2, 3), "same"),       # many small images
    # Conv pixels no pooling window reads are not computed (the conv runs on the top-left crop):
    ((6, 12, 12, 16), (3, 3), 24, (1, 1), "valid", (3, 3), (2, 2), "valid"),   # 10x10 conv, pool reads 9x9
    ((1, 13, 13, 32), (3, 3), 64, (1, 1), "valid", (2, 2), (2, 2), "valid"),   # batch 1 (no chunks), 11 -> 10
    ((5, 15, 14, 3), (3, 3), 32, (1, 1), "same", (2, 2), (2, 2), "valid"),     # padded small-channel conv, 15 -> 14
    ((4, 9, 9, 8), (1, 1), 16, (1, 1), "valid", (2, 2), (2, 2), "valid"),      # pointwise: never cropped
    ((3, 11, 11, 16), (3, 3), 16, (2, 2), "valid", (2, 2), (1, 1), "valid"),   # stride-1 pool: reads all 5x5
]


def _two_calls(C, x, w, b, s, pad, act, ps, pst, ppad):
    return C.max_pool2d(C.conv2d(x, w, b, s, pad, (1, 1), act, 0.0), ps, pst, ppad)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("act", ["relu", None, "tanh"])
def test_fused_conv_max_pool_equals_the_two_calls(case, act):
    from pynn import _C
    x_shape, k, cout, s, pad, ps, pst, ppad = case
    x, w, b = conv_case(R, x_shape, k, cout)
    want = _two_calls(_C, x, w, b, s, pad, act, ps, pst, ppad)
    for n in (1, 2, 3, 8):
        got = at_threads(lambda: _C.conv2d_max_pool2d(x, w, b, s, pad, (1, 1), act, 0.0, ps, pst, ppad), n)
        np.testing.assert_array_equal(got, want)
    # the portable im2col + sgemm path inside the chunks
    got = im2col_path(lambda: _C.conv2d_max_pool2d(x, w, b, s, pad, (1, 1), act, 0.0, ps, pst, ppad))
    np.testing.assert_array_equal(got, im2col_path(lambda: _two_calls(_C, x, w, b, s, pad, act, ps, pst, ppad)))


@pytest.mark.parametrize("case", CASES[:3])
def test_fused_conv_max_pool_matches_the_numpy_reference(case):
    from pynn import _C
    x_shape, k, cout, s, pad, ps, pst, ppad = case
    x, w, b = conv_case(R, x_shape, k, cout)
    nb = backend.numpy_backend
    want = nb.max_pool2d(np.maximum(nb.conv2d(x, w, b, s, pad, (1, 1)), 0), ps, pst, ppad)
    got = _C.conv2d_max_pool2d(x, w, b, s, pad, (1, 1), "relu", 0.0, ps, pst, ppad)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_fused_conv_max_pool_rejects_bad_pooling_before_work():
    from pynn import _C
    x, w, b = conv_case(R, (2, 6, 6, 3), (3, 3), 4)
    with pytest.raises(ValueError, match="conv2d_max_pool2d"):
        _C.conv2d_max_pool2d(x, w, b, (1, 1), "valid", (1, 1), "relu", 0.0, (5, 5), (1, 1), "valid")   # 4x4 output
    with pytest.raises(ValueError, match="conv2d_max_pool2d"):
        _C.conv2d_max_pool2d(x, w, b, (1, 1), "valid", (1, 1), "relu", 0.0, (2, 2), (2, 2), "full")


# Shapes whose pooling runs on the small-channel conv's register tiles ("registers": C_in <= 4,
# every window inside the image, C_out a multiple of 16, relu or linear, 2x2 stride-2 unpadded
# pool). Odd conv outputs (the pool drops the last row/column), strides, dilation, batch 1.
REGISTER_CASES = [
    ((64, 28, 28, 1), (3, 3), 32, (1, 1), (1, 1), "valid", "valid"),  # MNIST first layer
    ((1, 28, 28, 1), (3, 3), 32, (1, 1), (1, 1), "valid", "valid"),   # batch 1
    ((3, 29, 30, 3), (3, 3), 16, (1, 1), (1, 1), "valid", "valid"),   # 27x28 conv: last row dropped
    ((2, 17, 19, 4), (5, 3), 48, (2, 1), (1, 1), "valid", "valid"),   # stride, non-square kernel
    ((5, 20, 21, 2), (3, 3), 32, (1, 1), (2, 2), "valid", "valid"),   # dilation
    ((4, 12, 12, 1), (1, 1), 16, (2, 2), (1, 1), "same", "same"),     # 'same' padding that adds no cell
    ((32, 30, 30, 4), (3, 3), 48, (1, 1), (1, 1), "valid", "valid"),  # work enough for 8 threads
]


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint32)


@pytest.mark.parametrize("case", REGISTER_CASES)
@pytest.mark.parametrize("act", ["relu", None])
def test_register_fused_conv_pool_is_bitwise_the_two_calls_at_any_thread_count(case, act):
    from pynn import _C
    x_shape, k, cout, s, d, pad, ppad = case
    x, w, b = conv_case(R, x_shape, k, cout)
    assert _C.conv2d_max_pool2d_path(x.shape, w.shape, s, pad, d, act, (2, 2), (2, 2), ppad) == "registers"
    want = _C.max_pool2d(_C.conv2d(x, w, b, s, pad, d, act, 0.0), (2, 2), (2, 2), ppad)
    for n in (1, 2, 3, 4, 7, 8):
        got = at_threads(lambda: _C.conv2d_max_pool2d(x, w, b, s, pad, d, act, 0.0, (2, 2), (2, 2), ppad), n)
        np.testing.assert_array_equal(_bits(got), _bits(want))
    nb = backend.numpy_backend
    ref = nb.max_pool2d(nb.conv2d(x, w, b, s, pad, d), (2, 2), (2, 2), ppad)
    if act == "relu":
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(want, ref, rtol=1e-4, atol=1e-5)


def test_register_fused_conv_pool_propagates_nan_and_signed_zero_as_the_two_calls():
    from pynn import _C
    x, w, b = conv_case(R, (3, 12, 12, 1), (3, 3), 32)
    x[0, 2, 3, 0] = np.nan        # reaches the 3x3 windows around it: NaN pooled outputs
    x[1, 4:, :, 0] = 0.0
    b[:16] = -0.0                 # conv outputs of -0.0 where x = 0: -0 + 0 · (negative w) on channels 0-15
    w[..., :16] = -np.abs(w[..., :16])
    for act in ("relu", None):
        assert _C.conv2d_max_pool2d_path(x.shape, w.shape, (1, 1), "valid", (1, 1), act) == "registers"
        want = _C.max_pool2d(_C.conv2d(x, w, b, (1, 1), "valid", (1, 1), act, 0.0), (2, 2), (2, 2), "valid")
        assert np.isnan(want).any() and (np.signbit(want) & (want == 0)).any()
        for n in (1, 2, 7):
            got = at_threads(lambda: _C.conv2d_max_pool2d(x, w, b, (1, 1), "valid", (1, 1), act, 0.0), n)
            np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("why, x_shape, k, cout, pad, act, pool", [
    ("16 does not divide C_out", (8, 12, 12, 1), (3, 3), 24, "valid", "relu", ((2, 2), (2, 2), "valid")),
    ("padded conv windows", (8, 12, 12, 1), (3, 3), 32, "same", "relu", ((2, 2), (2, 2), "valid")),
    ("activation not relu/linear", (8, 12, 12, 1), (3, 3), 32, "valid", "tanh", ((2, 2), (2, 2), "valid")),
    ("3x3 pool", (8, 12, 12, 1), (3, 3), 32, "valid", "relu", ((3, 3), (2, 2), "valid")),
    ("padded pool", (8, 13, 13, 1), (3, 3), 32, "valid", "relu", ((2, 2), (2, 2), "same")),
    ("8 input channels", (8, 12, 12, 8), (3, 3), 32, "valid", "relu", ((2, 2), (2, 2), "valid")),
])
def test_conv_pool_outside_the_register_case_takes_the_chunked_path_and_agrees(why, x_shape, k, cout, pad, act,
                                                                               pool):
    from pynn import _C
    x, w, b = conv_case(R, x_shape, k, cout)
    assert _C.conv2d_max_pool2d_path(x.shape, w.shape, (1, 1), pad, (1, 1), act, *pool) != "registers", why
    want = _C.max_pool2d(_C.conv2d(x, w, b, (1, 1), pad, (1, 1), act, 0.0), *pool)
    got = _C.conv2d_max_pool2d(x, w, b, (1, 1), pad, (1, 1), act, 0.0, *pool)
    np.testing.assert_array_equal(_bits(got), _bits(want))
