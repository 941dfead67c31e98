"""The fused multi-head attention kernels (backend ``attention`` / ``attention_grad``,
csrc/nn/attention.cpp) and MultiHeadAttention's paths through them: native vs the numpy
reference, float64 finite differences, PyTorch, thread counts, masks, dropout, strided
(packed) operands, empty dimensions and bad input."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn import backend, layers
from pynn.autograd import Tensor
from pynn.backend.numpy import mha as ref
from pynn.testing import gradcheck

needs_native = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")
R = np.random.default_rng(7)


def operands(b, t, s, h, dk, dv, dtype=np.float32, packed=False):
    """q (B, T, H, dk), k (B, S, H, dk), v (B, S, H, dv); packed: strided views of one buffer."""
    if packed:
        assert t == s and dk == dv
        buf = R.standard_normal((b, t, 3 * h * dk)).astype(dtype)
        return tuple(buf[..., i * h * dk:(i + 1) * h * dk].reshape(b, t, h, dk) for i in range(3))
    return (R.standard_normal((b, t, h, dk)).astype(dtype), R.standard_normal((b, s, h, dk)).astype(dtype),
            R.standard_normal((b, s, h, dv)).astype(dtype))


def masks(b, h, t, s):
    padding = R.random((b, 1, 1, s)) > 0.3
    padding[:, :, :, 0] = True
    full = R.random((b, 1, t, s)) > 0.4
    full[0, 0, 1] = False                                  # one fully masked row: uniform weights
    return {"none": None, "padding": padding, "causal": np.tril(np.ones((t, s), bool), k=s - t)[None, None],
            "full_with_masked_row": full, "per_head": R.random((b, h, t, s)) > 0.5}


def dropout_multipliers(shape, rate=0.25, dtype=np.float32):
    return ((R.random(shape) >= rate) / (1 - rate)).astype(dtype)


def run(bk, q, k, v, scale, mask, drop, g):
    with pynn.use_backend(bk):
        B = backend.current()
        out, w = B.attention(q, k, v, scale, mask, drop)
        grads = B.attention_grad(g, q, k, v, w, scale, mask, drop)
    return out, w, grads


@needs_native
@pytest.mark.parametrize("mask_kind", ["none", "padding", "causal", "full_with_masked_row", "per_head"])
@pytest.mark.parametrize("shape", [(2, 5, 7, 3, 4, 6), (3, 9, 9, 2, 8, 8), (1, 17, 33, 4, 16, 5)],
                         ids=["T<S", "square", "odd"])
@pytest.mark.parametrize("dropout", [False, True])
def test_native_attention_matches_the_numpy_reference(shape, mask_kind, dropout):
    b, t, s, h, dk, dv = shape
    q, k, v = operands(b, t, s, h, dk, dv)
    mask = masks(b, h, t, s)[mask_kind]
    drop = dropout_multipliers((b, h, t, s)) if dropout else None
    g = R.standard_normal((b, t, h, dv)).astype(np.float32)
    want = run("numpy", q, k, v, 0.37, mask, drop, g)
    got = run("native", q, k, v, 0.37, mask, drop, g)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-6)
    for a, e in zip(got[2], want[2]):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)


@needs_native
def test_native_attention_reads_and_writes_strided_packed_views():
    b, t, h, d = 2, 6, 3, 4
    q, k, v = operands(b, t, t, h, d, d, packed=True)
    assert not q.flags.c_contiguous
    g = R.standard_normal((b, t, h, d)).astype(np.float32)
    want = run("numpy", *(np.ascontiguousarray(x) for x in (q, k, v)), 0.5, None, None, g)
    with pynn.use_backend("native"):
        out, w = backend.current().attention(q, k, v, 0.5)
        grad = np.full((b, t, 3 * h * d), np.nan, np.float32)
        parts = tuple(grad[..., i * h * d:(i + 1) * h * d].reshape(b, t, h, d) for i in range(3))
        res = backend.current().attention_grad(g, q, k, v, w, 0.5, out=parts)
    assert all(r is p for r, p in zip(res, parts))
    assert not np.isnan(grad).any()                       # every element of the packed gradient written
    np.testing.assert_allclose(out, want[0], rtol=1e-4, atol=1e-5)
    for p, e in zip(parts, want[2]):
        np.testing.assert_allclose(p, e, rtol=1e-4, atol=1e-5)


@needs_native
@pytest.mark.parametrize("shape", [(16, 8, 8, 2, 4, 4), (1, 40, 40, 1, 64, 64), (3, 24, 24, 1, 32, 16)],
                         ids=["many_items", "one_big_item", "three_items"])
def test_native_attention_is_bitwise_identical_at_any_thread_count(shape):
    """Whole items per thread or one item split across threads: the same bits as 1 thread."""
    b, t, s, h, dk, dv = shape
    q, k, v = operands(b, t, s, h, dk, dv)
    mask = masks(b, h, t, s)["padding"]
    drop = dropout_multipliers((b, h, t, s))
    g = R.standard_normal((b, t, h, dv)).astype(np.float32)
    before = pynn.get_num_threads()
    try:
        results = {}
        for n in (1, 2, 3, 4, 7, 8):
            pynn.set_num_threads(n)
            results[n] = run("native", q, k, v, 0.3, mask, drop, g)
    finally:
        pynn.set_num_threads(before)
    for n, (out, w, grads) in results.items():
        np.testing.assert_array_equal(out, results[1][0], err_msg=f"{n} threads")
        np.testing.assert_array_equal(w, results[1][1], err_msg=f"{n} threads")
        for a, e in zip(grads, results[1][2]):
            np.testing.assert_array_equal(a, e, err_msg=f"{n} threads")


@pytest.mark.parametrize("shape", [(0, 3, 4, 2, 2, 2), (2, 0, 4, 2, 2, 3), (2, 3, 0, 2, 2, 3), (1, 3, 4, 0, 2, 2),
                                   (1, 3, 4, 2, 0, 3), (1, 3, 4, 2, 2, 0)],
                         ids=["B0", "T0", "S0", "H0", "dk0", "dv0"])
def test_attention_handles_empty_dimensions(backend_name, shape):
    b, t, s, h, dk, dv = shape
    q, k, v = operands(b, t, s, h, dk, dv)
    g = R.standard_normal((b, t, h, dv)).astype(np.float32)
    B = backend.current()
    out, w = B.attention(q, k, v, 0.5)
    dq, dk_, dv_ = B.attention_grad(g, q, k, v, w, 0.5)
    assert out.shape == (b, t, h, dv) and w.shape == (b, h, t, s)
    assert (dq.shape, dk_.shape, dv_.shape) == (q.shape, k.shape, v.shape)
    # Nothing to attend to: zero output and zero gradients (no uninitialised memory).
    assert np.all(np.isfinite(out)) and all(np.all(x == 0) for x in (dq, dk_, dv_) if s == 0 or t == 0)
    if s == 0:
        assert np.all(out == 0)


def _mask_for(shape):
    b, t, s, h = shape
    m = np.tril(np.ones((t, s), bool), k=s - t)[None, None] & (R.random((b, 1, 1, s)) > 0.3)
    m[..., 0] = True
    return m


def test_dot_product_attention_gradients_match_finite_differences(numpy_backend):
    mask = _mask_for((2, 3, 4, 2))
    drop = dropout_multipliers((2, 2, 3, 4), dtype=np.float64)
    gradcheck(lambda q, k, v: F.dot_product_attention(q, k, v, 0.6, mask=mask, dropout=drop),
              [R.standard_normal((2, 3, 2, 3)), R.standard_normal((2, 4, 2, 3)), R.standard_normal((2, 4, 2, 2))])


def test_packed_self_attention_gradients_match_finite_differences(numpy_backend):
    mask = _mask_for((2, 4, 4, 2))
    gradcheck(lambda x: F.packed_self_attention(x, 2, 3, 2, 0.5, mask=mask), [R.standard_normal((2, 4, 2 * 8))])


def test_packed_self_attention_equals_the_separate_op(backend_name):
    x = R.standard_normal((2, 5, 3 * 2 * 4)).astype(np.float32)
    g = R.standard_normal((2, 5, 2, 4)).astype(np.float32)
    a = Tensor(x.copy(), requires_grad=True)
    F.packed_self_attention(a, 2, 4, 4, 0.5).backward(g)
    b = Tensor(x.copy(), requires_grad=True)
    parts = [F.reshape(F.getitem(b, (Ellipsis, slice(8 * i, 8 * (i + 1)))), (2, 5, 2, 4)) for i in range(3)]
    F.dot_product_attention(*parts, 0.5).backward(g)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-5, atol=1e-6)


def test_attention_scale_defaults_to_one_over_sqrt_key_dim_as_keras(backend_name):
    # keras.ops.dot_product_attention and torch's scaled_dot_product_attention: scale=None
    # means 1/sqrt(dk).
    q, k, v = operands(2, 5, 5, 3, 4, 4)
    np.testing.assert_array_equal(F.dot_product_attention(q, k, v).data,
                                  F.dot_product_attention(q, k, v, 0.5).data)
    qkv = R.standard_normal((2, 5, 3 * (2 * 4 + 2))).astype(np.float32)
    np.testing.assert_array_equal(F.packed_self_attention(qkv, 3, 4, 2).data,
                                  F.packed_self_attention(qkv, 3, 4, 2, 0.5).data)


@pytest.mark.parametrize("arg", ["scale", "mask", "dropout"])
def test_attention_refuses_a_constant_that_asks_for_a_gradient(arg):
    q, k, v = operands(1, 3, 3, 2, 4, 4)
    value = {"scale": np.float32(0.5), "mask": np.ones((1, 1, 3, 3), np.float32),
             "dropout": np.ones((1, 2, 3, 3), np.float32)}[arg]
    with pytest.raises(TypeError, match=f"dot_product_attention: {arg} is a constant"):
        F.dot_product_attention(q, k, v, **{arg: Tensor(value, requires_grad=True)})
    with pytest.raises(TypeError, match=f"packed_self_attention: {arg} is a constant"):
        F.packed_self_attention(np.concatenate([q, k, v], -1).reshape(1, 3, 24), 2, 4, 4,
                                **{arg: Tensor(value, requires_grad=True)})
    # A Tensor that asks for nothing is its values.
    kw = {arg: Tensor(value > 0 if arg == "mask" else value)}
    ref_kw = {arg: value > 0 if arg == "mask" else value}
    np.testing.assert_array_equal(F.dot_product_attention(q, k, v, **kw).data,
                                  F.dot_product_attention(q, k, v, **ref_kw).data)


def test_attention_kernels_reject_bad_shapes(backend_name):
    B = backend.current()
    q, k, v = operands(2, 3, 4, 2, 5, 6)
    with pytest.raises(ValueError, match=r"attention: k must be"):
        B.attention(q, k[:, :, :1], v, 1.0)
    with pytest.raises(ValueError, match=r"attention: expected q \(B, T, H, dk\)"):
        B.attention(q[0], k, v, 1.0)
    with pytest.raises(ValueError, match=r"attention: mask of shape \(3, 3\) does not broadcast"):
        B.attention(q, k, v, 1.0, mask=np.ones((3, 3), bool))
    out, w = B.attention(q, k, v, 1.0)
    with pytest.raises(ValueError, match=r"attention_grad: expected dout"):
        B.attention_grad(out[:, :2], q, k, v, w, 1.0)
    with pytest.raises(ValueError, match=r"attention_grad: out must be three arrays"):
        B.attention_grad(out, q, k, v, w, 1.0, out=(np.empty_like(q), np.empty_like(k)))


@needs_native
def test_native_attention_without_weights_gives_the_same_output():
    """need_weights=False (the inference plan) keeps P in scratch: same output, no weights."""
    from pynn import _C
    q, k, v = operands(3, 5, 9, 2, 4, 3)
    mask = masks(3, 2, 5, 9)["full_with_masked_row"]
    m = np.broadcast_to(mask, (3, 2, 5, 9))
    out, w = _C.attention(q, k, v, 0.5, m)
    out2, none = _C.attention(q, k, v, 0.5, m, None, False)
    assert none is None
    np.testing.assert_array_equal(out2, out)


@needs_native
def test_native_attention_binding_refuses_an_output_that_overlaps_an_input():
    from pynn import _C
    q, k, v = operands(1, 4, 4, 2, 3, 3)
    out, w = _C.attention(q, k, v, 1.0)
    with pytest.raises(ValueError, match="attention_grad: output dq overlaps an input"):
        _C.attention_backward(out, q, k, v, w, 1.0, None, None, q, np.empty_like(k), np.empty_like(v))
    with pytest.raises(TypeError, match="attention: mask must be bool or uint8"):
        _C.attention(q, k, v, 1.0, np.ones((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"attention: dropout must have shape \(1, 2, 4, 4\)"):
        _C.attention(q, k, v, 1.0, None, np.ones((1, 2, 4, 3), np.float32))


# ---------------------------------------------------------------- the layer
def _mha_pair(num_heads=2, key_dim=3, value_dim=None, dropout=0.0, seed=0):
    """A MultiHeadAttention built on float32 zeros with random biases."""
    pynn.set_seed(seed)
    return layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim, value_dim=value_dim, dropout=dropout,
                                     bias_initializer="random_normal")


@pytest.mark.parametrize("self_attention", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_mha_fused_path_equals_the_op_by_op_path(backend_name, self_attention, causal):
    """return_attention_scores=True runs the op-by-op graph; the fused one must agree with
    it in output and in every gradient (input and weights)."""
    x = R.standard_normal((2, 5, 6)).astype(np.float32)
    y = x if self_attention else R.standard_normal((2, 7, 6)).astype(np.float32)
    if causal and not self_attention:
        y = y[:, :5]
    am = R.random((2, 5, y.shape[1])) > 0.2
    am[..., 0] = True
    g = R.standard_normal((2, 5, 6)).astype(np.float32)
    results = []
    for scores in (False, True):
        mha = _mha_pair(value_dim=4)
        xt = Tensor(x.copy(), requires_grad=True)
        yt = xt if self_attention else Tensor(y.copy(), requires_grad=True)
        out = mha(xt, yt, attention_mask=am, use_causal_mask=causal, return_attention_scores=scores)
        out = out[0] if scores else out
        out.backward(g)
        results.append([out.data, xt.grad] + ([] if self_attention else [yt.grad]) + [w.grad for w in mha.weights])
    for a, e in zip(*results):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)


def test_mha_training_dropout_draws_the_same_weights_mask_on_both_paths(backend_name):
    x = R.standard_normal((2, 6, 8)).astype(np.float32)
    outs = []
    for scores in (False, True):
        mha = _mha_pair(dropout=0.4)
        mha(x, x)
        pynn.set_seed(5)
        out = mha(x, x, training=True, return_attention_scores=scores)
        outs.append((out[0] if scores else out).data)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    mha = _mha_pair(dropout=0.4)
    assert not np.allclose(mha(x, x, training=True).data, mha(x, x).data)   # dropout did act


def test_mha_rejects_a_dropout_rate_outside_0_1():
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=2, dropout=1.0)
    x = np.ones((1, 3, 4), np.float32)
    mha(x, x)
    with pytest.raises(ValueError, match=r"MultiHeadAttention .*dropout must be in \[0, 1\), got 1.0"):
        mha(x, x, training=True)


def test_mha_cross_attention_with_padding_matches_torch(backend_name):
    torch = pytest.importorskip("torch")
    mha = _mha_pair(num_heads=3, key_dim=4)
    q = R.standard_normal((2, 5, 12)).astype(np.float32)
    kv = R.standard_normal((2, 7, 12)).astype(np.float32)
    keep = np.ones((2, 7), bool)
    keep[0, 4:] = False
    qt, kvt = Tensor(q.copy(), requires_grad=True), Tensor(kv.copy(), requires_grad=True)
    out = mha(qt, kvt, attention_mask=np.broadcast_to(keep[:, None, :], (2, 5, 7)))
    tm = torch.nn.MultiheadAttention(12, 3, batch_first=True)
    with torch.no_grad():
        w_in = [getattr(mha, f"{n}_kernel").data.reshape(12, 12).T for n in ("query", "key", "value")]
        tm.in_proj_weight.copy_(torch.from_numpy(np.concatenate(w_in, 0)))
        tm.in_proj_bias.copy_(torch.from_numpy(np.concatenate(
            [getattr(mha, f"{n}_bias").data.reshape(12) for n in ("query", "key", "value")])))
        tm.out_proj.weight.copy_(torch.from_numpy(mha.output_kernel.data.reshape(12, 12).T.copy()))
        tm.out_proj.bias.copy_(torch.from_numpy(mha.output_bias.data))
    tq, tkv = torch.from_numpy(q.copy()).requires_grad_(True), torch.from_numpy(kv.copy()).requires_grad_(True)
    ref_out, _ = tm(tq, tkv, tkv, key_padding_mask=torch.from_numpy(~keep), need_weights=False)
    np.testing.assert_allclose(out.data, ref_out.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = R.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref_out.backward(torch.from_numpy(g))
    np.testing.assert_allclose(qt.grad, tq.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(kvt.grad, tkv.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_mha_self_attention_weight_gradients_match_finite_differences(numpy_backend):
    """The packed Q|K|V projection: gradients reach each of the three kernels and biases."""
    pynn.set_seed(0)
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=2, value_dim=3, dtype="float64",
                                    bias_initializer="random_normal")
    x0 = R.standard_normal((2, 3, 4))
    mha(x0, x0)
    names = ["query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias", "output_kernel",
             "output_bias"]
    start = [getattr(mha, n).data.copy() for n in names]

    def f(x, *ws):   # the weights as the check's own Tensors, so their gradients land on them
        for n, t in zip(names, ws):
            setattr(mha, n, t)
        return mha(x, x, use_causal_mask=True)
    gradcheck(f, [x0] + start)


def test_ref_attention_keeps_float32(numpy_backend):
    q, k, v = operands(1, 2, 3, 1, 2, 2)
    out, w = ref.attention(q, k, v, np.float64(0.5))
    assert out.dtype == np.float32 and w.dtype == np.float32
