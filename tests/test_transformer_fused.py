"""The post-norm Transformer encoder block as one op (F.transformer_encoder_post_norm) and the
kernels it added (csrc/nn/attention_block.cpp, attention_avx2.cpp): the op against the composed
layer graph it replaces, on both backends; float64 finite differences; native vs the numpy
reference; bit-for-bit results at 1, 2, 3, 4, 7 and 8 threads; PyTorch's
nn.TransformerEncoderLayer on the same weights; when TransformerEncoder takes the op; bad input."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn import backend, layers
from pynn.autograd import Tensor
from pynn.functional.attention import TransformerEncoderPostNorm
from pynn.layers import transformer as transformer_module
from pynn.testing import gradcheck

needs_native = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")


def _block(d=8, heads=2, ff=24, dtype="float32", activation="relu", seed=0, **kwargs):
    """A built TransformerEncoder with every weight perturbed (biases and gammas not at their init)."""
    pynn.set_seed(seed)
    enc = layers.TransformerEncoder(intermediate_dim=ff, num_heads=heads, activation=activation, dtype=dtype,
                                    **kwargs)
    enc.build((None, 5, d))
    r = np.random.default_rng(seed + 1)
    for w in enc.weights:
        w.data[...] += (0.2 * r.standard_normal(w.shape)).astype(w.data.dtype)
    return enc


def _run_layer(enc, x, fused, training=True, **call_kwargs):
    """(y, dx, weight grads) of one call with the op (fused) or with the composed graph."""
    for w in enc.weights:
        w.grad = None
    xt = Tensor(x.copy(), requires_grad=True)
    orig = transformer_module.TransformerEncoder._fused_activation
    calls = []

    def spy(self, tr):
        act = orig(self, tr) if fused else None
        calls.append(act)
        return act
    transformer_module.TransformerEncoder._fused_activation = spy
    try:
        y = enc(xt, training=training, **call_kwargs)
    finally:
        transformer_module.TransformerEncoder._fused_activation = orig
    assert (calls[-1] is not None) == fused, "the op was (not) taken as the test expects"
    g = np.random.default_rng(3).standard_normal(y.shape).astype(x.dtype)
    y.backward(g)
    return y.data, xt.grad, [w.grad for w in enc.weights]


def _assert_close(a, b, rtol, atol):
    np.testing.assert_allclose(a[0], b[0], rtol=rtol, atol=atol, err_msg="output")
    np.testing.assert_allclose(a[1], b[1], rtol=rtol, atol=atol, err_msg="input gradient")
    for i, (p, q) in enumerate(zip(a[2], b[2])):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=atol, err_msg=f"weight gradient {i}")


MASK_KINDS = ["none", "causal", "attention_mask", "padding"]


def _mask_kwargs(kind, b, t):
    r = np.random.default_rng(5)
    if kind == "causal":
        return {"use_causal_mask": True}, None
    if kind == "attention_mask":
        m = r.random((b, t, t)) > 0.4
        m[:, :, 0] = True
        return {"attention_mask": m}, None
    if kind == "padding":
        pad = np.ones((b, t), bool)
        pad[0, 3:] = False
        return {}, pad
    return {}, None


@pytest.mark.parametrize("activation", ["relu", "sigmoid", None])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
def test_fused_block_equals_the_composed_layer_graph(backend_name, activation, mask_kind):
    with pynn.use_backend(backend_name):
        enc = _block(activation=activation)
        x = np.random.default_rng(2).standard_normal((3, 5, 8)).astype(np.float32)
        kwargs, pad = _mask_kwargs(mask_kind, 3, 5)

        def call(fused):
            if pad is None:
                return _run_layer(enc, x, fused, **kwargs)
            # a padding mask rides on the input (Embedding(mask_zero=True) / Masking set it)
            for w in enc.weights:
                w.grad = None
            xt = Tensor(x.copy(), requires_grad=True)
            xt._keras_mask = pad
            orig = transformer_module.TransformerEncoder._fused_activation
            if not fused:
                transformer_module.TransformerEncoder._fused_activation = lambda self, tr: None
            try:
                y = enc(xt, training=True)
            finally:
                transformer_module.TransformerEncoder._fused_activation = orig
            assert y._keras_mask is pad
            y.backward(np.random.default_rng(3).standard_normal(y.shape).astype(np.float32))
            return y.data, xt.grad, [w.grad for w in enc.weights]
        _assert_close(call(True), call(False), rtol=2e-5, atol=2e-6)


def test_fused_block_equals_the_composed_graph_in_float64(backend_name):
    with pynn.use_backend(backend_name):
        enc = _block(dtype="float64", d=12, heads=3, ff=20)
        x = np.random.default_rng(4).standard_normal((2, 5, 12))
        _assert_close(_run_layer(enc, x, True, use_causal_mask=True), _run_layer(enc, x, False, use_causal_mask=True),
                      rtol=1e-12, atol=1e-13)


def _op_inputs(b=2, t=4, d=6, heads=2, ff=10, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    kd = d // heads
    shapes = [(b, t, d), (d, heads, kd), (heads, kd), (d, heads, kd), (heads, kd), (d, heads, kd), (heads, kd),
              (heads, kd, d), (d,), (d,), (d,), (d, ff), (ff,), (ff, d), (d,), (d,), (d,)]
    arrays = [r.standard_normal(s) * (0.5 if len(s) > 1 else 0.3) for s in shapes]
    arrays[9] += 1.0    # the gammas near 1, as trained
    arrays[15] += 1.0
    return [a.astype(dtype) for a in arrays], heads, kd


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_block_gradients_match_finite_differences(numpy_backend, activation, masked):
    inputs, heads, kd = _op_inputs()
    if activation == "relu":   # keep FF1's pre-activations away from the kink
        inputs[12] = inputs[12] + np.sign(inputs[12]) * 0.2
    mask = None
    if masked:
        mask = np.random.default_rng(1).random((2, 1, 4, 4)) > 0.3
        mask[..., 0] = True
    gradcheck(lambda *a: F.transformer_encoder_post_norm(*a, heads=heads, key_dim=kd, mask=mask,
                                                         activation=activation), inputs)


@needs_native
@pytest.mark.parametrize("shape", [(2, 4, 6, 2, 10), (3, 17, 32, 4, 48), (4, 64, 64, 4, 128)])
def test_native_fused_block_matches_the_numpy_reference(shape):
    b, t, d, heads, ff = shape
    inputs, heads, kd = _op_inputs(b, t, d, heads, ff, dtype=np.float32, seed=2)
    mask = np.tril(np.ones((t, t), bool))
    results = {}
    for bk in ("numpy", "native"):
        with pynn.use_backend(bk):
            ts = [Tensor(a.copy(), requires_grad=True) for a in inputs]
            y = F.transformer_encoder_post_norm(*ts, heads=heads, key_dim=kd, mask=mask)
            y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
            results[bk] = [y.data] + [t.grad for t in ts]
    for i, (a, b_) in enumerate(zip(results["native"], results["numpy"])):
        assert a.dtype == np.float32
        scale = np.abs(b_).max()
        np.testing.assert_allclose(a, b_, rtol=1e-4, atol=2e-5 * max(scale, 1.0), err_msg=f"output/grad {i}")


@needs_native
def test_native_fused_block_is_bitwise_identical_at_any_thread_count():
    # (32, 64, 128), 4 heads, 512 hidden: the benchmark block, large enough that every kernel splits.
    inputs, heads, kd = _op_inputs(32, 64, 128, 4, 512, dtype=np.float32, seed=3)
    mask = np.random.default_rng(2).random((32, 1, 1, 64)) > 0.2
    g = np.random.default_rng(4).standard_normal((32, 64, 128)).astype(np.float32)
    old = pynn.get_num_threads()

    def run(threads):
        pynn.set_num_threads(threads)
        with pynn.use_backend("native"):
            ts = [Tensor(a.copy(), requires_grad=True) for a in inputs]
            y = F.transformer_encoder_post_norm(*ts, heads=heads, key_dim=kd, mask=mask)
            y.backward(g)
        return [y.data] + [t.grad for t in ts]
    try:
        ref = run(1)
        for threads in (2, 3, 4, 7, 8):
            for i, (a, b) in enumerate(zip(run(threads), ref)):
                np.testing.assert_array_equal(a, b, err_msg=f"output/grad {i} at {threads} threads")
    finally:
        pynn.set_num_threads(old)


def test_fused_block_matches_torch_encoder_layer(backend_name, bench_on_path):
    torch = pytest.importorskip("torch")
    from train_step import copy_encoder_to_torch
    with pynn.use_backend(backend_name):
        d, heads, ff = 16, 4, 40
        enc = _block(d=d, heads=heads, ff=ff, seed=6)
        blk = torch.nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=0.0, activation="relu",
                                               batch_first=True, norm_first=False, layer_norm_eps=1e-5)
        mha = enc.attention
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        with torch.no_grad():
            copy_encoder_to_torch(enc, blk, t)
        x = np.random.default_rng(8).standard_normal((3, 7, d)).astype(np.float32)
        causal = np.triu(np.ones((7, 7), bool), 1)          # torch: True = may NOT attend
        y, dx, grads = _run_layer(enc, x, True, use_causal_mask=True)
        xt = t(x).requires_grad_()
        yt = blk(xt, src_mask=t(causal))
        yt.backward(t(np.random.default_rng(3).standard_normal(yt.shape).astype(np.float32)))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
        names = [w.name.split("/")[-1] for w in enc.weights]
        by_name = dict(zip([f"{i}:{n}" for i, n in enumerate(names)], grads))
        want = {
            "ff1": (blk.linear1.weight.grad.numpy().T, blk.linear1.bias.grad.numpy()),
            "ff2": (blk.linear2.weight.grad.numpy().T, blk.linear2.bias.grad.numpy()),
            "norm1": (blk.norm1.weight.grad.numpy(), blk.norm1.bias.grad.numpy()),
            "norm2": (blk.norm2.weight.grad.numpy(), blk.norm2.bias.grad.numpy()),
        }
        got = {"ff1": (enc.ff1.kernel.grad, enc.ff1.bias.grad), "ff2": (enc.ff2.kernel.grad, enc.ff2.bias.grad),
               "norm1": (enc.norm1.gamma.grad, enc.norm1.beta.grad),
               "norm2": (enc.norm2.gamma.grad, enc.norm2.beta.grad)}
        assert by_name   # every weight got a gradient
        for key in want:
            for a, b in zip(got[key], want[key]):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=key)
        in_w = blk.self_attn.in_proj_weight.grad.numpy()
        in_b = blk.self_attn.in_proj_bias.grad.numpy()
        for i, n in enumerate(("query", "key", "value")):
            np.testing.assert_allclose(getattr(mha, f"{n}_kernel").grad.reshape(d, d), in_w[i * d:(i + 1) * d].T,
                                       rtol=1e-4, atol=1e-5, err_msg=n)
            np.testing.assert_allclose(getattr(mha, f"{n}_bias").grad.reshape(d), in_b[i * d:(i + 1) * d],
                                       rtol=1e-4, atol=1e-5, err_msg=n)
        np.testing.assert_allclose(mha.output_kernel.grad.reshape(d, d), blk.self_attn.out_proj.weight.grad.numpy().T,
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs,training,grad,expect", [
    ({}, True, True, True),
    ({}, False, True, True),                            # evaluation with a graph (a GradientTape)
    ({}, True, False, False),                           # inference: the composed path (packed Dense kernels)
    ({"dropout": 0.1}, True, True, False),              # dropout active
    ({"dropout": 0.1}, False, True, True),              # dropout inactive
    ({"normalize_first": True}, True, True, False),     # pre-norm
    ({"activation": "gelu"}, True, True, False),        # gradient needs FF1's input
])
def test_encoder_takes_the_fused_op_only_when_it_computes_the_same(kwargs, training, grad, expect):
    enc = _block(**kwargs)
    seen = []
    forward = TransformerEncoderPostNorm.forward

    def spy(self, *a, **k):
        seen.append(True)
        return forward(self, *a, **k)
    TransformerEncoderPostNorm.forward = spy
    try:
        x = np.ones((2, 5, 8), np.float32)
        if grad:
            enc(Tensor(x, requires_grad=True), training=training)
        else:
            with pynn.no_grad():
                enc(x, training=training)
    finally:
        TransformerEncoderPostNorm.forward = forward
    assert bool(seen) == expect


def test_fused_block_rejects_bad_input():
    inputs, heads, kd = _op_inputs()
    with pytest.raises(ValueError, match="transformer_encoder_post_norm: expected x"):
        F.transformer_encoder_post_norm(inputs[0][0], *inputs[1:], heads=heads, key_dim=kd)
    with pytest.raises(ValueError, match="transformer_encoder_post_norm: activation 'gelu' cannot be fused"):
        F.transformer_encoder_post_norm(*inputs, heads=heads, key_dim=kd, activation="gelu")
    with pytest.raises(TypeError, match="mask is a constant"):
        F.transformer_encoder_post_norm(*inputs, heads=heads, key_dim=kd,
                                        mask=Tensor(np.ones((4, 4)), requires_grad=True))


# ------------------------------------------------------------------ the kernels it added
@needs_native
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "linear"])
@pytest.mark.parametrize("rows,n,k", [(1, 3, 5), (65, 16, 40), (300, 128, 512), (2048, 128, 512)])
def test_matmul_act_backward_matches_float64_and_is_bitwise_at_any_thread_count(activation, rows, n, k):
    from pynn import _C
    r = np.random.default_rng(rows + k)
    g = r.standard_normal((rows, n)).astype(np.float32)
    w = r.standard_normal((k, n)).astype(np.float32)
    z = r.standard_normal((rows, k))
    y = {"relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z), "linear": z}[activation]
    y = y.astype(np.float32)
    deriv = {"relu": y > 0, "sigmoid": y * (1 - y.astype(np.float64)), "tanh": 1 - y.astype(np.float64) ** 2,
             "linear": 1.0}[activation]
    want = (g.astype(np.float64) @ w.T.astype(np.float64)) * deriv
    old = pynn.get_num_threads()
    try:
        pynn.set_num_threads(1)
        dz, db = _C.matmul_act_backward(g, w, y, activation)
        np.testing.assert_allclose(dz, want, rtol=1e-4, atol=1e-4 * np.sqrt(n))
        np.testing.assert_allclose(db, want.sum(0), rtol=1e-4, atol=1e-4 * np.sqrt(n * rows))
        for threads in (2, 3, 4, 7, 8):
            pynn.set_num_threads(threads)
            dz2, db2 = _C.matmul_act_backward(g, w, y, activation)
            np.testing.assert_array_equal(dz2, dz)
            np.testing.assert_array_equal(db2, db)
    finally:
        pynn.set_num_threads(old)


@needs_native
def test_row_block_sums_match_float64_and_are_bitwise_at_any_thread_count():
    from pynn import _C
    x = np.random.default_rng(0).standard_normal((2048, 384)).astype(np.float32)
    old = pynn.get_num_threads()
    try:
        pynn.set_num_threads(1)
        ref = _C.row_block_sums(x)
        np.testing.assert_allclose(ref, x.astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)
        for threads in (2, 3, 4, 7, 8):
            pynn.set_num_threads(threads)
            np.testing.assert_array_equal(_C.row_block_sums(x), ref)
    finally:
        pynn.set_num_threads(old)
    assert _C.row_block_sums(np.zeros((0, 3), np.float32)).tolist() == [0.0, 0.0, 0.0]


@needs_native
def test_added_kernels_reject_bad_shapes():
    from pynn import _C
    from pynn.backend.numpy import mha as ref
    g, w, y = np.zeros((4, 3), np.float32), np.zeros((5, 3), np.float32), np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="matmul_act_backward"):
        _C.matmul_act_backward(g, w[:, :2], y, "relu")
    with pytest.raises(ValueError, match="matmul_act_backward"):
        _C.matmul_act_backward(g, w, y[:3], "relu")
    with pytest.raises(ValueError, match="matmul_act_backward"):
        _C.matmul_act_backward(g, w, y, "gelu")
    with pytest.raises(ValueError, match="matmul_act_grad"):
        ref.matmul_act_grad(g, w, y[:3], "relu")
    with pytest.raises(ValueError, match="row_block_sums"):
        _C.row_block_sums(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="row_block_sums"):
        ref.row_block_sums(np.zeros(3, np.float32))


@needs_native
@pytest.mark.parametrize("s", [1, 5, 8, 13, 64, 100])
def test_attention_softmax_rows_of_any_length_match_the_reference(s):
    # The AVX2 row softmax handles a masked tail: every key count, masked rows included.
    from pynn.backend.numpy import mha as ref
    r = np.random.default_rng(s)
    q, k, v = (r.standard_normal((2, 6, 2, 4)).astype(np.float32), r.standard_normal((2, s, 2, 4)).astype(np.float32),
               r.standard_normal((2, s, 2, 4)).astype(np.float32))
    mask = r.random((2, 1, 6, s)) > 0.3
    mask[0, 0, 2] = False    # a fully masked row: uniform weights
    with pynn.use_backend("native"):
        out, w = backend.current().attention(q, k, v, 0.5, mask, None)
    out_ref, w_ref = ref.attention(q, k, v, 0.5, mask, None)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out, out_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)


def test_fused_block_with_a_frozen_sublayer_skips_its_gradients(backend_name):
    with pynn.use_backend(backend_name):
        enc = _block()
        enc.ff1.trainable = False
        enc.attention.trainable = False
        assert not enc.ff1.kernel.requires_grad and not enc.attention.query_kernel.requires_grad
        x = np.random.default_rng(2).standard_normal((3, 5, 8)).astype(np.float32)
        fused, composed = _run_layer(enc, x, True), _run_layer(enc, x, False)
        for w, a, b in zip(enc.weights, fused[2], composed[2]):
            if w.requires_grad:
                np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=w.name)
            else:
                assert a is None and b is None, w.name
        np.testing.assert_allclose(fused[1], composed[1], rtol=2e-5, atol=2e-6)


class _DoubledAttention(layers.MultiHeadAttention):
    """A MultiHeadAttention subclass whose call differs from the base's (its output doubled)."""

    def call(self, *args, **kwargs):
        return super().call(*args, **kwargs) * 2.0


@pytest.mark.parametrize("swap", ["subclass", "patched call"])
def test_encoder_never_bypasses_a_replaced_sublayer(swap):
    """A sublayer swapped for a subclass, or one whose call() is patched on the instance, runs its
    own code: the block takes the composed graph, and the result shows the sublayer's change."""
    enc = _block()
    ref = _block()
    x = np.random.default_rng(4).standard_normal((2, 5, 8)).astype(np.float32)
    if swap == "subclass":
        new = _DoubledAttention(2, 4, name="doubled")
        new.build([(None, 5, 8), (None, 5, 8)])
        for w_new, w_old in zip(new.weights, enc.attention.weights):
            w_new.data[...] = w_old.data
        enc.attention = new
    else:
        att = enc.attention
        base_call = att.call
        att.call = lambda *a, **k: base_call(*a, **k) * 2.0
    assert enc._fused_activation(True) is None
    y = enc(Tensor(x, requires_grad=True), training=True).data
    y_ref = ref(Tensor(x, requires_grad=True), training=True).data
    assert not np.allclose(y, y_ref, atol=1e-3), "the replaced sublayer's call did not run"
