"""The native activation list (csrc/common/activation.h): every activation's
forward and gradient against a float64 formula and against PyTorch, through every
kernel that fuses it (elementwise, the GEMM epilogue on both ISA paths and both
GEMM drivers, the convolution, the bias-gradient pass and the recurrences), and
the binding contract (names, from-output flags, errors naming the op)."""
import math

import numpy as np
import pytest

_C = pytest.importorskip("pynn._C", reason="pynn._C not built")
from pynn.backend.native import nn as native_nn  # noqa: E402

NAMES = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "elu", "selu", "softplus",
         "softsign", "exponential", "relu6", "silu", "hard_silu", "hard_sigmoid", "mish"]
FROM_OUTPUT = {"linear", "relu", "sigmoid", "tanh", "selu", "softplus", "exponential", "relu6", "hard_sigmoid"}
ALPHA = {"leaky_relu": 0.2, "elu": 1.3}  # the others ignore act_alpha
ISAS = ["generic"] + (["avx2"] if _C.cpu_has_avx2_fma() else [])
RTOL, ATOL = 2e-5, 1e-6  # float32: a few ulp, atol for values through 0

SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _sig(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _gelu_tanh(x):
    c = math.sqrt(2 / math.pi)
    t = np.tanh(c * (x + 0.044715 * x**3))
    return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)


def reference(name, x, a):
    """(act(x), act'(x)) in float64, written from the definitions (Keras 3 names)."""
    if name == "linear":
        return x, np.ones_like(x)
    if name == "relu":
        return np.maximum(x, 0), (x > 0) * 1.0
    if name == "leaky_relu":
        return np.where(x < 0, a * x, x), np.where(x > 0, 1.0, a)
    if name == "sigmoid":
        s = _sig(x)
        return s, s * (1 - s)
    if name == "tanh":
        return np.tanh(x), 1 - np.tanh(x) ** 2
    if name == "gelu":
        cdf = 0.5 * _erfc(-x / math.sqrt(2))
        return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if name == "gelu_tanh":
        return _gelu_tanh(x)
    if name == "elu":
        return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))), np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))
    if name == "selu":
        xm = np.minimum(x, 0)
        return (SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(xm)),
                SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(xm)))
    if name == "softplus":
        return np.logaddexp(0, x), _sig(x)
    if name == "softsign":
        return x / (1 + np.abs(x)), 1 / (1 + np.abs(x)) ** 2
    if name == "exponential":
        return np.exp(x), np.exp(x)
    if name == "relu6":
        return np.clip(x, 0, 6), ((x > 0) & (x < 6)) * 1.0
    if name == "silu":
        s = _sig(x)
        return x * s, s * (1 + x * (1 - s))
    if name == "hard_silu":
        return x * np.clip(x + 3, 0, 6) / 6, np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (2 * x + 3) / 6))
    if name == "hard_sigmoid":
        return np.clip(x + 3, 0, 6) / 6, ((x > -3) & (x < 3)) / 6.0
    if name == "mish":
        t = np.tanh(np.logaddexp(0, x))
        return x * t, t + x * (1 - t * t) * _sig(x)
    raise AssertionError(name)


