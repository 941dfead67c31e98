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

from .. import _alignment, backend
from ..autograd import Function, Tensor
from .activation import check_fusable
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


def _packed_kernel(wq, wk, wv):
    """The query, key and value kernels (D, H, d) side by side as one (D, H·(2dk + dv)) array,
    64-byte aligned so the native GEMM reads it in place (no B packing); a fresh copy per
    call, since the weights change between steps."""
    d = wq.shape[0]
    parts = [w.reshape(d, -1) for w in (wq, wk, wv)]
    width = sum(p.shape[1] for p in parts)
    if d * width * wq.dtype.itemsize >= _alignment.MIN_BYTES:
        w = _alignment.empty_at((d, width), wq.dtype, 0)
    else:
        w = np.empty((d, width), wq.dtype)
    col = 0
    for p in parts:
        w[:, col:col + p.shape[1]] = p
        col += p.shape[1]
    return w


@register("transformer_encoder_post_norm")
class TransformerEncoderPostNorm(Function):
    """One post-norm Transformer encoder block as one op:

        s1 = x + MHA(x, x);  h = LN1(s1);  s2 = h + FF2(act(FF1(h)));  y = LN2(s2)

    x (B, T, D); the weights in the layers' (Keras) layouts: query/key/value kernels
    (D, H, dk|dv) and biases (H, dk|dv), output kernel (H, dv, D) and bias (D,), the two
    LayerNorms' gamma/beta (D,), FF1 kernel (D, F) and bias (F,), FF2 kernel (F, D) and bias
    (D,). ``activation`` is one whose derivative its output gives (it runs in FF1's GEMM
    epilogue). ``mask`` is a constant (B|1, H|1, T, T) boolean array or None; no dropout.

    Why one op: the composed graph ran ~25 autograd nodes (reshapes, two weight concatenations
    and their backward splits, the residual adds, separate bias-gradient passes). In the
    benchmark step at (32, 64, 128) the time outside the kernels was ~3.5 ms of ~31 ms (one
    thread, CPU time), ~2 ms with this op. The kernels are the same (GEMMs, the fused
    attention, layer norm); the residual adds run inside the layer norm's row pass
    (add_layer_norm), the output-projection and FF2 bias gradients come out of the layer
    norms' backward row pass (layer_norm_grad_with_sum), FF1's output gradient and bias sum
    out of one kernel (matmul_act_grad), and every column sum runs over fixed row blocks, so
    the native result is the same bits at any thread count.
    """

    def forward(self, x, wq, bq, wk, bk, wv, bv, wo, bo, g1, be1, w1, b1, w2, b2, g2, be2, heads=1, key_dim=1,
                value_dim=1, scale=1.0, mask=None, eps1=1e-5, eps2=1e-5, activation="relu"):
        B = _B()
        b, t, d = x.shape
        x2 = x.reshape(b * t, d)
        w = _packed_kernel(wq, wk, wv)
        bias = np.concatenate([bq.reshape(-1), bk.reshape(-1), bv.reshape(-1)])
        qkv = B.matmul(x2, w, bias=bias).reshape(b, t, -1)
        parts = _split_packed(qkv, heads, key_dim, value_dim)
        ctx, weights = B.attention(*parts, scale, mask, None)
        ctx2 = ctx.reshape(b * t, heads * value_dim)
        wo2 = wo.reshape(heads * value_dim, wo.shape[-1])
        a = B.matmul(ctx2, wo2, bias=bo)
        h, s1, m1, i1 = B.add_layer_norm(x2, a, g1, be1, eps1)
        f = B.matmul(h, w1, bias=b1, activation=activation)
        o = B.matmul(f, w2, bias=b2)
        y, s2, m2, i2 = B.add_layer_norm(h, o, g2, be2, eps2)
        self.saved = (x2, w, parts, weights, ctx2, wo2, s1, m1, i1, h, f, s2, m2, i2)
        self.args = (heads, key_dim, value_dim, scale, mask, activation, (b, t, d))
        self.g1, self.w1, self.w2, self.g2 = g1, w1, w2, g2
        return y.reshape(b, t, d)

    def backward(self, gy):
        B = _B()
        x2, w, parts, weights, ctx2, wo2, s1, m1, i1, h, f, s2, m2, i2 = self.saved
        heads, key_dim, value_dim, scale, mask, activation, shape = self.args
        need = self.needs_input_grad
        rows = x2.shape[0]
        # y = LN2(s2): ds2 is also FF2's output gradient, and its column sums FF2's bias gradient.
        ds2, dg2, dbe2, db2 = B.layer_norm_grad_with_sum(s2, gy.reshape(rows, -1), m2, i2, self.g2)
        dw2 = B.matmul(f.T, ds2) if need[13] else None
        dz1, db1 = B.matmul_act_grad(ds2, self.w2, f, activation)    # act'(f)·(ds2 W2ᵀ) and its column sums
        dw1 = B.matmul(h.T, dz1) if need[11] else None
        dh = B.matmul(dz1, self.w1.T)
        dh += ds2                                  # the residual branch of s2 = h + FF(h)
        ds1, dg1, dbe1, dbo = B.layer_norm_grad_with_sum(s1, dh, m1, i1, self.g1)
        dwo = B.matmul(ctx2.T, ds1).reshape(heads, value_dim, -1) if need[7] else None
        dctx = B.matmul(ds1, wo2.T).reshape(parts[2].shape[:2] + (heads, value_dim))
        dqkv = np.empty((rows, w.shape[1]), ds1.dtype)
        b, t, d = shape
        B.attention_grad(dctx, *parts, weights, scale, mask, None,
                         out=_split_packed(dqkv.reshape(b, t, -1), heads, key_dim, value_dim))
        dbias = B.row_block_sums(dqkv)
        dw = B.matmul(x2.T, dqkv) if need[1] or need[3] or need[5] else None
        dx = None
        if need[0]:
            dx = B.matmul(dqkv, w.T)
            dx += ds1                              # the residual branch of s1 = x + MHA(x)
            dx = dx.reshape(shape)
        hk = heads * key_dim
        cuts = ((0, hk), (hk, 2 * hk), (2 * hk, w.shape[1]))
        dws = [None if dw is None else np.ascontiguousarray(dw[:, lo:hi]).reshape(d, heads, -1) for lo, hi in cuts]
        dbs = [dbias[lo:hi].reshape(heads, -1) for lo, hi in cuts]
        # (a weight gradient the graph does not need -- a frozen sublayer -- is None: its GEMM is skipped)
        return (dx, dws[0], dbs[0], dws[1], dbs[1], dws[2], dbs[2], dwo, dbo, dg1, dbe1, dw1, db1, dw2, db2, dg2,
                dbe2)


