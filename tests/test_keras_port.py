"""keras.io-style habits found by porting Keras 3 scripts with only the import changed
(session 8, keras9): each test pins one behaviour that was silently different (or
missing) before, and compares with Keras 3 (torch backend) where it is installed."""
import os
import warnings

import numpy as np
import pytest

import pynn
from pynn import layers

os.environ.setdefault("KERAS_BACKEND", "torch")


def _keras():
    return pytest.importorskip("keras")


def _two_output_model(lib):
    i = lib.Input((3,))
    a = lib.layers.Dense(2, activation="softmax", name="zcls")(i)
    b = lib.layers.Dense(1, name="areg")(i)
    return lib.Model(i, [a, b])


def _xy2():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    return x, [np.array([0, 1, 0, 1]), np.ones((4, 1), np.float32)]


def _mlp(lib=pynn, n_in=4):
    return lib.Sequential([lib.Input((n_in,)), lib.layers.Dense(5, activation="tanh"), lib.layers.Dense(1)])


# ---------------------------------------------------------------- train_on_batch / test_on_batch / evaluate
def test_train_on_batch_returns_loss_and_metrics_like_keras():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    m = pynn.Sequential([pynn.Input((4,)), layers.Dense(1, activation="sigmoid")])
    m.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
    out = m.train_on_batch(x, y)
    assert isinstance(out, list) and len(out) == 2   # before: the loss alone
    logs = m.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}
    assert m.test_on_batch(x, y) == [logs["loss"], logs["accuracy"]]
    # metrics are reset first (Keras): two identical test batches give the same numbers
    assert m.test_on_batch(x, y) == m.test_on_batch(x, y)


def test_train_on_batch_matches_keras_on_two_outputs():
    keras = _keras()
    x, y = _xy2()
    km, pm = _two_output_model(keras), _two_output_model(pynn)
    pm.set_weights(km.get_weights())
    for m in (km, pm):
        m.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]])
    np.testing.assert_allclose(pm.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    np.testing.assert_allclose(pm.test_on_batch(x, y), km.test_on_batch(x, y), rtol=1e-5)
    np.testing.assert_allclose(pm.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)


def test_evaluate_list_follows_keras_order_on_several_outputs():
    x, y = _xy2()
    m = _two_output_model(pynn)
    m.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]])
    logs = m.evaluate(x, y, verbose=0, return_dict=True)
    # Keras 3: loss, the per-output losses in output order, then the prefixed metrics by name
    order = ["loss", "zcls_loss", "areg_loss", "areg_mae", "zcls_accuracy"]
    assert m.metrics_names == order
    assert m.evaluate(x, y, verbose=0) == [logs[k] for k in order]


