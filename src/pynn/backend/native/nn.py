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
from ..numpy import activations as _table, nn as _refnn

_F32 = np.dtype(np.float32)


def _f32(*arrays):
    return all(isinstance(a, np.ndarray) and a.dtype == _F32 for a in arrays)


_c = np.ascontiguousarray


# ---------------------------------------------------------------- activations
# The activations of _C's elementwise kernels, GEMM and convolution epilogues (one list in C++,
# common/activation.h) and those it can differentiate from the output alone.
NATIVE_ACTIVATIONS = frozenset(_C.activation_names()) & frozenset(_table.ACTIVATIONS)
NATIVE_FROM_OUTPUT = frozenset(n for n in NATIVE_ACTIVATIONS if _C.activation_from_output(n))


# np.ascontiguousarray makes a 0-d array 1-d: results take x's shape back.
def _act_forward(x, name, alpha):
    return _C.act_forward(_c(x), name, alpha).reshape(x.shape)


def _act_backward(x, y, dy, name, alpha):
    return _C.act_backward(_c(x), _c(y), _c(dy), name, alpha).reshape(x.shape)


def _native_kernels(name):
    """name(x[, alpha]) and name_grad(x, y, dy[, alpha]) over _C.act_forward/act_backward,
    with the reference kernel's signature; non-float32 inputs go to the reference kernel."""
    ref, ref_grad = getattr(_refnn, name), getattr(_refnn, name + "_grad")
    param = _table.ACTIVATIONS[name].param
    if param is None:
        def forward(x):
            x = _table.float_input(name, x)   # integer and bool input computes in float32, as the reference
            return _act_forward(x, name, 0.0) if _f32(x) else ref(x)

        def grad(x, y, dy):
            return _act_backward(x, y, dy, name, 0.0) if _f32(x, y, dy) else ref_grad(x, y, dy)
    else:
        def forward(x, alpha=param[1]):
            x = _table.float_input(name, x)
            return _act_forward(x, name, float(alpha)) if _f32(x) else ref(x, alpha)

        def grad(x, y, dy, alpha=param[1]):
            if not _f32(x, y, dy):
                return ref_grad(x, y, dy, alpha)
            return _act_backward(x, y, dy, name, float(alpha))
    forward.__name__, grad.__name__ = name, name + "_grad"
    forward.__doc__, grad.__doc__ = ref.__doc__, ref_grad.__doc__
    return {name: forward, name + "_grad": grad}


# Kernels of the names _C lacks stay the reference ones (pynn.backend.coverage() says so).
globals().update({k: f for name in sorted(NATIVE_ACTIVATIONS & set(_table.ACTIVATIONS))
                  for k, f in _native_kernels(name).items()})


def activate(y, activation, alpha=None):
    """A float32 product's activation, after a kernel whose epilogue lacks it:
    ``_C.act_forward`` where _C has the activation, else the reference."""
    if activation not in NATIVE_ACTIVATIONS:
        return _table.apply(y, activation, alpha)
    return _C.act_forward(_c(y), activation, _table.param_value(activation, alpha) or 0.0)


# ---------------------------------------------------------------- bias
def bias_add(x, b):
    if not _f32(x, b):
        return _refnn.bias_add(x, b)
    return _C.bias_add(_c(x), _c(b))


def bias_grad(dy):
    # 0-d: the reference's error (np.ascontiguousarray would make it (1,) and sum it)
    return _C.bias_grad(_c(dy)) if _f32(dy) and dy.ndim else _refnn.bias_grad(dy)


def act_bias_grad(y, dy, activation):
    # float64, 0-d, and activations _C cannot differentiate from y (whose error message,
    # if the reference cannot either, the reference owns): the reference.
    if not _f32(y, dy) or y.ndim == 0 or activation not in NATIVE_FROM_OUTPUT:
        return _refnn.act_bias_grad(y, dy, activation)
    return _C.act_bias_backward(_c(y), _c(dy), activation)   # act' and the column sums in one pass


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
    if labels.dtype.kind in "iu":   # np.issubdtype(labels.dtype, np.integer), without its Python-level walk
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


__all__ = [k for k in _refnn.__all__ if k in globals()]   # the kernels this module makes native
