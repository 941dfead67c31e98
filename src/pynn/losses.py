"""Losses with Keras definitions, argument order (y_true, y_pred) and reductions.

Per-sample functions (``mean_squared_error`` ...) return one value per sample;
the classes reduce them: ``"sum_over_batch_size"`` (the default: the mean),
``"sum"`` or ``"none"``. Probabilities are clipped to [1e-7, 1 − 1e-7] as Keras
does; when ``y_pred`` came straight out of a softmax/sigmoid, the loss uses the
logits underneath (as Keras' TensorFlow backend does), which is both more
accurate and one fused kernel.
"""
import numpy as np

from . import functional as F
from .autograd import Tensor

EPSILON = 1e-7


def _pred(y_pred):
    return y_pred if isinstance(y_pred, Tensor) else Tensor(y_pred)


def _true(y_true, dtype):
    y = y_true.data if isinstance(y_true, Tensor) else np.asarray(y_true)
    return y.astype(dtype, copy=False) if dtype is not None else y


def _match_rank(name, y_true, y_pred):
    """Keras' squeeze_or_expand_to_same_rank, then an exact shape check."""
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    return y_true


# ---------------------------------------------------------------- per-sample losses
def mean_squared_error(y_true, y_pred):
    y_pred = _pred(y_pred)
    t = _match_rank("mean_squared_error", _true(y_true, y_pred.dtype), y_pred)
    return F.mean(F.square(y_pred - t), axis=-1)


def mean_absolute_error(y_true, y_pred):
    y_pred = _pred(y_pred)
    t = _match_rank("mean_absolute_error", _true(y_true, y_pred.dtype), y_pred)
    return F.mean(F.abs(y_pred - t), axis=-1)


def _logits(y_pred, from_logits):
    """(y_pred, from_logits), switched to the logits when y_pred came out of a sigmoid or
    softmax that kept them: the fused, stable loss then replaces log of a probability."""
    if not from_logits and y_pred._keras_logits is not None:
        return _pred(y_pred._keras_logits), True
    return y_pred, from_logits


def _normalized(y_pred):
    """Probabilities summing to 1 over the last axis, clipped away from 0 and 1."""
    return F.clip(y_pred / F.sum(y_pred, axis=-1, keepdims=True), EPSILON, 1.0 - EPSILON)


def _check_smoothing(name, label_smoothing):
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing}")
    return float(label_smoothing)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Keras' binary crossentropy per sample; ``label_smoothing`` moves the targets
    towards 0.5: ``t * (1 - s) + 0.5 * s``."""
    y_pred = _pred(y_pred)
    t = _match_rank("binary_crossentropy", _true(y_true, y_pred.dtype), y_pred)
    s = _check_smoothing("binary_crossentropy", label_smoothing)
    if s:
        t = t * (1.0 - s) + 0.5 * s
    y_pred, from_logits = _logits(y_pred, from_logits)
    if from_logits:
        return F.mean(F.sigmoid_binary_cross_entropy(y_pred, t), axis=-1)
    p = F.clip(y_pred, EPSILON, 1.0 - EPSILON)
    bce = t * F.log(p) + (1.0 - t) * F.log(1.0 - p)
    return -F.mean(bce, axis=-1)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Keras' categorical crossentropy per sample; ``label_smoothing`` mixes the one-hot
    targets with the uniform distribution: ``t * (1 - s) + s / classes``."""
    y_pred = _pred(y_pred)
    t = _true(y_true, y_pred.dtype)
    if t.shape != y_pred.shape:
        raise ValueError(f"categorical_crossentropy: y_true has shape {t.shape} but y_pred has shape {y_pred.shape} "
                         "(one-hot targets expected; use sparse_categorical_crossentropy for integer labels)")
    s = _check_smoothing("categorical_crossentropy", label_smoothing)
    if s:
        t = t * (1.0 - s) + s / t.shape[-1]
    y_pred, from_logits = _logits(y_pred, from_logits)
    if from_logits:
        return F.softmax_cross_entropy(y_pred, t)
    return -F.sum(t * F.log(_normalized(y_pred)), axis=-1)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    y_pred = _pred(y_pred)
    labels = _true(y_true, None)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(f"sparse_categorical_crossentropy: y_true has shape {labels.shape} but y_pred has shape "
                         f"{y_pred.shape}; expected integer labels of shape {y_pred.shape[:-1]}")
    if labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            raise ValueError("sparse_categorical_crossentropy: y_true must hold integer class ids")
    labels = labels.astype(np.int64, copy=False)
    n_classes = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise ValueError(f"sparse_categorical_crossentropy: label {bad} is out of range for y_pred with "
                         f"{n_classes} classes (shape {y_pred.shape})")
    y_pred, from_logits = _logits(y_pred, from_logits)
    if from_logits:
        return F.softmax_cross_entropy(y_pred, labels)
    picked = F.getitem(_normalized(y_pred), tuple(np.indices(labels.shape)) + (labels,))
    return -F.log(picked)


