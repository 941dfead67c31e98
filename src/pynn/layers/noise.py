"""Regularisation layers active only in training: SpatialDropout1D and GaussianNoise."""
import numpy as np

from ..random import generator
from .base import Layer


def _rng(seed):
    """A layer's own generator when it has a seed (reproducible per layer, as
    Keras' seed argument), else pynn's process-wide one (pynn.set_seed)."""
    return np.random.default_rng(seed) if seed is not None else None


class SpatialDropout1D(Layer):
    """SpatialDropout1D(rate, seed=None): drops whole channels of (N, T, C) inputs
    (one mask per sample and channel, shared over the steps), scaled by 1/(1-rate).

    Example:
        >>> layer = pynn.layers.SpatialDropout1D(0.5)
        >>> layer(np.ones((2, 5, 3), np.float32), training=True).shape
        (2, 5, 3)
    """

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"SpatialDropout1D: rate must be in [0, 1), got {rate}")
        self.rate, self.seed, self._generator = float(rate), seed, _rng(seed)

    def call(self, x, training=False):
        if x.ndim != 3:
            raise ValueError(f"SpatialDropout1D {self.name!r}: expects (batch, steps, channels), got {tuple(x.shape)}")
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        rng = self._generator or generator()
        mask = (rng.random((x.shape[0], 1, x.shape[2])) < keep).astype(x.dtype) / np.asarray(keep, x.dtype)
        return x * mask   # the mask is a constant: the gradient is the same mask

    def compute_output_shape(self, s):
        return s

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class GaussianNoise(Layer):
    """GaussianNoise(stddev, seed=None): adds N(0, stddev²) noise in training; the identity at inference.

    Example:
        >>> layer = pynn.layers.GaussianNoise(0.1)
        >>> layer(np.ones((2, 3), np.float32)).shape
        (2, 3)
    """

    supports_masking = True

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        if stddev < 0:
            raise ValueError(f"GaussianNoise: stddev must be >= 0, got {stddev}")
        self.stddev, self.seed, self._generator = float(stddev), seed, _rng(seed)

    def call(self, x, training=False):
        if not training or self.stddev == 0.0:
            return x
        rng = self._generator or generator()
        return x + rng.normal(0.0, self.stddev, x.shape).astype(x.dtype)

    def compute_output_shape(self, s):
        return s

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}
