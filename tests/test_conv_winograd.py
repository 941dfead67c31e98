"""The Winograd F(2x2, 3x3) forward of the native backend (csrc/conv/winograd.h): 3x3 stride-1
convs with C_in and C_out >= 16. Ragged shapes (odd H/W, images smaller than a 2x2 tile, N = 1,
channels off the 8/16 multiples, 'same' and 'valid'), bias or none, every fused activation.
Checked against a float64 reference with the bound float32 allows (1e-4 of the sum of |terms|
of each output), against the implicit-GEMM path it replaces (PYNN_CONV_WINOGRAD=0), against
torch.nn.functional.conv2d on the same weights, and at 1, 2, 3, 4, 7 and 8 threads, where it is
bit-identical (tile blocks fixed by the shape, each computed by one thread in one order).
conv2d_paths pins which shapes take it."""

import numpy as np
import pytest
from conv_reference import at_threads, conv_case, with_path_switched_off

from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

R = np.random.default_rng(11)

# (x shape NHWC, C_out, padding)
SHAPES = [
    ((2, 9, 11, 17), 19, "same"),     # odd H and W: last tile row and column half outside; 17/19 channels
    ((1, 5, 7, 16), 16, "valid"),     # N = 1, 3x5 output: odd both ways
    ((3, 1, 1, 20), 24, "same"),      # a single pixel: one tile, 15 of its 16 input cells are padding
    ((2, 2, 3, 16), 17, "same"),      # H, W < a 4x4 input tile
    ((1, 3, 3, 23), 33, "valid"),     # one output pixel ('valid' 3x3 on 3x3); 33 = 2·16 + 1 channels
    ((2, 13, 13, 32), 64, "valid"),   # the small CNN's second conv (11x11 output)
    ((5, 8, 6, 24), 40, "same"),      # several tiles blocks' worth, 40 = 2·16 + 8
]


def _path(x_shape, cout, padding):
    from pynn import _C
    return _C.conv2d_paths(x_shape, (3, 3, x_shape[3], cout), (1, 1), padding)["forward"]


def _without_winograd(fn):
    return with_path_switched_off("PYNN_CONV_WINOGRAD", fn)


def _ref64(x, w, b, padding):
    """float64 conv and the sum of |terms| of each output (the float32 error scale)."""
    from pynn.backend import numpy as Ref
    f = lambda a: a.astype(np.float64)  # noqa: E731
    y = Ref.conv2d(f(x), f(w), None if b is None else f(b), (1, 1), padding, (1, 1))
    s = Ref.conv2d(np.abs(f(x)), np.abs(f(w)), None if b is None else np.abs(f(b)), (1, 1), padding, (1, 1))
    return y, s


@pytest.mark.parametrize("x_shape,cout,padding", SHAPES)
def test_shapes_take_winograd(x_shape, cout, padding):
    assert _path(x_shape, cout, padding) == "winograd"


def test_other_convs_keep_their_paths():
    from pynn import _C
    from conv_reference import im2col_path
    assert _path((2, 9, 9, 15), 64, "same") == "implicit_gemm"      # C_in below 16
    assert _path((2, 9, 9, 64), 15, "same") == "implicit_gemm"      # C_out below 16
    assert _path((64, 28, 28, 1), 32, "valid") == "small_channel"   # the first layer keeps its kernel
    paths = lambda *a: _C.conv2d_paths(*a)["forward"]  # noqa: E731
    assert paths((2, 9, 9, 32), (3, 3, 32, 32), (2, 2), "same") == "implicit_gemm"           # stride 2
    assert paths((2, 9, 9, 32), (3, 3, 32, 32), (1, 1), "same", (2, 2)) == "implicit_gemm"   # dilation 2
    assert paths((2, 9, 9, 32), (5, 5, 32, 32), (1, 1), "same") == "implicit_gemm"           # 5x5
    assert paths((2, 9, 9, 32), (1, 1, 32, 32), (1, 1), "valid") == "pointwise"
    assert _without_winograd(lambda: _path((2, 9, 9, 32), 32, "same")) == "implicit_gemm"
    assert im2col_path(lambda: _path((2, 9, 9, 32), 32, "same")) == "im2col"


