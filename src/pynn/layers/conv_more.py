"""Depthwise, separable and transposed 2-D convolutions (Keras names, weights and
defaults), computed channels_last; ``data_format="channels_first"`` transposes
around them (``data_format.ChannelsFirst``).

- DepthwiseConv2D is a sum over the kernel taps: for each (i, j) the strided
  window view of the (zero-padded) input times that tap's (C, m) weights,
  broadcast over the batch and pixels. That is the depthwise FLOP count
  (N·OH·OW·C·m·kh·kw multiply-adds), with no C-fold block-diagonal kernel; every
  piece is a differentiable ``functional`` op, so the backward pass comes with it.
- Conv2DTranspose is the gradient of a convolution with respect to its input:
  zeros inserted between the input pixels, the padding that Keras' (TensorFlow's,
  JAX's) output-length rules imply (with ``output_padding`` and ``dilation_rate``),
  then a stride-1 conv2d with the spatially flipped kernel.
"""
import numpy as np

from .. import activations, constraints as constraints_mod, functional as F, initializers
from .. import regularizers as regularizers_mod
from ..autograd import Tensor
from ..shapes import conv_geometry
from .base import Layer
from .data_format import ChannelsFirst, normalize_data_format
from .spatial import _pad_axis, _pair


def _check_padding(padding, name):
    if padding not in ("valid", "same"):
        raise ValueError(f"{name}: padding must be 'valid' or 'same', got {padding!r}")
    return padding


def depthwise_conv2d(x, kernel, strides=(1, 1), padding="valid", dilation_rate=(1, 1)):
    """Depthwise convolution of NHWC ``x`` with ``kernel`` (kh, kw, C, m) -> (N, OH, OW, C·m);
    output channel c·m + j is input channel c convolved with kernel[..., c, j] (Keras' order).

    A sum over the kh·kw taps of strided input views times the tap's (C, m) weights,
    so the work is the depthwise count, not C times it; differentiable (functional ops)."""
    n, h, w, c = x.shape
    kh, kw, kc, m = kernel.shape
    if kc != c:
        raise ValueError(f"depthwise_conv2d: kernel {tuple(kernel.shape)} expects {kc} input channels, "
                         f"got input {tuple(x.shape)}")
    (oh, ow), (pt, pb), (pl, pr) = conv_geometry("depthwise_conv2d", tuple(x.shape), kh, kw, strides, padding,
                                                 dilation_rate, tuple(kernel.shape))
    (sh, sw), (dh, dw) = strides, dilation_rate
    if pt or pb or pl or pr:
        x = _pad_axis(_pad_axis(x, 1, pt, pb), 2, pl, pr)
    x5 = F.reshape(x, tuple(x.shape) + (1,))                  # (N, H', W', C, 1) against (C, m) taps
    y = None
    for i in range(kh):
        for j in range(kw):
            window = F.getitem(x5, (slice(None), slice(i * dh, i * dh + (oh - 1) * sh + 1, sh),
                                    slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)))
            term = window * F.getitem(kernel, (i, j))          # (N, OH, OW, C, m)
            y = term if y is None else y + term
    return F.reshape(y, (n, oh, ow, c * m))


