"""The implicit-GEMM (indirect) convolution of the native backend: forward, input gradient
(stride 1) and weight gradient (any stride). Edge tiles (pixels not a multiple of 6,
channels not a multiple of 16 or 6), padding at every border, merged kernel rows, dilation
with 'same', strides, fused activations, tiles whose taps all read padding. Checked against
the numpy reference (float64 for the weight gradient, and float64 finite differences of the
reference forward), against the im2col + GEMM path it replaces (PYNN_CONV_IGEMM=0 switches
the native kernel back to im2col for one call), and at 1, 2, 3, 4, 7 and 8 threads: every
output element is summed by one thread in a fixed order, so results are bit-identical."""
import numpy as np
import pytest
from conv_reference import at_threads, conv_case, im2col_path

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
    return conv_case(R, x_shape, k, cout)


@pytest.mark.parametrize("x_shape,k,cout,strides,padding,dilation", SHAPES)
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid"])
def test_igemm_forward_matches_reference_andim2col_path(x_shape, k, cout, strides, padding, dilation, activation):
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, b = _case(x_shape, k, cout)
    ref = Ref.conv2d(x, w, b, strides, padding, dilation)
    ref = {"linear": ref, "relu": np.maximum(ref, 0), "sigmoid": 1 / (1 + np.exp(-ref))}[activation]
    y = _C.conv2d(x, w, b, strides, padding, dilation, activation)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    y_old = im2col_path(lambda: _C.conv2d(x, w, b, strides, padding, dilation, activation))
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
    dx_old = im2col_path(lambda: _C.conv2d_backward_input(dy, w, x.shape, (1, 1), padding, dilation))
    np.testing.assert_allclose(dx, dx_old, rtol=1e-5, atol=1e-5)


# Weight gradient: C_in > 4 (the small-channel direct kernel takes C_in <= 4) and runs >= 8 floats.
DW_SHAPES = [
    ((2, 9, 11, 17), (3, 3), 19, (1, 1), "same", (1, 1)),    # 17-float runs: a 16 + 1 column tile per tap
    ((3, 13, 13, 32), (3, 3), 64, (1, 1), "valid", (1, 1)),  # the CNN's conv64 layer (merged rows, run 96)
    ((2, 10, 9, 24), (3, 3), 8, (2, 2), "same", (1, 1)),     # stride 2, 8 output channels: a 6 + 2 row tile
    ((2, 12, 12, 8), (3, 3), 16, (1, 1), "valid", (2, 2)),   # dilation valid: rows do not merge
    ((1, 13, 12, 12), (5, 5), 31, (3, 3), "same", (1, 1)),   # stride 3, 5x5, 31 = 5·6 + 1 output rows
    ((2, 9, 10, 9), (3, 2), 5, (2, 3), "same", (1, 1)),      # unequal strides, fewer than 6 outputs
    ((2, 9, 10, 8), (3, 3), 1, (2, 2), "valid", (1, 1)),     # one output channel, merged rows with stride
    ((1, 4, 4, 24), (4, 4), 40, (1, 1), "valid", (1, 1)),    # one output pixel, K = 384
    ((5, 7, 6, 16), (3, 3), 12, (1, 1), "same", (1, 1)),     # 210 pixels: blocks end mid-image
    ((9, 13, 13, 32), (3, 3), 64, (1, 1), "valid", (1, 1)),  # 1089 pixels: 5 pixel chunks x 2 k-tile groups
]


def _dw_case(x_shape, k, cout, strides, padding, dilation):
    from pynn.backend import numpy as Ref
    x, w, _ = _case(x_shape, k, cout)
    dy = R.standard_normal(Ref.conv2d(x, w, None, strides, padding, dilation).shape).astype(np.float32)
    return x, w, dy


