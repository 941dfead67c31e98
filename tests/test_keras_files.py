"""Keras 3 .keras archives both ways: Keras trains and saves -> pynn.load_model predicts
the same; pynn trains and saves -> keras.saving.load_model predicts the same."""
import json
import os
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("h5py")
keras = pytest.importorskip("keras")

import pynn  # noqa: E402
from pynn import layers  # noqa: E402

KL = keras.layers
RTOL, ATOL = 1e-4, 2e-5
N = 24


def _as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _assert_same(a, b):
    a, b = _as_list(a), _as_list(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        x = np.asarray(x)
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------ the six model families, in both libraries
def _data(kind, rng):
    if kind == "mlp":
        return rng.standard_normal((N, 10)).astype(np.float32), rng.integers(0, 3, N)
    if kind == "cnn":
        return rng.standard_normal((N, 10, 10, 2)).astype(np.float32), rng.integers(0, 3, N)
    if kind in ("embed_lstm_gru", "bidir_ln_rnn"):
        return rng.integers(1, 20, (N, 7)).astype(np.int32), rng.integers(0, 3, N)
    if kind == "two_inputs":
        return [rng.standard_normal((N, 6)).astype(np.float32), rng.standard_normal((N, 4)).astype(np.float32)], \
            rng.integers(0, 3, N)
    if kind == "mha":
        return rng.standard_normal((N, 6, 8)).astype(np.float32), rng.integers(0, 3, N)
    if kind == "attention_nested":
        return [rng.standard_normal((N, 5, 6)).astype(np.float32), rng.standard_normal((N, 4, 6)).astype(np.float32)], \
            rng.integers(0, 3, N)
    if kind == "masked_rnn":
        ids = rng.integers(1, 20, (N, 7)).astype(np.int32)
        ids[:, :2] = 0            # pre-padding, as keras' pad_sequences
        ids[::3, 5:] = 0          # and some post-padding
        return ids, rng.integers(0, 3, N)
    raise KeyError(kind)


def _keras_model(kind):
    if kind == "mlp":
        return keras.Sequential([keras.Input((10,)), KL.Dense(16, activation="relu"), KL.Dropout(0.2),
                                 KL.Dense(3, activation="softmax")])
    if kind == "cnn":
        return keras.Sequential([keras.Input((10, 10, 2)), KL.Conv2D(4, 3, padding="same", activation="relu"),
                                 KL.BatchNormalization(), KL.MaxPooling2D(2), KL.Conv2D(4, 3, strides=2),
                                 KL.BatchNormalization(), KL.Flatten(), KL.Dense(3, activation="softmax")])
    if kind == "embed_lstm_gru":
        return keras.Sequential([keras.Input((7,), dtype="int32"), KL.Embedding(20, 6),
                                 KL.LSTM(5, return_sequences=True), KL.GRU(4), KL.Dense(3, activation="softmax")])
    if kind == "bidir_ln_rnn":
        return keras.Sequential([keras.Input((7,), dtype="int32"), KL.Embedding(20, 6),
                                 KL.Bidirectional(KL.SimpleRNN(4, return_sequences=True)), KL.LayerNormalization(),
                                 KL.GlobalAveragePooling1D(), KL.Dense(3, activation="softmax")])
    if kind == "two_inputs":
        a, b = keras.Input((6,), name="a"), keras.Input((4,), name="b")
        h = KL.Concatenate()([KL.Dense(5, activation="tanh")(a), KL.Dense(5, activation="tanh")(b)])
        return keras.Model([a, b], KL.Dense(3, activation="softmax")(h))
    if kind == "mha":
        q = keras.Input((6, 8))
        h = KL.MultiHeadAttention(2, 4)(q, q, use_causal_mask=True)
        h = KL.TimeDistributed(KL.Dense(8))(KL.LayerNormalization()(KL.Add()([q, h])))
        return keras.Model(q, KL.Dense(3, activation="softmax")(KL.GlobalAveragePooling1D()(h)))
    if kind == "attention_nested":
        q, v = keras.Input((5, 6)), keras.Input((4, 6))
        a = KL.Attention(use_scale=True, score_mode="concat")([q, v])
        b = KL.AdditiveAttention()([q, v])
        head = keras.Sequential([keras.Input((5, 12)), KL.Flatten(), KL.Dense(3, activation="softmax")])
        return keras.Model([q, v], head(KL.Concatenate()([a, b])))
    if kind == "masked_rnn":
        ids = keras.Input((7,), dtype="int32")
        h = KL.Embedding(20, 6, mask_zero=True)(ids)
        h = KL.LSTM(5, return_sequences=True)(h)
        return keras.Model(ids, KL.Dense(3, activation="softmax")(KL.GRU(4)(h)))
    raise KeyError(kind)


def _pynn_model(kind):
    if kind == "mlp":
        return pynn.Sequential([layers.Input((10,)), layers.Dense(16, activation="relu"), layers.Dropout(0.2),
                                layers.Dense(3, activation="softmax")])
    if kind == "cnn":
        return pynn.Sequential([layers.Input((10, 10, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                                layers.BatchNormalization(), layers.MaxPooling2D(2), layers.Conv2D(4, 3, strides=2),
                                layers.BatchNormalization(), layers.Flatten(), layers.Dense(3, activation="softmax")])
    if kind == "embed_lstm_gru":
        return pynn.Sequential([layers.Input((7,), dtype="int32"), layers.Embedding(20, 6),
                                layers.LSTM(5, return_sequences=True), layers.GRU(4),
                                layers.Dense(3, activation="softmax")])
    if kind == "bidir_ln_rnn":
        return pynn.Sequential([layers.Input((7,), dtype="int32"), layers.Embedding(20, 6),
                                layers.Bidirectional(layers.SimpleRNN(4, return_sequences=True)),
                                layers.LayerNormalization(), layers.GlobalAveragePooling1D(),
                                layers.Dense(3, activation="softmax")])
    if kind == "two_inputs":
        a, b = pynn.Input((6,), name="a"), pynn.Input((4,), name="b")
        h = layers.Concatenate()([layers.Dense(5, activation="tanh")(a), layers.Dense(5, activation="tanh")(b)])
        return pynn.Model([a, b], layers.Dense(3, activation="softmax")(h))
    if kind == "mha":
        q = pynn.Input((6, 8))
        h = layers.MultiHeadAttention(2, 4)(q, q, use_causal_mask=True)
        h = layers.TimeDistributed(layers.Dense(8))(layers.LayerNormalization()(layers.Add()([q, h])))
        return pynn.Model(q, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(h)))
    if kind == "attention_nested":
        q, v = pynn.Input((5, 6)), pynn.Input((4, 6))
        a = layers.Attention(use_scale=True, score_mode="concat")([q, v])
        b = layers.AdditiveAttention()([q, v])
        head = pynn.Sequential([layers.Input((5, 12)), layers.Flatten(), layers.Dense(3, activation="softmax")])
        return pynn.Model([q, v], head(layers.Concatenate()([a, b])))
    if kind == "masked_rnn":
        ids = pynn.Input((7,), dtype="int32")
        h = layers.Embedding(20, 6, mask_zero=True)(ids)
        h = layers.LSTM(5, return_sequences=True)(h)
        return pynn.Model(ids, layers.Dense(3, activation="softmax")(layers.GRU(4)(h)))
    raise KeyError(kind)


KINDS = ["mlp", "cnn", "embed_lstm_gru", "bidir_ln_rnn", "two_inputs", "mha", "attention_nested", "masked_rnn"]


@pytest.mark.parametrize("kind", KINDS)
def test_keras_trained_file_loads_in_pynn_with_the_same_predictions(kind, tmp_path, rng):
    x, y = _data(kind, rng)
    km = _keras_model(kind)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    km.fit(x, y, epochs=2, batch_size=8, verbose=0)        # BatchNorm statistics move
    path = tmp_path / "k.keras"
    km.save(path)
    pm = pynn.load_model(path)
    _assert_same(km.predict(x, verbose=0), pm.predict(x))
    if kind == "cnn":
        bn = [w for w in pm.weights if "moving_mean" in w.name]
        assert bn and not np.allclose(bn[0].data, 0.0)     # the trained statistics arrived


@pytest.mark.parametrize("kind", KINDS)
def test_pynn_trained_file_loads_in_keras_with_the_same_predictions(kind, tmp_path, rng):
    x, y = _data(kind, rng)
    pm = _pynn_model(kind)
    pm.compile(optimizer=pynn.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
    pm.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "p.keras"
    pm.save(path)
    km = keras.saving.load_model(path)
    _assert_same(km.predict(x, verbose=0), pm.predict(x))
    # and pynn reads its own .keras file back
    _assert_same(pynn.load_model(path).predict(x), pm.predict(x))


def test_pynn_keras_file_has_the_keras_layout(tmp_path):
    pm = _pynn_model("mlp")
    path = tmp_path / "p.keras"
    pm.save(path)
    with zipfile.ZipFile(path) as z:
        assert set(z.namelist()) == {"metadata.json", "config.json", "model.weights.h5"}
        config = json.loads(z.read("config.json"))
    assert config["class_name"] == "Sequential"
    assert [s["class_name"] for s in config["config"]["layers"]] == ["InputLayer", "Dense", "Dropout", "Dense"]


def test_unknown_keras_layers_are_listed_and_nothing_runs(tmp_path):
    km = keras.Sequential([keras.Input((4, 4, 1)), KL.UpSampling2D(2), KL.Conv2DTranspose(2, 3), KL.Flatten(),
                           KL.Dense(2)])
    path = tmp_path / "k.keras"
    km.save(path)
    with pytest.raises(ValueError, match=r"Conv2DTranspose.*UpSampling2D"):
        pynn.load_model(path)


def test_pynn_only_layers_are_refused_when_writing_keras_files(tmp_path):
    model = pynn.Sequential([layers.Input((5, 8)), layers.TransformerEncoder(16, 2)])
    path = tmp_path / "p.keras"
    with pytest.raises(ValueError, match="TransformerEncoder"):
        model.save(path)
    assert not path.exists()


def test_other_extensions_keep_the_pynn_format(tmp_path):
    model = _pynn_model("mlp")
    model.save(tmp_path / "m.pynn")
    with zipfile.ZipFile(tmp_path / "m.pynn") as z:
        assert "model.json" in z.namelist()


def test_compile_settings_cross_both_ways(tmp_path, rng):
    x, y = _data("mlp", rng)
    km = _keras_model("mlp")
    km.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["accuracy"],
               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False))
    km.save(tmp_path / "k.keras")
    pm = pynn.load_model(tmp_path / "k.keras")
    assert type(pm.optimizer).__name__ == "Adam"
    np.testing.assert_allclose(pm.optimizer.get_config()["learning_rate"], 0.01, rtol=1e-6)
    assert pm._metric_specs == ["accuracy"]
    pm.fit(x, y, epochs=1, batch_size=8, verbose=0)                   # ready to train on
    assert pynn.load_model(tmp_path / "k.keras", compile=False).loss is None

    pm.compile(optimizer=pynn.optimizers.SGD(learning_rate=0.05, momentum=0.9),
               loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    pm.save(tmp_path / "p.keras")
    km2 = keras.saving.load_model(tmp_path / "p.keras")
    cfg = km2.optimizer.get_config()
    assert type(km2.optimizer).__name__ == "SGD" and cfg["momentum"] == 0.9
    np.testing.assert_allclose(cfg["learning_rate"], 0.05, rtol=1e-6)
    assert km2.loss == "sparse_categorical_crossentropy"


def test_keras_compile_settings_pynn_cannot_honour_are_an_error(tmp_path):
    km = _keras_model("mlp")
    km.compile(optimizer=keras.optimizers.Adam(0.01, use_ema=True), loss="sparse_categorical_crossentropy")
    km.save(tmp_path / "k.keras")
    with pytest.raises(ValueError, match="use_ema.*compile=False"):
        pynn.load_model(tmp_path / "k.keras")
    assert pynn.load_model(tmp_path / "k.keras", compile=False) is not None


def _both_ways(km, pm, xs, tmp_path):
    km.save(tmp_path / "k.keras")
    _assert_same(km.predict(xs, verbose=0), pynn.load_model(tmp_path / "k.keras").predict(xs))
    pm.save(tmp_path / "p.keras")
    _assert_same(keras.saving.load_model(tmp_path / "p.keras").predict(xs, verbose=0), pm.predict(xs))


def test_attention_mask_input_and_scores_output_cross_both_ways(tmp_path, rng):
    q, m = keras.Input((5, 8)), keras.Input((5, 5), dtype="bool")
    out, scores = KL.MultiHeadAttention(2, 4)(q, q, attention_mask=m, return_attention_scores=True)
    km = keras.Model([q, m], [out, scores])
    pq, pmask = pynn.Input((5, 8)), pynn.Input((5, 5), dtype="bool")
    pout, pscores = layers.MultiHeadAttention(2, 4)(pq, pq, attention_mask=pmask, return_attention_scores=True)
    pm = pynn.Model([pq, pmask], [pout, pscores])
    for w in pm.weights:
        w.assign(rng.normal(0, 0.3, w.shape))
    _both_ways(km, pm, [rng.standard_normal((4, 5, 8)).astype(np.float32), rng.random((4, 5, 5)) > 0.3], tmp_path)


def test_sequential_with_a_padding_mask_crosses_both_ways(tmp_path, rng):
    km = keras.Sequential([keras.Input((6,), dtype="int32"), KL.Embedding(10, 4, mask_zero=True), KL.LSTM(3)])
    pm = pynn.Sequential([layers.Input((6,), dtype="int32"), layers.Embedding(10, 4, mask_zero=True),
                          layers.LSTM(3)])
    ids = rng.integers(1, 10, (4, 6)).astype(np.int32)
    ids[:, :2] = 0
    _both_ways(km, pm, ids, tmp_path)


def test_custom_keras_layers_are_refused_by_name(tmp_path):
    @keras.saving.register_keras_serializable(package="tests")
    class Doubler(KL.Layer):
        def call(self, x):
            return x * 2
    km = keras.Sequential([keras.Input((3,)), Doubler(), KL.Dense(2)])
    km.save(tmp_path / "k.keras")
    with pytest.raises(ValueError, match="Doubler"):
        pynn.load_model(tmp_path / "k.keras")


def test_keras_ops_recorded_in_a_functional_graph_are_refused(tmp_path):
    a, b = keras.Input((3,)), keras.Input((3,))
    km = keras.Model([a, b], KL.Dense(2)(a + b))        # records an "Add" op, not the Add layer
    km.save(tmp_path / "k.keras")
    with pytest.raises(ValueError, match=r"Add \(keras op\)"):
        pynn.load_model(tmp_path / "k.keras")
