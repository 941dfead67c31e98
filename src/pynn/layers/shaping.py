"""Small shape layers with Keras' names: RepeatVector, Permute, Identity, and
InputLayer (Keras' spelling of an Input at the head of a Sequential)."""
import numpy as np

from .. import functional as F
from .base import Layer
from .input_layer import Input


class RepeatVector(Layer):
    """RepeatVector(n): (N, D) -> (N, n, D), e.g. to feed a decoder RNN.

    Example:
        >>> layer = pynn.layers.RepeatVector(3)
        >>> layer(np.ones((2, 3), np.float32)).shape
        (2, 3, 3)
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"RepeatVector: n must be a positive int, got {n!r}")
        self.n = int(n)

    def call(self, x):
        if x.ndim != 2:
            raise ValueError(f"RepeatVector {self.name!r}: expects (batch, features), got {tuple(x.shape)}")
        return F.reshape(x, (x.shape[0], 1, x.shape[1])) * np.ones((1, self.n, 1), x.dtype)

    def compute_output_shape(self, s):
        return (s[0], self.n, s[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Permute(Layer):
    """Permute(dims): reorder the non-batch axes; ``dims`` counts from 1, as Keras
    (``Permute((2, 1))`` swaps steps and features).

    Example:
        >>> layer = pynn.layers.Permute((2, 1))
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 3, 5)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(self.dims)}, got {dims!r}")

    def call(self, x):
        if x.ndim != len(self.dims) + 1:
            raise ValueError(f"Permute {self.name!r}: dims {self.dims} need a rank-{len(self.dims) + 1} input, "
                             f"got {tuple(x.shape)}")
        return F.transpose(x, (0,) + self.dims)

    def compute_output_shape(self, s):
        return (s[0],) + tuple(s[d] for d in self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class Identity(Layer):
    """Returns its input unchanged (a placeholder, as in Keras).

    Example:
        >>> layer = pynn.layers.Identity()
        >>> layer(np.ones((2, 3), np.float32)).shape
        (2, 3)
    """

    supports_masking = True

    def call(self, x):
        return x

    def compute_output_shape(self, s):
        return s


class InputLayer(Input):
    """InputLayer(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None):
    Keras' layer form of ``Input``, e.g. ``Sequential([InputLayer(shape=(4,)), Dense(2)])``.

    Example:
        >>> model = pynn.Sequential([pynn.layers.InputLayer(shape=(4,)), pynn.layers.Dense(2)])
        >>> model.output_shape
        (None, 2)
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs):
        if kwargs.get("sparse") or kwargs.get("ragged"):
            raise ValueError("InputLayer: sparse and ragged inputs are not supported")
        if kwargs.get("input_tensor") is not None:
            raise ValueError("InputLayer: input_tensor is not supported; use pynn.Input(shape)")
        unknown = sorted(set(kwargs) - {"sparse", "ragged", "input_tensor"})
        if unknown:
            raise TypeError(f"InputLayer: unexpected keyword arguments {unknown}")
        if batch_shape is not None:
            if shape is not None:
                raise ValueError("InputLayer: pass shape or batch_shape, not both")
            batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
        if shape is None:
            raise ValueError("InputLayer: shape (or batch_shape) is required")
        super().__init__(shape, dtype=dtype or "float32", name=name, batch_size=batch_size)
