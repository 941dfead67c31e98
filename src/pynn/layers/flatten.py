"""``layers.Flatten``: (batch, d1, d2, ...) -> (batch, d1·d2·...)."""
import math

from .. import functional as F
from .base import Layer
from .data_format import ChannelsFirst, normalize_data_format


class _FlattenLast(Layer):
    """Flatten of a channels_last input."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, "Flatten")

    def call(self, x):
        return F.reshape(x, (x.shape[0], -1))

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(d is None for d in rest):
            return (input_shape[0], None)
        size = math.prod(rest)  # Python ints: np.prod would wrap (2**32 x 2**32 -> 0)
        if size >= 2**63:
            raise ValueError(f"{self.name}: flattening {tuple(rest)} gives {size} elements per sample, "
                             "more than a 64-bit size can count")
        return (input_shape[0], size)


class Flatten(ChannelsFirst, _FlattenLast):
    """Flatten(data_format=None): (batch, d1, d2, ...) -> (batch, d1·d2·...). With
    ``data_format="channels_first"`` a (batch, C, ...) input is moved to channels_last
    first (as Keras), so a Dense after it sees the same order in either format.

    Example:
        >>> layer = pynn.layers.Flatten()
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 192)
    """
