"""Every differentiable op, OpInfo-style: one sample table drives
(1) analytic vs finite-difference gradients in float64 on the numpy backend and
(2) native vs numpy forward and backward on the same float32 inputs."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn import backend
from pynn.autograd import Tensor
from pynn.backend.numpy.activations import ACTIVATIONS as ACTIVATION_TABLE
from pynn.functional import OP_REGISTRY
from pynn.testing import gradcheck

R = np.random.default_rng(0)


def randn(*shape):
    return R.standard_normal(shape)


def away_from_zero(*shape):
    x = randn(*shape)
    return np.where(np.abs(x) < 0.2, 0.5 * np.sign(x) + x, x)


def away_from_kinks(*shape):
    grid = np.concatenate([np.linspace(lo + 0.25, hi - 0.25, 8) for lo, hi in ((-5, -3), (-3, 0), (0, 3), (3, 6), (6, 7))])
    return R.choice(grid, shape) + R.uniform(-0.05, 0.05, shape)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


def distinct(*shape):
    """Values with no ties (for max/min/maximum kinks)."""
    return R.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) * 0.37 - 3.0


LABELS = np.array([0, 3, 1, 2, 3])
MASK = np.array([[True, True, False, True], [True, False, False, False]])
ONE_HOT_SOFT = R.dirichlet(np.ones(4), size=5)
ATTENTION_MASK = np.array([[True, True, False, True, False]] * 3)[None, None] | np.eye(3, 5, dtype=bool)
ATTENTION_DROPOUT = (R.random((2, 2, 3, 5)) > 0.3) / 0.7

# (test id, op name in OP_REGISTRY, f(*tensors), [inputs])
SAMPLES = [
    ("add_broadcast", "add", lambda a, b: a + b, [randn(3, 4), randn(4)]),
    ("add_scalar_rhs", "add", lambda a: a + 2.0, [randn(2, 3)]),
    ("sub_broadcast", "sub", lambda a, b: a - b, [randn(2, 1, 3), randn(4, 3)]),
    ("rsub", "sub", lambda a: 1.0 - a, [randn(5)]),
    ("mul_broadcast", "mul", lambda a, b: a * b, [randn(3, 4), randn(3, 1)]),
    ("div", "div", lambda a, b: a / b, [randn(3, 4), positive(4)]),
    ("rdiv", "div", lambda a: 2.0 / a, [positive(3)]),
    ("pow_tensor_exponent", "pow", lambda a, b: a ** b, [positive(3, 2), randn(3, 2)]),
    ("pow_scalar", "pow", lambda a: a ** 3, [randn(4)]),
    ("neg", "neg", lambda a: -a, [randn(2, 3)]),
    ("exp", "exp", lambda a: a.exp(), [randn(3, 3)]),
    ("log", "log", lambda a: a.log(), [positive(3, 3)]),
    ("sqrt", "sqrt", lambda a: a.sqrt(), [positive(7)]),
    ("abs", "abs", lambda a: a.abs(), [away_from_zero(6)]),
    ("maximum", "maximum", lambda a, b: F.maximum(a, b), [distinct(3, 4), distinct(3, 4) + 0.11]),
    ("minimum_broadcast", "minimum", lambda a, b: F.minimum(a, b), [distinct(3, 4), distinct(4) + 0.05]),
    ("where", "where", lambda a, b: F.where(np.array([[True, False, True]]), a, b), [randn(2, 3), randn(3)]),
    ("clip", "clip", lambda a: F.clip(a, -0.5, 0.5), [away_from_zero(10) * 0.3 + np.array([0.0, 2] * 5)]),
    ("sum_all", "sum", lambda a: a.sum(), [randn(3, 4)]),
    ("sum_axes_keepdims", "sum", lambda a: a.sum(axis=(0, 2), keepdims=True), [randn(2, 3, 4)]),
    ("mean_axis", "mean", lambda a: a.mean(axis=1), [randn(3, 5)]),
    ("mean_negative_axis_keepdims", "mean", lambda a: a.mean(axis=-1, keepdims=True), [randn(2, 3, 4)]),
    ("max_axis", "max", lambda a: a.max(axis=1), [distinct(3, 5)]),
    ("max_all", "max", lambda a: a.max(), [distinct(4, 2)]),
    ("min_keepdims", "min", lambda a: a.min(axis=0, keepdims=True), [distinct(3, 5)]),
    ("reshape", "reshape", lambda a: a.reshape(6, 2), [randn(3, 4)]),
    ("transpose_axes", "transpose", lambda a: a.transpose(2, 0, 1), [randn(2, 3, 4)]),
    ("transpose_T", "transpose", lambda a: a.T, [randn(2, 5)]),
    ("getitem_slice", "getitem", lambda a: a[1:, ::2], [randn(4, 5)]),
    ("getitem_repeated_index", "getitem", lambda a: a[np.array([0, 2, 0, 1])], [randn(3, 2)]),
    ("getitem_int_ellipsis_none", "getitem", lambda a: a[1, ..., None, -1], [randn(3, 4, 5)]),
    ("getitem_bool_mask", "getitem", lambda a: a[np.array([True, False, True])], [randn(3, 2)]),
    ("concatenate", "concatenate", lambda a, b: F.concatenate([a, b], axis=1), [randn(2, 3), randn(2, 4)]),
    ("stack", "stack", lambda a, b: F.stack([a, b], axis=-1), [randn(2, 3), randn(2, 3)]),
    ("matmul_2d", "matmul", lambda a, b: a @ b, [randn(5, 7), randn(7, 3)]),
    ("matmul_vector_vector", "matmul", lambda a, b: a @ b, [randn(4), randn(4)]),
    ("log1p", "log1p", lambda a: F.log1p(a), [positive(3, 3) - 0.4]),
    ("cast_same_dtype", "cast", lambda a: F.cast(a, a.dtype) * 2.0, [randn(3, 2)]),  # cross-dtype: test_ops_tensor_face
    ("einsum_batched_contract", "einsum", lambda a, b: F.einsum("bij,jk->bik", a, b), [randn(2, 3, 4), randn(4, 5)]),
    ("einsum_sum_only_in_one_operand", "einsum", lambda a, b: F.einsum("ij,k->jk", a, b), [randn(3, 4), randn(2)]),
    ("matmul_batched_broadcast", "matmul", lambda a, b: a @ b, [randn(2, 1, 3, 4), randn(3, 4, 2)]),
    ("matmul_vector", "matmul", lambda a, b: a @ b, [randn(4), randn(2, 4, 3)]),
    ("matmul_matrix_vector", "matmul", lambda a, b: a @ b, [randn(3, 4), randn(4)]),
    ("dense_linear", "dense", lambda x, w, b: F.dense(x, w, b), [randn(4, 5), randn(5, 3), randn(3)]),
    ("dense_relu", "dense", lambda x, w, b: F.dense(x, w, b, "relu"),
     [away_from_zero(4, 5), away_from_zero(5, 3), np.array([0.3, -0.2, 0.1])]),
    ("dense_sigmoid_3d_no_bias", "dense", lambda x, w: F.dense(x, w, activation="sigmoid"), [randn(2, 4, 5), randn(5, 3)]),
    ("dense_tanh", "dense", lambda x, w, b: F.dense(x, w, b, "tanh"), [randn(4, 5), randn(5, 3), randn(3)]),
    ("relu_method", "activation", lambda a: a.relu(), [away_from_zero(4, 5)]),
    ("leaky_relu_alpha_keyword", "activation", lambda a: F.leaky_relu(a, alpha=0.1), [away_from_zero(4, 5)]),
    ("leaky_relu_negative_slope", "activation", lambda a: F.leaky_relu(a, negative_slope=0.3), [away_from_zero(4, 5)]),
    ("elu_alpha", "activation", lambda a: F.elu(a, alpha=0.7), [away_from_zero(4, 5)]),
    ("gelu_approximate", "activation", lambda a: F.gelu(a, approximate=True), [randn(4, 5) * 2]),
    ("dense_elu_after", "dense", lambda x, w, b: F.dense(x, w, b, "elu"), [randn(4, 5), randn(5, 3), randn(3)]),
    ("dense_selu_fused", "dense", lambda x, w, b: F.dense(x, w, b, "selu"), [randn(4, 5), randn(5, 3), randn(3)]),
    ("dense_hard_sigmoid_fused", "dense", lambda x, w, b: F.dense(x, w, b, "hard_sigmoid"),
     [randn(4, 5), randn(5, 3), randn(3)]),
    ("dense_mish_after", "dense", lambda x, w, b: F.dense(x, w, b, "mish"), [randn(4, 5), randn(5, 3), randn(3)]),
    ("dropout_seeded", "dropout", lambda a: F.dropout(a, 0.4, rng=np.random.default_rng(5)), [randn(4, 5)]),
    ("dropout_noise_shape", "dropout", lambda a: F.dropout(a, 0.5, noise_shape=(2, 1, 3), rng=np.random.default_rng(2)),
     [randn(2, 4, 3)]),
    ("softmax", "softmax", lambda a: a.softmax(), [randn(3, 6)]),
    ("softmax_axis0", "softmax", lambda a: F.softmax(a, axis=0), [randn(4, 3)]),
    ("log_softmax", "log_softmax", lambda a: a.log_softmax(), [randn(2, 3, 5)]),
    ("softmax_xent_sparse", "softmax_cross_entropy", lambda a: F.softmax_cross_entropy(a, LABELS), [randn(5, 4)]),
    ("softmax_xent_dense", "softmax_cross_entropy", lambda a: F.softmax_cross_entropy(a, ONE_HOT_SOFT),
     [randn(5, 4)]),
    ("batch_norm", "batch_norm", lambda x, g, b: F.batch_norm(x, g, b, epsilon=1e-3),
     [randn(6, 2, 5) * 2 + 1, randn(5), randn(5)]),
    ("batch_norm_no_affine", "batch_norm", lambda x: F.batch_norm(x), [randn(7, 3)]),
    ("layer_norm", "layer_norm", lambda x, g, b: F.layer_norm(x, g, b), [randn(4, 3, 6), randn(6), randn(6)]),
    ("simple_rnn", "simple_rnn", lambda x, k, u, b, h: F.simple_rnn(x, k, u, b, h),
     [randn(2, 4, 3), randn(3, 5) * 0.5, randn(5, 5) * 0.5, randn(5) * 0.1, randn(2, 5)]),
    ("simple_rnn_masked_backwards_relu", "simple_rnn",
     lambda x, k, u, b, h: F.simple_rnn(x, k, u, b, h, mask=MASK, go_backwards=True, activation="relu"),
     [randn(2, 4, 3) + 1, away_from_zero(3, 5) * 0.5, randn(5, 5) * 0.3, np.full(5, 0.5), np.abs(randn(2, 5))]),
    ("lstm", "lstm", lambda x, k, u, b, h, c: F.lstm(x, k, u, b, h, c),
     [randn(2, 4, 3), randn(3, 8) * 0.5, randn(2, 8) * 0.5, randn(8) * 0.1, randn(2, 2), randn(2, 2)]),
    ("lstm_masked_backwards", "lstm", lambda x, k, u, b, h, c: F.lstm(x, k, u, b, h, c, mask=MASK, go_backwards=True),
     [randn(2, 4, 3), randn(3, 20) * 0.5, randn(5, 20) * 0.5, randn(20) * 0.1, randn(2, 5), randn(2, 5)]),
    ("gru", "gru", lambda x, k, u, b, h: F.gru(x, k, u, b, h),
     [randn(2, 4, 3), randn(3, 9) * 0.5, randn(3, 9) * 0.5, randn(2, 9) * 0.1, randn(2, 3)]),
    ("gru_masked", "gru", lambda x, k, u, b, h: F.gru(x, k, u, b, h, mask=MASK),
     [randn(2, 4, 3), randn(3, 15) * 0.5, randn(5, 15) * 0.5, randn(2, 15) * 0.1, randn(2, 5)]),
    ("embedding_repeated_ids", "embedding", lambda t: F.embedding(np.array([[1, 3, 1], [0, 3, 3]]), t),
     [randn(4, 5)]),
    ("ctc_loss", "ctc_loss", lambda lp: F.ctc_loss(lp, np.array([[1, 1, 2], [2, 0, 0]]), np.array([6, 4]),
                                                   np.array([3, 1]), reduction="none"),
     [np.log(R.dirichlet(np.ones(3), size=(2, 6)))]),
    ("sigmoid_bce", "sigmoid_binary_cross_entropy",
     lambda a: F.sigmoid_binary_cross_entropy(a, np.array([[1.0, 0.0, 0.3], [0.0, 1.0, 1.0]])), [randn(2, 3) * 3]),
    # conv/pool (full sweeps in tests/test_conv.py and tests/test_pool.py)
    ("conv2d_same_s2_bias_relu", "conv2d", lambda x, w, b: F.conv2d(x, w, b, strides=2, padding="same",
                                                                  activation="relu"),
     [randn(2, 5, 6, 3), randn(3, 3, 3, 4), np.array([0.3, -0.2, 0.1, 0.05])]),
    ("conv2d_softplus_fused", "conv2d", lambda x, w, b: F.conv2d(x, w, b, padding="same", activation="softplus"),
     [randn(1, 4, 5, 2), randn(3, 3, 2, 3), randn(3)]),
    ("conv2d_valid_dilated", "conv2d", lambda x, w: F.conv2d(x, w, dilation_rate=2), [randn(1, 6, 7, 2), randn(2, 3, 2, 3)]),
    ("max_pool2d_same", "max_pool2d", lambda a: F.max_pool2d(a, 3, strides=2, padding="same"), [distinct(2, 5, 6, 3)]),
    ("avg_pool2d_same", "avg_pool2d", lambda a: F.avg_pool2d(a, 2, padding="same"), [randn(2, 5, 5, 3)]),
    ("global_average_pool2d", "global_average_pool2d", lambda a: F.global_average_pool2d(a), [randn(2, 3, 4, 5)]),
    ("global_max_pool2d", "global_max_pool2d", lambda a: F.global_max_pool2d(a), [distinct(2, 3, 4, 5)]),
    # fused attention (full sweeps in tests/test_attention_fused.py); dropout multipliers in the inputs' dtype
    ("dot_product_attention_masked_dropout", "dot_product_attention",
     lambda q, k, v: F.dot_product_attention(q, k, v, 0.7, mask=ATTENTION_MASK,
                                             dropout=ATTENTION_DROPOUT.astype(q.dtype)),
     [randn(2, 3, 2, 4), randn(2, 5, 2, 4), randn(2, 5, 2, 3)]),
    ("packed_self_attention_causal", "packed_self_attention",
     lambda x: F.packed_self_attention(x, 2, 3, 2, 0.5, mask=np.tril(np.ones((4, 4), bool))), [randn(2, 4, 16)]),
]
# Every activation of the table by name, on inputs away from the kinks (0, ±3, 6).
SAMPLES += [(f"activation_{name}", "activation", lambda a, name=name: F.activation(a, name), [away_from_kinks(3, 7)])
            for name in ACTIVATION_TABLE]
# Drawn after every other sample, so adding them moved no other sample's random inputs.
SAMPLES += [
    ("lstm_last_only", "lstm", lambda x, k, u, b, h, c: F.lstm(x, k, u, b, h, c, last_only=True),
     [randn(2, 4, 3), randn(3, 8) * 0.5, randn(2, 8) * 0.5, randn(8) * 0.1, randn(2, 2), randn(2, 2)]),
    ("lstm_last_only_masked_backwards", "lstm",
     lambda x, k, u, b, h, c: F.lstm(x, k, u, b, h, c, mask=MASK, go_backwards=True, last_only=True),
     [randn(2, 4, 3), randn(3, 20) * 0.5, randn(5, 20) * 0.5, randn(20) * 0.1, randn(2, 5), randn(2, 5)]),
]
# The fused post-norm Transformer encoder block (full checks in tests/test_transformer_fused.py).
_TE_SHAPES = [(2, 4, 4), (4, 2, 1), (2, 1), (4, 2, 1), (2, 1), (4, 2, 1), (2, 1), (2, 1, 4), (4,), (4,), (4,),
              (4, 6), (6,), (6, 4), (4,), (4,), (4,)]
SAMPLES += [
    ("transformer_encoder_post_norm_causal", "transformer_encoder_post_norm",
     lambda *a: F.transformer_encoder_post_norm(*a, heads=2, key_dim=1, mask=np.tril(np.ones((4, 4), bool))),
     [randn(*s) for s in _TE_SHAPES]),
]
IDS = [s[0] for s in SAMPLES]


def test_every_registered_op_has_a_sample():
    covered = {s[1] for s in SAMPLES}
    missing = set(OP_REGISTRY) - covered
    assert not missing, f"ops without a gradcheck sample: {sorted(missing)}"


@pytest.mark.parametrize("name,op,f,inputs", SAMPLES, ids=IDS)
def test_gradient_matches_finite_differences(numpy_backend, name, op, f, inputs):
    gradcheck(f, [np.asarray(x, np.float64) for x in inputs])


@pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")
@pytest.mark.parametrize("name,op,f,inputs", SAMPLES, ids=IDS)
def test_native_matches_numpy_forward_and_backward(name, op, f, inputs):
    arrays = [np.asarray(x, np.float32) for x in inputs]
    results = {}
    for b in ("numpy", "native"):
        with pynn.use_backend(b):
            ts = [Tensor(a.copy(), requires_grad=True) for a in arrays]
            out = f(*ts)
            cot = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
            out.backward(cot)
            results[b] = (out.data, [t.grad for t in ts])
    out_np, grads_np = results["numpy"]
    out_nat, grads_nat = results["native"]
    assert out_nat.dtype == out_np.dtype == np.float32
    np.testing.assert_allclose(out_nat, out_np, rtol=1e-4, atol=1e-5)
    for g_nat, g_np in zip(grads_nat, grads_np):
        np.testing.assert_allclose(g_nat, g_np, rtol=1e-4, atol=1e-5)


def test_backward_accumulates_over_reused_tensor_and_calls():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)
    (x * 2.0).sum().backward()  # a second backward adds, as in torch
    np.testing.assert_allclose(x.grad, 2 * x.data + 3)
    x.zero_grad()
    assert x.grad is None


def test_backward_with_explicit_gradient_and_nonscalar_error():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    y = x * 3.0
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y = x * 3.0
    y.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(x.grad, [[3.0, 6.0], [9.0, 12.0]])


def test_no_grad_records_nothing_and_detach_cuts_the_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    with pynn.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = (x * 2).detach() * x
    z.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 2.0, 2.0])


def test_deep_graph_does_not_hit_recursion_limit():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.0001 ** 5000), rtol=1e-6)


def test_tensor_defaults_to_float32_and_keeps_float64_arrays():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64
    assert Tensor(np.arange(3)).dtype.kind == "i"
    x = np.ones(3, np.float32)
    assert Tensor(x).data is x  # no copy


def test_max_gradient_is_shared_among_ties():
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


def test_float_and_int_of_a_one_element_tensor_work_like_numpy():
    t = pynn.Tensor(np.array(2.5, np.float32))
    assert float(t) == 2.5 and int(t) == 2
    with pytest.raises(TypeError):
        float(pynn.Tensor(np.ones(3, np.float32)))
