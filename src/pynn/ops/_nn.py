"""pynn's own array functions (no NumPy namesake): activations, fused dense,
convolution, pooling, losses. Arrays run on the active backend's kernels; a
Tensor input records the graph through :mod:`pynn.functional`."""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, no_grad
from ._numeric import _keep_ufunc_methods, face


def _arr(x):
    # Lists and scalars become arrays first, as NumPy would take them.
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def _act(name, doc):
    fn = getattr(F, name)

    def f(x):
        return fn(x) if isinstance(x, Tensor) else getattr(backend.current(), name)(_arr(x))
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    return face("dual")(f)


relu = _act("relu", "max(x, 0) elementwise (native kernel for float32 arrays); a Tensor records the graph.")
sigmoid = _act("sigmoid", "1 / (1 + exp(-x)), overflow-safe; a Tensor records the graph.")
gelu = _act("gelu", "GELU (erf form, as Keras' approximate=False); a Tensor records the graph.")


@face("dual")
def tanh(x, /, *args, **kwargs):
    """NumPy's ``tanh`` ufunc for arrays (measured faster than the native activation kernel, whose
    strength is the fused GEMM epilogue); a Tensor records the graph."""
    if isinstance(x, Tensor):
        if args or kwargs:
            raise TypeError("pynn.ops.tanh: NumPy-only arguments are not supported on a pynn.Tensor")
        return F.tanh(x)
    return np.tanh(x, *args, **kwargs)


_keep_ufunc_methods(tanh, np.tanh)


@face("dual")
def leaky_relu(x, alpha=0.2):
    """x if x > 0 else alpha·x; a Tensor records the graph."""
    return F.leaky_relu(x, alpha) if isinstance(x, Tensor) else backend.current().leaky_relu(_arr(x), alpha=alpha)


@face("dual")
def elu(x, alpha=1.0):
    """x if x > 0 else alpha·(exp(x) - 1); a Tensor records the graph."""
    return F.elu(x, alpha) if isinstance(x, Tensor) else backend.current().elu(_arr(x), alpha=alpha)


@face("dual")
def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, max-shifted (native row kernel for float32); Tensors record the graph."""
    return F.softmax(x, axis) if isinstance(x, Tensor) else backend.current().softmax(_arr(x), axis=axis)


@face("dual")
def log_softmax(x, axis=-1):
    """x - logsumexp(x) along ``axis``; a Tensor records the graph."""
    return F.log_softmax(x, axis) if isinstance(x, Tensor) else backend.current().log_softmax(_arr(x), axis=axis)


@face("dual")
def dense(x, w, b=None, activation=None):
    """``activation(x @ w + b)`` in one fused kernel (activation: relu, sigmoid, tanh, gelu, ...);
    with a Tensor argument it records the graph (``pynn.functional.dense``)."""
    if isinstance(x, Tensor) or isinstance(w, Tensor) or isinstance(b, Tensor):
        return F.dense(x, w, b, activation or "linear")
    return backend.current().matmul(_arr(x), _arr(w), bias=b, activation=activation)


def bias_add(x, b):
    """``x + b`` with b (C,) broadcast over the last axis (arrays only)."""
    return backend.current().bias_add(_arr(x), _arr(b))


def softmax_cross_entropy(logits, labels):
    """Per-sample loss and d loss / d logits, fused: ``(loss, dlogits)`` (arrays only; on Tensors
    use ``pynn.functional.softmax_cross_entropy``, whose gradient comes from backward)."""
    if isinstance(logits, Tensor):
        raise TypeError("pynn.ops.softmax_cross_entropy returns (loss, dlogits) arrays; for Tensors use "
                        "pynn.functional.softmax_cross_entropy(logits, labels)")
    return backend.current().softmax_cross_entropy(_arr(logits), labels)


def ctc_loss(log_probs, labels, input_lengths, label_lengths, blank=0, reduction="mean", zero_infinity=False):
    """CTC loss of log_probs (N, T, C) against padded labels (N, S); see pynn.functional.ctc_loss."""
    with no_grad():
        return F.ctc_loss(log_probs, labels, input_lengths, label_lengths, blank, reduction, zero_infinity).data


@face("dual")
def conv2d(x, w, b=None, strides=1, padding="valid", dilation_rate=1):
    """NHWC convolution: x (N, H, W, C_in), w (kh, kw, C_in, C_out), b (C_out,) -> (N, OH, OW, C_out).
    ``padding``: "valid" | "same" (TensorFlow rules). Tensors record the graph."""
    from ..functional.conv import _pair
    if isinstance(x, Tensor) or isinstance(w, Tensor) or isinstance(b, Tensor):
        return F.conv2d(x, w, b, strides, padding, dilation_rate)
    return backend.current().conv2d(x, w, b, _pair(strides), padding, _pair(dilation_rate))


@face("dual")
def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling of an NHWC array; ``strides`` defaults to ``pool_size``. Tensors record the graph."""
    from ..functional.conv import _pair
    if isinstance(x, Tensor):
        return F.max_pool2d(x, pool_size, strides, padding)
    return backend.current().max_pool2d(x, _pair(pool_size), None if strides is None else _pair(strides), padding)


@face("dual")
def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling of an NHWC array; "same" padding averages over the real cells only."""
    from ..functional.conv import _pair
    if isinstance(x, Tensor):
        return F.avg_pool2d(x, pool_size, strides, padding)
    return backend.current().avg_pool2d(x, _pair(pool_size), None if strides is None else _pair(strides), padding)
