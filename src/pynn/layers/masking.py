"""Masking and UnitNormalization (Keras names and defaults)."""
import numpy as np

from .. import functional as F
from .base import Layer


class Masking(Layer):
    """Masking(mask_value=0.0): steps of (N, T, ...) whose features all equal
    ``mask_value`` are zeroed and masked: the mask (N, T) travels with the output
    to the layers that read it (SimpleRNN/LSTM/GRU skip masked steps).

    Example:
        >>> x = np.array([[[1.0], [0.0]]], np.float32)
        >>> pynn.layers.Masking(mask_value=0.0)(x)._keras_mask
        array([[ True, False]])
    """

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, x):
        if x.ndim < 3:
            raise ValueError(f"Masking {self.name!r}: expects (batch, steps, features...), got {tuple(x.shape)}")
        keep = np.any(x.data != self.mask_value, axis=tuple(range(2, x.ndim)))
        out = x * keep.reshape(keep.shape + (1,) * (x.ndim - 2)).astype(x.dtype)
        out._keras_mask = keep
        return out

    def compute_output_shape(self, s):
        return s

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


class UnitNormalization(Layer):
    """UnitNormalization(axis=-1): scales each vector along ``axis`` to unit L2
    norm, ``x / sqrt(max(sum(x²), 1e-12))`` (Keras' formula).

    Example:
        >>> pynn.layers.UnitNormalization()(np.array([[3.0, 4.0]], np.float32)).numpy()
        array([[0.6, 0.8]], dtype=float32)
    """

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis

    def call(self, x):
        sq = F.sum(x * x, axis=self.axis, keepdims=True)
        return x / F.sqrt(F.maximum(sq, np.asarray(1e-12, x.dtype)))

    def compute_output_shape(self, s):
        return s

    def get_config(self):
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return {**super().get_config(), "axis": axis}