@pytest.mark.parametrize("x_shape,cout,padding", SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_forward_within_float32_bound_of_float64_reference(x_shape, cout, padding, with_bias):
    from pynn import _C
    x, w, b = conv_case(R, x_shape, (3, 3), cout)
    b = b if with_bias else None
    y = _C.conv2d(x, w, b, (1, 1), padding)
    ref, scale = _ref64(x, w, b, padding)
    assert y.shape == ref.shape and y.dtype == np.float32
    err = np.abs(y - ref)
    assert (err <= 1e-4 * scale).all(), float((err / scale).max())
    # and as close to the implicit-GEMM path as two float32 convs get
    y_direct = _without_winograd(lambda: _C.conv2d(x, w, b, (1, 1), padding))
    np.testing.assert_allclose(y, y_direct, rtol=1e-5, atol=1e-5)


ACTS = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "elu", "selu", "softplus",
        "softsign", "exponential", "relu6", "silu", "hard_silu", "hard_sigmoid", "mish"]


def test_every_activation_is_listed():
    from pynn import _C
    assert sorted(ACTS) == sorted(_C.activation_names())


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("x_shape,cout,padding", [SHAPES[0], SHAPES[2], SHAPES[5]])
def test_fused_activation_matches_implicit_gemm_path(activation, x_shape, cout, padding):
    from pynn import _C
    x, w, b = conv_case(R, x_shape, (3, 3), cout)
    alpha = {"leaky_relu": 0.2, "elu": 0.7}.get(activation, 0.0)
    y = _C.conv2d(x, w, b, (1, 1), padding, (1, 1), activation, alpha)
    y_direct = _without_winograd(lambda: _C.conv2d(x, w, b, (1, 1), padding, (1, 1), activation, alpha))
    np.testing.assert_allclose(y, y_direct, rtol=1e-4, atol=1e-5)
    # and the activation is applied once, to conv + bias (not to the tiles' transformed sums)
    lin = _C.conv2d(x, w, b, (1, 1), padding)
    np.testing.assert_allclose(y, _C.act_forward(lin, activation, alpha), rtol=1e-5, atol=1e-6)


