"""Core linear algebra of the numpy reference backend.

``matmul`` is the dense layer's forward in one call: ``act(a @ b + bias)``.
It is the specification the native GEMM is tested against.
"""
from __future__ import annotations

import numpy as np

from . import activations as _act

__all__ = ["matmul", "pack_weight", "packed_matmul"]


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


def check_activation(op, activation):
    """Raise ValueError naming ``op`` unless ``activation`` is None or a name of the table."""
    if activation is not None and activation not in _act.ACTIVATIONS:
        raise ValueError(f"{op}: unknown activation {activation!r} (expected None or one of "
                         f"{sorted(_act.ACTIVATIONS)})")


def matmul(a, b, bias=None, activation=None, alpha=None):
    """``act(a @ b + bias)`` with NumPy's ``@`` semantics.

    a: (..., m, k) or (k,); b: (..., k, n) or (k,); batch dimensions broadcast.
    bias: None or shape (n,) (broadcast over the last dimension of the product).
    activation: None or a name of the activation table (``activations.py``);
    alpha its parameter (leaky_relu's slope, elu's scale), None for the default.
    Returns the product's dtype.
    """
    a, b = np.asarray(a), np.asarray(b)
    check_matmul_shapes(a, b)
    check_activation("matmul", activation)
    out = a @ b
    if bias is not None:
        out = out + np.asarray(bias, dtype=out.dtype)
    return out if activation is None else _act.apply(out, activation, alpha)


def pack_weight(w):
    """A snapshot of the 2-D weight ``w`` (k, n) prepared for repeated ``x @ w``.

    The reference keeps a read-only copy; the native backend packs it into the GEMM
    kernel's panel layout once (``_C.PackedMatrix``). Either way later writes to ``w``
    are NOT seen: the caller packs again when the weights change.
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"pack_weight: w must be 2-D (k, n), got shape {w.shape}")
    packed = np.array(w, copy=True)
    packed.flags.writeable = False
    return packed


def packed_matmul(x, packed, bias=None, activation=None, alpha=None):
    """``act(x @ W + bias)`` with W given by ``pack_weight``: x (..., k) -> (..., n)."""
    x = np.asarray(x)
    if not isinstance(packed, np.ndarray) or packed.ndim != 2:
        raise TypeError(f"packed_matmul: packed must come from this backend's pack_weight, got {type(packed).__name__}")
    if x.ndim == 0 or x.shape[-1] != packed.shape[0]:
        raise ValueError(f"packed_matmul: x has shape {x.shape} but the packed weight has shape {packed.shape}: "
                         f"expected x (..., {packed.shape[0]})")
    check_activation("packed_matmul", activation)
    return matmul(x, packed, bias, activation, alpha)
