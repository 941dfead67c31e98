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


class SparseTopKCategoricalAccuracy(Metric):
    """1 when the true class is among the k largest predictions."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy"):
        self.k = k
        super().__init__(name)

    def values(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim:
            y_true = y_true[..., 0]
        true_score = np.take_along_axis(y_pred, y_true.astype(np.int64)[..., None], -1)
        # Ties count in the true class's favour, as tf.math.in_top_k.
        return (y_pred > true_score).sum(-1) < self.k


class TopKCategoricalAccuracy(SparseTopKCategoricalAccuracy):
    def __init__(self, k=5, name="top_k_categorical_accuracy"):
        super().__init__(k, name)

    def values(self, y_true, y_pred):
        return super().values(np.argmax(y_true, -1), y_pred)


class _Confusion(Metric):
    """Counts of true/false positives/negatives at a threshold (binary, or
    one-vs-rest per element for multi-label outputs), as Keras."""

    def __init__(self, thresholds=0.5, name=None):
        self.threshold = thresholds
        super().__init__(name)

    def reset_state(self):
        self.tp = self.fp = self.fn = self.tn = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _arr(y_true), _arr(y_pred)
        y_true = y_true.reshape(y_pred.shape) > 0.5
        pred = y_pred > self.threshold
        w = 1.0 if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(
            np.shape(sample_weight) + (1,) * (y_pred.ndim - np.ndim(sample_weight)))
        w = np.broadcast_to(w, pred.shape)
        self.tp += float((w * (pred & y_true)).sum())
        self.fp += float((w * (pred & ~y_true)).sum())
        self.fn += float((w * (~pred & y_true)).sum())
        self.tn += float((w * (~pred & ~y_true)).sum())


class Precision(_Confusion):
    def __init__(self, thresholds=0.5, name="precision"):
        super().__init__(thresholds, name)

    def result(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0


class Recall(_Confusion):
    def __init__(self, thresholds=0.5, name="recall"):
        super().__init__(thresholds, name)

    def result(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


class AUC(Metric):
    """ROC AUC by the trapezoidal rule over ``num_thresholds`` evenly spaced
    thresholds in [0, 1], accumulated over batches (Keras' approximation)."""

    def __init__(self, num_thresholds=200, name="auc"):
        eps = 1e-7
        self.thresholds = np.concatenate([[-eps], np.linspace(0, 1, num_thresholds)[1:-1], [1 + eps]])
        super().__init__(name)

    def reset_state(self):
        n = len(self.thresholds)
        self.tp, self.fp, self.fn, self.tn = (np.zeros(n) for _ in range(4))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _arr(y_true), _arr(y_pred)
        pos = (y_true.reshape(y_pred.shape) > 0.5).ravel()
        scores = y_pred.ravel()
        w = np.ones_like(scores, dtype=np.float64) if sample_weight is None else np.broadcast_to(
            np.asarray(sample_weight, np.float64).reshape(np.shape(sample_weight) + (1,) * (y_pred.ndim - np.ndim(
                sample_weight))), y_pred.shape).ravel()
        above = scores[None, :] > self.thresholds[:, None]
        self.tp += (above & pos).astype(np.float64) @ w
        self.fp += (above & ~pos).astype(np.float64) @ w
        self.fn += (~above & pos).astype(np.float64) @ w
        self.tn += (~above & ~pos).astype(np.float64) @ w

    def result(self):
        tpr = np.divide(self.tp, self.tp + self.fn, out=np.zeros_like(self.tp), where=(self.tp + self.fn) > 0)
        fpr = np.divide(self.fp, self.fp + self.tn, out=np.zeros_like(self.fp), where=(self.fp + self.tn) > 0)
        # thresholds ascend, so fpr descends: integrate from right to left.
        return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "precision": Precision, "recall": Recall, "auc": AUC,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
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
