"""Depthwise, separable and transposed 2-D convolutions (Keras names, weights and
defaults), built on the native ``functional.conv2d``; channels_last only.

- DepthwiseConv2D runs one conv2d whose kernel is the block-diagonal expansion of
  the depthwise kernel: exact, differentiable through the expansion, and native,
  at C times the FLOPs of a dedicated depthwise kernel (pynn has none yet).
- Conv2DTranspose is the gradient of a convolution with respect to its input:
  zeros inserted between the input pixels, then a stride-1 conv2d with the
  spatially flipped kernel, then the crop that Keras' "same" padding implies.
"""
import numpy as np

from .. import activations, constraints as constraints_mod, functional as F, initializers
from .. import regularizers as regularizers_mod
from ..autograd import Tensor
from .base import Layer
from .spatial import _check_format, _pad_axis, _pair


def _check_padding(padding, name):
    if padding not in ("valid", "same"):
        raise ValueError(f"{name}: padding must be 'valid' or 'same', got {padding!r}")
    return padding


def _block_diagonal(depthwise_kernel):
    """(kh, kw, C, m) -> (kh, kw, C, C·m) with output channel c·m + j fed only by input channel c."""
    kh, kw, c, m = depthwise_kernel.shape
    mask = np.eye(c, dtype=depthwise_kernel.dtype).reshape(1, 1, c, c, 1)
    full = F.reshape(depthwise_kernel, (kh, kw, 1, c, m)) * mask
    return F.reshape(full, (kh, kw, c, c * m))