@pytest.mark.parametrize("x_shape,k,cout,strides,padding,dilation", DW_SHAPES)
def test_igemm_weight_gradient_matches_float64_reference_and_im2col_path(x_shape, k, cout, strides, padding,
                                                                        dilation):
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, dy = _dw_case(x_shape, k, cout, strides, padding, dilation)
    if _C.conv2d_paths(x_shape, w.shape, strides, padding, dilation)["forward"] == "implicit_gemm":
        assert _C.conv2d_paths(x_shape, w.shape, strides, padding, dilation)["kernel_grad"] == "implicit_gemm"
    dw = _C.conv2d_backward_kernel(x, dy, w.shape, strides, padding, dilation)
    ref = Ref.conv2d_backward_kernel(x.astype(np.float64), dy.astype(np.float64), w.shape, strides, padding, dilation)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(dw, ref, rtol=1e-4, atol=1e-5 * scale)
    dw_old = im2col_path(lambda: _C.conv2d_backward_kernel(x, dy, w.shape, strides, padding, dilation))
    np.testing.assert_allclose(dw, dw_old, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("x_shape,k,cout,strides,padding,dilation", [DW_SHAPES[0], DW_SHAPES[2], DW_SHAPES[3]])
def test_igemm_weight_gradient_matches_float64_finite_differences(x_shape, k, cout, strides, padding, dilation):
    # L(w) = Σ conv(x, w) · dy in float64 through the reference forward: dL/dw is the weight
    # gradient by definition, independent of any backward kernel.
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, dy = _dw_case(x_shape, k, cout, strides, padding, dilation)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    loss = lambda w_: float((Ref.conv2d(x64, w_, None, strides, padding, dilation) * dy64).sum())  # noqa: E731
    dw = _C.conv2d_backward_kernel(x, dy, w.shape, strides, padding, dilation)
    w64, eps = w.astype(np.float64), 1e-3
    fd = np.zeros_like(w64)
    for idx in np.ndindex(*w.shape):
        e = np.zeros_like(w64)
        e[idx] = eps
        fd[idx] = (loss(w64 + e) - loss(w64 - e)) / (2 * eps)
    np.testing.assert_allclose(dw, fd, rtol=1e-4, atol=1e-5 * np.abs(fd).max())


def test_igemm_weight_gradient_of_an_empty_batch_is_zero():
    from pynn import _C
    x = np.zeros((0, 9, 9, 16), np.float32)
    dw = _C.conv2d_backward_kernel(x, np.zeros((0, 9, 9, 8), np.float32), (3, 3, 16, 8), (1, 1), "same")
    np.testing.assert_array_equal(dw, np.zeros((3, 3, 16, 8), np.float32))


def test_input_gradient_writes_pixels_no_window_reaches():
    # dilation 3 over a 2x2 'valid' window on 5 pixels: dx rows/columns 1, 2 and 4 get no tap, so
    # whole 6-pixel tiles of dx read only padding (the tile is written by a call over zero taps).
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, _ = _case((2, 5, 5, 8), (2, 2), 9)
    dy = R.standard_normal((2, 2, 2, 9)).astype(np.float32)
    dx = _C.conv2d_backward_input(dy, w, x.shape, (1, 1), "valid", (3, 3))
    ref = Ref.conv2d_backward_input(dy, w, x.shape, (1, 1), "valid", (3, 3))
    assert not np.any(ref[:, 2]) and not np.any(ref[:, :, 2])
    np.testing.assert_allclose(dx, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
@pytest.mark.parametrize("x_shape,k,cout,strides,padding", [
    ((37, 11, 13, 32), (3, 3), 64, (1, 1), "valid"),   # 18 k-tiles, 11 6-channel rows, uneven splits
    ((65, 24, 20, 24), (3, 3), 20, (2, 2), "same"),    # stride 2, 18 k-tiles of 16 + 8 columns
    ((2, 20, 23, 32), (3, 3), 40, (1, 1), "valid"),    # dW: 3 pixel chunks x 3 k-tile groups, partials added
])
def test_igemm_kernels_are_bit_identical_at_every_thread_count(threads, x_shape, k, cout, strides, padding):
    # Forward and input gradient: each output pixel is one thread's; weight gradient: each (pixel
    # chunk, k-tile group) unit is one thread's, chunks fixed by the shape and added in order.
    from pynn import _C
    x, w, b = _case(x_shape, k, cout)
    y = _C.conv2d(x, w, b, strides, padding, (1, 1), "relu")
    dy = R.standard_normal(y.shape).astype(np.float32)

    def run():
        out = [_C.conv2d(x, w, b, strides, padding, (1, 1), "relu"),
               _C.conv2d_backward_kernel(x, dy, w.shape, strides, padding)]
        if strides == (1, 1):
            out.append(_C.conv2d_backward_input(dy, w, x.shape, strides, padding))
        return out

    one, many = at_threads(run, 1), at_threads(run, threads)
    assert _C.conv2d_paths(x_shape, w.shape, strides, padding)["kernel_grad"] == "implicit_gemm"
    for a, b_ in zip(one, many):
        np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("x_shape,k,cout,strides,padding", [
    ((3, 13, 13, 32), (3, 3), 64, (1, 1), "valid"),   # the CNN's conv64 layer before a 2x2 max pool
    ((2, 9, 11, 17), (3, 3), 19, (1, 1), "same"),
    ((2, 10, 9, 24), (3, 3), 8, (2, 2), "same"),
])
def test_gradients_skip_all_zero_dy_pixels_exactly(x_shape, k, cout, strides, padding):
    # A max pool over an odd-sized map leaves its last row and column without gradient: whole dy
    # pixels are zero and the implicit GEMMs drop them. Also zeroed: scattered pixels, one image
    # entirely, and a pixel holding only -0.0; a pixel with a single nonzero channel stays.
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, dy = _dw_case(x_shape, k, cout, strides, padding, (1, 1))
    dy[:, -1], dy[:, :, -1] = 0, 0
    dy[0, ::2, 1::3] = 0
    dy[1] = 0
    dy[-1, 0, 0] = -0.0
    dy[-1, 1, 0, :] = 0
    dy[-1, 1, 0, 3 % cout] = 2.5
    dw = _C.conv2d_backward_kernel(x, dy, w.shape, strides, padding)
    ref = Ref.conv2d_backward_kernel(x.astype(np.float64), dy.astype(np.float64), w.shape, strides, padding, (1, 1))
    np.testing.assert_allclose(dw, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    np.testing.assert_array_equal(dw, at_threads(lambda: _C.conv2d_backward_kernel(x, dy, w.shape, strides, padding),
                                                 4))
    if strides == (1, 1):
        dx = _C.conv2d_backward_input(dy, w, x.shape, strides, padding)
        rx = Ref.conv2d_backward_input(dy.astype(np.float64), w.astype(np.float64), x.shape, strides, padding, (1, 1))
        np.testing.assert_allclose(dx, rx, rtol=1e-4, atol=1e-5 * np.abs(rx).max())


def test_gradients_of_an_all_zero_dy_are_zero():
    from pynn import _C
    x, w, _ = _case((2, 9, 9, 16), (3, 3), 8)
    dy = np.zeros((2, 9, 9, 8), np.float32)
    np.testing.assert_array_equal(_C.conv2d_backward_kernel(x, dy, w.shape, (1, 1), "same"), np.zeros(w.shape))
    np.testing.assert_array_equal(_C.conv2d_backward_input(dy, w, x.shape, (1, 1), "same"), np.zeros(x.shape))


def test_a_nan_in_dy_is_not_taken_for_a_zero_pixel():
    # The zero-pixel skip tests "!= 0": a pixel whose only non-zero is NaN still counts, as in the reference.
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, dy = _dw_case((2, 9, 9, 16), (3, 3), 8, (1, 1), "same", (1, 1))
    dy[0, 4, 4, :] = 0
    dy[0, 4, 4, 5] = np.nan
    dw = _C.conv2d_backward_kernel(x, dy, w.shape, (1, 1), "same")
    ref = Ref.conv2d_backward_kernel(x, dy, w.shape, (1, 1), "same", (1, 1))
    np.testing.assert_array_equal(np.isnan(dw), np.isnan(ref))
    assert np.isnan(dw[..., 5]).all() and not np.isnan(dw[..., :5]).any()
    dx = _C.conv2d_backward_input(dy, w, x.shape, (1, 1), "same")
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(Ref.conv2d_backward_input(dy, w, x.shape, (1, 1), "same",
                                                                                    (1, 1))))
