"""Resizing layers for images (N, H, W, C) and sequences (N, T, C): UpSampling,
ZeroPadding and Cropping in 1-D and 2-D, with Keras' arguments. channels_last
only (pynn's native layout): ``data_format="channels_first"`` raises."""
import numpy as np

from .. import functional as F
from ..autograd import Tensor
from .base import Layer


def _pair(value, what, name):
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name}: {what} must be an int or a pair, got {value!r}")
    return value


def _check_format(data_format, name):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{name}: only data_format='channels_last' is supported (pynn's native NHWC layout), "
                         f"got {data_format!r}; transpose the input with layers.Permute")


def _check_rank(layer, x, rank):
    if x.ndim != rank:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expects a rank-{rank} input, "
                         f"got shape {tuple(x.shape)}")


class UpSampling2D(Layer):
    """UpSampling2D(size=(2, 2), data_format=None, interpolation="nearest"):
    repeats rows and columns. (N, H, W, C) -> (N, H·sh, W·sw, C)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        _check_format(data_format, "UpSampling2D")
        if interpolation != "nearest":
            raise ValueError(f"UpSampling2D: only interpolation='nearest' is implemented, got {interpolation!r}")
        self.size = _pair(size, "size", "UpSampling2D")

    def call(self, x):
        _check_rank(self, x, 4)
        n, h, w, c = x.shape
        sh, sw = self.size
        # a broadcast multiply repeats each pixel; its backward sums the copies back
        y = F.reshape(x, (n, h, 1, w, 1, c)) * np.ones((1, 1, sh, 1, sw, 1), x.dtype)
        return F.reshape(y, (n, h * sh, w * sw, c))

    def compute_output_shape(self, s):
        h = None if s[1] is None else s[1] * self.size[0]
        return (s[0], h, None if s[2] is None else s[2] * self.size[1], s[3])

    def get_config(self):
        return {**super().get_config(), "size": list(self.size)}


class UpSampling1D(Layer):
    """UpSampling1D(size=2): repeats each step. (N, T, C) -> (N, T·size, C)."""

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


class ZeroPadding2D(Layer):
    """ZeroPadding2D(padding=(1, 1), data_format=None): zeros around the image;
    padding an int, (rows, cols) or ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        _check_format(data_format, "ZeroPadding2D")
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


class ZeroPadding1D(Layer):
    """ZeroPadding1D(padding=1): zeros before/after the steps; an int or (before, after)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pair(padding, "padding", "ZeroPadding1D")

    def call(self, x):
        _check_rank(self, x, 3)
        return _pad_axis(x, 1, *self.padding)

    def compute_output_shape(self, s):
        return (s[0], None if s[1] is None else s[1] + sum(self.padding), s[2])

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding)}


class Cropping2D(Layer):
    """Cropping2D(cropping=((0, 0), (0, 0)), data_format=None): drops rows/columns
    at the edges; cropping an int, (rows, cols) or ((top, bottom), (left, right))."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        _check_format(data_format, "Cropping2D")
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


class Cropping1D(Layer):
    """Cropping1D(cropping=(1, 1)): drops steps at the start/end."""

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
