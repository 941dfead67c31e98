"""Pooling layers by rank, channels_last (``data_format="channels_first"`` through
``ChannelsFirst``): MaxPooling1D/2D, AveragePooling1D/2D over
windows, and the global ones over every step (1D, mask-aware as Keras: padded
steps are left out of the average and the max) or every pixel (2D)."""
import numpy as np

from .. import functional as F
from ..shapes import normalize_padding, normalize_tuple, window_output_shape
from .base import Layer
from .data_format import ChannelsFirst, normalize_data_format

_SPATIAL = {1: ("steps",), 2: ("height", "width")}


def _expected(rank):
    return f"(batch, {', '.join(_SPATIAL[rank])}, channels)"


class _RankedPooling(Layer):
    """What every pooling layer of ``rank`` spatial dimensions shares: the input check."""
    rank = None

    def build(self, input_shape):
        self.compute_output_shape(input_shape)   # (ChannelsFirst passes a converted shape straight through)
        self.built = True

    def call(self, x):
        if x.ndim != self.rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected input {_expected(self.rank)}, "
                             f"got shape {x.shape}")
        return self._pool(x)

    def _check_shape(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected an input of shape "
                             f"{_expected(self.rank)}, got {tuple(input_shape)}")


class _Pooling(_RankedPooling):
    """Window max/mean of ``rank`` spatial dimensions; strides default to pool_size."""
    _fn = None

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.data_format = normalize_data_format(data_format, name)
        self.pool_size = normalize_tuple(pool_size, self.rank, f"{name} pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, self.rank, f"{name} strides")
        if min(self.pool_size + self.strides) < 1:
            raise ValueError(f"{name}: pool_size {self.pool_size} and strides {self.strides} must be positive")
        self.padding = normalize_padding(padding, name)

    def _pool(self, x):
        return type(self)._fn(x, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        self._check_shape(input_shape)
        return window_output_shape(f"{type(self).__name__} {self.name!r}", input_shape, self.pool_size, self.strides, (1,) * self.rank, self.padding,
                                   input_shape[-1])

    def get_config(self):
        v = (lambda t: t[0]) if self.rank == 1 else list   # the config values saved files hold
        return {**super().get_config(), "pool_size": v(self.pool_size), "strides": v(self.strides),
                "padding": self.padding}


class MaxPooling1D(ChannelsFirst, _Pooling):
    """Max over windows of ``pool_size`` steps: (N, T, C) -> (N, T', C).

    Example:
        >>> layer = pynn.layers.MaxPooling1D(2)
        >>> layer(np.ones((2, 6, 3), np.float32)).shape
        (2, 3, 3)
    """
    rank, _fn = 1, staticmethod(F.max_pool1d)


class AveragePooling1D(ChannelsFirst, _Pooling):
    """Average over windows of ``pool_size`` steps ("same" padding averages real steps only).

    Example:
        >>> layer = pynn.layers.AveragePooling1D(2)
        >>> layer(np.ones((2, 6, 3), np.float32)).shape
        (2, 3, 3)
    """
    rank, _fn = 1, staticmethod(F.avg_pool1d)


class MaxPooling2D(ChannelsFirst, _Pooling):
    """MaxPooling2D(pool_size=(2, 2), strides=None, padding="valid"): window max; the
    gradient goes to the first maximum of each window (row-major), as TensorFlow.

    Example:
        >>> layer = pynn.layers.MaxPooling2D(2)
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 4, 4, 3)
    """
    rank, _fn = 2, staticmethod(F.max_pool2d)


class AveragePooling2D(ChannelsFirst, _Pooling):
    """AveragePooling2D(pool_size=(2, 2), strides=None, padding="valid"): window mean;
    with "same" padding only the real cells are averaged, as Keras.

    Example:
        >>> layer = pynn.layers.AveragePooling2D(2)
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 4, 4, 3)
    """
    rank, _fn = 2, staticmethod(F.avg_pool2d)


class _GlobalPooling(_RankedPooling):
    """(N, *spatial, C) -> (N, C), or (N, 1, ..., 1, C) with ``keepdims``."""

    def __init__(self, keepdims=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)

    def call(self, x):
        y = super().call(x)
        return F.reshape(y, (y.shape[0],) + (1,) * self.rank + (y.shape[1],)) if self.keepdims else y

    def compute_output_shape(self, input_shape):
        self._check_shape(input_shape)
        n, c = input_shape[0], input_shape[-1]
        return (n,) + (1,) * self.rank + (c,) if self.keepdims else (n, c)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling1D(ChannelsFirst, _GlobalPooling):
    """Mean over the steps; with a padding mask, over the real steps only.

    Example:
        >>> layer = pynn.layers.GlobalAveragePooling1D()
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 3)
    """
    rank = 1

    def _pool(self, x):
        mask = x._keras_mask
        if mask is None:
            return F.mean(x, axis=1)
        w = np.asarray(mask, x.dtype)[..., None]                 # (B, T, 1)
        count = np.maximum(w.sum(axis=1), 1.0)                   # (B, 1)
        return F.sum(x * w, axis=1) / count


class GlobalMaxPooling1D(ChannelsFirst, _GlobalPooling):
    """Max over the steps; with a padding mask, over the real steps only.

    Example:
        >>> layer = pynn.layers.GlobalMaxPooling1D()
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 3)
    """
    rank = 1

    def _pool(self, x):
        mask = x._keras_mask
        if mask is not None:
            x = F.where(np.asarray(mask, bool)[..., None], x, np.asarray(np.finfo(x.dtype).min, x.dtype))
        return F.max(x, axis=1)


class GlobalAveragePooling2D(ChannelsFirst, _GlobalPooling):
    """(N, H, W, C) -> (N, C) (or (N, 1, 1, C) with keepdims): mean over space.

    Example:
        >>> layer = pynn.layers.GlobalAveragePooling2D()
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 3)
    """
    rank = 2

    def _pool(self, x):
        return F.global_average_pool2d(x)


class GlobalMaxPooling2D(ChannelsFirst, _GlobalPooling):
    """(N, H, W, C) -> (N, C) (or (N, 1, 1, C) with keepdims): max over space.

    Example:
        >>> layer = pynn.layers.GlobalMaxPooling2D()
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 3)
    """
    rank = 2

    def _pool(self, x):
        return F.global_max_pool2d(x)