def _inputs(seed=0, n=4000):
    """Normal values of several scales, tails, zero, +-inf-free; kinks (0, +-3, 6) avoided by 1e-3."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(n) * s for s in (0.01, 1.0, 4.0)] + [np.linspace(-30, 30, 601)])
    for kink in (0.0, -3.0, 3.0, 6.0):
        x = x[np.abs(x - kink) > 1e-3]
    return x.astype(np.float32)


@pytest.fixture(params=ISAS)
def isa(request):
    old = _C.isa()
    _C.set_isa(request.param)
    yield request.param
    _C.set_isa(old)


def test_activation_names_are_the_keras_names_in_list_order():
    assert _C.activation_names() == NAMES
    assert {n for n in NAMES if _C.activation_from_output(n)} == FROM_OUTPUT


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_gradient_match_float64_formula(name, isa):
    a = ALPHA.get(name, 0.0)
    x = _inputs()
    y = _C.act_forward(x, name, a)
    dy = np.random.default_rng(1).uniform(0.5, 2.0, x.shape).astype(np.float32)
    dx = _C.act_backward(x, y, dy, name, a)
    ref_y, ref_d = reference(name, x.astype(np.float64), a)
    np.testing.assert_allclose(y, ref_y, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, ref_d * dy, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", NAMES)
def test_nan_in_nan_out_and_extremes_stay_finite(name, isa):
    a = ALPHA.get(name, 0.0)
    assert np.isnan(_C.act_forward(np.array([np.nan], np.float32), name, a)).all()
    big = np.array([-1e30, -1e4, -100.0, 100.0, 1e4, 1e30], np.float32)
    if name == "exponential":
        big = big[:3]
    y = _C.act_forward(big, name, a)
    dx = _C.act_backward(big, y, np.ones_like(big), name, a)
    assert np.isfinite(y).all() and np.isfinite(dx).all(), (y, dx)
    with np.errstate(over="ignore", invalid="ignore"):
        ref_y, ref_d = reference(name, big.astype(np.float64), a)
    np.testing.assert_allclose(y, ref_y, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, ref_d, rtol=RTOL, atol=ATOL)


def _torch_fn(name, a):
    F = pytest.importorskip("torch.nn.functional")
    import torch

    return {
        "linear": lambda t: t, "relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, a),
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "elu": lambda t: F.elu(t, a), "selu": F.selu,
        "softplus": F.softplus, "softsign": F.softsign, "exponential": torch.exp, "relu6": F.relu6,
        "silu": F.silu, "hard_silu": F.hardswish, "hard_sigmoid": F.hardsigmoid, "mish": F.mish,
    }[name]


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_gradient_match_torch(name):
    torch = pytest.importorskip("torch")
    a = ALPHA.get(name, 0.0)
    x = _inputs(seed=2)
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    out = _torch_fn(name, a)(t)
    out.backward(torch.ones_like(out))
    y = _C.act_forward(x, name, a)
    dx = _C.act_backward(x, y, np.ones_like(x), name, a)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, t.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(FROM_OUTPUT))
def test_from_output_gradients_never_read_x(name):
    x = _inputs(seed=3)
    y = _C.act_forward(x, name, 0.0)
    dy = np.ones_like(x)
    junk = np.full_like(x, np.nan)
    np.testing.assert_array_equal(_C.act_backward(junk, y, dy, name, 0.0), _C.act_backward(x, y, dy, name, 0.0))


@pytest.mark.parametrize("name", sorted(FROM_OUTPUT))
def test_fused_bias_gradient_from_output(name):
    z = np.random.default_rng(4).standard_normal((37, 21)).astype(np.float32) * 3
    y = _C.act_forward(z, name, 0.0)
    dy = np.random.default_rng(5).standard_normal(z.shape).astype(np.float32)
    dz, db = _C.act_bias_backward(y, dy, name)
    np.testing.assert_allclose(dz, _C.act_backward(z, y, dy, name, 0.0), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(db, dz.astype(np.float64).sum(0), rtol=1e-5, atol=1e-5)


# GEMM shapes: the small unpacked driver (<= 64^3), the packed frame with edge tiles, and
# the unpacked-A path (narrow B, row-major A).
GEMM_SHAPES = [(5, 7, 3), (13, 37, 29), (130, 70, 300), (64, 784 // 4, 128)]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_fused_gemm_epilogue_matches_float64(name, shape, isa):
    m, n, k = shape
    rng = np.random.default_rng(6)
    a_mat = (rng.standard_normal((m, k)) / math.sqrt(k)).astype(np.float32)
    b_mat = (rng.standard_normal((k, n)) * 2).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    alpha = ALPHA.get(name, 0.0)
    z = a_mat.astype(np.float64) @ b_mat + bias
    want = reference(name, z, alpha)[0]
    got = _C.gemm(a_mat, b_mat, bias=bias, activation=name, act_alpha=alpha)
    # the product itself is float32 (K terms): compare through the activation's slope
    slope = np.abs(reference(name, z, alpha)[1])
    tol = 2e-5 * np.abs(want) + 1e-5 * (1 + slope * np.abs(z)) + ATOL
    assert np.all(np.abs(got - want) <= tol), name
    # a strided (transposed) C goes through the edge-tile path of the same epilogue
    c = np.zeros((n, m), np.float32).T
    _C.gemm(a_mat, b_mat, c=c, bias=bias, activation=name, act_alpha=alpha)
    np.testing.assert_allclose(c, got, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_fused_epilogue_equals_separate_activation(name, isa):
    """matmul(activation=name) == act_forward(matmul(linear)) on both drivers and bmm."""
    rng = np.random.default_rng(7)
    alpha = ALPHA.get(name, 0.0)
    for m, n, k in [(9, 20, 11), (150, 40, 260)]:
        a_mat = rng.standard_normal((m, k)).astype(np.float32) * 0.3
        b_mat = rng.standard_normal((k, n)).astype(np.float32)
        lin = _C.gemm(a_mat, b_mat)
        np.testing.assert_allclose(_C.gemm(a_mat, b_mat, activation=name, act_alpha=alpha),
                                   _C.act_forward(lin, name, alpha), rtol=2e-6, atol=1e-7)
    a3 = rng.standard_normal((3, 6, 5)).astype(np.float32)
    b3 = rng.standard_normal((3, 5, 17)).astype(np.float32)
    np.testing.assert_allclose(_C.bmm(a3, b3, activation=name, act_alpha=alpha),
                               _C.act_forward(_C.bmm(a3, b3), name, alpha), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kernel", [(3, 3), (1, 1)])
def test_fused_conv_epilogue_equals_separate_activation(name, kernel, isa):
    """conv2d(activation=name): implicit GEMM (AVX2) or im2col + GEMM; 1x1: one GEMM."""
    rng = np.random.default_rng(8)
    alpha = ALPHA.get(name, 0.0)
    x = rng.standard_normal((2, 7, 6, 9)).astype(np.float32)
    w = (rng.standard_normal(kernel + (9, 20)) * 0.3).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    lin = _C.conv2d(x, w, b, (1, 1), "same")
    got = _C.conv2d(x, w, b, (1, 1), "same", (1, 1), name, alpha)
    np.testing.assert_allclose(got, _C.act_forward(lin, name, alpha), rtol=2e-6, atol=1e-7)


def _simple_rnn_ref(xw, h0, u, name):
    """float64 SimpleRNN forward and BPTT (dhs = ones) from the reference formulas."""
    n, t, units = xw.shape
    h, hs, zs = h0.astype(np.float64), [], []
    for s in range(t):
        z = xw[:, s] + h @ u
        h = reference(name, z, 0.0)[0]
        zs.append(z)
        hs.append(h)
    dh, dxw = np.zeros((n, units)), np.zeros(xw.shape)
    for s in reversed(range(t)):
        dz = (dh + 1.0) * reference(name, zs[s], 0.0)[1]
        dxw[:, s] = dz
        dh = dz @ u.T
    return np.stack(hs, 1), dxw


@pytest.mark.parametrize("name", sorted(FROM_OUTPUT))
def test_recurrences_take_every_from_output_activation(name, isa):
    rng = np.random.default_rng(9)
    n, t, units = 3, 4, 5
    xw = rng.standard_normal((n, t, units)).astype(np.float32)
    h0 = (rng.standard_normal((n, units)) * 0.5).astype(np.float32)
    u = (rng.standard_normal((units, units)) * 0.2).astype(np.float32)
    if name == "exponential":
        xw *= 0.3
    hs = _C.simple_rnn_forward(xw, h0, u, None, name, None)
    dxw, _, _ = _C.simple_rnn_backward(np.ones_like(hs), h0, hs, u, None, name, None)
    ref_hs, ref_dxw = _simple_rnn_ref(xw.astype(np.float64), h0, u.astype(np.float64), name)
    np.testing.assert_allclose(hs, ref_hs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dxw, ref_dxw, rtol=1e-4, atol=1e-5)
    # LSTM/GRU with it as the recurrent activation run too (values checked in test_recurrent.py)
    out = _C.lstm_forward(rng.standard_normal((n, t, 4 * units)).astype(np.float32), h0, h0,
                          rng.standard_normal((units, 4 * units)).astype(np.float32) * 0.2, None, "tanh", name, None)
    assert all(np.isfinite(o).all() for o in out)


def test_unknown_or_unfusable_activations_are_value_errors_naming_the_op():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"act_forward: unknown activation 'swish' \(expected one of linear, relu"):
        _C.act_forward(x, "swish", 0.0)
    with pytest.raises(ValueError, match="gemm: unknown activation 'softmax'"):
        _C.gemm(x, x.T, activation="softmax")
    with pytest.raises(ValueError, match="conv2d: unknown activation 'hard_swish'"):
        _C.conv2d(np.ones((1, 3, 3, 1), np.float32), np.ones((1, 1, 1, 2), np.float32), None, (1, 1), "valid",
                  (1, 1), "hard_swish")
    with pytest.raises(ValueError, match="activation_from_output: unknown activation 'nope'"):
        _C.activation_from_output("nope")
    with pytest.raises(ValueError, match="act_bias_backward: activation 'gelu' cannot be differentiated from its output"):
        _C.act_bias_backward(x, x, "gelu")
    with pytest.raises(ValueError, match="simple_rnn: activation 'mish' cannot be differentiated from its output"):
        _C.simple_rnn_forward(np.ones((1, 2, 3), np.float32), np.ones((1, 3), np.float32),
                              np.ones((3, 3), np.float32), None, "mish", None)


@pytest.mark.parametrize("name", NAMES)
def test_native_backend_wraps_every_native_activation(name):
    fwd, grad = getattr(native_nn, name), getattr(native_nn, name + "_grad")
    x = _inputs(seed=10)[:500]
    kw = {"alpha": ALPHA[name]} if name in ALPHA else {}
    y = fwd(x, **kw)
    np.testing.assert_array_equal(y, _C.act_forward(x, name, ALPHA.get(name, 0.0)))
    np.testing.assert_array_equal(grad(x, y, np.ones_like(x), **kw),
                                  _C.act_backward(x, y, np.ones_like(x), name, ALPHA.get(name, 0.0)))
    assert name in native_nn.__all__ and name + "_grad" in native_nn.__all__


# ---------------------------------------------------------------- the AVX2 GELU kernels
def _gelu_f64(name, x):
    """reference(), with the tanh form written as x·sigmoid(2u): 0.5x(1 + tanh u) cancels
    to 0 in float64 itself for x < -9, which would leave no reference for the left tail."""
    x = x.astype(np.float64)
    if name == "gelu":
        return reference(name, x, 0.0)
    c = math.sqrt(8 / math.pi)
    s = _sig(c * (x + 0.044715 * x**3))
    return x * s, s + x * s * (1 - s) * c * (1 + 3 * 0.044715 * x * x)


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh"])
def test_gelu_kernels_are_a_few_ulp_from_float64_on_a_dense_grid(name, isa):
    # Forward: relative error (the left tail of exact GELU keeps relative accuracy: its Phi is
    # computed as a tail, never as 1 + erf); backward: absolute (act' crosses 0 near x = -0.75).
    # The tanh form is ill-conditioned in float32 itself: sigmoid(2u) in the tails moves by
    # |2u|·eps relative when 2u (x³ in it) is rounded, 1e-5 at |x| = 14, and its gradient's
    # x·s(1 - s)·2u' term by ~2e-6 near |x| = 5. Measured: exact AVX2 2.7e-6 (the forward's
    # central polynomial at x = -2; 5e-7 elsewhere) / 2.5e-7, generic
    # 7.5e-6 / 2.1e-7; tanh form 1.2e-5 / 2e-6 on both paths.
    x = np.linspace(-14, 14, 280001).astype(np.float32)
    y = _C.act_forward(x, name, 0.0)
    d = _C.act_backward(x, y, np.ones_like(x), name, 0.0)
    ry, rd = _gelu_f64(name, x)
    big = np.abs(ry) > 1e-30
    rel = np.abs(y[big] - ry[big]) / np.abs(ry[big])
    assert rel.max() < (3e-6 if isa == "avx2" and name == "gelu" else 2e-5), rel.max()
    assert np.abs(d - rd).max() < (5e-7 if name == "gelu" else 3e-6)


def test_sigmoid_forward_is_a_few_ulp_from_float64_on_a_dense_grid(isa):
    # AVX2 runs the sigmoid forward through the GELU kernels' vector exp (exp(-|x|), one
    # division); generic through the scalar row. Relative error on both sides: e/(1 + e) keeps
    # the left tail's relative accuracy down to where the float32 result underflows (x < -87).
    x = np.linspace(-87, 30, 234001).astype(np.float32)
    y = _C.act_forward(x, "sigmoid", 0.0)
    ry = _sig(x.astype(np.float64))
    rel = np.abs(y - ry) / ry
    assert rel.max() < 4 * np.finfo(np.float32).eps, rel.max()
    assert np.all(np.diff(y) >= 0)  # monotone, no seam where the two branches meet


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "sigmoid"])
def test_gelu_kernels_are_elementwise_whatever_the_length_and_offset(name, isa):
    # Tails (n % 8) go through the vector arithmetic under a mask: each element's bits do
    # not depend on where it sits in the array.
    x = np.random.default_rng(3).standard_normal(1037).astype(np.float32) * 3
    dy = np.random.default_rng(4).standard_normal(1037).astype(np.float32)
    y = _C.act_forward(x, name, 0.0)
    d = _C.act_backward(x, y, dy, name, 0.0)
    for lo, hi in [(0, 5), (3, 20), (1, 1037), (1030, 1037)]:
        np.testing.assert_array_equal(_C.act_forward(x[lo:hi], name, 0.0), y[lo:hi])
        np.testing.assert_array_equal(_C.act_backward(x[lo:hi], y[lo:hi], dy[lo:hi], name, 0.0), d[lo:hi])
    assert _C.act_forward(x[:0], name, 0.0).shape == (0,)


@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "sigmoid"])
def test_gelu_kernels_are_bit_identical_at_every_thread_count(name, threads):
    import pynn
    x = np.random.default_rng(5).standard_normal((1 << 18) + 13).astype(np.float32) * 2   # several threads' worth
    dy = np.random.default_rng(6).standard_normal(x.shape).astype(np.float32)
    before = pynn.get_num_threads()
    try:
        pynn.set_num_threads(1)
        y1 = _C.act_forward(x, name, 0.0)
        d1 = _C.act_backward(x, y1, dy, name, 0.0)
        pynn.set_num_threads(threads)
        y = _C.act_forward(x, name, 0.0)
        d = _C.act_backward(x, y, dy, name, 0.0)
    finally:
        pynn.set_num_threads(before)
    np.testing.assert_array_equal(y, y1)
    np.testing.assert_array_equal(d, d1)
