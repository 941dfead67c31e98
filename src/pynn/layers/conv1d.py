"""1-D convolution and pooling over sequences (N, T, C), for text CNNs.

Each is the 2-D op on a height-1 view: (N, T, C) -> (N, 1, T, C), kernel
(k, C_in, F) -> (1, k, C_in, F); reshapes are views, so this adds no copies
and uses the same native kernels (im2col + GEMM, pooling).
"""
from .. import activations, functional as F, initializers
from ..backend.numpy.conv import conv_geometry
from .base import Layer

_FUSED = {"linear", "relu", "sigmoid", "tanh", None}


def _int(v, what):
    v = v[0] if isinstance(v, (tuple, list)) and len(v) == 1 else v
    if not isinstance(v, int) or v < 1:
        raise ValueError(f"{what} must be a positive integer, got {v!r}")
    return v


class Conv1D(Layer):
    """Conv1D(filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
    use_bias=True, ...). (N, T, C_in) -> (N, T', filters). Weights as Keras: [kernel (k, C_in,
    filters), bias (filters,)]."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"Conv1D: filters must be a positive integer, got {filters!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"Conv1D: padding must be 'valid' or 'same', got {padding!r}")
        self.filters = filters
        self.kernel_size = _int(kernel_size, "Conv1D kernel_size")
        self.strides = _int(strides, "Conv1D strides")
        self.dilation_rate = _int(dilation_rate, "Conv1D dilation_rate")
        self.padding = padding
        self.activation_name = activation if isinstance(activation, str) or activation is None else None
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"Conv1D {self.name!r}: expected an input of shape (batch, steps, channels), "
                             f"got {input_shape}")
        self.input_channels = input_shape[-1]
        self.compute_output_shape(input_shape)
        self.kernel = self.add_weight("kernel", (self.kernel_size, self.input_channels, self.filters),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer)
                     if self.use_bias else None)
        self.built = True

    def call(self, x):
        if x.ndim != 3 or x.shape[-1] != self.input_channels:
            raise ValueError(f"Conv1D {self.name!r}: expected input (batch, steps, {self.input_channels}), "
                             f"got shape {x.shape}")
        n, t, c = x.shape
        fused = self.activation_name in _FUSED
        y = F.conv2d(F.reshape(x, (n, 1, t, c)), F.reshape(self.kernel, (1,) + self.kernel.shape), self.bias,
                     strides=(1, self.strides), padding=self.padding, dilation_rate=(1, self.dilation_rate),
                     activation=(self.activation_name or "linear") if fused else "linear")
        y = F.reshape(y, (n, y.shape[2], self.filters))
        return y if fused else self.activation(y)

    def compute_output_shape(self, input_shape):
        n, t, c = input_shape
        if t is None:
            return (n, None, self.filters)
        (_, ot), _, _ = conv_geometry(f"Conv1D {self.name!r}", (n, 1, t, c), 1, self.kernel_size,
                                      (1, self.strides), self.padding, (1, self.dilation_rate),
                                      (1, self.kernel_size, c, self.filters))
        return (n, ot, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


class _Pooling1D(Layer):
    op = None

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _int(pool_size, f"{type(self).__name__} pool_size")
        self.strides = _int(strides if strides is not None else self.pool_size, f"{type(self).__name__} strides")
        if padding not in ("valid", "same"):
            raise ValueError(f"{type(self).__name__}: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding

    def call(self, x):
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected (batch, steps, channels), got {x.shape}")
        n, t, c = x.shape
        y = type(self).op(F.reshape(x, (n, 1, t, c)), pool_size=(1, self.pool_size), strides=(1, self.strides),
                          padding=self.padding)
        return F.reshape(y, (n, y.shape[2], c))

    def compute_output_shape(self, input_shape):
        n, t, c = input_shape
        if t is None:
            return (n, None, c)
        ot = -(-t // self.strides) if self.padding == "same" else (t - self.pool_size) // self.strides + 1
        return (n, ot, c)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling1D(_Pooling1D):
    """Max over windows of ``pool_size`` steps: (N, T, C) -> (N, T', C)."""
    op = staticmethod(F.max_pool2d)


class AveragePooling1D(_Pooling1D):
    """Average over windows of ``pool_size`` steps (same padding averages real steps only)."""
    op = staticmethod(F.avg_pool2d)
