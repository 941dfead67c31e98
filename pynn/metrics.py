"""Stateful metrics (update_state / result / reset_state), on plain arrays.

``"accuracy"`` resolves the Keras way from the loss: binary for
binary_crossentropy, sparse categorical for sparse labels, categorical for
one-hot targets.
"""
import numpy as np


def _arr(x):
    return x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else np.asarray(x)


class Metric:
    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = np.asarray(self.values(_arr(y_true), _arr(y_pred)), dtype=np.float64)
        if sample_weight is not None:
            w = np.broadcast_to(np.asarray(sample_weight, np.float64).reshape(
                np.shape(sample_weight) + (1,) * (values.ndim - np.ndim(sample_weight))), values.shape)
            self.total += float((values * w).sum())
            self.count += float(w.sum())
        else:
            self.total += float(values.sum())
            self.count += values.size

    def values(self, y_true, y_pred):  # pragma: no cover - abstract
        raise NotImplementedError


class Mean(Metric):
    """Running (weighted) mean of the values given to update_state(value)."""

    def update_state(self, value, sample_weight=None):
        v = float(np.asarray(_arr(value)).mean())
        w = 1.0 if sample_weight is None else float(sample_weight)
        self.total += v * w
        self.count += w


class BinaryAccuracy(Metric):
    def __init__(self, name="binary_accuracy", threshold=0.5):
        self.threshold = threshold
        super().__init__(name)

    def values(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim - 1:
            y_true = y_true[..., None]
        return ((y_pred > self.threshold) == (y_true > 0.5)).mean(axis=-1)


class CategoricalAccuracy(Metric):
    def __init__(self, name="categorical_accuracy"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.argmax(y_true, -1) == np.argmax(y_pred, -1)


class SparseCategoricalAccuracy(Metric):
    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim:
            y_true = y_true[..., 0]
        return y_true.astype(np.int64) == np.argmax(y_pred, -1)


class MeanSquaredError(Metric):
    def __init__(self, name="mean_squared_error"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.mean((y_true.reshape(y_pred.shape) - y_pred) ** 2, axis=-1)


class MeanAbsoluteError(Metric):
    def __init__(self, name="mean_absolute_error"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.mean(np.abs(y_true.reshape(y_pred.shape) - y_pred), axis=-1)


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
}


def get(identifier, loss=None):
    """Name or Metric -> Metric. "accuracy"/"acc" is chosen from ``loss`` as Keras does."""
    if isinstance(identifier, Metric):
        return identifier
    if identifier in ("accuracy", "acc"):
        loss_name = getattr(loss, "name", loss) or ""
        if "sparse" in loss_name:
            cls = SparseCategoricalAccuracy
        elif "binary" in loss_name:
            cls = BinaryAccuracy
        else:
            cls = CategoricalAccuracy
        return cls(name=identifier)
    if isinstance(identifier, str) and identifier in _BY_NAME:
        metric = _BY_NAME[identifier]()
        metric.name = identifier
        return metric
    raise ValueError(f"Unknown metric {identifier!r}; expected 'accuracy' or one of {sorted(_BY_NAME)}")
