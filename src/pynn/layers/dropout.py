"""``layers.Dropout``: inverted dropout, active only when ``training=True``."""
import numpy as np

from .. import functional as F
from .base import Layer


class Dropout(Layer):
    """Zeroes each input with probability ``rate`` and scales the rest by
    1/(1−rate) in training, so inference is the identity. With ``seed`` the layer
    draws its masks from its own generator (reproducible whatever else draws).

    Example:
        >>> layer = pynn.layers.Dropout(0.5)
        >>> layer(np.ones((2, 3), np.float32), training=True).shape
        (2, 3)
    """

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate, self.seed = rate, seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        return F.dropout(x, self.rate, rng=self._rng)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
