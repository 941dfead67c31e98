"""Stateful metrics (update_state / result / reset_state), on plain arrays.

``"accuracy"`` resolves the Keras way from the loss: binary for
binary_crossentropy, sparse categorical for sparse labels, categorical for
one-hot targets.
"""
import numpy as np


def _arr(x):
    return x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else np.asarray(x)


class Metric:
    """Base class of metrics: ``update_state(y_true, y_pred, sample_weight=None)``, ``result()``, ``reset_state()``.

    Example:
        >>> class Count(pynn.metrics.Metric):
        ...     def __init__(self, name="count"):
        ...         super().__init__(name=name)
        ...         self.n = 0
        ...     def update_state(self, y_true, y_pred, sample_weight=None):
        ...         self.n += len(y_true)
        ...     def result(self):
        ...         return self.n
        ...     def reset_state(self):
        ...         self.n = 0
        ...
        >>> m = Count()
        >>> m.update_state(np.zeros(3), np.zeros(3))
        >>> m.result()
        3
    """
    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self.values(_arr(y_true), _arr(y_pred))
        if sample_weight is None and isinstance(values, np.ndarray) and values.dtype == np.bool_:
            # Accuracies (every training step): the count of hits is the float64 sum, exactly.
            self.total += float(np.count_nonzero(values))
            self.count += values.size
            return
        values = np.asarray(values, dtype=np.float64)
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
    """Running (weighted) mean of the values given to update_state(value).

    Example:
        >>> m = pynn.metrics.Mean()
        >>> m.update_state([1.0, 2.0, 6.0])
        >>> round(float(m.result()), 4)
        3.0
    """

    def update_state(self, value, sample_weight=None):
        v = float(np.asarray(_arr(value)).mean())
        w = 1.0 if sample_weight is None else float(sample_weight)
        self.total += v * w
        self.count += w