def _conv_out(size, k, stride, padding, dilation=1):
    if size is None:
        return None
    k = (k - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "same" else (size - k) // stride + 1


class _DepthwiseConv2DLast(Layer):
    """DepthwiseConv2D computed on channels_last inputs."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, type(self).__name__)
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
        return depthwise_conv2d(x, self.depthwise_kernel, self.strides, self.padding, self.dilation_rate)

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


class _SeparableConv2DLast(_DepthwiseConv2DLast):
    """SeparableConv2D computed on channels_last inputs."""

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


class _Conv2DTransposeLast(Layer):
    """Conv2DTranspose computed on channels_last inputs."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        name = "Conv2DTranspose"
        self.data_format = normalize_data_format(data_format, name)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size", name)
        self.strides = _pair(strides, "strides", name)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate", name)
        self.padding = _check_padding(padding, name)
        if min(self.kernel_size + self.strides + self.dilation_rate) < 1:
            raise ValueError(f"{name}: kernel_size {self.kernel_size}, strides {self.strides} and dilation_rate "
                             f"{self.dilation_rate} must be positive")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{name}: strides > 1 together with dilation_rate > 1 is not supported (as Keras)")
        if output_padding is not None:
            output_padding = _pair(output_padding, "output_padding", name)
            if any(p < 0 or p >= s for p, s in zip(output_padding, self.strides)):
                raise ValueError(f"{name}: each output_padding must be in [0, stride), got output_padding "
                                 f"{output_padding} with strides {self.strides}")
        self.output_padding = output_padding
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

    def _pads(self, axis):
        """(before, after) zero padding of the zero-inserted input along spatial ``axis`` (0 or 1),
        Keras' rules (keras.src.backend.common.backend_utils, the TensorFlow/JAX convention)."""
        k = (self.kernel_size[axis] - 1) * self.dilation_rate[axis] + 1
        s = self.strides[axis]
        op = None if self.output_padding is None else self.output_padding[axis]
        if self.padding == "valid":
            op = max(k, s) - k if op is None else op
            return k - 1, k - 1 + op
        pad_len = s + k - 2 if op is None else k + k % 2 - 2 + op
        before = min(pad_len // 2 + pad_len % 2, k - 1)
        return before, pad_len - before

    def _out_size(self, size, axis):
        if size is None:
            return None
        k = (self.kernel_size[axis] - 1) * self.dilation_rate[axis] + 1
        return (size - 1) * self.strides[axis] + 1 + sum(self._pads(axis)) - k + 1

    def call(self, x):
        if x.ndim != 4:
            raise ValueError(f"Conv2DTranspose {self.name!r}: expects (batch, H, W, C), got {tuple(x.shape)}")
        n, h, w, c = x.shape
        sh, sw = self.strides
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
        y = _pad_axis(_pad_axis(y, 1, *self._pads(0)), 2, *self._pads(1))
        flipped = F.transpose(F.getitem(self.kernel, (slice(None, None, -1), slice(None, None, -1))), (0, 1, 3, 2))
        y = F.conv2d(y, flipped, self.bias, dilation_rate=self.dilation_rate)
        return self.activation(y)

    def compute_output_shape(self, s):
        return (s[0], self._out_size(s[1], 0), self._out_size(s[2], 1), self.filters)

    def get_config(self):
        for v in (self.kernel_initializer, self.bias_initializer, self.activation_name):
            if not (v is None or isinstance(v, str)):
                raise ValueError(f"Conv2DTranspose {self.name!r}: to save it, pass initializers/activation by name")
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "output_padding": None if self.output_padding is None else list(self.output_padding),
                "dilation_rate": list(self.dilation_rate), "activation": self.activation_name,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}


class DepthwiseConv2D(ChannelsFirst, _DepthwiseConv2DLast):
    """DepthwiseConv2D(kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
    data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True, ...):
    each input channel convolved with its own ``depth_multiplier`` filters.
    Weights [depthwise_kernel (kh, kw, C, m), bias (C·m,)], as Keras.

    Example:
        >>> layer = pynn.layers.DepthwiseConv2D(3, depth_multiplier=2)
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 6, 6, 6)
    """


class SeparableConv2D(ChannelsFirst, _SeparableConv2DLast):
    """SeparableConv2D(filters, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, ...):
    a depthwise convolution, then a 1x1 convolution to ``filters`` channels.
    Weights [depthwise_kernel (kh, kw, C, m), pointwise_kernel (1, 1, C·m, filters), bias].

    Example:
        >>> layer = pynn.layers.SeparableConv2D(8, 3)
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 6, 6, 8)
    """


class Conv2DTranspose(ChannelsFirst, _Conv2DTransposeLast):
    """Conv2DTranspose(filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
    data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True, ...): the transpose
    (gradient) of Conv2D, an upsampling convolution. Output size (H-1)·s + max(k, s) ("valid")
    or H·s ("same"), or (H-1)·s + k - 2·pad + output_padding when ``output_padding`` is given,
    as Keras. Weights [kernel (kh, kw, filters, C), bias (filters,)].

    Example:
        >>> layer = pynn.layers.Conv2DTranspose(4, 3, strides=2, padding="same")
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 16, 16, 4)
    """
