"""Resizing layers for images (N, H, W, C) and sequences (N, T, C): UpSampling,
ZeroPadding and Cropping in 1-D and 2-D, with Keras' arguments. Computed
channels_last (pynn's native layout); ``data_format="channels_first"`` (where
Keras has the argument) transposes around that (``data_format.ChannelsFirst``)."""
import numpy as np

from .. import functional as F
from ..autograd import Tensor
from ..shapes import pair
from .base import Layer
from .data_format import ChannelsFirst, normalize_data_format


def _pair(value, what, name):
    """``pynn.shapes.pair`` with the layer named in its error."""
    return pair(value, f"{name} {what}")


def _check_rank(layer, x, rank):
    if x.ndim != rank:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expects a rank-{rank} input, "
                         f"got shape {tuple(x.shape)}")


class _UpSampling2DLast(Layer):
    """UpSampling2D computed on channels_last inputs."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, "UpSampling2D")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"UpSampling2D: interpolation must be 'nearest' or 'bilinear' (the others Keras "
                             f"offers are not implemented), got {interpolation!r}")
        self.interpolation = interpolation
        self.size = _pair(size, "size", "UpSampling2D")

    def call(self, x):
        _check_rank(self, x, 4)
        n, h, w, c = x.shape
        sh, sw = self.size
        if self.interpolation == "bilinear":
            # separable: one (out, in) interpolation matrix per axis, applied as a contraction
            y = F.einsum("oh,nhwc->nowc", _bilinear_matrix(h, h * sh, x.dtype), x)
            return F.einsum("ow,nhwc->nhoc", _bilinear_matrix(w, w * sw, x.dtype), y)
        # a broadcast multiply repeats each pixel; its backward sums the copies back
        y = F.reshape(x, (n, h, 1, w, 1, c)) * np.ones((1, 1, sh, 1, sw, 1), x.dtype)
        return F.reshape(y, (n, h * sh, w * sw, c))

    def compute_output_shape(self, s):
        h = None if s[1] is None else s[1] * self.size[0]
        return (s[0], h, None if s[2] is None else s[2] * self.size[1], s[3])

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "interpolation": self.interpolation}


def _bilinear_matrix(size, out, dtype):
    """(out, size) weights of linear interpolation with half-pixel centres, as Keras'
    ``ops.image.resize(..., "bilinear")`` (TensorFlow's resize v2, torch's
    align_corners=False): source coordinate (o + 0.5)·size/out − 0.5, clamped to the edges."""
    src = np.maximum((np.arange(out) + 0.5) * (size / out) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), size - 1)
    hi = np.minimum(lo + 1, size - 1)
    frac = src - lo
    m = np.zeros((out, size), np.float64)
    np.add.at(m, (np.arange(out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(out), hi), frac)
    return m.astype(dtype)


class UpSampling2D(ChannelsFirst, _UpSampling2DLast):
    """UpSampling2D(size=(2, 2), data_format=None, interpolation="nearest"): repeats rows
    and columns ("nearest") or interpolates linearly between them ("bilinear", Keras'
    half-pixel rule). (N, H, W, C) -> (N, H·sh, W·sw, C).

    Example:
        >>> layer = pynn.layers.UpSampling2D((2, 2), interpolation="bilinear")
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 16, 16, 3)
    """



class UpSampling1D(Layer):
    """UpSampling1D(size=2): repeats each step. (N, T, C) -> (N, T·size, C).

    Example:
        >>> layer = pynn.layers.UpSampling1D(2)
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 10, 3)
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        _check_rank(self, x, 3)
        n, t, c = x.shape
        y = F.reshape(x, (n, t, 1, c)) * np.ones((1, 1, self.size, 1), x.dtype)
        return F.reshape(y, (n, t * self.size, c))

    def compute_output_shape(self, s):
        return (s[0], None if s[1] is None else s[1] * self.size, s[2])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _pad_axis(x, axis, before, after):
    parts = []
    if before:
        shape = list(x.shape)
        shape[axis] = before
        parts.append(Tensor(np.zeros(shape, x.dtype)))
    parts.append(x)
    if after:
        shape = list(x.shape)
        shape[axis] = after
        parts.append(Tensor(np.zeros(shape, x.dtype)))
    return F.concatenate(parts, axis=axis) if len(parts) > 1 else x


