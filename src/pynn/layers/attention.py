"""Attention: dot-product (Luong) and additive (Bahdanau) attention, and
multi-head attention with Keras' weight layout.

Masks are boolean, True = may attend. A query-key mask (B, T, S) or a padding
mask on the values (B, S); ``use_causal_mask`` adds the lower triangle.
Masked scores get a large negative value before a stable softmax (max
subtracted), so a fully masked row is uniform rather than NaN, as in Keras.
"""
import numpy as np

from .. import functional as F, initializers
from .base import Layer

_NEG = -1e9


def _combine_masks(scores_shape, value_mask=None, attention_mask=None, causal=False):
    """A boolean mask broadcastable to scores (..., T, S), or None."""
    t, s = scores_shape[-2], scores_shape[-1]
    mask = None
    if value_mask is not None:
        mask = np.asarray(value_mask, bool)[:, None, :]            # (B, 1, S)
    if attention_mask is not None:
        am = np.asarray(attention_mask, bool)
        mask = am if mask is None else mask & am
    if causal:
        tri = np.tril(np.ones((t, s), bool), k=s - t)[None]  # (1, T, S)
        mask = tri if mask is None else mask & tri
    return mask


def masked_softmax(scores, mask):
    """softmax over the last axis with masked positions excluded."""
    if mask is not None:
        while mask.ndim < scores.ndim:  # (B, T, S) -> (B, 1, T, S) for heads
            mask = mask[:, None]
        scores = F.where(mask, scores, np.asarray(_NEG, scores.dtype))
    return F.softmax(scores, axis=-1)


def _same_input(a, b):
    """One input twice: the same Tensor, or two wrapping one array (a layer called on an
    ndarray twice gets two Tensors) when no gradient must be told apart."""
    return a is b or (not a.requires_grad and not b.requires_grad and a.data is b.data)


def _dropout(x, rate, training):
    return F.dropout(x, rate) if training and rate else x


