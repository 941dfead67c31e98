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


def binary_crossentropy(y_true, y_pred, from_logits=False):
    y_pred = _pred(y_pred)
    t = _match_rank("binary_crossentropy", _true(y_true, y_pred.dtype), y_pred)
    y_pred, from_logits = _logits(y_pred, from_logits)
    if from_logits:
        return F.mean(F.sigmoid_binary_cross_entropy(y_pred, t), axis=-1)
    p = F.clip(y_pred, EPSILON, 1.0 - EPSILON)
    bce = t * F.log(p) + (1.0 - t) * F.log(1.0 - p)
    return -F.mean(bce, axis=-1)


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    y_pred = _pred(y_pred)
    t = _true(y_true, y_pred.dtype)
    if t.shape != y_pred.shape:
        raise ValueError(f"categorical_crossentropy: y_true has shape {t.shape} but y_pred has shape {y_pred.shape} "
                         "(one-hot targets expected; use sparse_categorical_crossentropy for integer labels)")
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


class BinaryCrossentropy(_Crossentropy):
    """BinaryCrossentropy(from_logits=False): the log loss of 0/1 targets
    (probabilities clipped to [eps, 1 - eps], as Keras).

    Example:
        >>> loss = pynn.losses.BinaryCrossentropy()
        >>> round(float(loss(np.array([[1.0], [0.0]]), np.array([[0.9], [0.2]])).numpy()), 4)
        0.1643
    """
    fn = staticmethod(binary_crossentropy)


class CategoricalCrossentropy(_Crossentropy):
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
}
for _cls in list(_BY_NAME.values()):
    _BY_NAME[_cls.__name__] = _cls

mse, mae = mean_squared_error, mean_absolute_error


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
