"""``layers.Dropout``: inverted dropout, active only when ``training=True``."""
import numpy as np

from ..autograd import Function
from ..random import generator
from .base import Layer


class _DropoutFn(Function):
    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return g * self.mask, None


class Dropout(Layer):
    """Zeroes each input with probability ``rate`` and scales the rest by
    1/(1−rate) in training, so inference is the identity."""

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = (generator().random(x.shape) < keep).astype(x.dtype) / np.asarray(keep, x.dtype)
        return _DropoutFn.apply(x, mask)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