def huber(y_true, y_pred, delta=1.0):
    """Keras' Huber per sample: mean over the last axis of 0.5·e² where |e| <= delta,
    else delta·(|e| - delta/2). Written 0.5·q² + delta·(|e| - q) with q = min(|e|, delta):
    one expression for both pieces (and their gradients)."""
    y_pred = _pred(y_pred)
    t = _match_rank("huber", _true(y_true, y_pred.dtype), y_pred)
    a = F.abs(y_pred - t)
    q = F.minimum(a, np.asarray(delta, y_pred.dtype))
    return F.mean(q * q * 0.5 + (a - q) * float(delta), axis=-1)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0):
    """Keras' binary focal crossentropy per sample: (1 - p_t)^gamma · BCE (times
    alpha_t with class balancing), averaged over the last axis."""
    y_pred = _pred(y_pred)
    t = _match_rank("binary_focal_crossentropy", _true(y_true, y_pred.dtype), y_pred)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    p = F.sigmoid(y_pred) if from_logits else y_pred
    pc = F.clip(p, EPSILON, 1.0 - EPSILON)
    bce = -(t * F.log(pc) + (1.0 - t) * F.log(1.0 - pc))
    p_t = t * p + (1.0 - t) * (1.0 - p)
    focal = F.power(F.maximum(1.0 - p_t, np.asarray(0.0, y_pred.dtype)), float(gamma)) * bce
    if apply_class_balancing:
        focal = focal * (t * alpha + (1.0 - t) * (1.0 - alpha))
    return F.mean(focal, axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """100 * mean(|t - p| / max(|t|, eps)) over the last axis (Keras)."""
    y_pred = _pred(y_pred)
    t = _match_rank("mean_absolute_percentage_error", _true(y_true, y_pred.dtype), y_pred)
    return F.mean(F.abs(y_pred - t) * (100.0 / np.maximum(np.abs(t), EPSILON)), axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    """mean((log(max(p, eps) + 1) - log(max(t, eps) + 1))^2) over the last axis (Keras)."""
    y_pred = _pred(y_pred)
    t = _match_rank("mean_squared_logarithmic_error", _true(y_true, y_pred.dtype), y_pred)
    first = F.log1p(F.maximum(y_pred, np.asarray(EPSILON, y_pred.dtype)))
    return F.mean(F.square(first - np.log1p(np.maximum(t, EPSILON))), axis=-1)


def _signed_targets(name, y_true, y_pred):
    """Hinge targets: 0/1 labels become -1/1 (Keras); -1/1 stay."""
    t = _match_rank(name, _true(y_true, y_pred.dtype), y_pred)
    return np.where(t == 0, -1.0, t).astype(y_pred.dtype) if np.all(np.isin(t, (0, 1))) else t


def hinge(y_true, y_pred):
    y_pred = _pred(y_pred)
    t = _signed_targets("hinge", y_true, y_pred)
    return F.mean(F.maximum(1.0 - t * y_pred, np.asarray(0.0, y_pred.dtype)), axis=-1)


def squared_hinge(y_true, y_pred):
    y_pred = _pred(y_pred)
    t = _signed_targets("squared_hinge", y_true, y_pred)
    return F.mean(F.square(F.maximum(1.0 - t * y_pred, np.asarray(0.0, y_pred.dtype))), axis=-1)


def categorical_hinge(y_true, y_pred):
    """max(0, 1 + max((1 - t) * p) - sum(t * p)) per sample (Keras)."""
    y_pred = _pred(y_pred)
    t = _match_rank("categorical_hinge", _true(y_true, y_pred.dtype), y_pred)
    pos = F.sum(y_pred * t, axis=-1)
    neg = F.max(y_pred * (1.0 - t), axis=-1)
    return F.maximum(neg - pos + 1.0, np.asarray(0.0, y_pred.dtype))


def poisson(y_true, y_pred):
    """mean(p - t * log(p + eps)) over the last axis (Keras)."""
    y_pred = _pred(y_pred)
    t = _match_rank("poisson", _true(y_true, y_pred.dtype), y_pred)
    return F.mean(y_pred - F.log(y_pred + EPSILON) * t, axis=-1)


def log_cosh(y_true, y_pred):
    """mean(log(cosh(p - t))) over the last axis, written x + softplus(-2x) - log 2 (Keras)."""
    y_pred = _pred(y_pred)
    t = _match_rank("log_cosh", _true(y_true, y_pred.dtype), y_pred)
    e = y_pred - t
    return F.mean(e + F.softplus(e * -2.0) - float(np.log(2.0)), axis=-1)


def kl_divergence(y_true, y_pred):
    """sum(t * log(t / p)) over the last axis, both clipped to [eps, 1] (Keras)."""
    y_pred = _pred(y_pred)
    t = np.clip(_match_rank("kl_divergence", _true(y_true, y_pred.dtype), y_pred), EPSILON, 1.0)
    p = F.clip(y_pred, EPSILON, 1.0)
    return F.sum((np.log(t) - F.log(p)) * t, axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """-sum(l2_normalize(t) * l2_normalize(p)) over ``axis`` (Keras' loss: -1 when aligned)."""
    y_pred = _pred(y_pred)
    t = _match_rank("cosine_similarity", _true(y_true, y_pred.dtype), y_pred)
    t = t / np.sqrt(np.maximum(np.sum(t * t, axis=axis, keepdims=True), 1e-12))
    norm = F.sqrt(F.maximum(F.sum(F.square(y_pred), axis=axis, keepdims=True), np.asarray(1e-12, y_pred.dtype)))
    return -F.sum((y_pred / norm) * t, axis=axis)


# ---------------------------------------------------------------- classes
class Loss:
    """Base: ``loss(y_true, y_pred, sample_weight=None)`` -> scalar Tensor.

    Example:
        >>> class Mae(pynn.losses.Loss):
        ...     def call(self, y_true, y_pred):
        ...         return pynn.ops.mean(pynn.ops.abs(y_pred - y_true), axis=-1)
        ...
        >>> round(float(Mae()(np.array([[1.0, 2.0]]), np.array([[2.0, 2.0]])).numpy()), 4)
        0.5
    """

    fn = None

    def __init__(self, reduction="sum_over_batch_size", name=None, **kwargs):
        if reduction is None:   # Keras 3 spells "no reduction" None as well as "none"
            reduction = "none"
        if reduction not in ("sum_over_batch_size", "sum", "none", "mean"):
            raise ValueError(f"{type(self).__name__}: unknown reduction {reduction!r}")
        self.reduction = reduction
        self.name = name or _snake(type(self).__name__)
        self.kwargs = kwargs

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras-style subclasses define call(y_true, y_pred) instead of fn
        values = self.fn(y_true, y_pred, **self.kwargs) if self.fn is not None else self.call(y_true, y_pred)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=values.dtype)
            sw = sw.reshape(sw.shape + (1,) * (values.ndim - sw.ndim)) if sw.ndim < values.ndim else sw
            values = values * sw
        if self.reduction == "none":
            return values
        total = F.sum(values)
        if self.reduction == "sum":
            return total
        return total / max(values.size, 1)

    def get_config(self):
        return {"reduction": self.reduction, "name": self.name, **self.kwargs}


def _snake(name):
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


class MeanSquaredError(Loss):
    """MeanSquaredError(reduction="sum_over_batch_size"): mean of ``(y_pred - y_true)²``
    over the last axis, then over the batch.

    Example:
        >>> loss = pynn.losses.MeanSquaredError()
        >>> round(float(loss(np.array([[0.0, 1.0]]), np.array([[1.0, 3.0]])).numpy()), 4)
        2.5
    """
    fn = staticmethod(mean_squared_error)


class MeanAbsoluteError(Loss):
    """MeanAbsoluteError(): mean of ``|y_pred - y_true|`` over the last axis, then over the batch.

    Example:
        >>> loss = pynn.losses.MeanAbsoluteError()
        >>> round(float(loss(np.array([[0.0, 1.0]]), np.array([[1.0, 3.0]])).numpy()), 4)
        1.5
    """
    fn = staticmethod(mean_absolute_error)


class _Crossentropy(Loss):
    """The cross-entropies' shared signature, Keras': ``from_logits`` says y_pred is logits; the
    name defaults to the class name in snake_case (binary_crossentropy, ...)."""

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name, from_logits=from_logits)


class _SmoothedCrossentropy(Loss):
    """BinaryCrossentropy / CategoricalCrossentropy: Keras' ``from_logits``, ``label_smoothing``
    and ``axis`` (only the last axis, -1, is supported: any other raises)."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name=None):
        if axis != -1:
            raise NotImplementedError(f"{type(self).__name__}: only axis=-1 is supported, got axis={axis}")
        super().__init__(reduction, name, from_logits=from_logits,
                         label_smoothing=_check_smoothing(_snake(type(self).__name__), label_smoothing))


class BinaryCrossentropy(_SmoothedCrossentropy):
    """BinaryCrossentropy(from_logits=False): the log loss of 0/1 targets
    (probabilities clipped to [eps, 1 - eps], as Keras).

    Example:
        >>> loss = pynn.losses.BinaryCrossentropy()
        >>> round(float(loss(np.array([[1.0], [0.0]]), np.array([[0.9], [0.2]])).numpy()), 4)
        0.1643
    """
    fn = staticmethod(binary_crossentropy)


class CategoricalCrossentropy(_SmoothedCrossentropy):
    """CategoricalCrossentropy(from_logits=False): cross-entropy of one-hot targets.

    Example:
        >>> loss = pynn.losses.CategoricalCrossentropy()
        >>> round(float(loss(np.array([[0.0, 1.0]]), np.array([[0.2, 0.8]])).numpy()), 4)
        0.2231
    """
    fn = staticmethod(categorical_crossentropy)


class SparseCategoricalCrossentropy(_Crossentropy):
    """SparseCategoricalCrossentropy(from_logits=False): cross-entropy of integer class targets.

    Example:
        >>> loss = pynn.losses.SparseCategoricalCrossentropy()
        >>> round(float(loss(np.array([1]), np.array([[0.2, 0.8]])).numpy()), 4)
        0.2231
    """
    fn = staticmethod(sparse_categorical_crossentropy)


class Huber(Loss):
    """Huber(delta=1.0): quadratic for errors up to ``delta``, linear beyond (Keras).

    Example:
        >>> loss = pynn.losses.Huber(delta=1.0)
        >>> round(float(loss(np.array([[0.0, 0.0]]), np.array([[0.5, 3.0]])).numpy()), 4)
        1.3125
    """

    fn = staticmethod(huber)

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss"):
        if delta < 0:
            raise ValueError(f"Huber: delta must be >= 0, got {delta}")
        super().__init__(reduction, name, delta=float(delta))


class BinaryFocalCrossentropy(Loss):
    """BinaryFocalCrossentropy(apply_class_balancing=False, alpha=0.25, gamma=2.0,
    from_logits=False, label_smoothing=0.0): BCE down-weighting easy examples
    by (1 - p_t)^gamma (Lin et al. 2017), Keras' defaults.

    Example:
        >>> loss = pynn.losses.BinaryFocalCrossentropy(gamma=2.0)
        >>> round(float(loss(np.array([[1.0], [0.0]]), np.array([[0.9], [0.2]])).numpy()), 4)
        0.005
    """

    fn = staticmethod(binary_focal_crossentropy)

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                 reduction="sum_over_batch_size", name="binary_focal_crossentropy"):
        if gamma < 0 or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"BinaryFocalCrossentropy: need gamma >= 0 and label_smoothing in [0, 1], got "
                             f"gamma={gamma}, label_smoothing={label_smoothing}")
        super().__init__(reduction, name, apply_class_balancing=apply_class_balancing, alpha=float(alpha),
                         gamma=float(gamma), from_logits=from_logits, label_smoothing=float(label_smoothing))


def _loss_class(fn, cls_name, default_name, doc):
    """A Keras loss class around a per-sample function: ``Cls(reduction=..., name=...)``."""
    def __init__(self, reduction="sum_over_batch_size", name=default_name):
        Loss.__init__(self, reduction, name)
    return type(cls_name, (Loss,), {"fn": staticmethod(fn), "__init__": __init__, "__doc__": doc, "__module__": __name__})


MeanAbsolutePercentageError = _loss_class(
    mean_absolute_percentage_error, "MeanAbsolutePercentageError", "mean_absolute_percentage_error",
    """MeanAbsolutePercentageError(): 100 * mean(|t - p| / |t|) (Keras).

    Example:
        >>> round(float(pynn.losses.MeanAbsolutePercentageError()(np.array([[2.0]]), np.array([[1.0]])).numpy()), 4)
        50.0
    """)
MeanSquaredLogarithmicError = _loss_class(
    mean_squared_logarithmic_error, "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
    """MeanSquaredLogarithmicError(): mean((log(1 + p) - log(1 + t))^2) (Keras).

    Example:
        >>> round(float(pynn.losses.MeanSquaredLogarithmicError()(np.array([[0.0]]), np.array([[np.e - 1]])).numpy()), 4)
        1.0
    """)
Hinge = _loss_class(hinge, "Hinge", "hinge", """Hinge(): mean(max(1 - t * p, 0)), 0/1 targets read as -1/1 (Keras).

    Example:
        >>> round(float(pynn.losses.Hinge()(np.array([[1.0]]), np.array([[0.25]])).numpy()), 4)
        0.75
    """)
SquaredHinge = _loss_class(squared_hinge, "SquaredHinge", "squared_hinge",
                           """SquaredHinge(): mean(max(1 - t * p, 0)^2) (Keras).

    Example:
        >>> round(float(pynn.losses.SquaredHinge()(np.array([[1.0]]), np.array([[0.5]])).numpy()), 4)
        0.25
    """)
CategoricalHinge = _loss_class(categorical_hinge, "CategoricalHinge", "categorical_hinge",
                               """CategoricalHinge(): max(0, 1 + max((1 - t) * p) - sum(t * p)) (Keras).

    Example:
        >>> round(float(pynn.losses.CategoricalHinge()(np.array([[0.0, 1.0]]), np.array([[0.3, 0.7]])).numpy()), 4)
        0.6
    """)
Poisson = _loss_class(poisson, "Poisson", "poisson", """Poisson(): mean(p - t * log(p)) (Keras).

    Example:
        >>> round(float(pynn.losses.Poisson()(np.array([[1.0]]), np.array([[1.0]])).numpy()), 4)
        1.0
    """)
LogCosh = _loss_class(log_cosh, "LogCosh", "log_cosh", """LogCosh(): mean(log(cosh(p - t))) (Keras).

    Example:
        >>> round(float(pynn.losses.LogCosh()(np.array([[0.0]]), np.array([[1.0]])).numpy()), 4)
        0.4338
    """)
KLDivergence = _loss_class(kl_divergence, "KLDivergence", "kl_divergence",
                           """KLDivergence(): sum(t * log(t / p)) (Keras).

    Example:
        >>> round(float(pynn.losses.KLDivergence()(np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]])).numpy()), 4)
        0.1438
    """)


class CosineSimilarity(Loss):
    """CosineSimilarity(axis=-1): minus the cosine similarity of y_true and y_pred (Keras).

    Example:
        >>> round(float(pynn.losses.CosineSimilarity()(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])).numpy()), 4)
        -1.0
    """
    fn = staticmethod(cosine_similarity)

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity"):
        super().__init__(reduction, name, axis=axis)


class CTC(Loss):
    """CTC for Keras-style fit(): y_true (N, S) padded labels with ``padding`` (-1
    by default, or the blank) past each label's end, y_pred (N, T, C) softmax
    probabilities or, with from_logits, logits. Every input step counts. The
    per-sample loss is the CTC negative log-likelihood (Keras' CTC).

    Example:
        >>> loss = pynn.losses.CTC()
        >>> y_true = np.array([[1, 2]])                       # labels, padded with -1
        >>> y_pred = np.zeros((1, 4, 3), np.float32)          # logits (batch, steps, classes incl. blank 0)
        >>> round(float(loss(y_true, y_pred).numpy()), 4)
        1.6864
    """

    def __init__(self, blank=0, from_logits=True, padding=-1, reduction="sum_over_batch_size", name="ctc"):
        super().__init__(reduction, name)
        self.blank, self.from_logits, self.padding = blank, from_logits, padding

    def fn(self, y_true, y_pred):
        y_pred = _pred(y_pred)
        labels = _true(y_true, None).astype(np.int64)
        lab_len = (labels != self.padding).sum(axis=1)
        labels = np.where(labels == self.padding, 1 if self.blank == 0 else 0, labels)  # any non-blank id: unread
        log_probs = F.log_softmax(y_pred) if self.from_logits else F.log(F.clip(y_pred, EPSILON, 1.0))
        n, t = y_pred.shape[0], y_pred.shape[1]
        return F.ctc_loss(log_probs, labels, np.full(n, t), lab_len, blank=self.blank, reduction="none")

    def get_config(self):
        return {"reduction": self.reduction, "name": self.name, "blank": self.blank,
                "from_logits": self.from_logits, "padding": self.padding}


_BY_NAME = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "ctc": CTC,
    "huber": Huber, "huber_loss": Huber,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "msle": MeanSquaredLogarithmicError,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "poisson": Poisson, "log_cosh": LogCosh, "logcosh": LogCosh,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
    "cosine_similarity": CosineSimilarity,
}
for _cls in list(_BY_NAME.values()):
    _BY_NAME[_cls.__name__] = _cls

mse, mae = mean_squared_error, mean_absolute_error
mape, msle, kld, logcosh = mean_absolute_percentage_error, mean_squared_logarithmic_error, kl_divergence, log_cosh


def get(identifier):
    """Name, class name, Loss instance or callable(y_true, y_pred) -> loss object."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown loss {identifier!r}; expected one of "
                             f"{sorted(k for k in _BY_NAME if k.islower())}")
        return _BY_NAME[identifier]()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Unknown loss {identifier!r}")


class LossFunctionWrapper(Loss):
    """LossFunctionWrapper(fn, reduction=...): a loss class around a function
    ``fn(y_true, y_pred)`` of per-sample values.

    Example:
        >>> loss = pynn.losses.LossFunctionWrapper(pynn.losses.mean_squared_error)
        >>> round(float(loss(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]])).numpy()), 4)
        0.5
    """
    def __init__(self, fn, reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(reduction, name or getattr(fn, "__name__", "loss"), **kwargs)
        self.fn = fn
