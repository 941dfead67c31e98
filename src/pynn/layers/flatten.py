"""``layers.Flatten``: (batch, d1, d2, ...) -> (batch, d1·d2·...)."""
import numpy as np

from .. import functional as F
from .base import Layer


class Flatten(Layer):
    def call(self, x):
        return F.reshape(x, (x.shape[0], -1))

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if any(d is None for d in rest) else int(np.prod(rest)))