def test_train_on_batch_calls_an_overridden_train_step():
    calls = []

    class Net(pynn.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(1)

        def call(self, x, training=False):
            return self.d(x)

        def train_step(self, data):
            calls.append("train")
            return {"custom": 1.0}

        def test_step(self, data):
            calls.append("test")
            return {"custom": 2.0}

    m = Net()
    m(np.ones((1, 4), np.float32))
    m.compile("sgd", "mse")
    x, y = np.ones((4, 4), np.float32), np.ones((4, 1), np.float32)
    assert m.train_on_batch(x, y) == 1.0 and m.test_on_batch(x, y) == 2.0
    assert calls == ["train", "test"]   # before: the default step ran and the overrides were skipped


def test_torch_style_train_step_reads_variable_value_grad():
    # keras.io "Customizing fit() with PyTorch": gradients = [v.value.grad for v in self.trainable_weights]
    class Net(pynn.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(1)

        def call(self, x, training=False):
            return self.d(x)

        def train_step(self, data):
            x, y = data
            self.zero_grad()
            loss = self.compute_loss(y=y, y_pred=self(x, training=True))
            loss.backward()
            self.optimizer.apply([v.value.grad for v in self.trainable_weights], self.trainable_weights)
            return {"loss": float(loss.numpy())}

    x = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    custom, plain = Net(), pynn.Sequential([pynn.Input((3,)), layers.Dense(1)])
    custom(x[:1])
    plain.set_weights(custom.get_weights())
    for m in (custom, plain):
        m.compile(pynn.optimizers.SGD(0.1), "mse")
        m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(custom.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- callbacks
def test_on_train_end_receives_the_last_epoch_logs():
    seen = {}

    class Cb(pynn.callbacks.Callback):
        def on_train_end(self, logs=None):
            seen.update(logs or {})

    m = _mlp()
    m.compile("sgd", "mse", metrics=["mae"])
    x, y = np.ones((8, 4), np.float32), np.zeros((8, 1), np.float32)
    h = m.fit(x, y, epochs=2, validation_data=(x, y), verbose=0, callbacks=[Cb()])
    assert set(seen) == {"loss", "mae", "val_loss", "val_mae"}   # before: {}
    assert seen["loss"] == h.history["loss"][-1]


# ---------------------------------------------------------------- fit over arrays with steps, iterables
def _batch_trace(m, **fit_kwargs):
    seen = []

    class Cb(pynn.callbacks.Callback):
        def on_train_batch_begin(self, b, logs=None):
            seen.append(b)

        def on_epoch_end(self, e, logs=None):
            seen.append("|")

    m.fit(callbacks=[Cb()], verbose=0, **fit_kwargs)
    return "".join(map(str, seen))


def test_fit_steps_per_epoch_with_arrays_carries_the_pass_like_keras():
    x = np.arange(96, dtype=np.float32)[:, None] / 96
    m = pynn.Sequential([pynn.Input((1,)), layers.Dense(1)])
    m.compile("sgd", "mse")
    # 5 batches of 20: Keras runs 3, then the 2 left (the pass ran out), then a new pass
    with pytest.warns(UserWarning, match="ran out of data"):
        trace = _batch_trace(m, x=x, y=x, batch_size=20, epochs=3, steps_per_epoch=3, shuffle=False)
    assert trace == "012|01|012|"   # before: steps_per_epoch was ignored (5 batches each epoch)
    with pytest.warns(UserWarning, match="ran out of data"):
        assert _batch_trace(m, x=x, y=x, batch_size=20, epochs=2, steps_per_epoch=8) == "01234|01234|"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _batch_trace(m, x=x, y=x, batch_size=32, epochs=2, steps_per_epoch=3) == "012|012|"


def test_fit_steps_per_epoch_with_arrays_matches_keras_losses():
    keras = _keras()
    x = np.linspace(-1, 1, 96, dtype=np.float32)[:, None]
    y = 2 * x + 1
    km, pm = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]), pynn.Sequential([pynn.Input((1,)),
                                                                                            layers.Dense(1)])
    pm.set_weights(km.get_weights())
    hist = []
    for m in (km, pm):
        m.compile(optimizer="sgd", loss="mse")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hist.append(m.fit(x, y, batch_size=20, epochs=3, steps_per_epoch=3, shuffle=False, verbose=0).history)
    np.testing.assert_allclose(hist[1]["loss"], hist[0]["loss"], rtol=1e-5)


class _Batches(pynn.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.read = []

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        self.read.append(i)
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]


def test_fit_validation_data_may_be_a_pydataset_with_validation_steps():
    x = np.random.default_rng(2).normal(size=(40, 4)).astype(np.float32)
    y = x[:, :1] * 2
    m = _mlp()
    m.compile("sgd", "mse")
    val = _Batches(x, y, 10)
    h = m.fit(x, y, epochs=2, verbose=0, validation_data=val, validation_steps=2)
    # before: validation_data[0] / [1] were taken as x and y (two batches of the dataset)
    assert val.read == [0, 1, 0, 1]
    np.testing.assert_allclose(h.history["val_loss"][-1], m.evaluate(x[:20], y[:20], verbose=0), rtol=1e-6)
    assert m.evaluate(val, steps=3, verbose=0) == pytest.approx(m.evaluate(x[:30], y[:30], verbose=0), rel=1e-6)
    assert m.evaluate(x, y, steps=2, batch_size=10, verbose=0) == pytest.approx(
        m.evaluate(x[:20], y[:20], verbose=0), rel=1e-6)


def test_fit_shuffles_a_pydatasets_batch_order_unless_shuffle_false():
    x = np.random.default_rng(3).normal(size=(80, 4)).astype(np.float32)
    y = x[:, :1]
    m = _mlp()
    m.compile("sgd", "mse")
    ds = _Batches(x, y, 10)
    m.fit(ds, epochs=1, shuffle=False, verbose=0)
    assert ds.read == list(range(8))
    ds.read.clear()
    pynn.set_seed(0)
    m.fit(ds, epochs=1, verbose=0)   # Keras' default shuffle=True visits the batches in a random order
    assert sorted(ds.read) == list(range(8)) and ds.read != list(range(8))


def test_fit_class_weight_applies_to_batches_of_a_pydataset():
    x = np.random.default_rng(4).normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)[:, None]
    cw = {0: 1.0, 1: 3.0}
    a, b = _mlp(), _mlp()
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile("sgd", "mse")
    a.fit(x, y, batch_size=8, epochs=2, shuffle=False, class_weight=cw, verbose=0)
    b.fit(_Batches(x, y, 8), epochs=2, shuffle=False, class_weight=cw, verbose=0)   # before: ignored
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_class_weight_on_a_multi_output_model_is_an_error():
    x, y = _xy2()
    m = _two_output_model(pynn)
    m.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"])
    with pytest.raises(ValueError, match="single output"):   # before: applied to the first output only
        m.fit(x, y, class_weight={0: 1.0, 1: 2.0}, verbose=0)


