"""Layers that only rearrange: Reshape, Rescaling, Lambda."""
import numpy as np

from .. import functional as F
from .base import Layer


class Reshape(Layer):
    """Reshape(target_shape): (batch, ...) -> (batch, *target_shape); one entry may be -1.

    Example:
        >>> layer = pynn.layers.Reshape((3, 4))
        >>> layer(np.ones((2, 12), np.float32)).shape
        (2, 3, 4)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"Reshape: at most one -1 in target_shape, got {self.target_shape}")

    def _resolve(self, input_shape):
        size = int(np.prod([d for d in input_shape[1:]]))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if -1 in self.target_shape:
            if known == 0 or size % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape {input_shape[1:]} to {self.target_shape}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape input of shape {tuple(input_shape[1:])} "
                             f"({size} values) to {self.target_shape} ({known} values)")
        return self.target_shape

    def call(self, x):
        return F.reshape(x, (x.shape[0],) + self._resolve(x.shape))

    def compute_output_shape(self, input_shape):
        if any(d is None for d in input_shape[1:]):
            return (input_shape[0],) + self.target_shape
        return (input_shape[0],) + self._resolve(input_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Rescaling(Layer):
    """x * scale + offset (e.g. Rescaling(1/255) for images).

    Example:
        >>> layer = pynn.layers.Rescaling(1 / 255)
        >>> layer(np.full((1, 2), 255.0, np.float32)).numpy()
        array([[1., 1.]], dtype=float32)
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def call(self, x):
        return x * self.scale + self.offset

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Lambda(Layer):
    """Wraps a function of Tensors (built from pynn.functional ops) as a layer.

    Example:
        >>> layer = pynn.layers.Lambda(lambda x: x * 2)
        >>> layer(np.ones((1, 2), np.float32)).numpy()
        array([[2., 2.]], dtype=float32)
    """

    def __init__(self, function, output_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self._output_shape = tuple(output_shape) if output_shape is not None else None

    def call(self, x):
        return self.function(x)

    def compute_output_shape(self, input_shape):
        if self._output_shape is not None:
            return (input_shape[0],) + self._output_shape
        return super().compute_output_shape(input_shape)

    def get_config(self):
        raise NotImplementedError("Lambda layers hold arbitrary Python code and cannot be serialized; "
                                  "write a custom layer registered with @pynn.register_serializable")
