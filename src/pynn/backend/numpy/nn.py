"""Neural-network kernels, NumPy reference: activations and their gradients,
bias add/grad, softmax / log-softmax and the fused softmax cross-entropy.

These read like the math and are the spec the native kernels are tested
against. Every function takes and returns ndarrays; outputs are new arrays of
the input's shape and dtype (float32 or float64). In the ``*_grad`` kernels
``x`` is the forward input, ``y`` the forward output and ``dy`` the upstream
gradient; they return ``dx = f'(x) * dy``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "relu", "relu_grad", "leaky_relu", "leaky_relu_grad",
    "sigmoid", "sigmoid_grad", "tanh", "tanh_grad",
    "gelu", "gelu_grad", "elu", "elu_grad",
    "bias_add", "bias_grad", "act_bias_grad",
    "softmax", "softmax_grad", "log_softmax", "log_softmax_grad",
    "softmax_cross_entropy",
]

try:  # exact erfc, vectorised; scipy is optional
    from scipy.special import erfc as _erfc
except ImportError:  # pragma: no cover - exercised only without scipy
    _erfc_scalar = np.vectorize(math.erfc, otypes=[np.float64])

    def _erfc(x):
        return _erfc_scalar(x).astype(x.dtype, copy=False)

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _float_input(op, x):
    """The input of a float activation: integer and bool arrays compute in float32
    (as torch.sigmoid of an int tensor returns float; NumPy's ufuncs would pick
    float64 or truncate back to int), complex arrays are a TypeError (pynn computes
    real numbers only), float arrays pass unchanged."""
    x = np.asarray(x)
    kind = x.dtype.kind
    if kind in "iub":
        return x.astype(np.float32)
    if kind != "f":
        raise TypeError(f"{op}: expected a real (integer, bool or float) array, got dtype {x.dtype}"
                        + ("; complex numbers are not supported" if kind == "c" else ""))
    return x


def _scalar(v, like):
    """A Python scalar as a 0-d array of ``like``'s dtype (keeps float32 float32)."""
    return np.asarray(v, dtype=like.dtype)


# ---------------------------------------------------------------- activations
def relu(x):
    """max(x, 0); NaN stays NaN."""
    x = np.asarray(x)
    if x.dtype.kind not in "iubf":  # relu keeps integer dtypes (max(x, 0) is exact there)
        _float_input("relu", x)
    return np.maximum(x, _scalar(0, x))


def relu_grad(x, y, dy):
    return np.where(x > 0, dy, _scalar(0, dy))


def leaky_relu(x, alpha=0.2):
    """x for x >= 0, alpha * x below."""
    x = _float_input("leaky_relu", x)
    return np.where(x < 0, _scalar(alpha, x) * x, x)


def leaky_relu_grad(x, y, dy, alpha=0.2):
    return np.where(x > 0, dy, _scalar(alpha, dy) * dy)


