"""Native matmul: thin wrapper over ``_C.gemm`` / ``_C.bmm`` (csrc/gemm/).

float32 only; any other dtype (float64 gradient checks, integers) goes to the
numpy reference explicitly. Views (``w.T``, ``x[::2]``, broadcast batch views)
are passed with their strides: nothing is copied on the way in.
"""
from __future__ import annotations

import numpy as np

from pynn import _C

from ..numpy import activations as _table, core as _ref
from .nn import NATIVE_ACTIVATIONS, activate

__all__ = ["matmul", "pack_weight", "packed_matmul"]

_f32 = np.dtype(np.float32)
_ndarray = np.ndarray
# Epilogue name -> the act_alpha the slow path below passes when ``alpha`` is None: the
# activations _C fuses that take no parameter (the dense layers' usual relu, linear...).
_NO_PARAM = {name: 0.0 for name in NATIVE_ACTIVATIONS if _table.get(name).param is None}
_NO_PARAM["linear"] = 0.0


def matmul(a, b, bias=None, activation=None, alpha=None):
    """``act(a @ b + bias)`` with NumPy's ``@`` semantics; see the numpy backend.

    a: (..., m, k) or (k,); b: (..., k, n) or (k,); bias: None or (n,).
    """
    # The dense layers' case first (2-D float32 arrays, a per-column float32 bias or
    # none, a parameterless epilogue): the checks below, done without the general ones.
    if (type(a) is _ndarray and type(b) is _ndarray and a.ndim == 2 and b.ndim == 2 and alpha is None
            and a.dtype is _f32 and b.dtype is _f32 and a.shape[1] == b.shape[0]
            and a.strides[0] % 4 == 0 and a.strides[1] % 4 == 0 and b.strides[0] % 4 == 0
            and b.strides[1] % 4 == 0):
        act = "linear" if activation is None else activation
        act_alpha = _NO_PARAM.get(act)
        if bias is None and act == "linear":
            return _C.mm(a, b)  # the plain product (backprop's X^T dY, dY W^T): no keyword parsing
        if act_alpha is not None and (bias is None or (type(bias) is _ndarray and bias.dtype is _f32
                                                       and bias.ndim == 1 and bias.shape[0] == b.shape[1])):
            return _C.gemm(a, b, bias=bias, activation=act, act_alpha=act_alpha)
    a, b = np.asarray(a), np.asarray(b)
    if (a.dtype != np.float32 or b.dtype != np.float32
            or (bias is not None and np.asarray(bias).dtype != np.float32)):
        return _ref.matmul(a, b, bias, activation, alpha)
    _ref.check_matmul_shapes(a, b)
    # A view whose byte strides are not whole floats (a field of a packed record array):
    # the kernels walk in floats, so copy it, as the numpy reference reads it.
    if any(s % 4 for s in a.strides):
        a = np.ascontiguousarray(a)
    if any(s % 4 for s in b.strides):
        b = np.ascontiguousarray(b)
    _ref.check_activation("matmul", activation)
    if activation is not None and activation not in NATIVE_ACTIVATIONS:
        # No epilogue for it in _C: the product, then the activation's kernel.
        return activate(matmul(a, b, bias), activation, alpha)
    act = activation or "linear"
    alpha = _table.param_value(act, alpha) or 0.0
    if bias is not None:
        bias = np.asarray(bias)
        if b.ndim == 1 or bias.shape != (b.shape[-1],):
            # Not a per-column vector (a 1-D b has no columns; its bias broadcasts
            # against the result's last axis instead): the reference handles it.
            return _ref.matmul(a, b, bias, activation, alpha)

    if a.ndim <= 2 and b.ndim <= 2:
        # 1-D operands as NumPy does: a vector is a row (on the left) or a column
        # (on the right), and that dimension is dropped from the result.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out = _C.gemm(a2, b2, bias=bias, activation=act, act_alpha=alpha)
        if a.ndim == 1:
            out = out[0]
        if b.ndim == 1:
            out = out[..., 0]
        return out

    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    m, k = a2.shape[-2:]
    n = b2.shape[-1]
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])

    flat = _rows_view(a2, k) if b2.ndim == 2 else None
    if flat is not None:
        # (..., m, k) @ (k, n) is one tall GEMM over all rows: better than a batch of small ones.
        out = _C.gemm(flat, b2, bias=bias, activation=act, act_alpha=alpha).reshape(batch + (m, n))
    else:
        # Broadcast the batch dimensions as stride-0 views (no copies), then one bmm.
        a3, b3 = _batch_view(a2, batch), _batch_view(b2, batch)
        # A permuted operand (e.g. attention's (B, heads, T, d) views of a (B, T, heads, d)
        # projection) has batch dims that no single stride walks: one contiguous copy of
        # it costs far less than a bmm call per leading index. Broadcast operands are not
        # copied (that would materialise the broadcast).
        if a3 is None and a2.shape[:-2] == batch:
            a3 = _batch_view(np.ascontiguousarray(a2), batch)
        if b3 is None and b2.shape[:-2] == batch:
            b3 = _batch_view(np.ascontiguousarray(b2), batch)
        if a3 is not None and b3 is not None:
            out = _C.bmm(a3, b3, bias=bias, activation=act, act_alpha=alpha)
        else:
            # The batch dimensions do not collapse to one stride: one bmm per leading index.
            a4 = np.broadcast_to(a2, batch + a2.shape[-2:])
            b4 = np.broadcast_to(b2, batch + b2.shape[-2:])
            out = np.empty(batch + (m, n), np.float32)
            for idx in np.ndindex(*batch[:-1]):
                out[idx] = _C.bmm(a4[idx], b4[idx], bias=bias, activation=act, act_alpha=alpha)
        out = out.reshape(batch + (m, n))
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def pack_weight(w):
    """The 2-D float32 weight ``w`` (k, n) packed once into the GEMM kernel's panel layout.

    Returns a ``_C.PackedMatrix`` (``.shape == (k, n)``, ``.nbytes``) for ``packed_matmul``:
    a snapshot, later writes to ``w`` are not seen (pack again when the weights change).
    A float64 weight (gradient checks) gets the reference's snapshot, as matmul routes it.
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"pack_weight: w must be 2-D (k, n), got shape {w.shape}")
    if w.dtype != np.float32:
        return _ref.pack_weight(w)
    if any(s % 4 for s in w.strides):
        w = np.ascontiguousarray(w)
    return _C.PackedMatrix(w)


def packed_matmul(x, packed, bias=None, activation=None, alpha=None):
    """``act(x @ W + bias)`` with W from ``pack_weight`` (not repacked): x (..., k) -> (..., n).

    bias: None or (n,); activation/alpha as in ``matmul``. Leading dimensions of x are
    flattened into rows without a copy when their strides allow.
    """
    if isinstance(packed, np.ndarray):   # a float64 weight's reference snapshot
        return _ref.packed_matmul(x, packed, bias, activation, alpha)
    if not isinstance(packed, _C.PackedMatrix):
        raise TypeError(f"packed_matmul: packed must come from pack_weight, got {type(packed).__name__}")
    x = np.asarray(x)
    k, n = packed.shape
    if x.ndim == 0 or x.shape[-1] != k:
        raise ValueError(f"packed_matmul: x has shape {x.shape} but the packed weight has shape {(k, n)}: "
                         f"expected x (..., {k})")
    if x.dtype != np.float32:
        raise TypeError(f"packed_matmul: x must be float32 for a float32 packed weight, got {x.dtype}")
    if bias is not None:
        bias = np.asarray(bias)
        if bias.dtype != np.float32 or bias.shape != (n,):
            raise ValueError(f"packed_matmul: bias must be float32 of shape ({n},), got {bias.dtype} {bias.shape}")
    _ref.check_activation("packed_matmul", activation)
    if activation is not None and activation not in NATIVE_ACTIVATIONS:
        return activate(packed_matmul(x, packed, bias), activation, alpha)
    act = activation or "linear"
    alpha = _table.param_value(act, alpha) or 0.0
    if any(s % 4 for s in x.strides):
        x = np.ascontiguousarray(x)
    lead = x.shape[:-1]
    x2 = x[None, :] if x.ndim == 1 else x
    if x2.ndim > 2:
        rows = _rows_view(x2, k)
        x2 = rows if rows is not None else np.ascontiguousarray(x2).reshape(-1, k)
    out = _C.gemm_packed(x2, packed, bias=bias, activation=act, act_alpha=alpha)
    return out.reshape(lead + (n,))


def _collapse(shape, strides):
    """The single stride that walks ``shape`` in C order, or None if there is none."""
    dims = [(s, st) for s, st in zip(shape, strides) if s != 1]
    if not dims:
        return 0
    stride = dims[-1][1]
    expected = stride
    for s, st in reversed(dims):
        if st != expected:
            return None
        expected = st * s
    return stride


def _rows_view(x, k):
    """x (..., m, k) as a (rows, k) view without a copy, or None."""
    stride = _collapse(x.shape[:-1], x.strides[:-1])
    if stride is None:
        return None
    rows = int(np.prod(x.shape[:-1], dtype=np.int64))
    return np.lib.stride_tricks.as_strided(x, shape=(rows, k), strides=(stride, x.strides[-1]),
                                           writeable=False)


def _batch_view(x, batch):
    """x (..., r, c) broadcast to batch + (r, c) as a (B, r, c) view without a copy, or None."""
    x = np.broadcast_to(x, batch + x.shape[-2:])
    stride = _collapse(x.shape[:-2], x.strides[:-2])
    if stride is None:
        return None
    nb = int(np.prod(batch, dtype=np.int64))
    return np.lib.stride_tricks.as_strided(x, shape=(nb,) + x.shape[-2:],
                                           strides=(stride,) + x.strides[-2:], writeable=False)