class BinaryAccuracy(Metric):
    """BinaryAccuracy(threshold=0.5): share of predictions on the right side of ``threshold``.

    Example:
        >>> m = pynn.metrics.BinaryAccuracy()
        >>> m.update_state(np.array([[1], [0]]), np.array([[0.7], [0.6]]))
        >>> round(float(m.result()), 4)
        0.5
    """
    def __init__(self, name="binary_accuracy", threshold=0.5):
        self.threshold = threshold
        super().__init__(name)

    def values(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim - 1:
            y_true = y_true[..., None]
        return ((y_pred > self.threshold) == (y_true > 0.5)).mean(axis=-1)


class CategoricalAccuracy(Metric):
    """CategoricalAccuracy(): share of samples whose argmax matches the one-hot target's.

    Example:
        >>> m = pynn.metrics.CategoricalAccuracy()
        >>> m.update_state(np.array([[0, 1], [1, 0]]), np.array([[0.2, 0.8], [0.3, 0.7]]))
        >>> round(float(m.result()), 4)
        0.5
    """
    def __init__(self, name="categorical_accuracy"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.argmax(y_true, -1) == np.argmax(y_pred, -1)


class SparseCategoricalAccuracy(Metric):
    """SparseCategoricalAccuracy(): share of samples whose argmax equals the integer target.

    Example:
        >>> m = pynn.metrics.SparseCategoricalAccuracy()
        >>> m.update_state(np.array([1, 0]), np.array([[0.2, 0.8], [0.3, 0.7]]))
        >>> round(float(m.result()), 4)
        0.5
    """
    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim:
            y_true = y_true[..., 0]
        return y_true.astype(np.int64) == np.argmax(y_pred, -1)


class MeanSquaredError(Metric):
    """MeanSquaredError(): running mean of ``(y_pred - y_true)²``.

    Example:
        >>> m = pynn.metrics.MeanSquaredError()
        >>> m.update_state(np.array([[0.0, 1.0]]), np.array([[1.0, 3.0]]))
        >>> round(float(m.result()), 4)
        2.5
    """
    def __init__(self, name="mean_squared_error"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.mean((y_true.reshape(y_pred.shape) - y_pred) ** 2, axis=-1)


class MeanAbsoluteError(Metric):
    """MeanAbsoluteError(): running mean of ``|y_pred - y_true|``.

    Example:
        >>> m = pynn.metrics.MeanAbsoluteError()
        >>> m.update_state(np.array([[0.0, 1.0]]), np.array([[1.0, 3.0]]))
        >>> round(float(m.result()), 4)
        1.5
    """
    def __init__(self, name="mean_absolute_error"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.mean(np.abs(y_true.reshape(y_pred.shape) - y_pred), axis=-1)


class SparseTopKCategoricalAccuracy(Metric):
    """1 when the true class is among the k largest predictions.

    Example:
        >>> m = pynn.metrics.SparseTopKCategoricalAccuracy(k=2)
        >>> m.update_state(np.array([2, 0]), np.array([[0.1, 0.3, 0.6], [0.1, 0.3, 0.6]]))
        >>> round(float(m.result()), 4)
        0.5
    """

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
    """TopKCategoricalAccuracy(k=5): share of samples whose one-hot target is among
    the ``k`` highest scores.

    Example:
        >>> m = pynn.metrics.TopKCategoricalAccuracy(k=2)
        >>> m.update_state(np.array([[0, 0, 1], [1, 0, 0]]), np.array([[0.1, 0.3, 0.6], [0.1, 0.3, 0.6]]))
        >>> round(float(m.result()), 4)
        0.5
    """
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
    """Precision(thresholds=0.5): true positives / predicted positives.

    Example:
        >>> m = pynn.metrics.Precision()
        >>> m.update_state(np.array([1, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.7]))
        >>> round(float(m.result()), 4)
        0.6667
    """
    def __init__(self, thresholds=0.5, name="precision"):
        super().__init__(thresholds, name)

    def result(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0


class Recall(_Confusion):
    """Recall(thresholds=0.5): true positives / actual positives.

    Example:
        >>> m = pynn.metrics.Recall()
        >>> m.update_state(np.array([1, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.7]))
        >>> round(float(m.result()), 4)
        0.6667
    """
    def __init__(self, thresholds=0.5, name="recall"):
        super().__init__(thresholds, name)

    def result(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


class AUC(Metric):
    """ROC AUC by the trapezoidal rule over ``num_thresholds`` evenly spaced
    thresholds in [0, 1], accumulated over batches (Keras' approximation).

    Example:
        >>> m = pynn.metrics.AUC()
        >>> m.update_state(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        >>> round(float(m.result()), 4)
        0.75
    """

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


class R2Score(Metric):
    """R2Score(class_aggregation="uniform_average", num_regressors=0): the
    coefficient of determination over everything seen, per output column, then
    aggregated ("uniform_average", "variance_weighted_average" or None for the
    array), as Keras; ``num_regressors`` > 0 gives the adjusted R².

    Example:
        >>> m = pynn.metrics.R2Score()
        >>> m.update_state(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.5], [2.5]]))
        >>> round(float(m.result()), 4)
        0.75
    """

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score"):
        if class_aggregation not in ("uniform_average", "variance_weighted_average", None):
            raise ValueError(f"R2Score: unknown class_aggregation {class_aggregation!r}")
        if num_regressors < 0:
            raise ValueError(f"R2Score: num_regressors must be >= 0, got {num_regressors}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        super().__init__(name)

    def reset_state(self):
        self.sum = self.squared_sum = self.total_mse = self.count = 0.0
        self.num_samples = 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = np.asarray(_arr(y_true), np.float64), np.asarray(_arr(y_pred), np.float64)
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        y_true = y_true.reshape(y_pred.shape)
        w = np.ones((len(y_true), 1)) if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1, 1)
        w = np.broadcast_to(w, y_true.shape)
        self.sum = self.sum + (y_true * w).sum(0)
        self.squared_sum = self.squared_sum + (y_true * y_true * w).sum(0)
        self.total_mse = self.total_mse + ((y_true - y_pred) ** 2 * w).sum(0)
        self.count = self.count + w.sum(0)
        self.num_samples += len(y_true)

    def result(self):
        if self.num_samples == 0:
            return 0.0
        mean = self.sum / self.count
        total = self.squared_sum - self.sum * mean
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = 1.0 - self.total_mse / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            r2 = float(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            r2 = float(np.sum(total * raw) / np.sum(total))
        else:
            r2 = raw
        if self.num_regressors:
            n, p = self.num_samples, self.num_regressors
            if p >= n - 1:
                raise ValueError(f"R2Score: num_regressors={p} needs more than {p + 1} samples, got {n}")
            r2 = 1.0 - (1.0 - r2) * (n - 1) / (n - p - 1)
        return r2


class FBetaScore(Metric):
    """FBetaScore(average=None, beta=1.0, threshold=None): F-beta over everything
    seen, as Keras: predictions are the row's maximum (threshold None) or
    ``> threshold``; average None (one score per class, an array), "micro",
    "macro" or "weighted".

    Example:
        >>> m = pynn.metrics.FBetaScore(beta=2.0, average="micro", threshold=0.5)
        >>> m.update_state(np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.2], [0.6, 0.4]]))
        >>> round(float(m.result()), 4)
        0.5
    """

    _EPS = 1e-7

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score"):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__}: unknown average {average!r}")
        if beta <= 0:
            raise ValueError(f"{type(self).__name__}: beta must be > 0, got {beta}")
        self.average, self.beta, self.threshold = average, float(beta), threshold
        super().__init__(name)

    def reset_state(self):
        self.tp = self.fp = self.fn = self.support = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = np.asarray(_arr(y_true), np.float64), np.asarray(_arr(y_pred), np.float64)
        if self.threshold is None:
            pred = (y_pred >= y_pred.max(-1, keepdims=True)) & (np.abs(y_pred) > 1e-9)
        else:
            pred = y_pred > self.threshold
        pred = pred.astype(np.float64)
        y_true = y_true.reshape(pred.shape)
        w = 1.0 if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1, 1)
        axis = None if self.average == "micro" else 0
        self.tp = self.tp + (pred * y_true * w).sum(axis)
        self.fp = self.fp + (pred * (1 - y_true) * w).sum(axis)
        self.fn = self.fn + ((1 - pred) * y_true * w).sum(axis)
        self.support = self.support + (y_true * w).sum(axis)

    def result(self):
        eps, b2 = self._EPS, self.beta ** 2
        precision = self.tp / (self.tp + self.fp + eps)
        recall = self.tp / (self.tp + self.fn + eps)
        f = (1 + b2) * precision * recall / (b2 * precision + recall + eps)
        if self.average == "weighted":
            return float(np.sum(f * self.support / (np.sum(self.support) + eps)))
        if self.average is not None:
            return float(np.mean(f))
        return np.asarray(f, np.float32)


class F1Score(FBetaScore):
    """F1Score(average=None, threshold=None): FBetaScore with beta=1 (Keras).

    Example:
        >>> m = pynn.metrics.F1Score(average="micro", threshold=0.5)
        >>> m.update_state(np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.2], [0.6, 0.4]]))
        >>> round(float(m.result()), 4)
        0.5
    """

    def __init__(self, average=None, threshold=None, name="f1_score"):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name)


class RootMeanSquaredError(MeanSquaredError):
    """RootMeanSquaredError(): the square root of the running mean of ``(y_pred - y_true)²``
    (MeanSquaredError's running mean, rooted when read).

    Example:
        >>> m = pynn.metrics.RootMeanSquaredError()
        >>> m.update_state(np.array([[0.0, 1.0]]), np.array([[1.0, 3.0]]))
        >>> round(float(m.result()), 4)
        1.5811
    """
    def __init__(self, name="root_mean_squared_error"):
        super().__init__(name)

    def result(self):
        return float(np.sqrt(super().result()))


class MeanMetricWrapper(Metric):
    """MeanMetricWrapper(fn, name=None, **kwargs): the running (weighted) mean of
    ``fn(y_true, y_pred, **kwargs)`` per sample, as Keras wraps a function given in
    ``compile(metrics=[fn])``.

    Example:
        >>> m = pynn.metrics.MeanMetricWrapper(pynn.losses.mean_absolute_error, name="mae")
        >>> m.update_state(np.array([[0.0, 1.0]]), np.array([[1.0, 3.0]]))
        >>> round(float(m.result()), 4)
        1.5
    """
    def __init__(self, fn, name=None, **kwargs):
        self.fn, self.kwargs = fn, kwargs
        super().__init__(name or getattr(fn, "__name__", "mean_metric_wrapper"))

    def values(self, y_true, y_pred):
        out = self.fn(y_true, y_pred, **self.kwargs)
        return np.asarray(getattr(out, "data", out), np.float64)


def _negated(fn):
    def negated(y_true, y_pred, **kwargs):
        out = fn(y_true, y_pred, **kwargs)
        return -np.asarray(getattr(out, "data", out))
    return negated


def _wrapper(cls_name, loss_fn_name, default_name, result, negate=False, y=("[[1.0, 0.0]]", "[[0.6, 0.4]]")):
    """A Keras metric class: the running mean of ``pynn.losses.<loss_fn_name>`` per sample;
    ``result``: what its docstring example prints for y_true, y_pred = ``y``."""
    def __init__(self, name=default_name, **kwargs):
        from . import losses
        fn = getattr(losses, loss_fn_name)
        MeanMetricWrapper.__init__(self, _negated(fn) if negate else fn, name=name, **kwargs)
    doc = (f"""{cls_name}(name={default_name!r}): the running mean of {'minus ' if negate else ''}"""
           f"""pynn.losses.{loss_fn_name} per sample (Keras' metric).

    Example:
        >>> m = pynn.metrics.{cls_name}()
        >>> m.update_state(np.array({y[0]}), np.array({y[1]}))
        >>> round(float(m.result()), 4)
        {result}
    """)
    return type(cls_name, (MeanMetricWrapper,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


MeanAbsolutePercentageError = _wrapper("MeanAbsolutePercentageError", "mean_absolute_percentage_error",
                                       "mean_absolute_percentage_error", 25.0, y=("[[2.0, 4.0]]", "[[1.0, 4.0]]"))
MeanSquaredLogarithmicError = _wrapper("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
                                       "mean_squared_logarithmic_error", 0.0815)
BinaryCrossentropy = _wrapper("BinaryCrossentropy", "binary_crossentropy", "binary_crossentropy", 0.5108)
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy", "categorical_crossentropy", "categorical_crossentropy", 0.5108)
SparseCategoricalCrossentropy = _wrapper("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
                                         "sparse_categorical_crossentropy", 0.5108, y=("[0]", "[[0.6, 0.4]]"))
KLDivergence = _wrapper("KLDivergence", "kl_divergence", "kl_divergence", 0.5108)
Poisson = _wrapper("Poisson", "poisson", "poisson", 0.7554)
LogCoshError = _wrapper("LogCoshError", "log_cosh", "logcosh", 0.078)
Hinge = _wrapper("Hinge", "hinge", "hinge", 0.9)
SquaredHinge = _wrapper("SquaredHinge", "squared_hinge", "squared_hinge", 1.06)
CategoricalHinge = _wrapper("CategoricalHinge", "categorical_hinge", "categorical_hinge", 0.8)
# Keras' metric is the similarity itself (+1 when aligned); the loss is its negative.
CosineSimilarity = _wrapper("CosineSimilarity", "cosine_similarity", "cosine_similarity", 0.8321, negate=True)


_BY_NAME = {
    "r2_score": R2Score, "f1_score": F1Score, "fbeta_score": FBetaScore,
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "precision": Precision, "recall": Recall, "auc": AUC,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "root_mean_squared_error": RootMeanSquaredError,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy, "kl_divergence": KLDivergence,
    "kld": KLDivergence, "poisson": Poisson, "logcosh": LogCoshError, "hinge": Hinge,
    "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge, "cosine_similarity": CosineSimilarity,
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
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier) and not isinstance(identifier, str):   # Keras: a function fn(y_true, y_pred)
        return MeanMetricWrapper(identifier)
    raise ValueError(f"Unknown metric {identifier!r}; expected 'accuracy' or one of {sorted(_BY_NAME)}")