def sigmoid(x):
    """1 / (1 + exp(-x)), evaluated through exp(-|x|) so it never overflows:
    for x < 0 it is e / (1 + e) with e = exp(x)."""
    x = _float_input("sigmoid", x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_grad(x, y, dy):
    return dy * y * (1 - y)


def tanh(x):
    x = _float_input("tanh", x)
    return np.tanh(x)


def tanh_grad(x, y, dy):
    return dy * (1 - y * y)


def _normal_cdf(x):
    # Phi(x) = erfc(-x / sqrt 2) / 2: no cancellation in the left tail.
    return (0.5 * _erfc(-x * _scalar(_SQRT1_2, x))).astype(x.dtype, copy=False)


def gelu(x):
    """Exact GELU, x * Phi(x) with Phi the standard normal CDF (Keras
    approximate=False, torch's default)."""
    x = _float_input("gelu", x)
    return x * _normal_cdf(x)


def gelu_grad(x, y, dy):
    pdf = _scalar(_INV_SQRT_2PI, x) * np.exp(-0.5 * x * x)
    return dy * (_normal_cdf(x) + x * pdf)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    x = _float_input("elu", x)
    return np.where(x > 0, x, _scalar(alpha, x) * np.expm1(np.minimum(x, _scalar(0, x))))


def elu_grad(x, y, dy, alpha=1.0):
    # below 0, d/dx alpha (exp(x) - 1) = alpha exp(x) = y + alpha
    return np.where(x > 0, dy, dy * (y + _scalar(alpha, y)))


# ---------------------------------------------------------------- bias
def bias_add(x, b):
    """x (..., C) + b (C,)."""
    if x.ndim < 1 or b.shape != (x.shape[-1],):
        raise ValueError(f"bias_add: b must have shape ({x.shape[-1] if x.ndim else '?'},) "
                         f"for x of shape {x.shape}, got {b.shape}")
    return x + b


def bias_grad(dy):
    """Sum of dy (..., C) over every axis but the last -> (C,)."""
    if np.ndim(dy) == 0:
        raise ValueError("bias_grad: dy must have a channel axis (..., C), got a 0-d array")
    return dy.reshape(-1, dy.shape[-1]).sum(axis=0) if dy.shape[-1] else np.zeros(0, dy.dtype)


_FROM_OUTPUT = ("linear", "relu", "sigmoid", "tanh")


def act_bias_grad(y, dy, activation):
    """Backward of act(z) with z = x·W + b, read off the output y = act(z):
    dz = act'(y)·dy (for relu, y > 0 exactly where z > 0) and db = Σ dz over all
    but the last axis. Returns (dz, db)."""
    if activation not in _FROM_OUTPUT:
        raise ValueError(f"act_bias_grad: activation {activation!r} cannot be differentiated from its output; "
                         f"expected one of {_FROM_OUTPUT}")
    dz = dy if activation == "linear" else globals()[activation + "_grad"](y, y, dy)
    return dz, bias_grad(dz)


# ---------------------------------------------------------------- softmax
def softmax(x, axis=-1):
    """exp(x - max) / sum exp(x - max) along ``axis``."""
    x = _float_input("softmax", x)
    if x.size == 0:  # no rows or empty rows: an empty result, as native (np.max would raise)
        np.sum(x, axis=axis)  # still validates axis
        return x.copy()
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along ``axis``, max-subtracted."""
    x = _float_input("log_softmax", x)
    if x.size == 0:
        np.sum(x, axis=axis)
        return x.copy()
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax_grad(y, dy, axis=-1):
    """y = softmax(x): dx = y * (dy - sum(dy * y))."""
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def log_softmax_grad(y, dy, axis=-1):
    """y = log_softmax(x): dx = dy - softmax(x) * sum(dy)."""
    return dy - np.exp(y) * np.sum(dy, axis=axis, keepdims=True)


# ---------------------------------------------------------------- cross-entropy
def _check_sparse_labels(logits, labels):
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"softmax_cross_entropy: labels must have shape {logits.shape[:-1]} "
                         f"for logits of shape {logits.shape}, got {labels.shape}")
    C = logits.shape[-1]
    bad = (labels < 0) | (labels >= C)
    if np.any(bad):
        i = int(np.flatnonzero(bad.ravel())[0])
        lab = int(labels.ravel()[i])
        raise ValueError(f"softmax_cross_entropy: label {lab} at index {i} is out of range "
                         f"[0, {C}) for {C} classes")


def softmax_cross_entropy(logits, labels):
    """Fused softmax + cross-entropy over the last axis.

    logits (..., C); labels either integer class ids of shape logits.shape[:-1]
    (sparse) or float probabilities of logits.shape (dense). Returns
    ``(loss, dlogits)``: loss (...,) = -sum t * log_softmax(logits) and
    dlogits = softmax(logits) - t, per sample (not divided by the batch).
    """
    labels = np.asarray(labels)
    logp = log_softmax(logits)
    if np.issubdtype(labels.dtype, np.integer):
        _check_sparse_labels(logits, labels)
        target = np.zeros_like(logits)
        np.put_along_axis(target, labels[..., None].astype(np.int64), 1, axis=-1)
    else:
        if labels.shape != logits.shape:
            raise ValueError(f"softmax_cross_entropy: dense labels must have the shape of logits "
                             f"{logits.shape}, got {labels.shape}")
        target = labels.astype(logits.dtype, copy=False)
    # 0 · log p = 0 even where p underflows to 0 (logp = -inf): the term is absent, not NaN (native agrees)
    loss = -np.sum(np.where(target != 0, target * logp, 0), axis=-1)
    return loss, np.exp(logp) - target
