"""Recurrent layers: Keras layouts, agreement with torch.nn.RNN/LSTM/GRU (weights
converted between layouts), masking, go_backwards, states, Embedding, wrappers."""
import numpy as np
import pytest

import pynn
from pynn import layers
from pynn.autograd import Tensor
from pynn.testing import gradcheck

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


# ---------------------------------------------------------------- recurrent dropout
_GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


def _rnn_args(kind, r, n=3, t=5, f=4, u=5, dtype=np.float32):
    g = _GATES[kind]
    x = r.standard_normal((n, t, f)).astype(dtype)
    kernel = (0.5 * r.standard_normal((f, g * u))).astype(dtype)
    rec = (0.5 * r.standard_normal((u, g * u))).astype(dtype)
    bias = (0.1 * r.standard_normal((2, g * u) if kind == "GRU" else (g * u,))).astype(dtype)
    states = [(0.5 * r.standard_normal((n, u))).astype(dtype) for _ in range(2 if kind == "LSTM" else 1)]
    rmask = ((r.random((n, g * u)) < 0.7) / 0.7).astype(dtype)
    return x, kernel, rec, bias, states, rmask


def _op(kind):
    return {"SimpleRNN": pynn.functional.simple_rnn, "LSTM": pynn.functional.lstm, "GRU": pynn.functional.gru}[kind]


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("seq_mask", [False, True])
def test_recurrent_dropout_native_matches_numpy_forward_and_gradients(native_backend, kind, seq_mask):
    r = np.random.default_rng(3)
    x, kernel, rec, bias, states, rmask = _rnn_args(kind, r)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool) if seq_mask else None
    results = []
    for be in ("numpy", "native"):
        with pynn.use_backend(be):
            ts = [Tensor(a.copy(), requires_grad=True) for a in (x, kernel, rec, bias, *states)]
            y = _op(kind)(*ts, mask=mask, recurrent_mask=rmask)
            y.backward(np.random.default_rng(0).standard_normal(y.shape).astype(np.float32))
            results.append([y.data] + [t.grad for t in ts])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_dropout_gradients_match_finite_differences(numpy_backend, kind):
    r = np.random.default_rng(4)
    x, kernel, rec, bias, states, rmask = _rnn_args(kind, r, n=2, t=4, f=3, u=3, dtype=np.float64)
    gradcheck(lambda *ts: _op(kind)(*ts, recurrent_mask=rmask), [x, kernel, rec, bias, *states])


