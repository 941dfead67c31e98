"""Keras' multi-input/multi-output habits: named inputs and outputs, dict data in
fit/evaluate/predict, compile(loss={...}, loss_weights=, metrics={...},
weighted_metrics=), "<output>_loss" logs, Keras' layer order on branched graphs.
Modelled on keras.io's functional-API ticket classifier; matched against Keras 3."""
import os

import numpy as np
import pytest

import pynn
from pynn import layers

os.environ.setdefault("KERAS_BACKEND", "torch")


def _keras():
    return pytest.importorskip("keras")


def _build(lib, L):
    """The same branched graph in Keras or pynn: two named inputs, two named outputs."""
    title = lib.Input((6,), name="title")
    body = lib.Input((5,), name="body")
    t = L.Dense(8, activation="relu", name="title_dense")(title)
    b = L.Dense(4, activation="tanh", name="body_dense")(body)
    x = L.Concatenate(name="merge")([t, b])
    priority = L.Dense(1, name="priority")(x)
    department = L.Dense(3, activation="softmax", name="department")(L.Dense(6, name="dept_hidden")(b))
    return lib.Model({"title": title, "body": body}, {"priority": priority, "department": department})


def _data(n=48):
    r = np.random.default_rng(0)
    x = {"title": r.standard_normal((n, 6)).astype(np.float32), "body": r.standard_normal((n, 5)).astype(np.float32)}
    y = {"priority": (x["title"][:, :1] - x["body"][:, :1]).astype(np.float32),
         "department": (x["body"][:, 0] > 0).astype(np.int64) + (x["body"][:, 1] > 1)}
    return x, y


COMPILE = dict(loss={"priority": "mse", "department": "sparse_categorical_crossentropy"},
               loss_weights={"priority": 1.0, "department": 0.2},
               metrics={"department": ["accuracy"], "priority": ["mae"]},
               weighted_metrics={"department": ["accuracy"]})


def test_dict_model_fits_evaluates_and_predicts_with_kerass_keys(tmp_path):
    pynn.set_seed(0)
    model = _build(pynn, layers)
    # dicts are flattened in sorted key order, as keras.tree does
    assert model.input_names == ["body", "title"] and model.output_names == ["department", "priority"]
    model.compile(optimizer=pynn.optimizers.Adam(0.01), **COMPILE)
    x, y = _data()
    h = model.fit(x, y, epochs=15, batch_size=16, verbose=0, validation_split=0.25,
                  sample_weight=np.ones(48, np.float32))
    keys = {"loss", "priority_loss", "department_loss", "priority_mae", "department_accuracy",
            "department_weighted_accuracy"}
    assert set(h.history) == keys | {f"val_{k}" for k in keys}
    assert h.history["loss"][-1] < h.history["loss"][0]
    out = model.predict(x, verbose=0)
    assert set(out) == {"priority", "department"} and out["department"].shape == (48, 3)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs["priority_loss"] + 0.2 * logs["department_loss"], rtol=1e-5)
    assert model.evaluate(x, y, verbose=0)[:3] == [logs["loss"], logs["department_loss"], logs["priority_loss"]]
    model.save(tmp_path / "m.pynn")
    loaded = pynn.load_model(tmp_path / "m.pynn")
    assert loaded.output_names == ["department", "priority"] and loaded.input_names == ["body", "title"]
    got = loaded.predict(x, verbose=0)
    np.testing.assert_allclose(got["department"], out["department"], rtol=1e-6)
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(logs, rel=1e-5)
    loaded.fit(x, y, epochs=1, verbose=0)   # compiled state (dict losses, weights, metrics) came back


def test_dict_data_with_wrong_keys_names_the_expected_ones():
    model = _build(pynn, layers)
    model.compile("sgd", **COMPILE)
    x, y = _data()
    with pytest.raises(ValueError, match=r"input names are \['body', 'title'\]"):
        model.fit({"title": x["title"], "bdy": x["body"]}, y, verbose=0)
    with pytest.raises(ValueError, match="expected keys"):
        model.compile("sgd", loss={"priority": "mse"})


def test_branched_model_weights_follow_kerass_layer_order_and_match_keras():
    keras = _keras()
    km = _build(keras, keras.layers)
    pm = _build(pynn, layers)
    klayers = [layer.name for layer in km.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert [layer.name for layer in pm.layers] == klayers
    assert [tuple(w.shape) for w in pm.weights] == [tuple(w.shape) for w in km.weights]
    pm.set_weights(km.get_weights())
    x, y = _data()
    kout = km.predict(x, verbose=0)
    pout = pm.predict(x, verbose=0)
    for name in ("priority", "department"):
        np.testing.assert_allclose(pout[name], kout[name], rtol=1e-4, atol=1e-5)
    km.compile(optimizer="sgd", **COMPILE)
    pm.compile(optimizer="sgd", **COMPILE)
    sw = np.linspace(0.1, 2.0, 48).astype(np.float32)
    klogs = km.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    plogs = pm.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    assert set(plogs) == set(klogs)
    for k in klogs:
        np.testing.assert_allclose(plogs[k], klogs[k], rtol=1e-4, atol=1e-5, err_msg=k)
    # sample weights reach weighted_metrics only (Keras 3)
    assert plogs["department_accuracy"] != pytest.approx(plogs["department_weighted_accuracy"])


def test_training_matches_keras_with_dicts_and_loss_weights():
    keras = _keras()
    km, pm = _build(keras, keras.layers), _build(pynn, layers)
    pm.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.05), **COMPILE)
    pm.compile(optimizer=pynn.optimizers.SGD(0.05), **COMPILE)
    x, y = _data()
    kh = km.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    ph = pm.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert set(ph.history) == set(kh.history)
    for k in kh.history:
        np.testing.assert_allclose(ph.history[k], kh.history[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for a, b in zip(pm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_list_model_logs_per_output_losses_named_by_layers():
    keras = _keras()
    for lib, L in ((keras, keras.layers), (pynn, layers)):
        a = lib.Input((4,))
        o1, o2 = L.Dense(3, activation="softmax", name="cls")(a), L.Dense(1, name="reg")(a)
        m = lib.Model(a, [o1, o2])
        m.compile("adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 2.0],
                  metrics=[["accuracy"], []])
        x, y = np.ones((8, 4), np.float32), [np.zeros(8, np.int64), np.zeros((8, 1), np.float32)]
        keys = set(m.fit(x, y, verbose=0).history)
        if lib is keras:
            kkeys = keys
    assert keys == kkeys == {"loss", "cls_loss", "reg_loss", "cls_accuracy"}


def test_weighted_metrics_alone_keep_their_name_and_plain_metrics_ignore_sample_weight():
    inputs = pynn.Input((2,))
    m = pynn.Model(inputs, layers.Dense(1, kernel_initializer="zeros")(inputs))
    m.compile("sgd", "mse", metrics=["mae"], weighted_metrics=["mae"])
    x = np.ones((4, 2), np.float32)
    y = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    logs = m.evaluate(x, y, sample_weight=np.array([1, 0, 0, 0], np.float32), verbose=0, return_dict=True)
    assert logs["mae"] == pytest.approx(2.5) and logs["weighted_mae"] == pytest.approx(1.0)
    m.compile("sgd", "mse", weighted_metrics=["mae"])
    assert m.metrics_names == ["loss", "mae"]
