"""Pooling layers over NHWC images: MaxPooling2D, AveragePooling2D and the global ones."""
from .. import functional as F
from ..backend.numpy.conv import conv_geometry, pair
from .base import Layer


class _Pooling2D(Layer):
    _fn = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{name}: only data_format='channels_last' (NHWC) is supported, got {data_format!r}")
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in ("valid", "same"):
            raise ValueError(f"{name}: padding must be 'valid' or 'same', got {padding!r}")
        self.pool_size = pair(pool_size, f"{name} pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, f"{name} strides")
        if min(self.pool_size + self.strides) < 1:
            raise ValueError(f"{name}: pool_size {self.pool_size} and strides {self.strides} must be positive")
        self.padding = padding

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def call(self, x):
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected input (batch, height, width, channels), "
                             f"got shape {x.shape}")
        return type(self)._fn(x, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        label = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != 4:
            raise ValueError(f"{label}: expected an input of shape (batch, height, width, channels), "
                             f"got {tuple(input_shape)}")
        n, h, w, c = input_shape
        if h is None or w is None:
            return (n, None, None, c)
        (oh, ow), _, _ = conv_geometry(label, tuple(input_shape), *self.pool_size, self.strides, self.padding, 1,
                                       self.pool_size)
        return (n, oh, ow, c)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """MaxPooling2D(pool_size=(2, 2), strides=None, padding="valid"): window max; the
    gradient goes to the first maximum of each window (row-major), as TensorFlow."""
    _fn = staticmethod(F.max_pool2d)


class AveragePooling2D(_Pooling2D):
    """AveragePooling2D(pool_size=(2, 2), strides=None, padding="valid"): window mean;
    with "same" padding only the real cells are averaged, as Keras."""
    _fn = staticmethod(F.avg_pool2d)


class _GlobalPooling2D(Layer):
    _fn = None

    def __init__(self, keepdims=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__}: only data_format='channels_last' (NHWC) is supported, "
                             f"got {data_format!r}")
        self.keepdims = bool(keepdims)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def call(self, x):
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected input (batch, height, width, channels), "
                             f"got shape {x.shape}")
        y = type(self)._fn(x)
        return F.reshape(y, (y.shape[0], 1, 1, y.shape[1])) if self.keepdims else y

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected an input of shape "
                             f"(batch, height, width, channels), got {tuple(input_shape)}")
        n, _, _, c = input_shape
        return (n, 1, 1, c) if self.keepdims else (n, c)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """(N, H, W, C) -> (N, C) (or (N, 1, 1, C) with keepdims): mean over space."""
    _fn = staticmethod(F.global_average_pool2d)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """(N, H, W, C) -> (N, C) (or (N, 1, 1, C) with keepdims): max over space."""
    _fn = staticmethod(F.global_max_pool2d)
