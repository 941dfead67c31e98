"""Keras 3 .keras files, the parts beyond layers and weights: the optimizer's state
(optimizer/vars), initializers/regularizers/constraints in config.json, and the weight
order of parallel branches of one class in functional models — each checked against
Keras itself (torch backend) in both directions."""
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
if keras.backend.backend() != "torch":
    pytest.skip("these tests run Keras on the torch backend (KERAS_BACKEND=torch)", allow_module_level=True)

import pynn  # noqa: E402
from pynn import constraints as C, initializers as I, layers, optimizers as O, regularizers as R  # noqa: E402

R_ = np.random.default_rng(0)
X = R_.standard_normal((16, 4)).astype(np.float32)
Y = R_.standard_normal((16, 2)).astype(np.float32)


def pynn_mlp():
    pynn.set_seed(0)
    return pynn.Sequential([layers.Input((4,)), layers.Dense(3, activation="tanh"), layers.Dense(2)])


def keras_mlp():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)])


def load_in_keras(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(path)
    about_optimizer = [str(w.message) for w in caught if "optimizer" in str(w.message).lower()]
    assert not about_optimizer, about_optimizer
    return model


# (pynn optimizer, Keras optimizer of the same settings, tolerance of one more step: Keras puts
# epsilon elsewhere for Adam/RMSprop, so those agree to epsilon-sized differences)
OPTIMIZERS = {
    "sgd": (lambda: O.SGD(0.1), lambda: keras.optimizers.SGD(0.1), 1e-6),
    "sgd_momentum": (lambda: O.SGD(0.05, momentum=0.9), lambda: keras.optimizers.SGD(0.05, momentum=0.9), 1e-6),
    "nesterov": (lambda: O.SGD(0.05, momentum=0.9, nesterov=True),
                 lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True), 1e-6),
    "adam": (lambda: O.Adam(1e-2), lambda: keras.optimizers.Adam(1e-2), 1e-5),
    "adamw_amsgrad": (lambda: O.AdamW(1e-2, amsgrad=True), lambda: keras.optimizers.AdamW(1e-2, amsgrad=True), 1e-5),
    "rmsprop_centered_momentum": (lambda: O.RMSprop(1e-2, momentum=0.5, centered=True),
                                  lambda: keras.optimizers.RMSprop(1e-2, momentum=0.5, centered=True), 1e-4),
    "adagrad": (lambda: O.Adagrad(0.1), lambda: keras.optimizers.Adagrad(0.1), 1e-6),
    "adadelta": (lambda: O.Adadelta(1.0), lambda: keras.optimizers.Adadelta(1.0), 1e-6),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_pynn_optimizer_state_continues_in_keras(name, tmp_path):
    make_pynn, _, tol = OPTIMIZERS[name]
    model = pynn_mlp()
    model.compile(optimizer=make_pynn(), loss="mse")
    model.fit(X, Y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    km = load_in_keras(path)
    assert int(km.optimizer.iterations.numpy()) == 3
    # One more step on each side from the same state gives the same weights; with a fresh
    # optimizer state in Keras (momenta at zero) it would not.
    model.fit(X, Y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    km.fit(X, Y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "rmsprop_centered_momentum", "adadelta"])
def test_keras_optimizer_state_continues_in_pynn(name, tmp_path):
    _, make_keras, tol = OPTIMIZERS[name]
    km = keras_mlp()
    km.compile(optimizer=make_keras(), loss="mse")
    km.fit(X, Y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    path = str(tmp_path / "k.keras")
    km.save(path)
    model = pynn.load_model(path)
    assert model.optimizer.iterations == 3
    model.fit(X, Y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    km.fit(X, Y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_optimizer_state_round_trips_through_pynn_exactly(tmp_path):
    model = pynn_mlp()
    model.compile(optimizer=O.SGD(0.05, momentum=0.9), loss="mse")
    model.fit(X, Y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    back = pynn.load_model(path)
    assert back.optimizer.iterations == model.optimizer.iterations
    for a, b in zip(model.optimizer.get_state(), back.optimizer.get_state()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_compiled_but_untrained_model_writes_a_fresh_state(tmp_path):
    model = pynn_mlp()
    model.compile(optimizer=O.Adagrad(0.1), loss="mse")
    path = str(tmp_path / "m.keras")
    model.save(path)
    km = load_in_keras(path)
    model.fit(X, Y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    km.fit(X, Y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _objects(layer, keys):
    out = {}
    for k in keys:
        v = getattr(layer, k, None)
        if isinstance(v, str):   # pynn keeps a name as given ("l2"): resolve it as pynn does
            v = {"_initializer": I, "_regularizer": R, "_constraint": C}[k[k.rindex("_"):]].get(v)
        if v is not None:
            cfg = dict(v.get_config())
            for drop in ("seed", "input_axes", "output_axes"):
                cfg.pop(drop, None)
            out[k] = (type(v).__name__, {n: round(float(x), 6) if isinstance(x, float) else x for n, x in cfg.items()})
    return out


KEYS = ["kernel_initializer", "bias_initializer", "recurrent_initializer", "embeddings_initializer",
        "kernel_regularizer", "bias_regularizer", "recurrent_regularizer", "embeddings_regularizer",
        "activity_regularizer", "kernel_constraint", "bias_constraint"]


def test_initializers_regularizers_constraints_cross_both_ways(tmp_path):
    pynn.set_seed(1)
    model = pynn.Sequential([
        layers.Input((5,), dtype="int64"),
        layers.Embedding(10, 4, embeddings_initializer=I.RandomNormal(stddev=0.1), embeddings_regularizer=R.L2(1e-3)),
        layers.LSTM(3, recurrent_regularizer=R.L1(2e-3), kernel_initializer="he_normal"),
        layers.Dense(2, kernel_regularizer="l2", kernel_constraint=C.MaxNorm(2.0), bias_constraint=C.NonNeg(),
                     bias_initializer=I.Constant(0.5), activity_regularizer=R.L1L2(0.01, 0.02))])
    path = str(tmp_path / "m.keras")
    model.save(path)
    km = keras.saving.load_model(path)
    for pl, kl in zip(model.layers, km.layers):
        assert _objects(pl, KEYS) == _objects(kl, KEYS), pl.name
    x = np.array([[1, 2, 3, 0, 4]])
    np.testing.assert_allclose(km.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # and back: Keras writes them, pynn reads the same classes and settings
    km.save(str(tmp_path / "k.keras"))
    back = pynn.load_model(str(tmp_path / "k.keras"))
    for pl, kl in zip(back.layers, km.layers):
        assert _objects(pl, KEYS) == _objects(kl, KEYS), pl.name


def test_keras_regularizer_pynn_lacks_is_refused(tmp_path):
    km = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        3, kernel_regularizer=keras.regularizers.OrthogonalRegularizer(0.01))])
    path = str(tmp_path / "k.keras")
    km.save(path)
    with pytest.raises(ValueError, match="OrthogonalRegularizer"):
        pynn.load_model(path)


@pytest.mark.parametrize("created", ["left_first", "right_first"])
def test_parallel_same_class_branches_keep_their_weights_both_ways(created, tmp_path):
    """Two Dense branches of the same shape, created in one order and called in the other,
    merged by Concatenate: a swapped weight order would swap the branches' outputs."""
    x = R_.standard_normal((5, 6)).astype(np.float32)
    inp = keras.Input((6,))
    if created == "left_first":
        left, right = keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(3)
    else:
        right, left = keras.layers.Dense(3), keras.layers.Dense(3, activation="tanh")
    r = right(keras.layers.Activation("sigmoid")(inp))
    lft = left(inp)
    km = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Concatenate()([lft, r])))
    km.save(str(tmp_path / "k.keras"))
    pm = pynn.load_model(str(tmp_path / "k.keras"))
    np.testing.assert_allclose(pm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)

    pynn.set_seed(2)
    pin = pynn.Input((6,))
    if created == "left_first":
        pleft, pright = layers.Dense(3, activation="tanh"), layers.Dense(3)
    else:
        pright, pleft = layers.Dense(3), layers.Dense(3, activation="tanh")
    pr = pright(layers.Activation("sigmoid")(pin))
    pl = pleft(pin)
    model = pynn.Model(pin, layers.Dense(2)(layers.Concatenate()([pl, pr])))
    model.save(str(tmp_path / "p.keras"))
    back = keras.saving.load_model(str(tmp_path / "p.keras"))
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
