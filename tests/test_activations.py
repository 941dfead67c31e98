"""Every Keras 3 activation, by name, on both backends: values and gradients against
torch.nn.functional, the table's from-output contract, and Dense/Conv1D/Conv2D with
each of them (fused into the op where the output gives the gradient, applied after
it otherwise). Finite-difference checks in float64 are in test_ops_autograd.py."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn import activations, layers
from pynn.autograd import Tensor
from pynn.backend.numpy.activations import ACTIVATIONS as TABLE
from pynn.functional.activation import Activate
from pynn.functional.nn import Dense as DenseOp

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# Keras name -> the same function in torch (Keras 3 definitions: hard_sigmoid = relu6(x + 3) / 6).
TORCH = {
    "linear": lambda x: x,
    "relu": TF.relu,
    "leaky_relu": lambda x: TF.leaky_relu(x, negative_slope=0.2),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "elu": TF.elu,
    "selu": TF.selu,
    "softplus": TF.softplus,
    "softsign": TF.softsign,
    "exponential": torch.exp,
    "relu6": TF.relu6,
    "hard_sigmoid": TF.hardsigmoid,
    "silu": TF.silu,
    "hard_silu": TF.hardswish,
    "gelu": TF.gelu,
    "gelu_tanh": lambda x: TF.gelu(x, approximate="tanh"),
    "mish": TF.mish,
    "softmax": lambda x: TF.softmax(x, dim=-1),
    "log_softmax": lambda x: TF.log_softmax(x, dim=-1),
}
ALL = sorted(TABLE) + ["softmax", "log_softmax"]


def _inputs(shape=(6, 40), seed=0):
    """Values over [-8, 8] (exp and the saturating tails), none within 1e-3 of a kink (0, ±3, 6)."""
    x = np.random.default_rng(seed).uniform(-8, 8, shape)
    for kink in (-3.0, 0.0, 3.0, 6.0):
        x = np.where(np.abs(x - kink) < 1e-3, x + 0.01, x)
    return x.astype(np.float32)


def _torch_value_and_grad(name, x, g):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = TORCH[name](xt)
    yt.backward(torch.tensor(g, dtype=torch.float64))
    return yt.detach().numpy(), xt.grad.numpy()


def test_every_activation_of_the_table_has_a_torch_reference_here():
    assert set(TORCH) == set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_activation_value_and_gradient_match_torch(backend_name, name):
    x = _inputs()
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    t = Tensor(x.copy(), requires_grad=True)
    y = activations.get(name)(t)
    y.backward(g)
    want_y, want_dx = _torch_value_and_grad(name, x, g)
    assert y.data.dtype == np.float32
    np.testing.assert_allclose(y.data, want_y, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t.grad, want_dx, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_backend_kernels_match_torch_in_float32(backend_name, name):
    """The kernels themselves (pynn.ops / the active backend), input and output float32."""
    x = _inputs(seed=3)
    g = np.random.default_rng(4).standard_normal(x.shape).astype(np.float32)
    B = pynn.backend.current()
    y = getattr(B, name)(x)
    dx = getattr(B, name + "_grad")(x, y, g)
    want_y, want_dx = _torch_value_and_grad(name, x, g)
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(n for n, a in TABLE.items() if a.from_output))
def test_from_output_gradients_need_only_the_output(name):
    """The flag's promise: the gradient at x equals the one computed from y alone."""
    x = _inputs().astype(np.float64)
    act = TABLE[name]
    a = None if act.param is None else np.float64(act.param[1])
    y = act.forward(x, a)
    g = np.random.default_rng(2).standard_normal(x.shape)
    np.testing.assert_array_equal(act.grad(y, y, g, a), act.grad(x, y, g, a))


def test_parameters_follow_keras_3():
    x = np.array([-2.0, 3.0], np.float32)
    np.testing.assert_allclose(F.leaky_relu(x).data, [-0.4, 3.0])                     # negative_slope 0.2
    np.testing.assert_allclose(F.leaky_relu(x, negative_slope=0.5).data, [-1.0, 3.0])
    np.testing.assert_allclose(F.leaky_relu(x, alpha=0.5).data, [-1.0, 3.0])          # pynn's older keyword
    np.testing.assert_allclose(F.elu(x, alpha=2.0).data, [2.0 * np.expm1(-2.0), 3.0], rtol=1e-6)
    np.testing.assert_allclose(activations.hard_sigmoid(x).data, [1 / 6, 1.0], rtol=1e-6)
    np.testing.assert_allclose(activations.gelu(x, approximate=True).data,
                               TF.gelu(torch.tensor(x), approximate="tanh").numpy(), rtol=1e-6)
    with pytest.raises(TypeError):
        F.relu(x, 0.3)                   # no parameter to take
    with pytest.raises(TypeError):
        F.elu(x, negative_slope=0.3)     # not elu's keyword


def test_aliases_and_names_round_trip():
    assert activations.get("swish") is activations.silu is activations.get("silu")
    assert activations.get("hard_swish") is activations.hard_silu
    assert activations.serialize(activations.get("swish")) == "silu"
    for name in ALL:
        assert activations.serialize(activations.get(name)) == name
    with pytest.raises(ValueError, match="Unknown activation 'swishy'"):
        activations.get("swishy")


