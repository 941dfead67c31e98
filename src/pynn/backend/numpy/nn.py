"""Neural-network kernels, NumPy reference: the activations' kernels (made from
the table in ``activations.py``), bias add/grad, softmax / log-softmax and the
fused softmax cross-entropy.

These read like the math and are the spec the native kernels are tested
against. Every function takes and returns ndarrays; outputs are new arrays of
the input's shape and dtype (float32 or float64). In the ``*_grad`` kernels
``x`` is the forward input, ``y`` the forward output and ``dy`` the upstream
gradient; they return ``dx = f'(x) * dy``.
"""
from __future__ import annotations

import numpy as np

from . import activations as _act

# relu, relu_grad, sigmoid, ...: one kernel pair per activation of the table.
globals().update(_act.KERNELS)
_float_input = _act.float_input

__all__ = list(_act.KERNELS) + [
    "bias_add", "bias_grad", "act_bias_grad",
    "softmax", "softmax_grad", "log_softmax", "log_softmax_grad",
    "softmax_cross_entropy",
]


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


def act_bias_grad(y, dy, activation):
    """Backward of act(z) with z = x·W + b, read off the output y = act(z):
    dz = act'(y)·dy and db = Σ dz over all but the last axis. Only for the
    activations whose gradient the output determines (``from_output`` in the
    table; for relu, y > 0 exactly where z > 0). Returns (dz, db)."""
    act = _act.ACTIVATIONS.get(activation)
    if act is None or not act.from_output:
        raise ValueError(f"act_bias_grad: activation {activation!r} cannot be differentiated from its output; "
                         f"expected one of {sorted(FROM_OUTPUT)}")
    dz = act.grad(y, y, dy, None)
    return dz, bias_grad(dz)


FROM_OUTPUT = frozenset(name for name, act in _act.ACTIVATIONS.items() if act.from_output)


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
