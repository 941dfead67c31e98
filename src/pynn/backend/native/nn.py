"""Neural-network kernels, native: thin wrappers over ``pynn._C`` (csrc/nn/).

Same names and signatures as :mod:`pynn.backend.numpy.nn`. The C++ kernels
compute float32 on C-contiguous buffers; these wrappers

- route any non-float32 input (float64 from gradient checks, float16, ...) to
  the numpy reference kernel, explicitly;
- copy non-contiguous inputs (transposed or sliced views) with
  ``np.ascontiguousarray`` -- a no-op for contiguous ones;
- for softmax/log-softmax and their grads along an axis other than the last,
  move that axis to the end (one copy), run the row kernel, and return the
  result viewed back in the input's axis order (a view of a new array).

Validation (shapes, dtypes, contiguity, label range) lives in the binding, so
``_C`` itself is safe to call directly. softmax_cross_entropy converts integer
labels of any dtype to int64 and dense float targets to float32 (the logits'
dtype) before the call.
"""
from __future__ import annotations

import numpy as np

from pynn import _C
from ..numpy import nn as _refnn

__all__ = list(_refnn.__all__)

_F32 = np.dtype(np.float32)


def _f32(*arrays):
    return all(isinstance(a, np.ndarray) and a.dtype == _F32 for a in arrays)


_c = np.ascontiguousarray


# np.ascontiguousarray makes a 0-d array 1-d: the result takes x's shape back.
def _act_forward(x, name, alpha):
    return _C.act_forward(_c(x), name, alpha).reshape(x.shape)


def _act_backward(x, y, dy, name, alpha):
    return _C.act_backward(_c(x), _c(y), _c(dy), name, alpha).reshape(x.shape)


# ---------------------------------------------------------------- activations
def relu(x):
    return _act_forward(x, "relu", 0.0) if _f32(x) else _refnn.relu(x)


def relu_grad(x, y, dy):
    if not _f32(x, y, dy):
        return _refnn.relu_grad(x, y, dy)
    return _act_backward(x, y, dy, "relu", 0.0)


def leaky_relu(x, alpha=0.2):
    x = _refnn._float_input("leaky_relu", x)
    if not _f32(x):
        return _refnn.leaky_relu(x, alpha)
    return _act_forward(x, "leaky_relu", float(alpha))


def leaky_relu_grad(x, y, dy, alpha=0.2):
    if not _f32(x, y, dy):
        return _refnn.leaky_relu_grad(x, y, dy, alpha)
    return _act_backward(x, y, dy, "leaky_relu", float(alpha))


def sigmoid(x):
    x = _refnn._float_input("sigmoid", x)
    return _act_forward(x, "sigmoid", 0.0) if _f32(x) else _refnn.sigmoid(x)


def sigmoid_grad(x, y, dy):
    if not _f32(x, y, dy):
        return _refnn.sigmoid_grad(x, y, dy)
    return _act_backward(x, y, dy, "sigmoid", 0.0)


def tanh(x):
    x = _refnn._float_input("tanh", x)
    return _act_forward(x, "tanh", 0.0) if _f32(x) else _refnn.tanh(x)


def tanh_grad(x, y, dy):
    if not _f32(x, y, dy):
        return _refnn.tanh_grad(x, y, dy)
    return _act_backward(x, y, dy, "tanh", 0.0)


def gelu(x):
    x = _refnn._float_input("gelu", x)
    return _act_forward(x, "gelu", 0.0) if _f32(x) else _refnn.gelu(x)


def gelu_grad(x, y, dy):
    if not _f32(x, y, dy):
        return _refnn.gelu_grad(x, y, dy)
    return _act_backward(x, y, dy, "gelu", 0.0)


def elu(x, alpha=1.0):
    x = _refnn._float_input("elu", x)
    return _act_forward(x, "elu", float(alpha)) if _f32(x) else _refnn.elu(x, alpha)


def elu_grad(x, y, dy, alpha=1.0):
    if not _f32(x, y, dy):
        return _refnn.elu_grad(x, y, dy, alpha)
    return _act_backward(x, y, dy, "elu", float(alpha))


# ---------------------------------------------------------------- bias
def bias_add(x, b):
    if not _f32(x, b):
        return _refnn.bias_add(x, b)
    return _C.bias_add(_c(x), _c(b))


def bias_grad(dy):
    # 0-d: the reference's error (np.ascontiguousarray would make it (1,) and sum it)
    return _C.bias_grad(_c(dy)) if _f32(dy) and dy.ndim else _refnn.bias_grad(dy)


def act_bias_grad(y, dy, activation):
    # float64, 0-d, and activations not readable from y (whose error message the reference owns)
    if not _f32(y, dy) or y.ndim == 0 or activation not in _refnn._FROM_OUTPUT:
        return _refnn.act_bias_grad(y, dy, activation)
    return _C.act_bias_backward(_c(y), _c(dy), activation)


# ---------------------------------------------------------------- softmax
def _last_axis(fn, axis, *arrays):
    """Run row kernel ``fn`` with ``axis`` moved last, and move it back."""
    nd = arrays[0].ndim
    if nd == 0:
        raise ValueError(f"softmax: input must have at least 1 dimension, got shape {arrays[0].shape}")
    ax = axis % nd if -nd <= axis < nd else None
    if ax is None:
        raise ValueError(f"softmax: axis {axis} out of range for shape {arrays[0].shape}")
    if ax == nd - 1:
        return fn(*[_c(a) for a in arrays])
    out = fn(*[_c(np.moveaxis(a, ax, -1)) for a in arrays])
    return np.moveaxis(out, -1, ax)


def softmax(x, axis=-1):
    x = _refnn._float_input("softmax", x)
    if not _f32(x):
        return _refnn.softmax(x, axis)
    return _last_axis(lambda a: _C.softmax(a, False), axis, x)


def log_softmax(x, axis=-1):
    x = _refnn._float_input("log_softmax", x)
    if not _f32(x):
        return _refnn.log_softmax(x, axis)
    return _last_axis(lambda a: _C.softmax(a, True), axis, x)


def softmax_grad(y, dy, axis=-1):
    if not _f32(y, dy):
        return _refnn.softmax_grad(y, dy, axis)
    return _last_axis(lambda a, g: _C.softmax_backward(a, g, False), axis, y, dy)


def log_softmax_grad(y, dy, axis=-1):
    if not _f32(y, dy):
        return _refnn.log_softmax_grad(y, dy, axis)
    return _last_axis(lambda a, g: _C.softmax_backward(a, g, True), axis, y, dy)


# ---------------------------------------------------------------- cross-entropy
def softmax_cross_entropy(logits, labels):
    labels = np.asarray(labels)
    if not _f32(logits) or logits.ndim < 1:
        return _refnn.softmax_cross_entropy(logits, labels)
    C = logits.shape[-1]
    lead = logits.shape[:-1]
    x2 = _c(logits).reshape(-1, C)
    if np.issubdtype(labels.dtype, np.integer):
        if labels.shape != lead:
            raise ValueError(f"softmax_cross_entropy: labels must have shape {lead} "
                             f"for logits of shape {logits.shape}, got {labels.shape}")
        loss, d = _C.softmax_xent_sparse(x2, _c(labels, dtype=np.int64).reshape(-1))
    else:
        if labels.shape != logits.shape:
            raise ValueError(f"softmax_cross_entropy: dense labels must have the shape of logits "
                             f"{logits.shape}, got {labels.shape}")
        t2 = _c(labels, dtype=np.float32).reshape(-1, C)
        loss, d = _C.softmax_xent_dense(x2, t2)
    return loss.reshape(lead), d.reshape(logits.shape)
