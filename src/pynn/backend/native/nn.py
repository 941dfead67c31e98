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

import inspect

import numpy as np

from pynn import _C
from ..numpy import nn as _refnn

__all__ = list(_refnn.__all__)

_F32 = np.dtype(np.float32)


def _f32(*arrays):
    return all(isinstance(a, np.ndarray) and a.dtype == _F32 for a in arrays)


_c = np.ascontiguousarray


# ---------------------------------------------------------------- activations
# One forward and one ``<name>_grad`` wrapper per native activation, generated from
# ``_C.activation_names()`` (the X-macro list of csrc/common/activation.h), so a new
# activation there needs nothing here. Signatures follow the numpy reference of the
# same name: ``f(x)`` or, when the reference takes an alpha, ``f(x, alpha=<its default>)``;
# ``f_grad(x, y, dy[, alpha])``. Non-float32 inputs go to that reference.
def _alpha_default(ref):
    """The default of the reference's ``alpha`` parameter (the kernels' act_alpha), or
    None if it takes none (then the native function takes none either: a different
    second parameter, such as gelu's ``approximate``, is never passed on as alpha)."""
    param = inspect.signature(ref).parameters.get("alpha") if ref is not None else None
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def _reference(name):
    ref = getattr(_refnn, name, None)
    if ref is None:
        def ref(*args, **kwargs):
            raise TypeError(f"{name}: the native kernel computes float32 only, and the numpy backend has no "
                            f"{name!r} for {[getattr(a, 'dtype', type(a).__name__) for a in args[:1]]} input")
    return ref


# np.ascontiguousarray makes a 0-d array 1-d: results take x's shape back.
def _act_forward(x, name, alpha):
    return _C.act_forward(_c(x), name, alpha).reshape(x.shape)


def _act_backward(x, y, dy, name, alpha):
    return _C.act_backward(_c(x), _c(y), _c(dy), name, alpha).reshape(x.shape)


def _input(name, x):
    """relu keeps integer dtypes (max(x, 0) is exact there); every other activation computes
    integer and bool input in float32 (as the reference); complex input is a TypeError."""
    if name == "relu":
        x = np.asarray(x)
        if x.dtype.kind not in "iubf":
            _refnn._float_input(name, x)
        return x
    return _refnn._float_input(name, x)


def _make_activation(name):
    ref, ref_grad = _reference(name), _reference(name + "_grad")
    default = _alpha_default(getattr(_refnn, name, None))
    if default is None:
        def forward(x):
            x = _input(name, x)
            return _act_forward(x, name, 0.0) if _f32(x) else ref(x)

        def grad(x, y, dy):
            if not _f32(x, y, dy):
                return ref_grad(x, y, dy)
            return _act_backward(x, y, dy, name, 0.0)
    else:
        def forward(x, alpha=default):
            x = _input(name, x)
            return _act_forward(x, name, float(alpha)) if _f32(x) else ref(x, alpha)

        def grad(x, y, dy, alpha=default):
            if not _f32(x, y, dy):
                return ref_grad(x, y, dy, alpha)
            return _act_backward(x, y, dy, name, float(alpha))
    forward.__name__ = forward.__qualname__ = name
    grad.__name__ = grad.__qualname__ = name + "_grad"
    forward.__doc__ = f"Native {name} (float32; other dtypes: the numpy reference)."
    grad.__doc__ = f"Gradient of native {name}: dx = {name}'(x) * dy, y the forward output."
    return forward, grad


_NATIVE_ACTIVATIONS = tuple(_C.activation_names())
for _name in _NATIVE_ACTIVATIONS:
    globals()[_name], globals()[_name + "_grad"] = _make_activation(_name)
del _name
__all__ += [n for a in _NATIVE_ACTIVATIONS for n in (a, a + "_grad") if n not in __all__]


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
    if not _f32(y, dy) or y.ndim == 0 or activation not in _NATIVE_ACTIVATIONS or not _C.activation_from_output(activation):
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
