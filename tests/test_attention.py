"""Attention layers vs their definitions and vs PyTorch; masks; the Transformer block."""
import numpy as np
import pytest

import pynn
from pynn import layers
from pynn.autograd import Tensor
from pynn.testing import gradcheck

R = np.random.default_rng(0)
Q = R.standard_normal((2, 4, 6)).astype(np.float32)
V = R.standard_normal((2, 5, 6)).astype(np.float32)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_dot_product_attention_matches_the_definition(backend_name):
    out, w = layers.Attention()([Q, V], return_attention_scores=True)
    expected_w = softmax(Q @ V.transpose(0, 2, 1))
    np.testing.assert_allclose(w.data, expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.data, expected_w @ V, rtol=1e-5, atol=1e-6)


def test_attention_value_mask_and_causal_mask():
    vmask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    _, w = layers.Attention()([Q, V], mask=[None, vmask], return_attention_scores=True)
    assert np.all(w.data[0, :, 3:] == 0)
    np.testing.assert_allclose(w.data.sum(-1), 1.0, rtol=1e-6)
    _, wc = layers.Attention()([Q, Q], use_causal_mask=True, return_attention_scores=True)
    assert np.all(np.triu(wc.data[0], k=1) == 0)


def test_additive_attention_matches_the_definition():
    att = layers.AdditiveAttention()
    out = att([Q, V])
    scale = att.scale.data
    scores = (np.tanh(Q[:, :, None, :] + V[:, None, :, :]) * scale).sum(-1)
    np.testing.assert_allclose(out.data, softmax(scores) @ V, rtol=1e-5, atol=1e-6)


def _mha_torch_copy(mha, torch, dim):
    tm = torch.nn.MultiheadAttention(dim, mha.num_heads, batch_first=True)
    h, k = mha.num_heads, mha.key_dim
    with torch.no_grad():
        w_in = [getattr(mha, f"{n}_kernel").data.reshape(dim, h * k).T for n in ("query", "key", "value")]
        b_in = [getattr(mha, f"{n}_bias").data.reshape(h * k) for n in ("query", "key", "value")]
        tm.in_proj_weight.copy_(torch.from_numpy(np.concatenate(w_in, 0)))
        tm.in_proj_bias.copy_(torch.from_numpy(np.concatenate(b_in)))
        tm.out_proj.weight.copy_(torch.from_numpy(mha.output_kernel.data.reshape(h * k, dim).T.copy()))
        tm.out_proj.bias.copy_(torch.from_numpy(mha.output_bias.data))
    return tm


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_matches_torch(backend_name, causal):
    torch = pytest.importorskip("torch")
    pynn.set_seed(0)
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=3, bias_initializer="random_normal")
    x = Tensor(Q.copy(), requires_grad=True)
    y = mha(x, x, use_causal_mask=causal)
    tm = _mha_torch_copy(mha, torch, 6)
    xt = torch.from_numpy(Q.copy()).requires_grad_(True)
    mask = torch.triu(torch.ones(4, 4, dtype=torch.bool), 1) if causal else None
    yt, _ = tm(xt, xt, xt, attn_mask=mask, need_weights=False)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = R.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_scaled_dot_product_inside_mha_matches_torch_sdpa():
    torch = pytest.importorskip("torch")
    pynn.set_seed(1)
    mha = layers.MultiHeadAttention(num_heads=3, key_dim=2)
    _, w = mha(Q, V, return_attention_scores=True)
    q = torch.from_numpy(Q @ mha.query_kernel.data.reshape(6, 6)).reshape(2, 4, 3, 2).transpose(1, 2)
    k = torch.from_numpy(V @ mha.key_kernel.data.reshape(6, 6)).reshape(2, 5, 3, 2).transpose(1, 2)
    ref = torch.softmax(q @ k.transpose(-1, -2) / np.sqrt(2), -1)
    np.testing.assert_allclose(w.data, ref.numpy(), rtol=1e-5, atol=1e-6)