def _pads(padding, name):
    """((top, bottom), (left, right)) from an int, a pair of ints or a pair of pairs."""
    if isinstance(padding, (int, np.integer)):
        return ((int(padding),) * 2,) * 2
    padding = tuple(padding)
    if len(padding) != 2:
        raise ValueError(f"{name}: expected an int, 2 ints or 2 pairs, got {padding!r}")
    return tuple(_pair(p, "each entry", name) for p in padding)


class _ZeroPadding2DLast(Layer):
    """ZeroPadding2D computed on channels_last inputs."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, "ZeroPadding2D")
        self.padding = _pads(padding, "ZeroPadding2D")

    def call(self, x):
        _check_rank(self, x, 4)
        (t, b), (left, r) = self.padding
        return _pad_axis(_pad_axis(x, 1, t, b), 2, left, r)

    def compute_output_shape(self, s):
        (t, b), (left, r) = self.padding
        return (s[0], None if s[1] is None else s[1] + t + b, None if s[2] is None else s[2] + left + r, s[3])

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


class ZeroPadding2D(ChannelsFirst, _ZeroPadding2DLast):
    """ZeroPadding2D(padding=(1, 1), data_format=None): zeros around the image;
    padding an int, (rows, cols) or ((top, bottom), (left, right)).

    Example:
        >>> layer = pynn.layers.ZeroPadding2D(((1, 0), (2, 2)))
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 9, 12, 3)
    """



class _ZeroPadding1DLast(Layer):
    """ZeroPadding1D computed on channels_last inputs."""

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, "ZeroPadding1D")
        self.padding = _pair(padding, "padding", "ZeroPadding1D")

    def call(self, x):
        _check_rank(self, x, 3)
        return _pad_axis(x, 1, *self.padding)

    def compute_output_shape(self, s):
        return (s[0], None if s[1] is None else s[1] + sum(self.padding), s[2])

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding)}


class ZeroPadding1D(ChannelsFirst, _ZeroPadding1DLast):
    """ZeroPadding1D(padding=1, data_format=None): zeros before/after the steps; an int or (before, after).

    Example:
        >>> layer = pynn.layers.ZeroPadding1D(2)
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 9, 3)
    """



class _Cropping2DLast(Layer):
    """Cropping2D computed on channels_last inputs."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, "Cropping2D")
        self.cropping = _pads(cropping, "Cropping2D")

    def call(self, x):
        _check_rank(self, x, 4)
        (t, b), (left, r) = self.cropping
        h, w = x.shape[1], x.shape[2]
        if t + b >= h or left + r >= w:
            raise ValueError(f"Cropping2D {self.name!r}: cropping {self.cropping} leaves nothing of {tuple(x.shape)}")
        return F.getitem(x, (slice(None), slice(t, h - b), slice(left, w - r)))

    def compute_output_shape(self, s):
        (t, b), (left, r) = self.cropping
        return (s[0], None if s[1] is None else s[1] - t - b, None if s[2] is None else s[2] - left - r, s[3])

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping]}


class Cropping2D(ChannelsFirst, _Cropping2DLast):
    """Cropping2D(cropping=((0, 0), (0, 0)), data_format=None): drops rows/columns
    at the edges; cropping an int, (rows, cols) or ((top, bottom), (left, right)).

    Example:
        >>> layer = pynn.layers.Cropping2D(((1, 1), (2, 0)))
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 6, 6, 3)
    """



class Cropping1D(Layer):
    """Cropping1D(cropping=(1, 1)): drops steps at the start/end.

    Example:
        >>> layer = pynn.layers.Cropping1D((1, 2))
        >>> layer(np.ones((2, 6, 3), np.float32)).shape
        (2, 3, 3)
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pair(cropping, "cropping", "Cropping1D")

    def call(self, x):
        _check_rank(self, x, 3)
        a, b = self.cropping
        if a + b >= x.shape[1]:
            raise ValueError(f"Cropping1D {self.name!r}: cropping {self.cropping} leaves nothing of {tuple(x.shape)}")
        return F.getitem(x, (slice(None), slice(a, x.shape[1] - b)))

    def compute_output_shape(self, s):
        return (s[0], None if s[1] is None else s[1] - sum(self.cropping), s[2])

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}
