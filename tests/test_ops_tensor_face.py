"""pynn.ops given pynn.Tensors: the same functions record the autograd graph (keras.ops' role),
and the gradients match finite differences in float64."""
import numpy as np
import pytest

import pynn
import pynn.ops as ops
from pynn import Tensor
from pynn.testing import gradcheck

R = np.random.default_rng(0)


def randn(*shape):
    return R.standard_normal(shape)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


def distinct(*shape):
    return R.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) * 0.37 - 3.0


# (id, f(*tensors) built from pynn.ops only, float64 inputs)
CASES = [
    ("matmul", lambda a, b: ops.matmul(a, b), [randn(3, 4), randn(4, 2)]),
    ("matmul_batched", lambda a, b: ops.matmul(a, b), [randn(2, 3, 4), randn(4, 5)]),
    ("dot_matrix", lambda a, b: ops.dot(a, b), [randn(3, 4), randn(4, 2)]),
    ("dot_vector", lambda a, b: ops.dot(a, b), [randn(4), randn(4)]),
    ("dot_scalar", lambda a: ops.dot(a, 3.0), [randn(3)]),
    ("einsum_matmul", lambda a, b: ops.einsum("ij,jk->ik", a, b), [randn(3, 4), randn(4, 2)]),
    ("einsum_batch_ellipsis", lambda a, b: ops.einsum("...ij,...jk", a, b), [randn(2, 3, 4), randn(2, 4, 5)]),
    ("einsum_reduce_only_in_one", lambda a, b: ops.einsum("ij,k->k", a, b), [randn(3, 4), randn(5)]),
    ("einsum_attention", lambda q, k: ops.einsum("bqhd,bkhd->bhqk", q, k), [randn(2, 3, 2, 4), randn(2, 5, 2, 4)]),
    ("add", lambda a, b: ops.add(a, b), [randn(3, 4), randn(4)]),
    ("subtract_array_rhs", lambda a: ops.subtract(a, np.ones(4)), [randn(3, 4)]),
    ("subtract_scalar_lhs", lambda a: ops.subtract(1.0, a), [randn(3)]),
    ("multiply", lambda a, b: ops.multiply(a, b), [randn(3, 1), randn(1, 4)]),
    ("divide", lambda a, b: ops.divide(a, b), [randn(3, 4), positive(4)]),
    ("power", lambda a, b: ops.power(a, b), [positive(3), randn(3)]),
    ("exp", lambda a: ops.exp(a), [randn(5)]),
    ("log", lambda a: ops.log(a), [positive(5)]),
    ("log1p", lambda a: ops.log1p(a), [positive(5) - 0.4]),
    ("sqrt", lambda a: ops.sqrt(a), [positive(5)]),
    ("square", lambda a: ops.square(a), [randn(5)]),
    ("abs", lambda a: ops.abs(a), [distinct(5) + 0.1]),
    ("maximum_zero", lambda a: ops.maximum(a, 0), [distinct(6) + 0.1]),
    ("minimum", lambda a, b: ops.minimum(a, b), [distinct(3, 4), distinct(4) + 0.05]),
    ("clip", lambda a: ops.clip(a, -0.5, 0.5), [np.array([-2.0, -0.3, 0.1, 0.4, 3.0])]),
    ("where", lambda a, b: ops.where(a > 0, a, b), [distinct(3, 4), randn(4)]),
    ("sum_axis", lambda a: ops.sum(a, axis=0), [randn(3, 4)]),
    ("mean_keepdims", lambda a: ops.mean(a, axis=(0, 2), keepdims=True), [randn(2, 3, 4)]),
    ("max", lambda a: ops.max(a, axis=1), [distinct(3, 4)]),
    ("min", lambda a: ops.min(a), [distinct(3, 4)]),
    ("std", lambda a: ops.std(a, axis=1), [randn(3, 5)]),
    ("var_ddof", lambda a: ops.var(a, ddof=1), [randn(4, 3)]),
    ("reshape", lambda a: ops.reshape(a, (4, 3)), [randn(3, 4)]),
    ("transpose", lambda a: ops.transpose(a, (2, 0, 1)), [randn(2, 3, 4)]),
    ("expand_squeeze", lambda a: ops.squeeze(ops.expand_dims(a, 1) * 2.0, axis=1), [randn(3, 4)]),
    ("concatenate", lambda a, b: ops.concatenate([a, b], axis=1), [randn(2, 3), randn(2, 2)]),
    ("stack", lambda a, b: ops.stack([a, b], axis=-1), [randn(2, 3), randn(2, 3)]),
    ("split", lambda a: ops.split(a, 2, axis=1)[1] * ops.sum(ops.split(a, [1], axis=0)[0]), [randn(2, 4)]),
    ("cast_float", lambda a: ops.cast(a, "float64") * 2.0, [randn(3)]),
    ("softmax", lambda a: ops.softmax(a, axis=0), [randn(3, 4)]),
    ("relu", lambda a: ops.relu(a), [distinct(5) + 0.1]),
    ("sigmoid", lambda a: ops.sigmoid(a), [randn(5)]),
    ("tanh", lambda a: ops.tanh(a), [randn(5)]),
    ("dense", lambda x, w, b: ops.dense(x, w, b, "tanh"), [randn(3, 4), randn(4, 2), randn(2)]),
]


