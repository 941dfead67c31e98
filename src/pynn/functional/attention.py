"""Multi-head scaled dot-product attention as one differentiable op (the backends'
``attention`` / ``attention_grad`` kernels): MultiHeadAttention's core without head
transposes, a separate scale, a ``where`` for the mask or a dropout op around it.

Heads are read as (B, T, H, d), the layout of a projection's (B, T, H·d) output, so the
projections feed it with a reshape (a view) and its output feeds the output projection
the same way. For self-attention, ``packed_self_attention`` takes the one packed
Q|K|V projection and returns its gradient as one buffer, so the backward pass runs one
GEMM for dX and one for dW instead of three each.
"""
import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from .registry import register


def _B():
    return backend.current()


@register("dot_product_attention")
class DotProductAttention(Function):
    """softmax(scale·q·kᵀ, masked) · v per batch and head; q (B, T, H, dk), k (B, S, H, dk),
    v (B, S, H, dv) -> (B, T, H, dv). ``mask``/``dropout`` are constants (no gradient)."""

    def forward(self, q, k, v, scale=1.0, mask=None, dropout=None):
        self.q, self.k, self.v, self.scale, self.mask, self.dropout = q, k, v, scale, mask, dropout
        out, self.weights = _B().attention(q, k, v, scale, mask, dropout)
        return out

    def backward(self, g):
        return _B().attention_grad(g, self.q, self.k, self.v, self.weights, self.scale, self.mask, self.dropout)


def _split_packed(qkv, heads, key_dim, value_dim):
    """Views q (B, T, H, dk), k (B, T, H, dk), v (B, T, H, dv) of a packed (B, T, H·(2dk + dv))."""
    b, t, width = qkv.shape
    hk = heads * key_dim
    if width != heads * (2 * key_dim + value_dim):
        raise ValueError(f"packed_self_attention: the packed projection has {width} features, expected "
                         f"heads * (2 * key_dim + value_dim) = {heads * (2 * key_dim + value_dim)}")
    return (qkv[..., :hk].reshape(b, t, heads, key_dim), qkv[..., hk:2 * hk].reshape(b, t, heads, key_dim),
            qkv[..., 2 * hk:].reshape(b, t, heads, value_dim))


@register("packed_self_attention")
class PackedSelfAttention(Function):
    """Self-attention on one packed projection qkv (B, T, H·dk | H·dk | H·dv) -> (B, T, H, dv);
    the backward writes dq, dk, dv straight into one (B, T, H·(2dk + dv)) gradient."""

    def forward(self, qkv, heads=1, key_dim=1, value_dim=1, scale=1.0, mask=None, dropout=None):
        self.parts = _split_packed(qkv, heads, key_dim, value_dim)
        self.shape, self.dtype = qkv.shape, qkv.dtype
        self.scale, self.mask, self.dropout = scale, mask, dropout
        out, self.weights = _B().attention(*self.parts, scale, mask, dropout)
        return out

    def backward(self, g):
        grad = np.empty(self.shape, self.dtype)
        heads, key_dim = self.parts[0].shape[2:]
        _B().attention_grad(g, *self.parts, self.weights, self.scale, self.mask, self.dropout,
                            out=_split_packed(grad, heads, key_dim, self.parts[2].shape[3]))
        return (grad,)


def _constants(op, scale, mask, dropout, key_dim):
    """The float scale (None: 1/sqrt(key_dim), Keras' and PyTorch's default) and the mask and
    dropout arrays; these are constants of the op, so a Tensor that asks for a gradient is
    refused rather than silently detached."""
    for name, a in (("scale", scale), ("mask", mask), ("dropout", dropout)):
        if isinstance(a, Tensor) and a.requires_grad:
            raise TypeError(f"{op}: {name} is a constant (no gradient flows to it); got a Tensor that "
                            f"requires grad. A learnable scale can multiply q instead.")
    unwrap = lambda a: a.data if isinstance(a, Tensor) else a   # noqa: E731
    scale = unwrap(scale)
    scale = 1.0 / np.sqrt(key_dim) if scale is None else float(scale)
    return scale, unwrap(mask), unwrap(dropout)


def dot_product_attention(q, k, v, scale=None, mask=None, dropout=None):
    """Multi-head attention over (B, T, H, d) heads: softmax(scale·q·kᵀ) · v, with
    masked scores (``mask`` False, broadcast to (B, H, T, S)) set to −1e9 and ``dropout``
    multipliers (B, H, T, S) applied to the weights. ``scale`` defaults to 1/sqrt(dk), as
    ``keras.ops.dot_product_attention`` and PyTorch's ``scaled_dot_product_attention``.
    Returns (B, T, H, dv)."""
    scale, mask, dropout = _constants("dot_product_attention", scale, mask, dropout, q.shape[-1])
    return DotProductAttention.apply(q, k, v, scale=scale, mask=mask, dropout=dropout)


def packed_self_attention(qkv, heads, key_dim, value_dim, scale=None, mask=None, dropout=None):
    """:func:`dot_product_attention` of the three parts of one packed projection
    qkv (B, T, H·dk | H·dk | H·dv), query, key and value in that order; ``scale`` defaults
    to 1/sqrt(key_dim)."""
    scale, mask, dropout = _constants("packed_self_attention", scale, mask, dropout, int(key_dim))
    return PackedSelfAttention.apply(qkv, heads=int(heads), key_dim=int(key_dim), value_dim=int(value_dim),
                                     scale=scale, mask=mask, dropout=dropout)
