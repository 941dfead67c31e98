"""Core linear algebra of the numpy reference backend.

``matmul`` is the dense layer's forward in one call: ``act(a @ b + bias)``.
It is the specification the native GEMM is tested against.
"""
from __future__ import annotations

import numpy as np

from ._erf import erf

__all__ = ["matmul"]

ACTIVATIONS = (None, "linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "elu")


def _activate(x, activation, alpha):
    """The activation applied elementwise, written as its formula."""
    if activation is None or activation == "linear":
        return x
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "leaky_relu":
        return np.where(x > 0, x, alpha * x).astype(x.dtype, copy=False)
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if activation == "tanh":
        return np.tanh(x)
    if activation == "gelu":  # exact erf form: 0.5 x (1 + erf(x / sqrt 2))
        return 0.5 * x * (1 + erf(x / np.sqrt(2).astype(x.dtype)))
    if activation == "elu":
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)
    raise ValueError(f"matmul: unknown activation {activation!r} (expected one of {ACTIVATIONS})")


def check_matmul_shapes(a, b):
    """Raise ValueError naming both shapes when ``a @ b`` is undefined (shared by both backends)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ValueError(f"matmul: a has shape {a.shape} but b has shape {b.shape}: "
                         f"inner dimensions {ka} and {kb} differ")
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    if not batch_a or not batch_b:   # a 2-D (or 1-D) side broadcasts against anything
        return
    try:
        np.broadcast_shapes(batch_a, batch_b)
    except ValueError:
        raise ValueError(f"matmul: a has shape {a.shape} but b has shape {b.shape}: "
                         f"batch dimensions {batch_a} and {batch_b} do not broadcast") from None


def matmul(a, b, bias=None, activation=None, alpha=0.0):
    """``act(a @ b + bias)`` with NumPy's ``@`` semantics.

    a: (..., m, k) or (k,); b: (..., k, n) or (k,); batch dimensions broadcast.
    bias: None or shape (n,) (broadcast over the last dimension of the product).
    activation: None, "linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu" or
    "elu"; alpha is the leaky_relu slope / elu scale. Returns the product's dtype.
    """
    a, b = np.asarray(a), np.asarray(b)
    check_matmul_shapes(a, b)
    if activation not in ACTIVATIONS:
        raise ValueError(f"matmul: unknown activation {activation!r} (expected one of {ACTIVATIONS})")
    out = a @ b
    if bias is not None:
        out = out + np.asarray(bias, dtype=out.dtype)
    return _activate(out, activation, out.dtype.type(alpha))
