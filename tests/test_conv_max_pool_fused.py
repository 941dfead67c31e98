"""The fused inference call conv2d -> max_pool2d (``_C.conv2d_max_pool2d``, csrc/conv/conv2d.cpp:
chunks of images convolved into an L2-sized scratch block and pooled from there). Its values are
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