@pytest.mark.parametrize("name,f,inputs", CASES, ids=[c[0] for c in CASES])
def test_tensor_face_records_the_graph_and_matches_finite_differences(numpy_backend, name, f, inputs):
    tensors = [Tensor(x, requires_grad=True) for x in inputs]
    out = f(*tensors)
    assert isinstance(out, Tensor) and out.requires_grad and out._ctx is not None
    gradcheck(f, inputs)


@pytest.mark.parametrize("name,f,inputs", CASES, ids=[c[0] for c in CASES])
def test_tensor_face_forward_equals_the_numpy_face(name, f, inputs):
    """The value a Tensor call computes is what the same call gives on plain arrays."""
    out = f(*[Tensor(x) for x in inputs])
    try:
        ref = f(*inputs)
    except TypeError:  # pynn-only ops that return Tensors for arrays too
        pytest.skip("no NumPy face")
    ref = ref.data if isinstance(ref, Tensor) else ref
    np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-12)


def test_weight_in_a_custom_call_trains_through_ops():
    """keras.ops-style custom layer math: the weight gets a gradient and an SGD step lowers the loss."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    w = Tensor(np.zeros((3, 1), np.float32), requires_grad=True)
    losses = []
    for _ in range(20):
        loss = ops.mean(ops.square(ops.subtract(ops.matmul(x, w), y)))
        w.grad = None
        loss.backward()
        assert w.grad is not None and w.grad.shape == (3, 1)
        w.data -= 0.1 * w.grad
        losses.append(float(loss.data))
    assert losses[-1] < 0.05 * losses[0]


def test_numpy_only_arguments_with_a_tensor_are_rejected_not_ignored():
    t = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="out"):
        ops.sum(t, out=np.empty(3, np.float32))
    with pytest.raises(TypeError, match="dtype"):
        ops.mean(t, dtype=np.float64)
    with pytest.raises(TypeError, match="not supported"):
        ops.exp(t, out=np.empty((2, 3), np.float32))
    with pytest.raises(TypeError, match="not supported"):
        ops.add(t, 1.0, where=True)
    assert ops.add(t, 1.0, out=None).requires_grad  # an explicit default is not an extra argument
    assert ops.exp(t, out=None).requires_grad and ops.maximum(t, 0, out=None).requires_grad
    with pytest.raises(TypeError, match="order"):
        ops.reshape(t, (3, 2), order="F")
    with pytest.raises(TypeError, match="cannot be cast"):
        ops.cast(t, "int32")
    with pytest.raises(ValueError, match="not differentiable"):
        ops.einsum("ii->i", Tensor(np.ones((2, 2)), requires_grad=True))


def test_non_differentiable_functions_return_constant_tensors():
    t = Tensor(np.array([[1.0, 3.0], [4.0, 2.0]], np.float32), requires_grad=True)
    idx = ops.argmax(t, axis=1)
    assert isinstance(idx, Tensor) and not idx.requires_grad
    np.testing.assert_array_equal(idx.data, [1, 0])
    assert ops.shape(t) == (2, 2)
    z = ops.zeros_like(t)
    assert isinstance(z, Tensor) and not z.requires_grad and z.dtype == np.float32
    oh = ops.one_hot(Tensor(np.array([1, 0])), 3)
    assert isinstance(oh, Tensor)
    np.testing.assert_array_equal(oh.data, [[0, 1, 0], [1, 0, 0]])
    assert ops.convert_to_numpy(t) is t.data
    assert ops.convert_to_tensor(t) is t


def test_no_grad_applies_to_the_tensor_face():
    t = Tensor(np.ones(3, np.float32), requires_grad=True)
    with pynn.no_grad():
        out = ops.exp(t)
    assert isinstance(out, Tensor) and not out.requires_grad


def test_cast_between_float_dtypes_returns_the_gradient_in_the_input_dtype():
    t = Tensor(np.array([1.5, -2.0]), requires_grad=True)  # float64
    y = ops.cast(t, "float32")
    assert y.dtype == np.float32
    ops.sum(ops.multiply(y, 3.0)).backward()
    assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(t.grad, [3.0, 3.0])


@pytest.mark.parametrize("call", [lambda t: ops.sin(t), lambda t: ops.outer(t, t), lambda t: ops.cumsum(t),
                                  lambda t: ops.hstack([t, t]), lambda t: ops.tensordot(np.ones(3), t, axes=1)],
                         ids=["ufunc", "outer", "cumsum", "list_of_tensors", "second_argument"])
def test_numpy_functions_without_a_tensor_face_refuse_tensors_instead_of_dropping_the_graph(call):
    t = Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="no Tensor face"):
        call(t)
