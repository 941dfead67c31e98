"""The Transformer encoder block and positional encodings (keras_hub names)."""
import numpy as np

from .. import functional as F
from ..autograd import Tensor, is_grad_enabled
from ..functional.activation import split as _split_activation
from .attention import MultiHeadAttention, _combine_masks
from .base import Layer
from .dense import Dense
from .dropout import Dropout
from .normalization import LayerNormalization


class TransformerEncoder(Layer):
    """TransformerEncoder(intermediate_dim, num_heads, dropout=0.0, activation="relu",
    layer_norm_epsilon=1e-5, normalize_first=False).

    Post-norm (the original Transformer): x = LN(x + Dropout(MHA(x, x)));
    x = LN(x + Dropout(FF(x))) with FF = Dense(intermediate_dim, activation) -> Dense(d).
    ``normalize_first`` gives the pre-norm variant. (B, T, d) -> (B, T, d).

    Example:
        >>> layer = pynn.layers.TransformerEncoder(intermediate_dim=32, num_heads=2)
        >>> layer(np.ones((2, 5, 16), np.float32)).shape
        (2, 5, 16)
    """

    def __init__(self, intermediate_dim, num_heads, dropout=0.0, activation="relu", layer_norm_epsilon=1e-5,
                 normalize_first=False, **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim, self.num_heads, self.dropout_rate = intermediate_dim, num_heads, dropout
        self.activation, self.layer_norm_epsilon, self.normalize_first = activation, layer_norm_epsilon, normalize_first

    def build(self, input_shape):
        d = input_shape[-1]
        if d % self.num_heads:
            raise ValueError(f"TransformerEncoder {self.name!r}: model dim {d} is not divisible by "
                             f"num_heads={self.num_heads}")
        self.attention = MultiHeadAttention(self.num_heads, d // self.num_heads, dropout=self.dropout_rate,
                                            name=f"{self.name}/self_attention")
        self.attention.build([input_shape, input_shape])
        self.norm1 = LayerNormalization(epsilon=self.layer_norm_epsilon, name=f"{self.name}/norm1")
        self.norm2 = LayerNormalization(epsilon=self.layer_norm_epsilon, name=f"{self.name}/norm2")
        self.ff1 = Dense(self.intermediate_dim, activation=self.activation, name=f"{self.name}/ff1")
        self.ff2 = Dense(d, name=f"{self.name}/ff2")
        self.drop = Dropout(self.dropout_rate) if self.dropout_rate else None
        for layer, shape in ((self.norm1, input_shape), (self.norm2, input_shape), (self.ff1, input_shape),
                             (self.ff2, tuple(input_shape[:-1]) + (self.intermediate_dim,))):
            layer.build(shape)
            layer.built = True
        self._weights = (self.attention._weights + self.norm1._weights + self.ff1._weights + self.ff2._weights
                         + self.norm2._weights)
        self.built = True

    def _drop(self, x, training):
        return self.drop(x, training=training) if self.drop is not None else x

    def compute_output_shape(self, input_shape):
        return input_shape   # declared, so a functional graph need not run the block to learn it

    def _fused_activation(self, training):
        """FF1's activation name when the block can run as one op
        (F.transformer_encoder_post_norm: post-norm, a graph being recorded, no dropout
        active, an activation fused from its output, the sublayers as build() made them),
        else None: the composed graph below."""
        if self.normalize_first or not is_grad_enabled() or (training and self.dropout_rate):
            return None
        att = self.attention
        # Exactly the sublayers build() makes: a subclass or an instance-patched call() swapped in
        # for one of them must run (the fused op would silently skip its code), and a LayerNorm
        # over other axes or without gamma/beta is not the op's.
        subs = ((att, MultiHeadAttention), (self.norm1, LayerNormalization), (self.norm2, LayerNormalization),
                (self.ff1, Dense), (self.ff2, Dense))
        if any(type(layer) is not cls or "call" in layer.__dict__ for layer, cls in subs):
            return None
        if any(n.axis not in (-1, (-1,), [-1]) or not (n.center and n.scale) for n in (self.norm1, self.norm2)):
            return None
        if not att.use_bias or att.output_dim not in (None, att.query_kernel.shape[0]) or (training and att.dropout):
            return None
        subs = (att, self.norm1, self.norm2, self.ff1, self.ff2)
        if any(layer.activity_regularizer is not None for layer in subs):
            return None
        if self.ff1.bias is None or self.ff2.bias is None or _split_activation(self.ff2.activation) != ("linear", None):
            return None
        fused, after = _split_activation(self.ff1.activation)
        return fused if after is None else None

    def call(self, x, training=False, attention_mask=None, use_causal_mask=False):
        mask = x._keras_mask
        fused = self._fused_activation(training) if x.ndim == 3 else None
        if fused is not None:
            att, t = self.attention, x.shape[1]
            m = _combine_masks((t, t), mask, attention_mask, use_causal_mask)
            while m is not None and m.ndim < 4:   # (B, T, S) -> (B, 1, T, S): every head, as MultiHeadAttention
                m = m[:, None]
            x = F.transformer_encoder_post_norm(
                x, att.query_kernel, att.query_bias, att.key_kernel, att.key_bias, att.value_kernel, att.value_bias,
                att.output_kernel, att.output_bias, self.norm1.gamma, self.norm1.beta, self.ff1.kernel,
                self.ff1.bias, self.ff2.kernel, self.ff2.bias, self.norm2.gamma, self.norm2.beta, att.num_heads,
                att.key_dim, att.value_dim, scale=1.0 / np.sqrt(att.key_dim),
                mask=m, eps1=self.norm1.epsilon,
                eps2=self.norm2.epsilon, activation=fused)
        elif self.normalize_first:
            h = self.norm1(x)
            x = x + self._drop(self.attention(h, h, attention_mask=attention_mask, use_causal_mask=use_causal_mask,
                                              training=training), training)
            x = x + self._drop(self.ff2(self.ff1(self.norm2(x))), training)
        else:
            a = self.attention(x, x, attention_mask=attention_mask, use_causal_mask=use_causal_mask,
                               training=training)
            x = self.norm1(x + self._drop(a, training))
            x = self.norm2(x + self._drop(self.ff2(self.ff1(x)), training))
        x._keras_mask = mask
        return x

    def get_config(self):
        return {**super().get_config(), "intermediate_dim": self.intermediate_dim, "num_heads": self.num_heads,
                "dropout": self.dropout_rate, "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon, "normalize_first": self.normalize_first}


class PositionEmbedding(Layer):
    """Learned position embeddings: returns (B, T, d) embeddings of positions
    0..T−1 (add them to the token embeddings). Weight: [embeddings (sequence_length, d)].

    Example:
        >>> layer = pynn.layers.PositionEmbedding(sequence_length=5)
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 5, 3)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length, self.initializer = int(sequence_length), initializer

    def build(self, input_shape):
        self.position_embeddings = self.add_weight("embeddings", (self.sequence_length, input_shape[-1]),
                                                   self.initializer)
        self.built = True

    def call(self, x):
        t = x.shape[1]
        if t > self.sequence_length:
            raise ValueError(f"PositionEmbedding {self.name!r}: sequence of {t} steps is longer than "
                             f"sequence_length={self.sequence_length}")
        pos = F.getitem(self.position_embeddings, slice(0, t))
        return F.reshape(pos, (1, t, x.shape[-1])) + np.zeros((x.shape[0], 1, 1), x.dtype)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


class SinePositionEncoding(Layer):
    """The fixed sinusoidal encoding of "Attention is all you need":
    PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(...). Returns (B, T, d).

    Example:
        >>> layer = pynn.layers.SinePositionEncoding()
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 5, 3)
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def call(self, x):
        t, d = x.shape[1], x.shape[-1]
        pos = np.arange(t)[:, None]
        rates = 1.0 / np.power(self.max_wavelength, (2 * (np.arange(d) // 2)) / d)
        angles = pos * rates[None, :]
        pe = np.where(np.arange(d) % 2 == 0, np.sin(angles), np.cos(angles)).astype(x.dtype)
        return Tensor(np.broadcast_to(pe, (x.shape[0], t, d)).copy())

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}
