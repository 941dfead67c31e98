"""A custom layer inside a functional model (its output shape is learnt by calling
it, or from compute_output_shape when defined), and the small Keras habits
around fit/evaluate/predict/callbacks/saving that issue #18 fixed."""
import os

import numpy as np
import pytest

import pynn
from pynn import callbacks, layers, optimizers

os.environ.setdefault("KERAS_BACKEND", "torch")


def _keras():
    return pytest.importorskip("keras")


@pynn.saving.register_keras_serializable(package="test")
class Bottleneck(layers.Layer):
    """Changes the feature size: a pynn that assumed output shape == input shape broke here."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

    def call(self, inputs):
        return pynn.activations.tanh(inputs @ self.w + self.b)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@pynn.saving.register_keras_serializable(package="test")
class FirstHalf(layers.Layer):
    """No weights, no compute_output_shape: a slice, so the shape is only known by calling."""

    def call(self, x):
        return x[:, : x.shape[1] // 2]


def _keras_layers(keras):
    class KBottleneck(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="w")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

        def call(self, inputs):
            return keras.activations.tanh(keras.ops.matmul(inputs, self.w) + self.b)

    class KFirstHalf(keras.layers.Layer):
        def call(self, x):
            return x[:, : x.shape[1] // 2]
    return KBottleneck, KFirstHalf


def _model(lib, L, B, H):
    inputs = lib.Input((10,))
    x = B(6)(inputs)
    x = H()(x)
    outputs = L.Dense(2, activation="softmax")(x)
    return lib.Model(inputs, outputs)


def test_custom_layers_output_shapes_are_inferred_by_calling_them():
    inputs = pynn.Input((10,))
    x = Bottleneck(6)(inputs)
    assert x.shape == (None, 6)
    assert FirstHalf()(x).shape == (None, 3)
    seq = pynn.Input((None, 4))     # an unknown time dimension stays unknown
    assert FirstHalf()(seq).shape == (None, None, 4)


def test_compute_output_shape_is_used_when_defined_and_a_failing_call_is_a_clear_error():
    class Declared(layers.Layer):
        called = 0

        def call(self, x):
            type(self).called += 1
            return x[:, :1]

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 1)

    assert Declared()(pynn.Input((5,))).shape == (None, 1) and Declared.called == 0

    class Broken(layers.Layer):
        def call(self, x):
            return x @ np.ones((7, 2), np.float32)   # wrong inner dimension for (None, 5)
    with pytest.raises(ValueError, match="'broken'.*could not infer its output shape"):
        Broken()(pynn.Input((5,)))


def test_functional_model_with_custom_layers_trains_saves_loads_and_matches_keras(tmp_path):
    pynn.set_seed(0)
    model = _model(pynn, layers, Bottleneck, FirstHalf)
    assert model.output_shape == (None, 2) and model.input_shape == (None, 10)
    r = np.random.default_rng(0)
    x = r.standard_normal((64, 10)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert h.history["accuracy"][-1] > 0.8
    model.save(tmp_path / "f.pynn")
    loaded = pynn.models.load_model(tmp_path / "f.pynn")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    clone = pynn.models.model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)

    keras = _keras()
    KB, KH = _keras_layers(keras)
    km = _model(keras, keras.layers, KB, KH)
    km.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- the #18 fixes
def _small(compiled=True):
    inputs = pynn.Input((3,))
    m = pynn.Model(inputs, layers.Dense(2, activation="softmax")(inputs))
    if compiled:
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_a_compiled_untrained_adam_model_saves_and_loads(tmp_path):
    m = _small()
    m.save(tmp_path / "u.pynn")
    loaded = pynn.load_model(tmp_path / "u.pynn")
    assert loaded.optimizer.iterations == 0
    loaded.fit(np.ones((4, 3), np.float32), np.zeros(4, np.int64), verbose=0)
    assert loaded.optimizer.iterations == 1


def test_count_params_before_build_raises_like_keras():
    with pytest.raises(ValueError, match="isn't built"):
        layers.Dense(3).count_params()
    with pytest.raises(ValueError, match="isn't built"):
        pynn.Sequential([layers.Dense(3)]).count_params()


def test_evaluate_prints_a_progress_line_by_default_and_predict_verbose_shows_progress(capsys):
    m = _small()
    x, y = np.ones((40, 3), np.float32), np.zeros(40, np.int64)
    m.evaluate(x, y)
    assert "2/2" in capsys.readouterr().out
    m.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""
    m.predict(x, verbose=1)
    assert "2/2" in capsys.readouterr().out
    m.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_fit_accepts_dicts_instead_of_calling_them_batch_iterables():
    inputs = pynn.Input((3,), name="features")
    m = pynn.Model(inputs, layers.Dense(1, name="target")(inputs))
    m.compile("sgd", "mse")
    h = m.fit({"features": np.ones((8, 3), np.float32)}, {"target": np.ones((8, 1), np.float32)}, verbose=0)
    assert len(h.history["loss"]) == 1


def test_checkpoint_early_stopping_and_plateau_messages_read_like_keras(tmp_path, capsys):
    m = _small()
    x, y = np.ones((8, 3), np.float32), np.zeros(8, np.int64)
    path = str(tmp_path / "best.pynn")
    cbs = [callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True, verbose=1),
           callbacks.ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5, min_delta=10.0, verbose=1),
           callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=10.0, verbose=1,
                                   restore_best_weights=True)]
    h = m.fit(x, y, epochs=5, verbose=0, callbacks=cbs)
    out = capsys.readouterr().out
    assert f"Epoch 1: loss improved from None to {h.history['loss'][0]:.5f}, saving model to {path}" in out
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.0005." in out
    assert "Epoch 3: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out
    # ReduceLROnPlateau's learning_rate reaches History
    assert h.history["learning_rate"] == pytest.approx([0.001, 0.0005, 0.00025])


def test_learning_rate_assign_and_validation_freq():
    m = _small()
    m.optimizer.learning_rate.assign(0.01)
    assert m.optimizer.learning_rate == pytest.approx(0.01) and m.optimizer.learning_rate.numpy() == np.float32(0.01)
    x, y = np.ones((8, 3), np.float32), np.zeros(8, np.int64)
    seen = []
    m.fit(x, y, epochs=4, verbose=0, validation_data=(x, y), validation_freq=2, validation_batch_size=3,
          callbacks=[callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append("val_loss" in logs))])
    assert seen == [False, True, False, True]


def test_compile_jit_compile_true_is_refused_and_run_eagerly_is_accepted():
    m = _small(compiled=False)
    m.compile("sgd", "mse", run_eagerly=True)
    assert m.run_eagerly is True
    with pytest.raises(ValueError, match="jit_compile=True is not supported"):
        m.compile("sgd", "mse", jit_compile=True)
