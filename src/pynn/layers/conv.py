"""``layers.Conv2D``: 2-D convolution over NHWC images, ``activation(conv(x, kernel) + bias)``."""
from .. import activations, functional as F, initializers
from ..backend.numpy.conv import conv_geometry, pair
from .base import Layer

# Activations fused into the convolution's GEMM epilogue (derivative from the output alone).
_FUSED = {"linear", "relu", "sigmoid", "tanh", None}


class Conv2D(Layer):
    """Conv2D(filters, kernel_size, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
    activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
    kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None).

    Input (N, H, W, C_in) channels_last -> (N, OH, OW, filters). Weights as Keras:
    [kernel (kh, kw, C_in, filters), bias (filters,)]. padding "valid" | "same" (TensorFlow rules).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"{name}: filters must be a positive integer, got {filters!r}")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{name}: only data_format='channels_last' (NHWC) is supported, got {data_format!r}")
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in ("valid", "same"):
            raise ValueError(f"{name}: padding must be 'valid' or 'same', got {padding!r}")
        self.filters = filters
        self.kernel_size = pair(kernel_size, f"{name} kernel_size")
        self.strides = pair(strides, f"{name} strides")
        self.dilation_rate = pair(dilation_rate, f"{name} dilation_rate")
        if min(self.kernel_size + self.strides + self.dilation_rate) < 1:
            raise ValueError(f"{name}: kernel_size {self.kernel_size}, strides {self.strides} and dilation_rate "
                             f"{self.dilation_rate} must be positive")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{name}: strides > 1 together with dilation_rate > 1 is not supported (as Keras)")
        self.padding = padding
        self.activation_name = activation if isinstance(activation, str) or activation is None else None
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self.input_channels = None

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"Conv2D {self.name!r}: expected an input of shape (batch, height, width, channels), "
                             f"got {input_shape}")
        self.input_channels = input_shape[-1]
        self.compute_output_shape(input_shape)  # fail now if the kernel does not fit
        kshape = self.kernel_size + (self.input_channels, self.filters)
        self.kernel = self.add_weight("kernel", kshape, self.kernel_initializer, self.kernel_regularizer,
                                      self.kernel_constraint)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer,
                                     self.bias_constraint) if self.use_bias else None)
        self.built = True

    def call(self, x):
        if x.ndim != 4 or x.shape[-1] != self.input_channels:
            raise ValueError(f"Conv2D {self.name!r}: expected input (batch, height, width, {self.input_channels}), "
                             f"got shape {x.shape}")
        fused = self.activation_name in _FUSED
        y = F.conv2d(x, self.kernel, self.bias, strides=self.strides, padding=self.padding,
                     dilation_rate=self.dilation_rate, activation=(self.activation_name or "linear") if fused else "linear")
        return y if fused else self.activation(y)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"Conv2D {self.name!r}: expected an input of shape (batch, height, width, channels), "
                             f"got {tuple(input_shape)}")
        n, h, w, _ = input_shape
        if h is None or w is None:
            return (n, None, None, self.filters)
        kshape = self.kernel_size + (input_shape[-1], self.filters)
        (oh, ow), _, _ = conv_geometry(f"Conv2D {self.name!r}", tuple(input_shape), *self.kernel_size,
                                       self.strides, self.padding, self.dilation_rate, kshape)
        return (n, oh, ow, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}