def _manual_step(kind, layer, x_t, h, c, m):
    """One step written from Keras 3's cells (implementation 1, used whenever
    recurrent_dropout > 0): gate k's recurrent product sees h ⊙ m_k."""
    k, rk, b = layer.get_weights()
    u = layer.units
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    rec = lambda i: (h * m[:, i * u:(i + 1) * u]) @ rk[:, i * u:(i + 1) * u]  # noqa: E731
    xk = lambda i, bb: x_t @ k[:, i * u:(i + 1) * u] + bb[i * u:(i + 1) * u]  # noqa: E731
    if kind == "SimpleRNN":
        return np.tanh(xk(0, b) + rec(0)), None
    if kind == "LSTM":
        i, f, g, o = sig(xk(0, b) + rec(0)), sig(xk(1, b) + rec(1)), np.tanh(xk(2, b) + rec(2)), sig(xk(3, b) + rec(3))
        c = f * c + i * g
        return o * np.tanh(c), c
    z = sig(xk(0, b[0]) + rec(0) + b[1, :u])
    rg = sig(xk(1, b[0]) + rec(1) + b[1, u:2 * u])
    hh = np.tanh(xk(2, b[0]) + rg * (rec(2) + b[1, 2 * u:]))
    return z * h + (1 - z) * hh, None  # the state mixes in the unmasked h_{t-1}


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_dropout_uses_one_mask_per_gate_fixed_over_time(backend_name, kind):
    pynn.set_seed(0)
    layer = getattr(layers, kind)(6, recurrent_dropout=0.4, return_sequences=True)
    layer.build((None, 6, 4))
    pynn.set_seed(7)
    y = layer(X, training=True).data
    pynn.set_seed(7)
    m = layer._recurrent_mask(Tensor(X), True)
    assert m.shape == (3, _GATES[kind] * 6)
    assert set(np.unique(m)) <= {0.0, np.float32(1 / 0.6)} and 0 < (m == 0).mean() < 1
    h = np.zeros((3, 6), np.float32)
    c = np.zeros((3, 6), np.float32)
    for t in range(X.shape[1]):
        h, c = _manual_step(kind, layer, X[:, t], h, c, m)
        np.testing.assert_allclose(y[:, t], h, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_dropout_is_off_at_inference_and_rate_zero_changes_nothing(backend_name, kind):
    pynn.set_seed(0)
    plain = getattr(layers, kind)(5, return_sequences=True)
    drop = getattr(layers, kind)(5, return_sequences=True, recurrent_dropout=0.5)
    plain.build((None, 6, 4))
    drop.build((None, 6, 4))
    drop.set_weights(plain.get_weights())
    ref = plain(X).data
    np.testing.assert_array_equal(drop(X).data, ref)                   # inference: no mask
    np.testing.assert_array_equal(plain(X, training=True).data, ref)   # rate 0: training is inference
    assert not np.allclose(drop(X, training=True).data, ref)           # training: masked
    assert drop.get_config()["recurrent_dropout"] == 0.5


# ---------------------------------------------------------------- stateful
@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_stateful_layer_fed_in_halves_equals_the_whole_sequence(backend_name, kind):
    pynn.set_seed(0)
    whole = getattr(layers, kind)(5, return_sequences=True)
    ref = whole(X).data
    stateful = getattr(layers, kind)(5, return_sequences=True, stateful=True)
    stateful.build((None, 6, 4))
    stateful.set_weights(whole.get_weights())
    first, second = stateful(X[:, :2]).data, stateful(X[:, 2:]).data
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), ref, rtol=1e-5, atol=1e-6)
    assert len(stateful.states) == (2 if kind == "LSTM" else 1)
    np.testing.assert_allclose(stateful.states[0], ref[:, -1], rtol=1e-5, atol=1e-6)
    assert stateful.get_weights()[0].shape == whole.get_weights()[0].shape and len(stateful.weights) == 3
    # reset_states zeroes the carried state: the first half comes out as the first time
    stateful.reset_states()
    np.testing.assert_array_equal(stateful.states[0], 0)
    np.testing.assert_allclose(stateful(X[:, :2]).data, first, rtol=1e-6)


def test_stateful_states_carry_values_not_gradients():
    pynn.set_seed(0)
    lstm = layers.LSTM(3, stateful=True)
    x1 = Tensor(X[:, :3].copy(), requires_grad=True)
    lstm(x1)
    assert all(type(s) is np.ndarray for s in lstm.states)
    x2 = Tensor(X[:, 3:].copy(), requires_grad=True)
    lstm(x2).sum().backward()
    assert x2.grad is not None and x1.grad is None


def test_stateful_batch_size_is_fixed_and_checked():
    pynn.set_seed(0)
    model = pynn.Sequential([layers.Input((6, 4), batch_size=3), layers.GRU(4, stateful=True, name="sgru")])
    gru = model.layers[0]
    assert gru._batch_size == 3
    with pytest.raises(ValueError, match=r"GRU 'sgru': stateful=True carries states for batches of 3 samples, "
                                         r"got input of shape \(2, 6, 4\)"):
        model(X[:2])
    # Keras' batch_input_shape on the first layer of a Sequential fixes it too
    m2 = pynn.Sequential([layers.LSTM(2, stateful=True, batch_input_shape=(3, 6, 4))])
    assert m2.layers[0]._batch_size == 3 and m2(X).shape == (3, 2)
    again = layers.LSTM.from_config(m2.layers[0].get_config())  # what load_model does
    again.build((None, 6, 4))
    assert again.stateful and again._batch_size == 3
    # without any batch size the first call fixes it
    free = layers.SimpleRNN(2, stateful=True, name="srnn")
    free(X)
    with pytest.raises(ValueError, match="SimpleRNN 'srnn': stateful=True carries states for batches of 3"):
        free(X[:1])
    with pytest.raises(ValueError, match=r"LSTM .*: reset_states\(\) needs stateful=True"):
        layers.LSTM(2).reset_states()