class Attention(Layer):
    """Dot-product attention: softmax(q·kᵀ [· scale]) · v. Call with [query, value]
    or [query, value, key]; ``use_scale`` learns a scalar scale (init 1);
    ``score_mode="concat"`` gives tanh(q + k) scores summed over features.

    Example:
        >>> q, v = np.ones((2, 4, 8), np.float32), np.ones((2, 6, 8), np.float32)
        >>> pynn.layers.Attention()([q, v]).shape
        (2, 4, 8)
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"Attention: score_mode must be 'dot' or 'concat', got {score_mode!r}")
        self.use_scale, self.score_mode, self.dropout = use_scale, score_mode, dropout

    def build(self, input_shape):
        self.scale = self.add_weight("scale", (), "ones") if self.use_scale else None
        self.concat_score_weight = (self.add_weight("concat_score_weight", (), "ones")
                                    if self.score_mode == "concat" else None)
        self.built = True

    def _scores(self, q, k):
        if self.score_mode == "dot":
            scores = q @ F.transpose(k, (0, 2, 1))
            return scores * self.scale if self.scale is not None else scores
        q4 = F.reshape(q, (q.shape[0], q.shape[1], 1, q.shape[2]))
        k4 = F.reshape(k, (k.shape[0], 1, k.shape[1], k.shape[2]))
        inner = q4 + k4 if self.scale is None else (q4 + k4) * self.scale
        return self.concat_score_weight * F.sum(F.tanh(inner), axis=-1)

    def call(self, inputs, training=False, mask=None, use_causal_mask=False, return_attention_scores=False):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(f"{type(self).__name__} {self.name!r}: call it with [query, value] or [query, value, key]")
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) == 3 else v
        if q.shape[-1] != k.shape[-1] or k.shape[1] != v.shape[1]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: query {q.shape}, value {v.shape}, key {k.shape} "
                             "do not fit (query and key share the last axis, key and value the steps)")
        value_mask = mask[1] if mask is not None and len(mask) > 1 else getattr(v, "_keras_mask", None)
        scores = self._scores(q, k)
        weights = masked_softmax(scores, _combine_masks(scores.shape, value_mask, None, use_causal_mask))
        out = _dropout(weights, self.dropout, training) @ v
        query_mask = mask[0] if mask is not None else getattr(q, "_keras_mask", None)
        if query_mask is not None:
            out = out * np.asarray(query_mask, out.dtype)[..., None]
        return (out, weights) if return_attention_scores else out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (input_shape[1][-1],)

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout}


class AdditiveAttention(Attention):
    """Bahdanau attention: scores = Σ scale·tanh(q + k) over features (``scale`` a
    learned vector when ``use_scale``), then softmax and a weighted sum of values.

    Example:
        >>> q, v = np.ones((2, 4, 8), np.float32), np.ones((2, 6, 8), np.float32)
        >>> pynn.layers.AdditiveAttention()([q, v]).shape
        (2, 4, 8)
    """

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=False, score_mode="dot", dropout=dropout, **kwargs)
        self.use_scale = use_scale

    def build(self, input_shape):
        dim = input_shape[0][-1]
        self.scale = self.add_weight("scale", (dim,), "glorot_uniform") if self.use_scale else None
        self.built = True

    def _scores(self, q, k):
        q4 = F.reshape(q, (q.shape[0], q.shape[1], 1, q.shape[2]))
        k4 = F.reshape(k, (k.shape[0], 1, k.shape[1], k.shape[2]))
        t = F.tanh(q4 + k4)
        return F.sum(t * self.scale if self.scale is not None else t, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.pop("score_mode")
        return config


class MultiHeadAttention(Layer):
    """MultiHeadAttention(num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None).

    ``layer(query, value, key=None, attention_mask=None, use_causal_mask=False)``:
    (B, T, D) x (B, S, Dv) -> (B, T, D). Weights as Keras: query/key/value kernels
    (dim, heads, key_dim) with biases (heads, key_dim), output kernel
    (heads, value_dim, D) with bias (D,).

    Example:
        >>> x = np.ones((2, 5, 16), np.float32)
        >>> pynn.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x).shape
        (2, 5, 16)
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if num_heads <= 0 or key_dim <= 0:
            raise ValueError(f"MultiHeadAttention: num_heads and key_dim must be positive, got {num_heads}, {key_dim}")
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim or key_dim)
        self.dropout, self.use_bias, self.output_dim = dropout, use_bias, output_shape
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        q_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        v_shape = input_shape[1] if isinstance(input_shape, list) and len(input_shape) > 1 else q_shape
        k_shape = input_shape[2] if isinstance(input_shape, list) and len(input_shape) > 2 else v_shape
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        out_dim = self.output_dim or q_shape[-1]
        init, binit = self.kernel_initializer, self.bias_initializer

        def dense(name, in_dim, heads_dim):
            k = self.add_weight(f"{name}/kernel", (in_dim, h, heads_dim), init)
            b = self.add_weight(f"{name}/bias", (h, heads_dim), binit) if self.use_bias else None
            return k, b
        self.query_kernel, self.query_bias = dense("query", q_shape[-1], kd)
        self.key_kernel, self.key_bias = dense("key", k_shape[-1], kd)
        self.value_kernel, self.value_bias = dense("value", v_shape[-1], vd)
        self.output_kernel = self.add_weight("attention_output/kernel", (h, vd, out_dim), init)
        self.output_bias = self.add_weight("attention_output/bias", (out_dim,), binit) if self.use_bias else None
        self.built = True

    def _project(self, x, kernel, bias, dim):
        """(B, T, D) -> (B, heads, T, dim) with one GEMM."""
        b, t = x.shape[0], x.shape[1]
        w = F.reshape(kernel, (kernel.shape[0], self.num_heads * dim))
        y = F.dense(x, w, None if bias is None else F.reshape(bias, (self.num_heads * dim,)))
        return F.transpose(F.reshape(y, (b, t, self.num_heads, dim)), (0, 2, 1, 3))

    def __call__(self, query, value=None, key=None, attention_mask=None, use_causal_mask=False,
                 return_attention_scores=False, training=False):
        from .input_layer import is_symbolic
        if isinstance(query, (list, tuple)):  # replayed from a functional graph: [query, value(, key)]
            query, value, key = query[0], query[1], query[2] if len(query) > 2 else None
        if value is None:
            value = query
        inputs = [query, value] + ([key] if key is not None else [])
        kwargs = dict(attention_mask=attention_mask, use_causal_mask=use_causal_mask,
                      return_attention_scores=return_attention_scores)
        if is_symbolic(inputs) and return_attention_scores:
            # Two outputs; compute_output_shape describes only the first.
            from .input_layer import KerasTensor
            out = super().__call__(inputs, training=training, **kwargs)
            scores = (None, self.num_heads, query.shape[1], value.shape[1])
            return [KerasTensor(out.shape, out.dtype, self, out.parents, node=out.node, index=0),
                    KerasTensor(scores, out.dtype, self, out.parents, node=out.node, index=1)]
        return super().__call__(inputs, training=training, **kwargs)

    def _packed_projection(self):
        """The query, key and value kernels side by side (D, H·(2dk + dv)) and their biases:
        self-attention projects once, and its backward runs one GEMM each for dX and dW."""
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        d = self.query_kernel.shape[0]
        w = F.concatenate([F.reshape(self.query_kernel, (d, h * kd)), F.reshape(self.key_kernel, (d, h * kd)),
                           F.reshape(self.value_kernel, (d, h * vd))], axis=1)
        if self.query_bias is None:
            return w, None
        return w, F.concatenate([F.reshape(self.query_bias, (h * kd,)), F.reshape(self.key_bias, (h * kd,)),
                                 F.reshape(self.value_bias, (h * vd,))], axis=0)

    def _heads(self, x, kernel, bias, dim):
        """(B, T, D) -> (B, T, heads, dim): one GEMM, then a reshape (a view)."""
        w = F.reshape(kernel, (kernel.shape[0], self.num_heads * dim))
        y = F.dense(x, w, None if bias is None else F.reshape(bias, (self.num_heads * dim,)))
        return F.reshape(y, (x.shape[0], x.shape[1], self.num_heads, dim))

    def _dropout_multipliers(self, shape, dtype, training):
        """Inverted-dropout multipliers for the attention weights (B, H, T, S), or None."""
        if not (training and self.dropout):
            return None
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MultiHeadAttention {self.name!r}: dropout must be in [0, 1), got {self.dropout}")
        from ..functional.nn import dropout_mask
        return dropout_mask(np.empty(0, dtype), self.dropout, noise_shape=shape)

    def call(self, inputs, training=False, attention_mask=None, use_causal_mask=False,
             return_attention_scores=False):
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        if query.ndim != 3 or value.ndim != 3 or key.shape[1] != value.shape[1]:
            raise ValueError(f"MultiHeadAttention {self.name!r}: expected query (B, T, D), value (B, S, Dv), key "
                             f"(B, S, Dk); got {query.shape}, {value.shape}, {key.shape}")
        b, t, s = query.shape[0], query.shape[1], value.shape[1]
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        mask = _combine_masks((t, s), getattr(value, "_keras_mask", None), attention_mask, use_causal_mask)
        if return_attention_scores:
            # The weights are an output here, differentiable like any other: the op-by-op graph.
            return self._call_returning_scores(query, key, value, mask, training)
        if mask is not None:
            while mask.ndim < 4:   # (B, T, S) -> (B, 1, T, S): every head
                mask = mask[:, None]
        scale = 1.0 / np.sqrt(self.key_dim)
        if _same_input(query, value) and _same_input(key, value):
            w, bias = self._packed_projection()
            qkv = F.dense(query, w, bias)
            drop = self._dropout_multipliers((b, h, t, s), qkv.dtype, training)
            ctx = F.packed_self_attention(qkv, h, kd, vd, scale, mask, drop)
        else:
            q = self._heads(query, self.query_kernel, self.query_bias, kd)
            k = self._heads(key, self.key_kernel, self.key_bias, kd)
            v = self._heads(value, self.value_kernel, self.value_bias, vd)
            drop = self._dropout_multipliers((b, h, t, s), q.dtype, training)
            ctx = F.dot_product_attention(q, k, v, scale, mask, drop)                # (B, T, H, vd)
        ctx = F.reshape(ctx, (b, t, h * vd))
        w_o = F.reshape(self.output_kernel, (h * vd, self.output_kernel.shape[-1]))
        return F.dense(ctx, w_o, self.output_bias)

    def _call_returning_scores(self, query, key, value, mask, training):
        q = self._project(query, self.query_kernel, self.query_bias, self.key_dim)
        k = self._project(key, self.key_kernel, self.key_bias, self.key_dim)
        v = self._project(value, self.value_kernel, self.value_bias, self.value_dim)
        scores = (q * np.asarray(1.0 / np.sqrt(self.key_dim), q.dtype)) @ F.transpose(k, (0, 1, 3, 2))
        weights = masked_softmax(scores, mask)
        ctx = _dropout(weights, self.dropout, training) @ v                       # (B, H, T, vd)
        b, t = query.shape[0], query.shape[1]
        ctx = F.reshape(F.transpose(ctx, (0, 2, 1, 3)), (b, t, self.num_heads * self.value_dim))
        w_o = F.reshape(self.output_kernel, (self.num_heads * self.value_dim, self.output_kernel.shape[-1]))
        return F.dense(ctx, w_o, self.output_bias), weights

    def compute_output_shape(self, input_shape):
        q_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        return tuple(q_shape[:-1]) + (self.output_dim or q_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": self.output_dim}
