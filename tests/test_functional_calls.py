"""Functional-API calls beyond one tensor in, one tensor out: multi-output layers
(``LSTM(return_state=True)``), symbolic keyword arguments (``initial_state=[h, c]``)
and plain keyword arguments (``use_causal_mask=True``) are recorded, replayed
once per call, and saved."""
import numpy as np
import pytest

import pynn
from pynn import layers

R = np.random.default_rng(0)
ENC = R.standard_normal((4, 7, 3)).astype(np.float32)
DEC = R.standard_normal((4, 5, 2)).astype(np.float32)


def seq2seq(cell=layers.LSTM):
    """The Keras seq2seq tutorial's shape: encoder states start the decoder."""
    enc_in, dec_in = pynn.Input((7, 3)), pynn.Input((5, 2))
    _, *states = cell(6, return_state=True, name="encoder")(enc_in)
    dec = cell(6, return_sequences=True, name="decoder")(dec_in, initial_state=states)
    return pynn.Model([enc_in, dec_in], layers.Dense(2, name="head")(dec))


@pytest.mark.parametrize("cell", [layers.LSTM, layers.GRU])
def test_encoder_states_feed_the_decoder_exactly_as_an_eager_call(cell, backend_name):
    pynn.set_seed(0)
    model = seq2seq(cell)
    enc, dec, head = (model.get_layer(n) for n in ("encoder", "decoder", "head"))
    _, *states = enc(ENC)
    want = head(dec(DEC, initial_state=states)).data
    np.testing.assert_allclose(model.predict([ENC, DEC], verbose=0), want, rtol=1e-5, atol=1e-6)


def test_a_multi_output_call_runs_once_however_many_outputs_are_used():
    inp = pynn.Input((7, 3))
    lstm = layers.LSTM(4, return_state=True)
    out, h, c = lstm(inp)
    model = pynn.Model(inp, [layers.Add()([out, h]), c])
    calls = []
    real = lstm.call
    lstm.call = lambda *a, **k: calls.append(1) or real(*a, **k)
    model.predict(ENC, verbose=0)
    assert len(calls) == 1


def test_seq2seq_with_states_trains_and_survives_save_and_load(tmp_path):
    pynn.set_seed(0)
    model = seq2seq()
    model.compile(optimizer="adam", loss="mse")
    target = np.cumsum(DEC, axis=1)
    first = model.train_on_batch([ENC, DEC], target)
    for _ in range(20):
        last = model.train_on_batch([ENC, DEC], target)
    assert last < first
    model.save(tmp_path / "s2s.pynn")
    loaded = pynn.load_model(tmp_path / "s2s.pynn")
    np.testing.assert_array_equal(loaded.predict([ENC, DEC], verbose=0), model.predict([ENC, DEC], verbose=0))
    assert loaded.train_on_batch([ENC, DEC], target) == pytest.approx(model.train_on_batch([ENC, DEC], target),
                                                                      rel=1e-6)


def test_keyword_arguments_of_a_symbolic_call_are_kept(tmp_path):
    # use_causal_mask used to be dropped silently when MultiHeadAttention was called on Input tensors.
    pynn.set_seed(0)
    inp = pynn.Input((5, 8))
    mha = layers.MultiHeadAttention(2, 4)
    model = pynn.Model(inp, mha(inp, inp, use_causal_mask=True))
    x = R.standard_normal((3, 5, 8)).astype(np.float32)
    causal = mha(x, x, use_causal_mask=True).data
    assert not np.allclose(causal, mha(x, x).data)
    np.testing.assert_allclose(model.predict(x, verbose=0), causal, rtol=1e-5, atol=1e-6)
    # and it is saved
    model.save(tmp_path / "m.pynn")
    np.testing.assert_allclose(pynn.load_model(tmp_path / "m.pynn").predict(x, verbose=0), causal, rtol=1e-5,
                               atol=1e-6)


def test_attention_scores_are_a_second_symbolic_output():
    inp = pynn.Input((5, 8))
    mha = layers.MultiHeadAttention(2, 4)
    out, scores = mha(inp, inp, return_attention_scores=True)
    assert out.shape == (None, 5, 8) and scores.shape == (None, 2, 5, 5)
    model = pynn.Model(inp, [out, scores])
    x = R.standard_normal((3, 5, 8)).astype(np.float32)
    o, s = model.predict(x, verbose=0)
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(o, mha(x, x).data, rtol=1e-5, atol=1e-6)


def test_unsavable_keyword_values_give_a_clear_error_at_save(tmp_path):
    inp = pynn.Input((5, 8))
    mask = np.tril(np.ones((5, 5), bool))
    model = pynn.Model(inp, layers.MultiHeadAttention(2, 4)(inp, inp, attention_mask=mask))
    with pytest.raises(ValueError, match="cannot save the call of layer .* with attention_mask=ndarray"):
        model.save(tmp_path / "m.pynn")
    assert not (tmp_path / "m.pynn").exists()