def test_sample_weight_with_a_batch_iterable_is_an_error():
    x = np.ones((8, 4), np.float32)
    m = _mlp()
    m.compile("sgd", "mse")
    ds = _Batches(x, x[:, :1], 4)
    with pytest.raises(ValueError, match="sample_weight"):   # before: silently ignored
        m.fit(ds, sample_weight=np.ones(8), verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        m.evaluate(ds, sample_weight=np.ones(8), verbose=0)


# ---------------------------------------------------------------- .weights.h5
def test_save_weights_h5_is_keras_layout_and_round_trips(tmp_path):
    h5py = pytest.importorskip("h5py")
    m = _mlp()
    m.compile("adam", "mse")
    m.fit(np.ones((8, 4), np.float32), np.zeros((8, 1), np.float32), epochs=1, verbose=0)
    path = str(tmp_path / "m.weights.h5")
    m.save_weights(path)
    with h5py.File(path, "r") as f:   # before: an .npz under an .h5 name
        assert "layers/dense/vars/0" in f and "optimizer/vars/0" in f
    m2 = _mlp()
    m2.load_weights(path)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_h5_files_cross_between_keras_and_pynn(tmp_path):
    keras = _keras()
    x = np.random.default_rng(5).normal(size=(6, 4)).astype(np.float32)
    km, pm = _mlp(keras), _mlp(pynn)
    km.save_weights(str(tmp_path / "k.weights.h5"))
    pm.load_weights(str(tmp_path / "k.weights.h5"))
    np.testing.assert_allclose(pm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    pm2, km2 = _mlp(pynn), _mlp(keras)
    pm2.save_weights(str(tmp_path / "p.weights.h5"))
    km2.load_weights(str(tmp_path / "p.weights.h5"))
    np.testing.assert_allclose(km2.predict(x, verbose=0), pm2.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    km.save(str(tmp_path / "k.keras"))
    pm3 = _mlp(pynn)
    pm3.load_weights(str(tmp_path / "k.keras"))   # Keras' load_weights reads .keras archives too
    np.testing.assert_allclose(pm3.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_fit_generator_with_steps_per_epoch_drops_no_batch():
    x = np.arange(40, dtype=np.float32).reshape(10, 4) / 40
    drawn = []

    def gen():
        for i in range(5):
            drawn.append(i)
            yield x[2 * i:2 * i + 2], x[2 * i:2 * i + 2, :1]

    m = _mlp()
    m.compile("sgd", "mse")
    g = gen()
    m.fit(g, steps_per_epoch=2, epochs=2, verbose=0)
    assert drawn == [0, 1, 2, 3]   # before: batch 2 was drawn at the end of epoch 1 and dropped
    assert next(g)[0][0, 0] == x[8, 0]