def _dense_vs_torch(name, x, k, b, g):
    xt, kt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, k, b))
    yt = TORCH[name](xt @ kt + bt)
    yt.backward(torch.tensor(g, dtype=torch.float64))
    return yt.detach().numpy(), [t.grad.numpy() for t in (xt, kt, bt)]


@pytest.mark.parametrize("name", ALL + ["swish", "hard_swish"])
def test_dense_with_every_activation_matches_torch(backend_name, name):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 6)).astype(np.float32)
    layer = layers.Dense(5, activation=name, bias_initializer="glorot_uniform")
    xt = Tensor(x, requires_grad=True)
    y = layer(xt)
    canonical = activations.serialize(layer.activation)
    # Fused into the GEMM exactly when the output gives the gradient; applied after otherwise.
    fused = canonical in TABLE and TABLE[canonical].from_output
    assert isinstance(y._ctx, DenseOp) == fused
    if canonical in TABLE and not fused:
        assert isinstance(y._ctx, Activate)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    k, b = layer.get_weights()
    want_y, (dx, dk, db) = _dense_vs_torch(canonical, x, k, b, g)
    np.testing.assert_allclose(y.data, want_y, rtol=1e-4, atol=1e-5)
    for got, want in ((xt.grad, dx), (layer.kernel.grad, dk), (layer.bias.grad, db)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("name", ALL)
def test_conv_with_every_activation_equals_linear_conv_then_activation(backend_name, rank, name):
    rng = np.random.default_rng(6)
    shape = (2, 9, 4) if rank == 1 else (2, 6, 5, 3)
    x = rng.standard_normal(shape).astype(np.float32)
    conv_cls = layers.Conv1D if rank == 1 else layers.Conv2D
    conv = conv_cls(4, 3, padding="same", activation=name, bias_initializer="glorot_uniform")
    plain = conv_cls(4, 3, padding="same")
    xa, xb = Tensor(x.copy(), requires_grad=True), Tensor(x.copy(), requires_grad=True)
    ya = conv(xa)
    plain.build(xb.shape)
    plain.set_weights(conv.get_weights())
    yb = activations.get(name)(plain(xb))
    g = rng.standard_normal(ya.shape).astype(np.float32)
    ya.backward(g)
    yb.backward(g)
    np.testing.assert_allclose(ya.data, yb.data, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xa.grad, xb.grad, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv.kernel.grad, plain.kernel.grad, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(conv.bias.grad, plain.bias.grad, rtol=1e-4, atol=1e-4)


def test_unknown_activation_in_functional_dense_names_the_op():
    x, k = np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match="unknown activation 'relu7'"):
        F.dense(x, k, activation="relu7")
    with pytest.raises(ValueError, match="dense: activation 'gelu' cannot be fused"):
        DenseOp.apply(x, k, activation="gelu")


@pytest.mark.parametrize("name", sorted(n for n, a in TABLE.items() if a.from_output))
def test_fused_bias_backward_native_matches_numpy_for_every_from_output_activation(name):
    """act_bias_grad reads act' off y (one C++ pass where _C can, else the reference): same (dz, db)."""
    if not pynn.backend.NATIVE_AVAILABLE:
        pytest.skip("native extension not built")
    x = _inputs((33, 17), seed=7)
    y = getattr(pynn.backend.numpy_backend, name)(x)
    dy = np.random.default_rng(8).standard_normal(x.shape).astype(np.float32)
    dz_ref, db_ref = pynn.backend.numpy_backend.act_bias_grad(y, dy, name)
    dz, db = pynn.backend.native_backend.act_bias_grad(y, dy, name)
    np.testing.assert_allclose(dz, dz_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, db_ref, rtol=1e-4, atol=1e-4)


KERAS_NAMES = sorted(set(ALL) - {"gelu_tanh"}) + ["swish", "hard_swish"]


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_activation_values_match_keras_3(name):
    """The same names give the same functions as keras.activations (Keras 3's definitions)."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"Keras 3 needed, found {keras.__version__}")
    x = _inputs(seed=9)
    want = keras.ops.convert_to_numpy(keras.activations.get(name)(keras.ops.convert_to_tensor(x)))
    np.testing.assert_allclose(activations.get(name)(x).data, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_backend_conv2d_and_matmul_apply_any_activation_with_its_parameter(backend_name, name):
    """The kernels' own epilogue argument (pynn.ops level): every name, the parameter honoured."""
    B = pynn.backend.current()
    rng = np.random.default_rng(10)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 5, 5, 3), (3, 3, 3, 4), (4,)))
    param = TABLE[name].param
    alpha = () if param is None else (0.37,)
    act = getattr(pynn.backend.numpy_backend, name)
    want = act(pynn.backend.numpy_backend.conv2d(x, w, b, (1, 1), "same", (1, 1)), *alpha)
    got = B.conv2d(x, w, b, (1, 1), "same", (1, 1), name, *alpha)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    a2, k2 = x.reshape(-1, 3), w.reshape(-1, 4)[:3]
    want = act(a2 @ k2 + b, *alpha)
    np.testing.assert_allclose(B.matmul(a2, k2, b, name, *alpha), want, rtol=1e-4, atol=1e-5)