def test_mha_weights_use_the_keras_layout():
    mha = layers.MultiHeadAttention(num_heads=4, key_dim=8, value_dim=5)
    mha(np.zeros((1, 3, 16), np.float32), np.zeros((1, 2, 12), np.float32))
    assert [w.shape for w in mha.get_weights()] == [(16, 4, 8), (4, 8), (12, 4, 8), (4, 8), (12, 4, 5), (4, 5),
                                                  (4, 5, 16), (16,)]


def test_mha_gradients_match_finite_differences(numpy_backend):
    pynn.set_seed(0)
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=2, dtype="float64", bias_initializer="random_normal")
    mha(np.zeros((1, 3, 4)), np.zeros((1, 2, 4)))
    mask = np.array([[[1, 0], [1, 1], [0, 1]]], bool)
    gradcheck(lambda q, v: mha(q, v, attention_mask=mask), [R.standard_normal((1, 3, 4)), R.standard_normal((1, 2, 4))])


def test_transformer_encoder_block_shapes_weights_and_residual_structure():
    pynn.set_seed(0)
    enc = layers.TransformerEncoder(intermediate_dim=16, num_heads=2)
    x = R.standard_normal((2, 5, 8)).astype(np.float32)
    y = enc(x)
    assert y.shape == (2, 5, 8) and len(enc.weights) == 8 + 4 + 4
    # post-norm: every position comes out of a LayerNormalization (mean 0, var ~1 with gamma=1, beta=0)
    np.testing.assert_allclose(y.data.mean(-1), 0, atol=1e-5)


def test_positional_encodings():
    pe = layers.SinePositionEncoding()(np.zeros((2, 6, 4), np.float32)).data
    np.testing.assert_allclose(pe[0, 3, 0], np.sin(3.0), rtol=1e-6)
    np.testing.assert_allclose(pe[0, 3, 1], np.cos(3.0), rtol=1e-6)
    np.testing.assert_allclose(pe[1, 2, 2], np.sin(2 / 100.0), rtol=1e-5)
    learned = layers.PositionEmbedding(sequence_length=10)
    assert learned(np.zeros((2, 6, 4), np.float32)).shape == (2, 6, 4)
    with pytest.raises(ValueError, match="longer than sequence_length=10"):
        learned(np.zeros((1, 11, 4), np.float32))


def test_transformer_classifier_learns_a_counting_task(backend_name):
    """Is token 1 more frequent than token 2 in the sequence? Needs global attention."""
    pynn.set_seed(0)
    r = np.random.default_rng(2)
    x = r.integers(1, 5, (480, 10))
    y = ((x == 1).sum(1) > (x == 2).sum(1)).astype(np.int64)
    inp = pynn.Input((10,), dtype="int64")
    h = layers.Embedding(5, 16)(inp)
    h = layers.TransformerEncoder(intermediate_dim=32, num_heads=2)(h)
    h = layers.GlobalAveragePooling1D()(h)
    out = layers.Dense(2, activation="softmax")(h)
    model = pynn.Model(inp, out)
    model.compile(optimizer=pynn.optimizers.Adam(learning_rate=3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[:400], y[:400], epochs=20, batch_size=32, verbose=0)
    assert model.evaluate(x[400:], y[400:])[1] >= 0.85


def test_global_pooling_1d_leaves_out_padded_steps():
    ids = np.array([[1, 2, 0, 0]])
    emb = layers.Embedding(3, 2, mask_zero=True)
    e = emb(ids)
    table = emb.get_weights()[0]
    np.testing.assert_allclose(layers.GlobalAveragePooling1D()(e).data, table[[1, 2]].mean(0, keepdims=True),
                               rtol=1e-6)
    np.testing.assert_allclose(layers.GlobalMaxPooling1D()(e).data, table[[1, 2]].max(0, keepdims=True))
