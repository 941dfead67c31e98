"""The small-channel convolution kernels (csrc/conv/direct.*): forward and weight gradient for
C_in <= 4, reading taps at a constant stride from x (no im2col). Shapes are chosen to hit every
branch of the driver: border tiles (left/right windows crossing the image, packed with zeros),
whole kernel rows above/below the image (skipped taps), tiles of fewer than 6 pixels, output
channels not a multiple of 16, strides 2 and 3, dilation, 'same' and 'valid', K not a multiple
of 6 (the weight gradient's 6-row tiles), and a window wider than the image. Checked against
the numpy reference in float64, against the im2col + GEMM path they replace (PYNN_CONV_IGEMM=0),
and at 1, 2, 3, 4, 7 and 8 threads. conv2d_paths pins which kernel each shape reaches."""
import numpy as np
import pytest
from conv_reference import conv_case, im2col_path

import pynn
from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

R = np.random.default_rng(17)

# (x shape NHWC, (kh, kw), C_out, strides, padding, dilation)
SHAPES = [
    ((3, 28, 28, 1), (3, 3), 32, (1, 1), "valid", (1, 1)),   # the MNIST first layer (26 = 4 tiles + 2)
    ((2, 9, 11, 1), (3, 3), 17, (1, 1), "same", (1, 1)),     # borders on all sides, 16 + 1 channels
    ((2, 10, 7, 3), (3, 3), 20, (1, 1), "same", (1, 1)),     # RGB, K = 27 (4 dW tiles + 3)
    ((2, 11, 13, 4), (5, 3), 33, (2, 2), "same", (1, 1)),    # stride 2, 5x3, C 4
    ((2, 12, 12, 2), (3, 3), 40, (1, 2), "same", (2, 2)),    # dilation, unequal strides
    ((1, 9, 10, 3), (2, 4), 5, (3, 3), "valid", (1, 1)),     # stride 3, even kernel, 5 channels out
    ((2, 4, 3, 2), (5, 5), 9, (1, 1), "same", (1, 1)),       # window wider than the image
    ((1, 6, 30, 1), (1, 7), 1, (1, 1), "same", (1, 1)),      # one output channel, 1xk kernel
    ((2, 8, 8, 4), (3, 3), 64, (2, 2), "valid", (1, 1)),     # several 16-channel panels
]


def _case(x_shape, k, cout):
    return conv_case(R, x_shape, k, cout)


def _avx2():
    from pynn import _C
    return _C.conv2d_paths((1, 5, 5, 1), (3, 3, 1, 4))["forward"] == "small_channel"


@pytest.mark.parametrize("x_shape,k,cout,strides,padding,dilation", SHAPES)
def test_small_channel_shapes_take_the_direct_kernels(x_shape, k, cout, strides, padding, dilation):
    from pynn import _C
    if not _avx2():
        pytest.skip("no AVX2 (or PYNN_CONV_IGEMM=0): the portable im2col path runs")
    paths = _C.conv2d_paths(x_shape, k + (x_shape[3], cout), strides, padding, dilation)
    assert paths == {"forward": "small_channel", "kernel_grad": "direct"}


def test_wider_inputs_and_pointwise_keep_their_kernels():
    from pynn import _C
    if not _avx2():
        pytest.skip("no AVX2")
    # 5 channels with side padding: runs of 5 floats, below the implicit GEMM's minimum
    assert _C.conv2d_paths((2, 9, 9, 5), (3, 3, 5, 8), (1, 1), "same") == {"forward": "im2col",
                                                                          "kernel_grad": "im2col"}
    assert _C.conv2d_paths((2, 9, 9, 16), (3, 3, 16, 8)) == {"forward": "implicit_gemm",
                                                             "kernel_grad": "implicit_gemm"}
    assert _C.conv2d_paths((2, 9, 9, 1), (1, 1, 1, 8)) == {"forward": "pointwise", "kernel_grad": "pointwise"}
    assert im2col_path(lambda: _C.conv2d_paths((2, 9, 9, 1), (3, 3, 1, 8))) == {"forward": "im2col",
                                                                                 "kernel_grad": "im2col"}