def transformer_encoder_post_norm(x, wq, bq, wk, bk, wv, bv, wo, bo, g1, be1, w1, b1, w2, b2, g2, be2, heads,
                                  key_dim, value_dim=None, scale=None, mask=None, eps1=1e-5, eps2=1e-5,
                                  activation="relu"):
    """The post-norm Transformer encoder block (see :class:`TransformerEncoderPostNorm`) as one
    differentiable op: LN2(h + FF2(act(FF1(h)))) with h = LN1(x + MHA(x, x)). ``scale``
    defaults to 1/sqrt(key_dim); ``mask`` (broadcast to (B, H, T, T) as NumPy broadcasts, True =
    may attend) is a constant; ``activation`` must be one whose gradient its output gives ("relu", "linear",
    "sigmoid", "tanh", ...)."""
    value_dim = int(value_dim or key_dim)
    scale, mask, _ = _constants("transformer_encoder_post_norm", scale, mask, None, int(key_dim))
    check_fusable("transformer_encoder_post_norm", activation)
    if mask is not None:
        mask = np.asarray(mask, bool)
    xs = x.shape
    if len(xs) != 3 or wq.shape[0] != xs[-1] or wo.shape[-1] != xs[-1] or w2.shape[-1] != xs[-1]:
        raise ValueError(f"transformer_encoder_post_norm: expected x (B, T, D) with D = the query kernel's input "
                         f"and the output/FF2 kernels' output size; got x {tuple(xs)}, query kernel "
                         f"{tuple(wq.shape)}, output kernel {tuple(wo.shape)}, FF2 kernel {tuple(w2.shape)}")
    return TransformerEncoderPostNorm.apply(x, wq, bq, wk, bk, wv, bv, wo, bo, g1, be1, w1, b1, w2, b2, g2, be2,
                                            heads=int(heads), key_dim=int(key_dim), value_dim=value_dim,
                                            scale=scale, mask=mask, eps1=float(eps1), eps2=float(eps2),
                                            activation=activation)
