"""Bidirectional with return_state and initial_state, in Keras' order:
[output, *forward_states, *backward_states]."""
import numpy as np
import pytest

import pynn
from pynn import layers

X = np.random.default_rng(3).standard_normal((3, 6, 4)).astype(np.float32)


@pytest.mark.parametrize("cls, n_states", [(layers.LSTM, 2), (layers.GRU, 1), (layers.SimpleRNN, 1)])
def test_bidirectional_return_state_gives_output_then_forward_then_backward_states(cls, n_states, backend_name):
    pynn.set_seed(0)
    bi = layers.Bidirectional(cls(3, return_state=True))
    outs = bi(X)
    assert len(outs) == 1 + 2 * n_states
    f, b = bi.forward_layer, bi.backward_layer
    fo, bo = f(X), b(X)
    np.testing.assert_allclose(outs[0].data, np.concatenate([fo[0].data, bo[0].data], -1), rtol=1e-5)
    for got, want in zip(outs[1:], list(fo[1:]) + list(bo[1:])):
        np.testing.assert_allclose(got.data, want.data, rtol=1e-5)
    # the last forward h is the (non-sequence) output; states are (batch, units)
    np.testing.assert_allclose(outs[1].data, fo[0].data, rtol=1e-6)
    assert bi.compute_output_shape((None, 6, 4)) == [(None, 6)] + [(None, 3)] * (2 * n_states)


def test_bidirectional_initial_state_is_split_between_the_directions():
    pynn.set_seed(0)
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode=None)
    r = np.random.default_rng(1)
    init = [r.standard_normal((3, 3)).astype(np.float32) for _ in range(4)]
    fwd, bwd = bi(X, initial_state=init)
    np.testing.assert_allclose(fwd.data, bi.forward_layer(X, initial_state=init[:2]).data, rtol=1e-5)
    np.testing.assert_allclose(bwd.data, bi.backward_layer(X, initial_state=init[2:]).data[:, ::-1], rtol=1e-5)
    with pytest.raises(ValueError, match="initial_state needs 4 tensors"):
        bi(X, initial_state=init[:2])


def test_bidirectional_encoder_states_feed_a_decoder_and_train():
    # seq2seq style: concatenated final states of a bidirectional encoder start a decoder
    enc_in = pynn.Input((6, 4))
    _, fh, fc, bh, bc = layers.Bidirectional(layers.LSTM(5, return_state=True))(enc_in)
    h = layers.Concatenate()([fh, bh])
    c = layers.Concatenate()([fc, bc])
    dec_in = pynn.Input((2, 4))
    dec = layers.LSTM(10)(dec_in, initial_state=[h, c])
    model = pynn.Model([enc_in, dec_in], layers.Dense(1)(dec))
    model.compile(optimizer="adam", loss="mse")
    x2 = X[:, :2]
    y = X.sum((1, 2))[:, None]
    first = model.train_on_batch([X, x2], y)
    for _ in range(30):
        last = model.train_on_batch([X, x2], y)
    assert last < first


def test_models_with_wrappers_save_and_load(tmp_path):
    # Bidirectional and TimeDistributed had no config: load_model failed on them.
    pynn.set_seed(0)
    inp = pynn.Input((6, 4))
    s = layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="sum")(inp)
    s = layers.TimeDistributed(layers.Dense(2))(s)
    model = pynn.Model(inp, s)
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(X, np.zeros((3, 6, 2), np.float32))
    model.save(tmp_path / "w.pynn")
    loaded = pynn.load_model(tmp_path / "w.pynn")
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    bi = loaded.layers[0]
    assert bi.merge_mode == "sum" and bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU, layers.SimpleRNN])
def test_recurrent_layers_reject_zero_time_steps_clearly_and_accept_an_empty_batch(cls):
    layer = cls(4, name="rnn")
    with pytest.raises(ValueError, match=r"rnn': the input has 0 time steps \(shape \(2, 0, 3\)\)"):
        layer(np.zeros((2, 0, 3), np.float32))
    assert layer(np.zeros((0, 5, 3), np.float32)).shape == (0, 4)