def test_matches_torch_conv2d_on_the_same_weights():
    torch = pytest.importorskip("torch")
    from pynn import _C
    x, w, b = conv_case(R, (4, 15, 13, 48), (3, 3), 40)
    y = _C.conv2d(x, w, b, (1, 1), "same")
    t = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                                   torch.from_numpy(w.transpose(3, 2, 0, 1).copy()), torch.from_numpy(b), padding=1)
    np.testing.assert_allclose(y, t.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    yv = _C.conv2d(x, w, b, (1, 1), "valid")
    tv = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                                    torch.from_numpy(w.transpose(3, 2, 0, 1).copy()), torch.from_numpy(b))
    np.testing.assert_allclose(yv, tv.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
@pytest.mark.parametrize("x_shape,cout,padding", [((37, 12, 10, 24), 40, "same"), ((9, 13, 13, 32), 64, "valid"),
                                                  ((1, 5, 7, 16), 16, "valid")])
def test_bit_identical_at_every_thread_count(threads, x_shape, cout, padding):
    from pynn import _C
    x, w, b = conv_case(R, x_shape, (3, 3), cout)
    run = lambda: _C.conv2d(x, w, b, (1, 1), padding, (1, 1), "relu")  # noqa: E731
    one, many = at_threads(run, 1), at_threads(run, threads)
    np.testing.assert_array_equal(one, many)


def test_large_batch_many_blocks_matches_reference():
    from pynn import _C
    x, w, b = conv_case(R, (16, 17, 19, 64), (3, 3), 64)  # 16·9·10 tiles: many blocks, a ragged last one
    y = _C.conv2d(x, w, b, (1, 1), "same")
    ref, scale = _ref64(x, w, b, "same")
    assert (np.abs(y - ref) <= 1e-4 * scale).all()


def test_nan_and_inf_reach_the_outputs_whose_windows_hold_them():
    # NaN: exactly the direct conv's pattern (a cell enters only the transformed terms of the outputs
    # whose windows hold it). inf: those outputs are non-finite too (±inf, or NaN where the transform's
    # terms of opposite sign meet); every other output stays finite.
    from pynn import _C
    x, w, b = conv_case(R, (2, 7, 8, 16), (3, 3), 16)
    x[0, 2, 3, 5] = np.nan
    x[1, 6, 7, 0] = np.inf
    x[1, 0, 0, 9] = -np.inf
    y = _C.conv2d(x, w, b, (1, 1), "same")
    y_direct = _without_winograd(lambda: _C.conv2d(x, w, b, (1, 1), "same"))
    np.testing.assert_array_equal(np.isnan(y[0]), np.isnan(y_direct[0]))
    np.testing.assert_array_equal(np.isfinite(y), np.isfinite(y_direct))
    fin = np.isfinite(y)
    np.testing.assert_allclose(y[fin], y_direct[fin], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("argmax", [False, True])
def test_fused_max_pool_on_winograd_matches_conv_then_pool(argmax):
    # conv2d_max_pool2d(_argmax) runs the Winograd conv on L2-sized chunks of images, its weights
    # transformed once (the small CNN's second conv + ReLU + 2x2 pool, 11x11 cropped to 10x10).
    from pynn import _C
    x, w, b = conv_case(R, (64, 13, 13, 32), (3, 3), 64)
    assert _path(x.shape, 64, "valid") == "winograd"
    conv = _C.conv2d(x, w, b, (1, 1), "valid", (1, 1), "relu")
    pooled = _C.max_pool2d(conv, (2, 2), (2, 2), "valid")
    if argmax:
        y, idx = _C.conv2d_max_pool2d_argmax(x, w, b, (1, 1), "valid", (1, 1), "relu")
        assert idx.shape == y.shape
    else:
        y = _C.conv2d_max_pool2d(x, w, b, (1, 1), "valid", (1, 1), "relu")
    np.testing.assert_allclose(y, pooled, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- input gradient
# dx of a 3x3 stride-1 conv is the Winograd forward over dy with the kernel flipped and transposed
# and padding 2 - p: 'valid' becomes padding 2 on every side, 'same' stays 1.
DX_SHAPES = [
    ((2, 9, 11, 17), 19, "same"),
    ((1, 5, 7, 16), 16, "valid"),     # 3x5 dy, padding 2: every dx tile reads padding
    ((3, 3, 3, 20), 24, "valid"),     # a single dy pixel spread over all of dx
    ((2, 13, 13, 32), 64, "valid"),   # the small CNN's second conv
    ((3, 1, 2, 16), 16, "same"),
]


@pytest.mark.parametrize("x_shape,cout,padding", DX_SHAPES)
def test_input_gradient_takes_winograd_within_float32_bound(x_shape, cout, padding):
    from pynn import _C
    from pynn.backend import numpy as Ref
    x, w, _ = conv_case(R, x_shape, (3, 3), cout)
    assert _C.conv2d_backward_input_winograd(x_shape, w.shape, (1, 1), padding)
    y_shape = _C.conv2d(x, w, None, (1, 1), padding).shape
    dy = R.standard_normal(y_shape).astype(np.float32)
    dy[:, -1] = 0  # a max pool's dead row
    dx = _C.conv2d_backward_input(dy, w, x_shape, (1, 1), padding)
    f = lambda a: a.astype(np.float64)  # noqa: E731
    ref = Ref.conv2d_backward_input(f(dy), f(w), x_shape, (1, 1), padding, (1, 1))
    scale = Ref.conv2d_backward_input(np.abs(f(dy)), np.abs(f(w)), x_shape, (1, 1), padding, (1, 1))
    assert dx.shape == x_shape and dx.dtype == np.float32
    assert (np.abs(dx - ref) <= 1e-4 * scale).all()
    dx_direct = _without_winograd(lambda: _C.conv2d_backward_input(dy, w, x_shape, (1, 1), padding))
    np.testing.assert_allclose(dx, dx_direct, rtol=1e-5, atol=1e-5)


def test_input_gradient_of_other_convs_does_not_take_winograd():
    from pynn import _C
    assert not _C.conv2d_backward_input_winograd((2, 9, 9, 15), (3, 3, 15, 32), (1, 1), "same")
    assert not _C.conv2d_backward_input_winograd((2, 9, 9, 32), (3, 3, 32, 32), (2, 2), "same")
    assert not _C.conv2d_backward_input_winograd((2, 9, 9, 32), (3, 3, 32, 32), (1, 1), "same", (2, 2))
    assert not _without_winograd(lambda: _C.conv2d_backward_input_winograd((2, 9, 9, 32), (3, 3, 32, 32)))


@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
def test_input_gradient_bit_identical_at_every_thread_count(threads):
    from pynn import _C
    x, w, _ = conv_case(R, (9, 13, 13, 32), (3, 3), 64)
    dy = R.standard_normal((9, 11, 11, 64)).astype(np.float32)
    run = lambda: _C.conv2d_backward_input(dy, w, x.shape, (1, 1), "valid")  # noqa: E731
    np.testing.assert_array_equal(at_threads(run, 1), at_threads(run, threads))


def test_input_gradient_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    from pynn import _C
    x, w, _ = conv_case(R, (4, 10, 9, 24), (3, 3), 32)
    dy = R.standard_normal((4, 10, 9, 32)).astype(np.float32)
    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    torch.nn.functional.conv2d(tx, torch.from_numpy(w.transpose(3, 2, 0, 1).copy()), padding=1).backward(
        torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()))
    dx = _C.conv2d_backward_input(dy, w, x.shape, (1, 1), "same")
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
