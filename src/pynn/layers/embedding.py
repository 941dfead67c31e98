"""``layers.Embedding``: integer ids -> learned vectors."""
import numpy as np

from .. import functional as F, initializers
from .base import Layer


class Embedding(Layer):
    """Embedding(input_dim, output_dim, embeddings_initializer="uniform", mask_zero=False).

    (N, ...) integer ids in [0, input_dim) -> (N, ..., output_dim). Weights:
    [embeddings (input_dim, output_dim)]. With ``mask_zero`` id 0 is padding:
    the output carries a mask that recurrent layers use to skip those steps.

    Example:
        >>> layer = pynn.layers.Embedding(input_dim=100, output_dim=8)
        >>> layer(np.array([[1, 2, 3]])).shape
        (1, 3, 8)
    """

    supports_masking = True

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        if input_dim <= 0 or output_dim <= 0:
            raise ValueError(f"Embedding: input_dim and output_dim must be positive, got {input_dim}, {output_dim}")
        self.input_dim, self.output_dim, self.mask_zero = int(input_dim), int(output_dim), mask_zero
        init = initializers.RandomUniform() if embeddings_initializer == "uniform" else embeddings_initializer
        self.embeddings_initializer = initializers.get(init)
        self.embeddings_regularizer = embeddings_regularizer

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer, self.embeddings_regularizer)
        self.built = True

    def call(self, ids):
        data = ids.data
        if data.dtype.kind not in "iu":
            if data.dtype.kind != "f" or not np.all(data == np.round(data)):
                raise TypeError(f"Embedding {self.name!r}: expected integer ids, got {data.dtype}")
            data = data.astype(np.int64)
        out = F.embedding(data, self.embeddings)
        if self.mask_zero:
            out._keras_mask = data != 0
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _output_dtype(self, input_dtype):
        return self.dtype

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer)}
