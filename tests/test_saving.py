"""model.save / load_model round trips, atomic writes, corrupt files, GradientTape, plots."""
import os

import numpy as np
import pytest

import pynn
from pynn import layers, optimizers

X = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
Y = (X[:, :1] > 0).astype(np.int64)[:, 0]


def _sequential():
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"), layers.BatchNormalization(),
                         layers.Dropout(0.1), layers.Dense(2, activation="softmax")])
    m.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def _functional():
    pynn.set_seed(0)
    inp = pynn.Input((4,))
    h = layers.Dense(8, activation="tanh")(inp)
    out = layers.Dense(2)(layers.Concatenate()([h, layers.Add()([h, h])]))
    m = pynn.Model(inp, out)
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1, momentum=0.9),
              loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


@pytest.mark.parametrize("make", [_sequential, _functional], ids=["sequential", "functional"])
def test_save_load_gives_identical_predictions_and_identical_continued_training(tmp_path, make):
    m = make()
    m.fit(X, Y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    path = tmp_path / "model.pynn"
    m.save(path)
    loaded = pynn.load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
    pynn.set_seed(5)
    m.fit(X, Y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    pynn.set_seed(5)
    loaded.fit(X, Y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_crash_mid_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    m = _sequential()
    path = tmp_path / "model.pynn"
    m.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")
    import pynn.saving
    monkeypatch.setattr(pynn.saving, "_npy_bytes", boom)
    with pytest.raises(OSError, match="disk full"):
        m.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pynn"]


def test_loading_a_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pynn"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable pynn model file"):
        pynn.load_model(bad)


def test_loading_mismatched_weights_names_the_weight_and_shapes(tmp_path):
    m = _sequential()
    path = tmp_path / "w.npz"
    m.save_weights(path)
    other = pynn.Sequential([layers.Input((4,)), layers.Dense(9), layers.BatchNormalization(),
                             layers.Dropout(0.1), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"weight 'dense_\d+/kernel' has shape \(4, 9\), got an array of shape \(4, 8\)"):
        other.load_weights(path)


def test_custom_layers_round_trip_when_registered(tmp_path):
    @pynn.register_serializable
    class Scale(layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    m = pynn.Sequential([layers.Input((4,)), Scale(3.0), layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    m.save(tmp_path / "c.pynn")
    loaded = pynn.load_model(tmp_path / "c.pynn")
    assert loaded.layers[0].factor == 3.0
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))


def test_gradient_tape_custom_training_loop_matches_fit_step():
    m = _functional()
    x, y = X[:8], Y[:8]
    loss_fn = pynn.losses.SparseCategoricalCrossentropy(from_logits=True)
    with pynn.GradientTape() as tape:
        loss = loss_fn(y, m(x, training=True))
    grads = tape.gradient(loss, m.trainable_weights)
    assert all(w.grad is None for w in m.trainable_weights)  # the tape leaves .grad alone
    ref = _functional()
    ref_loss = ref.train_on_batch(x, y)
    opt = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    opt.apply_gradients(zip(grads, m.trainable_weights))
    assert float(loss.data) == pytest.approx(ref_loss)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_plot_history_and_decision_boundary_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    m = _sequential()
    h = m.fit(X, Y, epochs=2, verbose=0, validation_split=0.25)
    p = pynn.plot_history(h, tmp_path / "h.png")
    assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    m2 = pynn.Sequential([layers.Input((2,)), layers.Dense(2, activation="softmax")])
    q = pynn.plot_decision_boundary(m2, X[:, :2], Y, tmp_path / "b.png", resolution=50)
    assert os.path.getsize(q) > 1000