def test_stateful_model_fits_without_shuffle_and_model_reset_states_zeroes(backend_name):
    pynn.set_seed(0)
    r = np.random.default_rng(2)
    x = r.standard_normal((8, 5, 3)).astype(np.float32)
    y = r.standard_normal((8, 1)).astype(np.float32)
    model = pynn.Sequential([layers.Input((5, 3), batch_size=4), layers.LSTM(6, stateful=True),
                             layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 3 and np.all(np.isfinite(history.history["loss"]))
    lstm = model.layers[0]
    assert lstm.states[0].shape == (4, 6) and np.abs(lstm.states[0]).sum() > 0
    model.reset_states()
    assert all(np.all(s == 0) for s in lstm.states)
    # After a reset, predicting batch by batch equals a fresh stateless model on the same batches in order.
    p = model.predict(x, batch_size=4)
    fresh = layers.LSTM(6)
    fresh.build((None, 5, 3))
    fresh.set_weights(lstm.get_weights())
    h1 = fresh(x[:4])
    seq = layers.LSTM(6, return_state=True)
    seq.build((None, 5, 3))
    seq.set_weights(lstm.get_weights())
    _, h, c = seq(x[:4])
    out2, _, _ = seq(x[4:], initial_state=[h, c])
    dense = model.layers[1]
    np.testing.assert_allclose(p[:4], dense(h1).data, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p[4:], dense(out2).data, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="stateful=True carries states for batches of 4"):
        model.predict(x[:6], batch_size=4)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("n,t,units", [(16, 7, 48), (5, 300, 20), (33, 4, 72)])
def test_recurrent_native_matches_numpy_across_chunks_threads_and_masks(native_backend, kind, n, t, units):
    """Sizes that take the native kernels' multi-chunk, multi-thread time loops (units not a multiple
    of the chunk, a ragged last chunk), the K-split weight gradient (N*T >= 512), and padding masks."""
    r = np.random.default_rng(5)
    x, kernel, rec, bias, states, _ = _rnn_args(kind, r, n=n, t=t, f=6, u=units)
    rec *= 0.3
    lengths = r.integers(1, t + 1, n)
    mask = np.arange(t)[None, :] < lengths[:, None]
    results = []
    for be in ("numpy", "native"):
        with pynn.use_backend(be):
            ts = [Tensor(a.copy(), requires_grad=True) for a in (x, kernel, rec, bias, *states)]
            y = _op(kind)(*ts, mask=mask)
            y.backward(np.random.default_rng(0).standard_normal(y.shape).astype(np.float32))
            results.append([y.data] + [tt.grad for tt in ts])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k,m,n", [(0, 3, 4), (7, 3, 5), (1500, 20, 80), (6400, 16, 40)])
def test_weight_grad_is_xT_dy(backend_name, k, m, n):
    r = np.random.default_rng(6)
    x = r.standard_normal((k, m)).astype(np.float32)
    dy = r.standard_normal((k, n)).astype(np.float32)
    got = pynn.backend.current().weight_grad(x, dy)
    np.testing.assert_allclose(got, x.astype(np.float64).T @ dy, rtol=1e-4, atol=1e-4 * max(1, np.sqrt(k)))


def test_native_weight_grad_rejects_mismatched_rows():
    _C = pytest.importorskip("pynn._C")
    with pytest.raises(ValueError, match=r"weight_grad: expected x \(K, M\) and dy \(K, N\) with the same K, "
                                         r"got x \(3, 2\) and dy \(4, 2\)"):
        _C.weight_grad(np.zeros((3, 2), np.float32), np.zeros((4, 2), np.float32))


@pytest.mark.parametrize("n,t,u", [(0, 3, 4), (2, 0, 4), (2, 3, 0)])
def test_recurrent_kernels_accept_zero_sized_dims(backend_name, n, t, u):
    be = pynn.backend.current()
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    hs, cs, gates = be.lstm(z(n, t, 4 * u), z(n, u), z(n, u), z(u, 4 * u))
    assert hs.shape == cs.shape == (n, t, u) and gates.shape == (n, t, 4 * u)
    dxw, dh0, dc0, du = be.lstm_grad(z(n, t, u), z(n, u), z(n, u), z(n, u), hs, cs, gates, z(u, 4 * u))
    assert dxw.shape == (n, t, 4 * u) and dh0.shape == dc0.shape == (n, u) and np.all(du == 0)
    hs, saved = be.gru(z(n, t, 3 * u), z(n, u), z(u, 3 * u), z(3 * u))
    dxw, dh0, du, db = be.gru_grad(z(n, t, u), z(n, u), hs, saved, z(u, 3 * u))
    assert dxw.shape == (n, t, 3 * u) and du.shape == (u, 3 * u) and db.shape == (3 * u,) and np.all(du == 0)
    hs = be.simple_rnn(z(n, t, u), z(n, u), z(u, u))
    dxw, dh0, du = be.simple_rnn_grad(z(n, t, u), z(n, t, u), z(n, u), hs, z(u, u))
    assert dxw.shape == (n, t, u) and dh0.shape == (n, u) and np.all(du == 0)
