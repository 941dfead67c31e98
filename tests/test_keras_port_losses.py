"""Losses and metrics a ported Keras 3 script names that pynn lacked (session 8, keras9):
label_smoothing, reduction=None, hinge/poisson/log-cosh/KL/cosine/MAPE/MSLE losses, the
matching metrics, RootMeanSquaredError and functions as metrics. Values and gradients
are compared with Keras 3 (torch backend) where it is installed."""
import os

import numpy as np
import pytest

import pynn

os.environ.setdefault("KERAS_BACKEND", "torch")

_RNG = np.random.default_rng(0)
_P = _RNG.uniform(0.05, 0.95, (6, 3))
_P /= _P.sum(-1, keepdims=True)
_ONEHOT = np.eye(3)[[0, 1, 2, 0, 1, 2]]
_BIN = (_RNG.random((6, 3)) > 0.5).astype(np.float64)
_REAL = _RNG.normal(size=(6, 3))

# (Keras class name, kwargs, y_true, y_pred)
CASES = [
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, _ONEHOT, _P),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2, "from_logits": True}, _ONEHOT, _REAL),
    ("BinaryCrossentropy", {"label_smoothing": 0.05}, _BIN, _P),
    ("BinaryCrossentropy", {"label_smoothing": 0.1, "from_logits": True}, _BIN, _REAL),
    ("MeanAbsolutePercentageError", {}, _REAL + 3, _REAL * 0.5 + 3),
    ("MeanSquaredLogarithmicError", {}, np.abs(_REAL), np.abs(_REAL * 0.7 + 0.1)),
    ("Hinge", {}, _BIN, _REAL),
    ("SquaredHinge", {}, _BIN * 2 - 1, _REAL),
    ("CategoricalHinge", {}, _ONEHOT, _REAL),
    ("Poisson", {}, _BIN + 1, _P + 0.5),
    ("LogCosh", {}, _REAL, _REAL * 0.3),
    ("KLDivergence", {}, _ONEHOT * 0.8 + 0.2 / 3, _P),
    ("CosineSimilarity", {}, _REAL, _REAL + _P),
]


@pytest.mark.parametrize("name,kwargs,y_true,y_pred", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_value_and_gradient_match_keras(name, kwargs, y_true, y_pred):
    keras = pytest.importorskip("keras")
    import torch
    p = pynn.Tensor(y_pred.astype(np.float32), requires_grad=True)
    loss = getattr(pynn.losses, name)(**kwargs)(y_true.astype(np.float32), p)
    loss.backward()
    tp = torch.tensor(y_pred, dtype=torch.float32, requires_grad=True)
    kloss = getattr(keras.losses, name)(**kwargs)(torch.tensor(y_true, dtype=torch.float32), tp)
    kloss.backward()
    np.testing.assert_allclose(float(loss.numpy()), float(kloss.detach()), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["LogCosh", "CosineSimilarity", "CategoricalHinge", "Poisson", "KLDivergence"])
def test_new_loss_gradient_matches_finite_differences_in_float64(name):
    case = next(c for c in CASES if c[0] == name)
    y_true, y_pred = case[2], case[3]
    loss = getattr(pynn.losses, name)()
    with pynn.use_backend("numpy"):
        p = pynn.Tensor(y_pred.copy(), requires_grad=True)
        loss(y_true, p).backward()
        eps, num = 1e-6, np.zeros_like(y_pred)
        for idx in np.ndindex(*y_pred.shape):
            hi, lo = y_pred.copy(), y_pred.copy()
            hi[idx] += eps
            lo[idx] -= eps
            num[idx] = (float(loss(y_true, pynn.Tensor(hi)).numpy()) - float(loss(y_true, pynn.Tensor(lo)).numpy())) / (2 * eps)
    np.testing.assert_allclose(p.grad, num, rtol=1e-5, atol=1e-8)


def test_reduction_none_is_keras_spelling_of_no_reduction():
    out = pynn.losses.BinaryCrossentropy(reduction=None)(np.ones((4, 1)), np.full((4, 1), 0.3))
    assert out.shape == (4,)   # before: "unknown reduction None"


def test_label_smoothing_out_of_range_and_unsupported_axis_raise():
    with pytest.raises(ValueError, match="label_smoothing"):
        pynn.losses.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(NotImplementedError, match="axis"):
        pynn.losses.CategoricalCrossentropy(axis=0)


def test_loss_names_resolve_in_compile():
    for name in ("mape", "msle", "hinge", "squared_hinge", "categorical_hinge", "poisson", "log_cosh", "kld",
                 "kl_divergence", "cosine_similarity"):
        assert isinstance(pynn.losses.get(name), pynn.losses.Loss)


METRICS = [("MeanAbsolutePercentageError", _REAL + 3, _REAL * 0.5 + 3), ("RootMeanSquaredError", _REAL, _REAL * 0.3),
           ("MeanSquaredLogarithmicError", np.abs(_REAL), np.abs(_REAL * 0.7)), ("CategoricalCrossentropy", _ONEHOT, _P),
           ("BinaryCrossentropy", _BIN, _P), ("KLDivergence", _ONEHOT * 0.8 + 0.2 / 3, _P),
           ("Poisson", _BIN + 1, _P + 0.5), ("LogCoshError", _REAL, _REAL * 0.3), ("Hinge", _BIN, _REAL),
           ("SquaredHinge", _BIN, _REAL), ("CategoricalHinge", _ONEHOT, _REAL), ("CosineSimilarity", _REAL, _REAL + _P)]


@pytest.mark.parametrize("name,y_true,y_pred", METRICS, ids=[m[0] for m in METRICS])
def test_metric_matches_keras_with_sample_weight(name, y_true, y_pred):
    keras = pytest.importorskip("keras")
    sw = np.linspace(0.5, 2.0, len(y_true))
    results = []
    for lib in (pynn, keras):
        m = getattr(lib.metrics, name)()
        m.update_state(y_true[:3].astype(np.float32), y_pred[:3].astype(np.float32), sample_weight=sw[:3])
        m.update_state(y_true[3:].astype(np.float32), y_pred[3:].astype(np.float32), sample_weight=sw[3:])
        results.append(float(np.asarray(keras.ops.convert_to_numpy(m.result()) if lib is keras else m.result())))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)


def test_a_function_is_a_metric_in_compile_as_keras():
    def doubled_error(y_true, y_pred):
        return 2.0 * pynn.losses.mean_absolute_error(y_true, y_pred)

    m = pynn.Sequential([pynn.Input((2,)), pynn.layers.Dense(1)])
    m.compile("sgd", "mae", metrics=[doubled_error, "root_mean_squared_error", "mape"])
    x, y = np.ones((4, 2), np.float32), np.full((4, 1), 3.0, np.float32)
    logs = m.evaluate(x, y, verbose=0, return_dict=True)   # before: "Unknown metric"
    assert logs["doubled_error"] == pytest.approx(2 * logs["loss"], rel=1e-6)
    assert set(logs) == {"loss", "doubled_error", "root_mean_squared_error", "mape"}