def _conv_out(size, k, stride, padding, dilation=1):
    if size is None:
        return None
    k = (k - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "same" else (size - k) // stride + 1


class DepthwiseConv2D(Layer):
    """DepthwiseConv2D(kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
    data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True, ...):
    each input channel convolved with its own ``depth_multiplier`` filters.
    Weights [depthwise_kernel (kh, kw, C, m), bias (C·m,)], as Keras."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        _check_format(data_format, type(self).__name__)
        self.kernel_size = _pair(kernel_size, "kernel_size", type(self).__name__)
        self.strides = _pair(strides, "strides", type(self).__name__)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate", type(self).__name__)
        self.padding = _check_padding(padding, type(self).__name__)
        self.depth_multiplier = int(depth_multiplier)
        self.activation_name, self.activation = activation, activations.get(activation)
        self.use_bias = use_bias
        self.depthwise_initializer, self.bias_initializer = depthwise_initializer, bias_initializer
        self.depthwise_regularizer = regularizers_mod.get(depthwise_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)
        self.depthwise_constraint = constraints_mod.get(depthwise_constraint)
        self.bias_constraint = constraints_mod.get(bias_constraint)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expects (batch, H, W, C), got {input_shape}")
        c, m = input_shape[-1], self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            shape=self.kernel_size + (c, m), initializer=initializers.get(self.depthwise_initializer),
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint, name="depthwise_kernel")
        self._build_rest(c * m)
        self.built = True

    def _build_rest(self, channels):
        self.bias = (self.add_weight(shape=(channels,), initializer=initializers.get(self.bias_initializer),
                                     regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                     name="bias") if self.use_bias else None)

    def _depthwise(self, x):
        return F.conv2d(x, _block_diagonal(self.depthwise_kernel), None, strides=self.strides,
                        padding=self.padding, dilation_rate=self.dilation_rate)

    def call(self, x):
        y = self._depthwise(x)
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, s):
        h = _conv_out(s[1], self.kernel_size[0], self.strides[0], self.padding, self.dilation_rate[0])
        w = _conv_out(s[2], self.kernel_size[1], self.strides[1], self.padding, self.dilation_rate[1])
        return (s[0], h, w, self._out_channels(s[3]))

    def _out_channels(self, c):
        return c * self.depth_multiplier

    def _names_only(self, *values):
        for v in values:
            if not (v is None or isinstance(v, str)):
                raise ValueError(f"{type(self).__name__} {self.name!r}: to save it, pass initializers and "
                                 "activations by name and no regularizer/constraint objects")

    def get_config(self):
        self._names_only(self.depthwise_initializer, self.bias_initializer, self.activation_name)
        if self.depthwise_regularizer or self.bias_regularizer or self.depthwise_constraint or self.bias_constraint:
            self._names_only(object())
        return {**super().get_config(), "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                "dilation_rate": list(self.dilation_rate), "activation": self.activation_name,
                "use_bias": self.use_bias, "depthwise_initializer": self.depthwise_initializer,
                "bias_initializer": self.bias_initializer}


class SeparableConv2D(DepthwiseConv2D):
    """SeparableConv2D(filters, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, ...):
    a depthwise convolution, then a 1x1 convolution to ``filters`` channels.
    Weights [depthwise_kernel (kh, kw, C, m), pointwise_kernel (1, 1, C·m, filters), bias]."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding, depth_multiplier=depth_multiplier,
                         data_format=data_format, dilation_rate=dilation_rate, activation=activation,
                         use_bias=use_bias, depthwise_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        self.filters, self.pointwise_initializer = int(filters), pointwise_initializer

    def _build_rest(self, channels):
        self.pointwise_kernel = self.add_weight(shape=(1, 1, channels, self.filters),
                                                initializer=initializers.get(self.pointwise_initializer),
                                                name="pointwise_kernel")
        super()._build_rest(self.filters)

    def call(self, x):
        y = F.conv2d(self._depthwise(x), self.pointwise_kernel, self.bias)
        return self.activation(y)

    def _out_channels(self, c):
        return self.filters

    def get_config(self):
        self._names_only(self.pointwise_initializer)
        config = super().get_config()
        return {**config, "filters": self.filters, "pointwise_initializer": self.pointwise_initializer}


class Conv2DTranspose(Layer):
    """Conv2DTranspose(filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
    activation=None, use_bias=True, ...): the transpose (gradient) of Conv2D, an
    upsampling convolution. Output size (H-1)·s + k ("valid") or H·s ("same"), as
    Keras. Weights [kernel (kh, kw, filters, C), bias (filters,)].
    ``output_padding`` and ``dilation_rate`` other than 1 are not supported and raise."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        _check_format(data_format, "Conv2DTranspose")
        if output_padding is not None or _pair(dilation_rate, "dilation_rate", "Conv2DTranspose") != (1, 1):
            raise ValueError("Conv2DTranspose: output_padding and dilation_rate != 1 are not supported")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2DTranspose")
        self.strides = _pair(strides, "strides", "Conv2DTranspose")
        self.padding = _check_padding(padding, "Conv2DTranspose")
        self.activation_name, self.activation = activation, activations.get(activation)
        self.use_bias, self.kernel_initializer, self.bias_initializer = use_bias, kernel_initializer, bias_initializer
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"Conv2DTranspose {self.name!r}: expects (batch, H, W, C), got {input_shape}")
        self.kernel = self.add_weight(shape=self.kernel_size + (self.filters, input_shape[-1]),
                                      initializer=initializers.get(self.kernel_initializer),
                                      regularizer=self.kernel_regularizer, name="kernel")
        self.bias = (self.add_weight(shape=(self.filters,), initializer=initializers.get(self.bias_initializer),
                                     regularizer=self.bias_regularizer, name="bias") if self.use_bias else None)
        self.built = True

    def _out_size(self, size, k, s):
        if size is None:
            return None
        return size * s if self.padding == "same" else (size - 1) * s + k

    def call(self, x):
        if x.ndim != 4:
            raise ValueError(f"Conv2DTranspose {self.name!r}: expects (batch, H, W, C), got {tuple(x.shape)}")
        n, h, w, c = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if sh > 1 or sw > 1:   # zeros between the pixels: (N, (H-1)·sh + 1, (W-1)·sw + 1, C)
            y = F.reshape(x, (n, h, 1, w, 1, c))
            if sh > 1:
                y = F.concatenate([y, Tensor(np.zeros((n, h, sh - 1, w, 1, c), x.dtype))], axis=2)
            if sw > 1:
                y = F.concatenate([y, Tensor(np.zeros((n, h, sh, w, sw - 1, c), x.dtype))], axis=4)
            y = F.reshape(y, (n, h * sh, w * sw, c))
            y = F.getitem(y, (slice(None), slice(0, (h - 1) * sh + 1), slice(0, (w - 1) * sw + 1)))
        else:
            y = x
        y = _pad_axis(_pad_axis(y, 1, kh - 1, kh - 1), 2, kw - 1, kw - 1)
        flipped = F.transpose(F.getitem(self.kernel, (slice(None, None, -1), slice(None, None, -1))), (0, 1, 3, 2))
        y = F.conv2d(y, flipped, None)          # full output: ((H-1)·sh + kh, (W-1)·sw + kw)
        if self.padding == "same":
            y = self._crop_same(y, 1, h, kh, sh)
            y = self._crop_same(y, 2, w, kw, sw)
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)

    @staticmethod
    def _crop_same(y, axis, size, k, s):
        """Keep H·s of the full (H-1)·s + k outputs, dropping (k-s)//2 at the start (TensorFlow/Keras)."""
        total = k - s
        if total < 0:   # kernel smaller than the stride: the full output is short, zeros make it up
            return _pad_axis(y, axis, 0, -total)
        before = total // 2
        index = [slice(None)] * 4
        index[axis] = slice(before, before + size * s)
        return F.getitem(y, tuple(index))

    def compute_output_shape(self, s):
        return (s[0], self._out_size(s[1], self.kernel_size[0], self.strides[0]),
                self._out_size(s[2], self.kernel_size[1], self.strides[1]), self.filters)

    def get_config(self):
        for v in (self.kernel_initializer, self.bias_initializer, self.activation_name):
            if not (v is None or isinstance(v, str)):
                raise ValueError(f"Conv2DTranspose {self.name!r}: to save it, pass initializers/activation by name")
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "activation": self.activation_name,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}