@pytest.mark.parametrize("x_shape,k,cout,strides,padding,dilation", SHAPES)
@pytest.mark.parametrize("activation", ["linear", "relu", "tanh"])
def test_small_channel_forward_matches_float64_reference_and_im2col(x_shape, k, cout, strides, padding, dilation,
                                                                     activation):
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, b = _case(x_shape, k, cout)
    ref = Ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), strides, padding, dilation)
    ref = {"linear": ref, "relu": np.maximum(ref, 0), "tanh": np.tanh(ref)}[activation]
    y = _C.conv2d(x, w, b, strides, padding, dilation, activation)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    y_old = im2col_path(lambda: _C.conv2d(x, w, b, strides, padding, dilation, activation))
    np.testing.assert_allclose(y, y_old, rtol=1e-5, atol=1e-5)
    y_nob = _C.conv2d(x, w, None, strides, padding, dilation)
    np.testing.assert_allclose(y_nob, Ref.conv2d(x, w, None, strides, padding, dilation), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("x_shape,k,cout,strides,padding,dilation", SHAPES)
def test_small_channel_weight_gradient_matches_float64_reference_and_im2col(x_shape, k, cout, strides, padding,
                                                                            dilation):
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, _ = _case(x_shape, k, cout)
    y = Ref.conv2d(x, w, None, strides, padding, dilation)
    dy = R.standard_normal(y.shape).astype(np.float32)
    ref = Ref.conv2d_backward_kernel(x.astype(np.float64), dy.astype(np.float64), w.shape, strides, padding, dilation)
    dw = _C.conv2d_backward_kernel(x, dy, w.shape, strides, padding, dilation)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(dw, ref, rtol=1e-4, atol=1e-5 * scale)
    dw_old = im2col_path(lambda: _C.conv2d_backward_kernel(x, dy, w.shape, strides, padding, dilation))
    np.testing.assert_allclose(dw, dw_old, rtol=1e-4, atol=1e-5 * scale)


def test_small_channel_empty_batch():
    from pynn import _C
    x = np.zeros((0, 8, 8, 2), np.float32)
    w = R.standard_normal((3, 3, 2, 5)).astype(np.float32)
    assert _C.conv2d(x, w, None, (1, 1), "same").shape == (0, 8, 8, 5)
    dw = _C.conv2d_backward_kernel(x, np.zeros((0, 8, 8, 5), np.float32), w.shape, (1, 1), "same")
    np.testing.assert_array_equal(dw, np.zeros(w.shape, np.float32))


@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
def test_small_channel_kernels_agree_with_one_thread(threads):
    from pynn import _C
    x, w, b = _case((37, 14, 13, 3), (3, 3), 24)  # 37·14 output rows: uneven splits at every count
    dy = R.standard_normal((37, 14, 13, 24)).astype(np.float32)

    def run():
        return (_C.conv2d(x, w, b, (1, 1), "same", (1, 1), "relu"),
                _C.conv2d_backward_kernel(x, dy, w.shape, (1, 1), "same"))

    before = pynn.get_num_threads()
    pynn.set_num_threads(1)
    try:
        y1, dw1 = run()
        pynn.set_num_threads(threads)
        yn, dwn = run()
    finally:
        pynn.set_num_threads(before)
    np.testing.assert_array_equal(yn, y1)  # every output pixel is one thread's, in a fixed order
    # the weight gradient sums per-thread partials: same terms, another association
    np.testing.assert_allclose(dwn, dw1, rtol=1e-5, atol=1e-5 * np.abs(dw1).max())


@pytest.mark.parametrize("cout", [16, 32, 40])
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid"])
def test_valid_small_channel_forward_is_bitwise_across_threads_and_matches_float64(cout, activation):
    # 'valid': every window inside, so whole 16-channel panels of full 6-pixel tiles run as one
    # batched call per 32 tiles (small_c_tiles_6x16) and the partial panel (40 = 2·16 + 8) and the
    # last partial tile (37·38·32 = 44992 pixels = 7498 tiles + 4) the per-tile kernel. Big enough
    # (44992 · 18 · 40 multiply-adds) that 8 threads each get their share.
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, b = _case((37, 40, 34, 2), (3, 3), cout)
    assert _C.conv2d_paths(x.shape, w.shape)["forward"] == "small_channel"
    ref = Ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (1, 1), "valid", (1, 1))
    ref = {"linear": ref, "relu": np.maximum(ref, 0), "sigmoid": 1 / (1 + np.exp(-ref))}[activation]
    before = pynn.get_num_threads()
    try:
        pynn.set_num_threads(1)
        y1 = _C.conv2d(x, w, b, (1, 1), "valid", (1, 1), activation)
        for threads in (2, 3, 4, 7, 8):
            pynn.set_num_threads(threads)
            np.testing.assert_array_equal(_C.conv2d(x, w, b, (1, 1), "valid", (1, 1), activation), y1)
    finally:
        pynn.set_num_threads(before)
    np.testing.assert_allclose(y1, ref, rtol=1e-4, atol=1e-5)
