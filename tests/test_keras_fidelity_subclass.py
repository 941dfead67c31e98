"""keras.io-style subclassing scripts ported by changing only the imports: layers
made of layers (MLPBlock, TransformerBlock), custom train_step/test_step/
predict_step, compute_loss, self.metrics. Each trains, saves, loads and, where
Keras is installed, matches Keras 3 on the same weights."""
import os

import numpy as np
import pytest

import pynn
from pynn import layers

os.environ.setdefault("KERAS_BACKEND", "torch")


def _keras():
    return pytest.importorskip("keras")


# ---------------------------------------------------------------- keras.io: "Making new layers and models via subclassing"
class Linear(layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return inputs @ self.w + self.b


class MLPBlock(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.linear_1 = Linear(32)
        self.linear_2 = Linear(32)
        self.linear_3 = Linear(1)

    def call(self, inputs):
        x = pynn.activations.relu(self.linear_1(inputs))
        x = pynn.activations.relu(self.linear_2(x))
        return self.linear_3(x)


def _keras_mlp_block(keras):
    class KLinear(keras.layers.Layer):
        def __init__(self, units=32):
            super().__init__()
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
            self.b = self.add_weight(shape=(self.units,), initializer="random_normal")

        def call(self, inputs):
            return keras.ops.matmul(inputs, self.w) + self.b

    class KMLPBlock(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.linear_1, self.linear_2, self.linear_3 = KLinear(32), KLinear(32), KLinear(1)

        def call(self, inputs):
            x = keras.activations.relu(self.linear_1(inputs))
            x = keras.activations.relu(self.linear_2(x))
            return self.linear_3(x)
    return KMLPBlock()


def test_mlp_block_tracks_nested_weights_like_keras():
    mlp = MLPBlock()
    y = mlp(np.ones((3, 64), np.float32))
    assert y.shape == (3, 1)
    assert len(mlp.weights) == 6 and len(mlp.trainable_weights) == 6   # keras.io's printed numbers
    assert mlp.count_params() == 64 * 32 + 32 + 32 * 32 + 32 + 32 + 1
    mlp.trainable = False   # freezing the outer layer freezes the inner ones (Keras)
    assert len(mlp.trainable_weights) == 0 and len(mlp.non_trainable_weights) == 6
    assert all(not w.requires_grad for w in mlp.weights)


def test_layer_tracks_lists_and_dicts_of_layers_and_later_appends():
    class Stack(layers.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = [layers.Dense(4), layers.Dense(3)]
            self.heads = {"a": layers.Dense(2)}
            self.extra = []
            self.extra.append(layers.Dense(5))   # appended after assignment: still tracked

        def call(self, x):
            for b in self.blocks:
                x = b(x)
            return self.extra[0](self.heads["a"](x))

    s = Stack()
    s(np.ones((2, 6), np.float32))
    assert [tuple(w.shape) for w in s.weights] == [(6, 4), (4,), (4, 3), (3,), (3, 2), (2,), (2, 5), (5,)]


def test_mlp_block_matches_keras_on_the_same_weights():
    keras = _keras()
    x = np.random.default_rng(0).standard_normal((5, 64)).astype(np.float32)
    kb = _keras_mlp_block(keras)
    ky = keras.ops.convert_to_numpy(kb(x))
    assert len(kb.weights) == 6
    pb = MLPBlock()
    pb(x)
    pb.set_weights([np.asarray(w) for w in kb.get_weights()])
    np.testing.assert_allclose(pb(x).numpy(), ky, rtol=1e-4, atol=1e-5)


def test_add_weight_follows_keras_3_keyword_order_and_defaults():
    class L(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight((input_shape[-1], 2), "ones")          # positional: shape, initializer
            self.s = self.add_weight()                                       # scalar, glorot default
            self.c = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="counter")

        def call(self, x):
            return x @ self.w

    layer = L()
    layer(np.ones((1, 3), np.float32))
    assert layer.w.shape == (3, 2) and np.all(layer.w.data == 1) and layer.s.shape == ()
    assert layer.c.name.endswith("/counter") and [id(w) for w in layer.non_trainable_weights] == [id(layer.c)]
    # pynn's earlier order (name first) still works: a string is never a shape
    legacy = layer.add_weight("legacy", (2, 2), "ones", None, None, trainable=False)
    assert legacy.shape == (2, 2) and legacy.name.endswith("/legacy") and not legacy.trainable
    with pytest.raises(TypeError, match="add_weight"):
        layer.add_weight(shape=(2,), colour="red")
    import inspect
    assert list(inspect.signature(layers.Layer.add_weight).parameters)[1:] == [
        "shape", "initializer", "dtype", "trainable", "regularizer", "constraint", "name"]


# ---------------------------------------------------------------- keras.io: text classification with Transformer
class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = pynn.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)
        self.config = dict(embed_dim=embed_dim, num_heads=num_heads, ff_dim=ff_dim, rate=rate)

    def call(self, inputs, training=False):
        attn_output = self.dropout1(self.att(inputs, inputs), training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.dropout2(self.ffn(out1), training=training)
        return self.layernorm2(out1 + ffn_output)

    def get_config(self):
        return {**super().get_config(), **self.config}


def _keras_transformer_block(keras, embed_dim, num_heads, ff_dim):
    L = keras.layers

    class KTransformerBlock(L.Layer):
        def __init__(self):
            super().__init__()
            self.att = L.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential([L.Dense(ff_dim, activation="relu"), L.Dense(embed_dim)])
            self.layernorm1 = L.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = L.LayerNormalization(epsilon=1e-6)
            self.dropout1, self.dropout2 = L.Dropout(0.1), L.Dropout(0.1)

        def call(self, inputs, training=False):
            out1 = self.layernorm1(inputs + self.dropout1(self.att(inputs, inputs), training=training))
            return self.layernorm2(out1 + self.dropout2(self.ffn(out1), training=training))
    return KTransformerBlock()


def test_transformer_block_has_kerass_16_weights_and_matches_keras():
    keras = _keras()
    x = np.random.default_rng(1).standard_normal((2, 5, 8)).astype(np.float32)
    kb = _keras_transformer_block(keras, 8, 2, 16)
    ky = keras.ops.convert_to_numpy(kb(x, training=False))
    pb = TransformerBlock(8, 2, 16)
    pb(x)
    assert len(pb.weights) == len(kb.weights) == 16
    assert [tuple(w.shape) for w in pb.weights] == [tuple(w.shape) for w in kb.weights]
    pb.set_weights([np.asarray(w) for w in kb.get_weights()])
    np.testing.assert_allclose(pb(x).numpy(), ky, rtol=1e-4, atol=1e-5)


def test_transformer_block_in_a_functional_model_trains_saves_and_loads(tmp_path):
    pynn.saving.register_keras_serializable(package="test")(TransformerBlock)
    pynn.set_seed(0)
    inputs = pynn.Input((6,), dtype="int64")
    x = layers.Embedding(20, 8)(inputs)
    x = TransformerBlock(8, 2, 16)(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = pynn.Model(inputs, outputs)
    assert len(model.weights) == 1 + 16 + 2
    r = np.random.default_rng(0)
    xs = r.integers(0, 20, (64, 6))
    ys = (xs[:, 0] < 10).astype(np.int64)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    h = model.fit(xs, ys, epochs=8, batch_size=16, verbose=0)
    # every nested weight moved: none is left out of training
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert h.history["loss"][-1] < h.history["loss"][0]
    model.save(tmp_path / "m.pynn")
    loaded = pynn.load_model(tmp_path / "m.pynn")
    np.testing.assert_allclose(loaded.predict(xs, verbose=0), model.predict(xs, verbose=0), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- keras.io: "Customizing what happens in fit()"
class CustomModel(pynn.Model):
    """The guide's first example: the default step written out by hand."""
    calls = 0

    def train_step(self, data):
        x, y = data
        type(self).calls += 1
        with pynn.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply(gradients, trainable_vars)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def _regression_data(n=64):
    r = np.random.default_rng(0)
    x = r.standard_normal((n, 4)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32) + 0.3).astype(np.float32)


def test_fit_calls_an_overridden_train_step_and_it_equals_the_default_step():
    x, y = _regression_data()

    def build(cls):
        pynn.set_seed(3)
        inputs = pynn.Input((4,))
        m = cls(inputs, layers.Dense(1)(layers.Dense(8, activation="tanh")(inputs)))
        m.compile(optimizer=pynn.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
        return m
    CustomModel.calls = 0
    custom, default = build(CustomModel), build(pynn.Model)
    hc = custom.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    hd = default.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    assert CustomModel.calls == 3 * 4
    assert set(hc.history) == {"loss", "mae"} == set(hd.history)
    np.testing.assert_allclose(hc.history["loss"], hd.history["loss"], rtol=1e-5)
    for a, b in zip(custom.get_weights(), default.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_custom_train_step_matches_keras_torch_style_step():
    keras = _keras()
    import torch
    x, y = _regression_data()

    class KCustom(keras.Model):
        def train_step(self, data):
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            loss.backward()
            grads = [v.value.grad for v in self.trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(grads, self.trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    ki = keras.Input((4,))
    km = KCustom(ki, keras.layers.Dense(1)(keras.layers.Dense(8, activation="tanh")(ki)))
    km.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    pi = pynn.Input((4,))
    pm = CustomModel(pi, layers.Dense(1)(layers.Dense(8, activation="tanh")(pi)))
    pm.compile(optimizer=pynn.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    pm.set_weights([np.asarray(w) for w in km.get_weights()])
    kh = km.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    ph = pm.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(ph.history["loss"], kh.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(ph.history["mae"], kh.history["mae"], rtol=1e-4)
    for a, b in zip(pm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-5)


def test_lower_level_train_step_with_own_metrics_and_no_compiled_loss():
    """The guide's second example: compile(optimizer) only, trackers as attributes
    listed in a ``metrics`` property (reset by fit at every epoch)."""
    class MyModel(pynn.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = pynn.metrics.Mean(name="loss")
            self.mae_metric = pynn.metrics.MeanAbsoluteError(name="mae")

        def train_step(self, data):
            x, y = data
            with pynn.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = pynn.functional.mean(pynn.functional.square(y_pred - y))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    x, y = _regression_data()
    pynn.set_seed(0)
    inputs = pynn.Input((4,))
    model = MyModel(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="adam")
    h = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert set(h.history) == {"loss", "mae"}
    # per-epoch values (reset each epoch), not a running mean over all epochs
    assert h.history["loss"][-1] < h.history["loss"][0]
    with pytest.raises(ValueError, match="compiled without a loss"):
        model.evaluate(x, y, verbose=0)


def test_custom_test_step_and_predict_step_are_what_evaluate_and_predict_call():
    class M(pynn.Model):
        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            self.compute_loss(y=y, y_pred=y_pred)
            return {"custom": 42.0}

        def predict_step(self, data):
            return self(data, training=False) * 0.0 + 7.0

    x, y = _regression_data()
    inputs = pynn.Input((4,))
    m = M(inputs, layers.Dense(1)(inputs))
    m.compile("sgd", "mse")
    assert m.evaluate(x, y, verbose=0, return_dict=True) == {"custom": 42.0}
    assert np.all(m.predict(x, verbose=0) == 7.0)
    h = m.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert h.history["val_custom"] == [42.0]


def test_train_step_on_x_alone_trains_an_autoencoder():
    """keras.io's VAE/autoencoder pattern: fit(x) with no y; data is x."""
    class AE(pynn.Model):
        def __init__(self):
            super().__init__()
            self.encoder = layers.Dense(2, activation="tanh")
            self.decoder = layers.Dense(4)
            self.total = pynn.metrics.Mean(name="reconstruction")

        def call(self, x):
            return self.decoder(self.encoder(x))

        def train_step(self, data):
            with pynn.GradientTape() as tape:
                loss = pynn.functional.mean(pynn.functional.square(self(data, training=True) - data))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.total.update_state(loss)
            return {"reconstruction": self.total.result()}

    pynn.set_seed(0)
    x, _ = _regression_data()
    ae = AE()
    ae.compile(optimizer=pynn.optimizers.Adam(0.01))
    h = ae.fit(x, epochs=20, batch_size=16, verbose=0)
    assert h.history["reconstruction"][-1] < 0.8 * h.history["reconstruction"][0]
    assert len(ae.weights) == 4 and ae.count_params() == 4 * 2 + 2 + 2 * 4 + 4


class SubNet(pynn.Model):
    def __init__(self, hidden=8, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.block = MLPBlock()
        self.norm = layers.LayerNormalization()

    def call(self, x, training=False):
        return self.block(self.norm(x))

    def get_config(self):
        return {"hidden": self.hidden, "name": self.name}


def test_subclassed_model_with_nested_layers_trains_saves_and_loads(tmp_path):
    pynn.saving.register_keras_serializable()(SubNet)
    pynn.saving.register_keras_serializable()(MLPBlock)
    pynn.saving.register_keras_serializable()(Linear)
    x, y = _regression_data()
    pynn.set_seed(0)
    model = SubNet()
    with pytest.raises(ValueError, match="isn't built"):
        model.count_params()
    model.compile(optimizer="adam", loss="mse")
    h = model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert len(model.weights) == 8 and model.count_params() == 2 * 4 + (4 * 32 + 32) + (32 * 32 + 32) + 33
    model.save(tmp_path / "sub.pynn")
    loaded = pynn.models.load_model(tmp_path / "sub.pynn")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    # training continues from the saved optimizer state
    loaded.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.npz")
    fresh = SubNet()
    fresh(x[:1])
    fresh.load_weights(tmp_path / "w.npz")
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- add_loss / activity_regularizer
class ActivityRegularizationLayer(layers.Layer):
    """keras.io's add_loss example."""

    def __init__(self, rate=1e-2, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * pynn.functional.sum(inputs))
        return inputs


def test_add_loss_is_collected_per_forward_pass_and_trained_like_keras():
    keras = _keras()

    class KActivityRegularizationLayer(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * keras.ops.sum(inputs))
            return inputs

    x, y = _regression_data()
    ki = keras.Input((4,))
    km = keras.Model(ki, keras.layers.Dense(1)(KActivityRegularizationLayer()(
        keras.layers.Dense(3, activity_regularizer="l2")(ki))))
    pi = pynn.Input((4,))
    pm = pynn.Model(pi, layers.Dense(1)(ActivityRegularizationLayer()(
        layers.Dense(3, activity_regularizer="l2")(pi))))
    pm.set_weights(km.get_weights())
    pm(x[:5])
    pm(x[:5])
    assert len(pm.losses) == 2   # one forward pass's losses, not accumulated over calls
    for m, opt in ((km, keras.optimizers.SGD(0.01)), (pm, pynn.optimizers.SGD(0.01))):
        m.compile(optimizer=opt, loss="mse")
    kh = km.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    ph = pm.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(ph.history["loss"], kh.history["loss"], rtol=1e-4)
    for a, b in zip(pm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
