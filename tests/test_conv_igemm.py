"""The implicit-GEMM (indirect) forward convolution of the native backend: edge
tiles (pixels not a multiple of 6, channels not a multiple of 16), padding at every
border, merged kernel rows, dilation with 'same', strides, fused activations.
Checked against the numpy reference and against the im2col + GEMM path it replaces
(PYNN_CONV_IGEMM=0 switches the native kernel back to im2col for one call)."""
import os

import numpy as np
import pytest

from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

R = np.random.default_rng(5)

# (x shape NHWC, (kh, kw), C_out, strides, padding, dilation)
SHAPES = [
    ((2, 9, 11, 17), (3, 3), 19, (1, 1), "same", (1, 1)),    # pad at all 4 borders, 17 ch in, 19 out (16 + 3)
    ((1, 5, 7, 16), (3, 3), 16, (1, 1), "same", (1, 1)),     # 35 pixels: last tile has 5 rows
    ((3, 8, 8, 8), (2, 2), 33, (1, 1), "same", (1, 1)),      # even kernel: extra pad bottom/right only
    ((2, 10, 9, 17), (3, 3), 7, (1, 1), "same", (2, 2)),     # dilation with same
    ((2, 11, 12, 9), (3, 2), 5, (2, 3), "same", (1, 1)),     # odd strides, odd pad totals
    ((1, 13, 12, 12), (5, 5), 31, (3, 3), "same", (1, 1)),   # stride 3, 5x5
    ((2, 9, 10, 3), (3, 3), 17, (1, 1), "valid", (1, 1)),    # 3 channels, merged kernel rows (run 9)
    ((2, 9, 10, 1), (3, 8), 4, (1, 1), "valid", (1, 1)),     # 1 channel, merged rows (run 8)
    ((2, 9, 10, 8), (3, 3), 16, (2, 2), "valid", (1, 1)),    # merged rows with stride
    ((2, 12, 12, 8), (3, 3), 16, (1, 1), "valid", (2, 2)),   # dilation valid: rows merge only across dw == 1
    ((1, 1, 1, 20), (1, 1), 3, (2, 2), "same", (1, 1)),      # a single pixel
    ((1, 4, 4, 24), (4, 4), 40, (1, 1), "valid", (1, 1)),    # one output pixel, K = 384
]


def _case(x_shape, k, cout):
    x = R.standard_normal(x_shape).astype(np.float32)
    w = (R.standard_normal(k + (x_shape[3], cout)) / np.sqrt(k[0] * k[1] * x_shape[3])).astype(np.float32)
    b = R.standard_normal(cout).astype(np.float32)
    return x, w, b


def _im2col_path(fn):
    os.environ["PYNN_CONV_IGEMM"] = "0"
    try:
        return fn()
    finally:
        del os.environ["PYNN_CONV_IGEMM"]


@pytest.mark.parametrize("x_shape,k,cout,strides,padding,dilation", SHAPES)
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid"])
def test_igemm_forward_matches_reference_and_im2col_path(x_shape, k, cout, strides, padding, dilation, activation):
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, b = _case(x_shape, k, cout)
    ref = Ref.conv2d(x, w, b, strides, padding, dilation)
    ref = {"linear": ref, "relu": np.maximum(ref, 0), "sigmoid": 1 / (1 + np.exp(-ref))}[activation]
    y = _C.conv2d(x, w, b, strides, padding, dilation, activation)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    y_old = _im2col_path(lambda: _C.conv2d(x, w, b, strides, padding, dilation, activation))
    np.testing.assert_allclose(y, y_old, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape,k,cout,strides,padding,dilation", SHAPES[:3])
def test_igemm_forward_without_bias_and_with_strided_batch_split(x_shape, k, cout, strides, padding, dilation):
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, _ = _case(x_shape, k, cout)
    np.testing.assert_allclose(_C.conv2d(x, w, None, strides, padding, dilation),
                               Ref.conv2d(x, w, None, strides, padding, dilation), rtol=1e-4, atol=1e-4)


def test_igemm_forward_large_batch_split_over_threads_matches_reference():
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, b = _case((37, 12, 10, 24), (3, 3), 40)  # 4440 pixels: several groups per thread, odd split
    np.testing.assert_allclose(_C.conv2d(x, w, b, (1, 1), "same"), Ref.conv2d(x, w, b, (1, 1), "same"),
                               rtol=1e-4, atol=1e-4)


# Stride-1 shapes whose input gradient takes the implicit GEMM over dy (C >= 8, OC >= 8).
BWD_SHAPES = [
    ((2, 9, 11, 17), (3, 3), 19, "same", (1, 1)),    # C 17 = 16 + 1 output lanes, OC 19 runs
    ((1, 5, 7, 16), (3, 3), 16, "same", (1, 1)),     # 35 dx pixels: last tile 5 rows
    ((3, 8, 8, 8), (2, 2), 33, "same", (1, 1)),      # even kernel: extra padding after only
    ((2, 10, 9, 24), (3, 3), 8, "same", (2, 2)),     # dilation with same
    ((2, 9, 10, 9), (3, 3), 12, "valid", (1, 1)),    # valid: border dx pixels see fewer taps
    ((1, 11, 8, 10), (5, 4), 9, "valid", (2, 1)),    # dilated valid, non-square kernel
    ((1, 4, 4, 24), (4, 4), 40, "valid", (1, 1)),    # one dy pixel spreads over all of dx
]


@pytest.mark.parametrize("x_shape,k,cout,padding,dilation", BWD_SHAPES)
def test_igemm_backward_input_matches_reference_and_col2im_path(x_shape, k, cout, padding, dilation):
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, _ = _case(x_shape, k, cout)
    y = Ref.conv2d(x, w, None, (1, 1), padding, dilation)
    dy = R.standard_normal(y.shape).astype(np.float32)
    dx = _C.conv2d_backward_input(dy, w, x.shape, (1, 1), padding, dilation)
    np.testing.assert_allclose(dx, Ref.conv2d_backward_input(dy, w, x.shape, (1, 1), padding, dilation),
                               rtol=1e-4, atol=1e-4)
    dx_old = _im2col_path(lambda: _C.conv2d_backward_input(dy, w, x.shape, (1, 1), padding, dilation))
    np.testing.assert_allclose(dx, dx_old, rtol=1e-5, atol=1e-5)
