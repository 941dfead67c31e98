"""Recurrent layers: Keras layouts, agreement with torch.nn.RNN/LSTM/GRU (weights
converted between layouts), masking, go_backwards, states, Embedding, wrappers."""
import numpy as np
import pytest

import pynn
from pynn import layers

R = np.random.default_rng(0)
X = R.standard_normal((3, 6, 4)).astype(np.float32)


def _torch_run(module, x, h0=None):
    import torch
    xt = torch.from_numpy(x).requires_grad_(True)
    out, state = module(xt) if h0 is None else module(xt, h0)
    return out, state, xt


def _convert_gru(w):
    """Keras GRU [z, r, h] blocks -> torch [r, z, n] blocks along the gate axis."""
    u = w.shape[-1] // 3
    return np.concatenate([w[..., u:2 * u], w[..., :u], w[..., 2 * u:]], axis=-1)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_layer_matches_torch_forward_and_gradients(backend_name, kind):
    torch = pytest.importorskip("torch")
    pynn.set_seed(0)
    layer = getattr(layers, kind)(5, return_sequences=True)
    x = pynn.Tensor(X.copy(), requires_grad=True)
    y = layer(x)
    kernel, recurrent, bias = layer.get_weights()
    tm = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind](4, 5, batch_first=True)
    with torch.no_grad():
        if kind == "GRU":
            tm.weight_ih_l0.copy_(torch.from_numpy(_convert_gru(kernel).T.copy()))
            tm.weight_hh_l0.copy_(torch.from_numpy(_convert_gru(recurrent).T.copy()))
            tm.bias_ih_l0.copy_(torch.from_numpy(_convert_gru(bias[0])))
            tm.bias_hh_l0.copy_(torch.from_numpy(_convert_gru(bias[1])))
        else:  # same gate order (i, f, g/c, o) for LSTM; one bias in Keras
            tm.weight_ih_l0.copy_(torch.from_numpy(kernel.T.copy()))
            tm.weight_hh_l0.copy_(torch.from_numpy(recurrent.T.copy()))
            tm.bias_ih_l0.copy_(torch.from_numpy(bias))
            tm.bias_hh_l0.zero_()
    out, _, xt = _torch_run(tm, X)
    np.testing.assert_allclose(y.data, out.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = R.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    out.backward(torch.from_numpy(g))
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    dk = layer.kernel.grad
    dk_torch = tm.weight_ih_l0.grad.numpy().T
    np.testing.assert_allclose(dk, _convert_gru(dk_torch) if kind == "GRU" else dk_torch, rtol=1e-4, atol=1e-5)


def test_lstm_weights_are_keras_shaped_with_unit_forget_bias():
    lstm = layers.LSTM(3)
    lstm.build((None, 5, 2))
    k, u, b = lstm.get_weights()
    assert k.shape == (2, 12) and u.shape == (3, 12) and b.shape == (12,)
    np.testing.assert_array_equal(b, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(u @ u.T, np.eye(3), atol=1e-5)  # orthogonal recurrent kernel
    gru = layers.GRU(3)
    gru.build((None, 5, 2))
    assert [w.shape for w in gru.get_weights()] == [(2, 9), (3, 9), (2, 9)]


def test_return_state_and_initial_state():
    pynn.set_seed(0)
    lstm = layers.LSTM(4, return_sequences=True, return_state=True)
    seq, h, c = lstm(X)
    assert seq.shape == (3, 6, 4) and h.shape == c.shape == (3, 4)
    np.testing.assert_array_equal(seq.data[:, -1], h.data)
    # Continuing from the returned state equals running the whole sequence at once.
    first = lstm(X[:, :3])
    second = lstm(X[:, 3:], initial_state=[first[1], first[2]])
    np.testing.assert_allclose(second[0].data, seq.data[:, 3:], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"initial state 0 has shape \(3, 5\), expected \(3, 4\)"):
        lstm(X, initial_state=[np.zeros((3, 5)), np.zeros((3, 4))])


def test_masked_steps_keep_the_previous_state(backend_name):
    pynn.set_seed(0)
    ids = np.array([[3, 5, 2, 0, 0], [4, 0, 0, 0, 0]])
    emb = layers.Embedding(8, 4, mask_zero=True)
    gru = layers.GRU(6, return_sequences=True)
    seq = gru(emb(ids)).data
    np.testing.assert_array_equal(seq[0, 3], seq[0, 2])
    np.testing.assert_array_equal(seq[1, 4], seq[1, 0])
    # The final state equals running only the unpadded prefix.
    only = layers.GRU(6)
    only.build((None, 3, 4))
    only.set_weights(gru.get_weights())
    np.testing.assert_allclose(only(emb(ids[:1, :3])).data, seq[:1, -1], rtol=1e-5)


def test_go_backwards_reverses_time(backend_name):
    pynn.set_seed(0)
    fwd = layers.SimpleRNN(3, return_sequences=True)
    bwd = layers.SimpleRNN(3, return_sequences=True, go_backwards=True)
    fwd.build((None, 6, 4))
    bwd.build((None, 6, 4))
    bwd.set_weights(fwd.get_weights())
    np.testing.assert_allclose(bwd(X).data, fwd(X[:, ::-1].copy()).data, rtol=1e-6)


def test_bidirectional_concatenates_forward_and_reversed_backward():
    pynn.set_seed(0)
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True))
    y = bi(X)
    assert y.shape == (3, 6, 6) and len(bi.get_weights()) == 6
    f, b = bi.forward_layer, bi.backward_layer
    np.testing.assert_allclose(y.data[..., :3], f(X).data, rtol=1e-6)
    np.testing.assert_allclose(y.data[..., 3:], b(X).data[:, ::-1], rtol=1e-6)


def test_time_distributed_applies_the_layer_per_step():
    d = layers.TimeDistributed(layers.Dense(2))
    y = d(X)
    k, b = d.layer.get_weights()
    np.testing.assert_allclose(y.data, X @ k + b, rtol=1e-5)
    assert d.compute_output_shape((None, 6, 4)) == (None, 6, 2)


def test_embedding_rejects_out_of_range_ids_and_floats():
    emb = layers.Embedding(5, 2, name="emb")
    with pytest.raises(ValueError, match="index 7 is out of range for an embedding table of 5 rows"):
        emb(np.array([[1, 7]]))
    with pytest.raises(TypeError, match="Embedding 'emb': expected integer ids"):
        emb(np.array([[0.5, 1.0]]))


def test_recurrent_layers_reject_wrong_rank():
    with pytest.raises(ValueError, match=r"expected input \(batch, steps, features\)"):
        layers.LSTM(3)(np.zeros((2, 4), np.float32))


def test_text_classifier_learns_a_sequence_rule(backend_name):
    """Embedding + LSTM learns "does token 1 appear before token 2"."""
    pynn.set_seed(0)
    r = np.random.default_rng(1)
    x = r.integers(3, 10, (400, 8))
    y = np.zeros(400, np.int64)
    for row, label in zip(x, r.integers(0, 2, 400)):
        i, j = sorted(r.choice(8, 2, replace=False))
        row[i], row[j] = (1, 2) if label else (2, 1)
    y = (np.argmax(x == 1, axis=1) < np.argmax(x == 2, axis=1)).astype(np.int64)
    model = pynn.Sequential([layers.Input((8,), dtype="int64"), layers.Embedding(10, 8),
                             layers.LSTM(16), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=pynn.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[:320], y[:320], epochs=15, batch_size=32, verbose=0)
    assert model.evaluate(x[320:], y[320:])[1] >= 0.9
