"""Multi-head scaled dot-product attention, NumPy reference.

Operands are laid out as a projection GEMM leaves them: q (B, T, H, dk), k (B, S, H, dk),
v (B, S, H, dv), the output (B, T, H, dv); the attention weights are (B, H, T, S). Per
batch b and head h::

    scores  = scale · q[b, :, h] · k[b, :, h]ᵀ, set to −1e9 where ``mask`` is False
    weights = softmax(scores) over S
    out     = (weights · dropout) · v[b, :, h]

``mask``: None or booleans broadcastable to (B, H, T, S) (True = may attend). −1e9 rather
than −inf, as Keras: a fully masked row becomes uniform instead of NaN. ``dropout``: None
or multipliers broadcastable to (B, H, T, S) (0 or 1/(1 − rate): inverted dropout).
"""
from __future__ import annotations

import numpy as np

from .nn import softmax, softmax_grad

__all__ = ["attention", "attention_grad", "matmul_act_grad", "row_block_sums"]

MASKED = -1e9


def check_attention(op, q, k, v, mask=None, dropout=None):
    """ValueError naming ``op`` unless the shapes fit; returns (B, H, T, S)."""
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"{op}: expected q (B, T, H, dk), k (B, S, H, dk), v (B, S, H, dv), 4-D each; got "
                         f"{q.shape}, {k.shape}, {v.shape}")
    b, t, h, dk = q.shape
    s = k.shape[1]
    if k.shape != (b, s, h, dk) or v.shape[:3] != (b, s, h):
        raise ValueError(f"{op}: k must be {(b, 'S', h, dk)} and v {(b, 'S', h, 'dv')} for q {q.shape}; "
                         f"got k {k.shape}, v {v.shape}")
    for name, m in (("mask", mask), ("dropout", dropout)):
        if m is not None:
            try:
                np.broadcast_shapes(np.shape(m), (b, h, t, s))
            except ValueError:
                raise ValueError(f"{op}: {name} of shape {np.shape(m)} does not broadcast to the weights' "
                                 f"(B, H, T, S) = {(b, h, t, s)}") from None
            if len(np.shape(m)) > 4:
                raise ValueError(f"{op}: {name} must have at most 4 dimensions (B, H, T, S), got {np.shape(m)}")
    return b, h, t, s


def check_grad_args(dout, q, k, v, weights, out):
    """ValueError unless dout, weights and the ``out`` buffers have the shapes attention_grad needs."""
    b, t, h, _ = q.shape
    s = k.shape[1]
    if dout.shape != (b, t, h, v.shape[3]) or weights.shape != (b, h, t, s):
        raise ValueError(f"attention_grad: expected dout {(b, t, h, v.shape[3])} and weights {(b, h, t, s)}, "
                         f"got {dout.shape} and {weights.shape}")
    if out is not None and (len(out) != 3 or tuple(o.shape for o in out) != (q.shape, k.shape, v.shape)):
        raise ValueError(f"attention_grad: out must be three arrays of shapes {q.shape}, {k.shape}, {v.shape}")


def _heads(x):
    """(B, T, H, d) -> (B, H, T, d), a view."""
    return np.swapaxes(x, 1, 2)


def attention(q, k, v, scale, mask=None, dropout=None):
    """Returns (out (B, T, H, dv), weights (B, H, T, S)); see the module docstring."""
    check_attention("attention", q, k, v, mask, dropout)
    scale = float(scale)   # a Python float keeps float32 operands float32
    scores = scale * (_heads(q) @ np.swapaxes(_heads(k), -1, -2))
    if mask is not None:
        scores = np.where(mask, scores, np.asarray(MASKED, scores.dtype))
    weights = softmax(scores, axis=-1)
    p = weights if dropout is None else weights * dropout
    return np.ascontiguousarray(_heads(p @ _heads(v))), weights


def attention_grad(dout, q, k, v, weights, scale, mask=None, dropout=None, out=None):
    """Gradients (dq, dk, dv) of :func:`attention`'s output for the output gradient dout
    (B, T, H, dv), given the weights it returned. ``out``: None, or three arrays of the
    shapes of q, k, v that receive the gradients (views of one packed buffer, say) and are
    returned."""
    check_attention("attention_grad", q, k, v, mask, dropout)
    check_grad_args(dout, q, k, v, weights, out)
    scale = float(scale)
    g = _heads(dout)
    p = weights if dropout is None else weights * dropout
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(_heads(v), -1, -2)
    if dropout is not None:
        dp = dp * dropout
    ds = softmax_grad(weights, dp, axis=-1)
    if mask is not None:
        ds = np.where(mask, ds, np.asarray(0, ds.dtype))   # the masked scores were constants
    dq = scale * (ds @ _heads(k))
    dk = scale * (np.swapaxes(ds, -1, -2) @ _heads(q))
    grads = (_heads(dq), _heads(dk), _heads(dv))
    if out is None:
        return tuple(np.ascontiguousarray(x) for x in grads)
    for o, x in zip(out, grads):
        o[...] = x
    return tuple(out)


def matmul_act_grad(g, w, y, activation):
    """(dz, db) with dz = act'(y)·(g @ wᵀ) and db = Σ dz over the rows: the gradient at the
    output z of an activated Dense layer y = act(z) whose successor has kernel w (k, n) and
    output gradient g (rows, n) (the Transformer block's feed-forward). y (rows, k)."""
    if g.ndim != 2 or w.ndim != 2 or y.ndim != 2 or g.shape[1] != w.shape[1] or y.shape != (g.shape[0], w.shape[0]):
        raise ValueError(f"matmul_act_grad: expected g (rows, n), w (k, n), y (rows, k); got g {g.shape}, "
                         f"w {w.shape}, y {y.shape}")
    from .nn import act_bias_grad
    return act_bias_grad(y, g @ w.T, activation)


def row_block_sums(x):
    """x.sum(0) of a 2-D x (the packed Q|K|V projection's bias gradient). The native kernel
    sums fixed row blocks, so its bits do not depend on the thread count."""
    if x.ndim != 2:
        raise ValueError(f"row_block_sums: expected a 2-D (rows, C) array, got shape {x.shape}")
    return x.sum(axis=0)
