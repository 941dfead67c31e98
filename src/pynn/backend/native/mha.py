"""Native multi-head attention: ``_C.attention`` / ``_C.attention_backward`` (csrc/nn/attention.cpp),
one fused pass per (batch, head) that reads the (B, T, H, d) projections through their
strides. Float64 (gradient checks) goes to the numpy reference explicitly."""
import numpy as np

from pynn import _C

from ..numpy import mha as _ref

__all__ = ["attention", "attention_grad", "matmul_act_grad", "row_block_sums"]

_f32 = np.dtype(np.float32)


def _native(*arrays):
    return all(a is None or a.dtype == _f32 for a in arrays)


def _mask(mask, shape):
    # A broadcast view (stride 0 along the heads, or along T for a padding mask): no copy.
    return None if mask is None else np.broadcast_to(np.asarray(mask, bool), shape)


def _dropout(dropout, shape):
    return None if dropout is None else np.ascontiguousarray(np.broadcast_to(dropout, shape), np.float32)


def attention(q, k, v, scale, mask=None, dropout=None):
    if not _native(q, k, v, dropout):
        return _ref.attention(q, k, v, scale, mask, dropout)
    b, h, t, s = _ref.check_attention("attention", q, k, v, mask, dropout)
    return _C.attention(q, k, v, float(scale), _mask(mask, (b, h, t, s)), _dropout(dropout, (b, h, t, s)))


def attention_grad(dout, q, k, v, weights, scale, mask=None, dropout=None, out=None):
    if not _native(dout, q, k, v, weights, dropout) or (out is not None and not _native(*out)):
        return _ref.attention_grad(dout, q, k, v, weights, scale, mask, dropout, out)
    b, h, t, s = _ref.check_attention("attention_grad", q, k, v, mask, dropout)
    _ref.check_grad_args(dout, q, k, v, weights, out)
    if out is None:
        out = (np.empty(q.shape, _f32), np.empty(k.shape, _f32), np.empty(v.shape, _f32))
    _C.attention_backward(dout, q, k, v, np.ascontiguousarray(weights), float(scale), _mask(mask, (b, h, t, s)),
                          _dropout(dropout, (b, h, t, s)), *out)
    return tuple(out)


def matmul_act_grad(g, w, y, activation):
    # One pass over row blocks (_C.matmul_act_backward); float64 and activations _C cannot
    # differentiate from y go to the reference.
    from .nn import NATIVE_FROM_OUTPUT
    if not _native(g, w, y) or activation not in NATIVE_FROM_OUTPUT:
        return _ref.matmul_act_grad(g, w, y, activation)
    c = np.ascontiguousarray
    return _C.matmul_act_backward(c(g), c(w), c(y), activation)


def row_block_sums(x):
    if not _native(x) or x.ndim != 2:
        return _ref.row_block_sums(x)
    return _C.row_block_sums(np.ascontiguousarray(x))
