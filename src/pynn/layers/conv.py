"""Convolution layers, channels_last (``data_format="channels_first"`` transposed around
them): ``BaseConv(rank)`` and its Conv1D and Conv2D (Keras's pattern),
``activation(conv(x, kernel) + bias)``.

Conv1D runs the 2-D kernels on a height-1 view of (N, T, C) (``F.conv1d``):
reshapes are views, so it adds no copies.
"""
from .. import functional as F
from ..shapes import normalize_padding, normalize_tuple, window_output_shape
from .data_format import ChannelsFirst, normalize_data_format
from .dense import KernelLayer


class BaseConv(KernelLayer):
    """The convolution of ``rank`` spatial dimensions: settings, weights, shapes.

    Input (N, *spatial, C_in) -> (N, *spatial', filters). Weights as Keras:
    [kernel (*kernel_size, C_in, filters), bias (filters,)]. padding "valid" |
    "same" (TensorFlow rules, either case); strides > 1 together with
    dilation_rate > 1 is refused, as Keras does.
    """

    rank = None
    _spatial = None   # how the error messages name the input's axes

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"{name}: filters must be a positive integer, got {filters!r}")
        self.data_format = normalize_data_format(data_format, name)
        self.filters = filters
        self.kernel_size = normalize_tuple(kernel_size, self.rank, f"{name} kernel_size")
        self.strides = normalize_tuple(strides, self.rank, f"{name} strides")
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, f"{name} dilation_rate")
        if min(self.kernel_size + self.strides + self.dilation_rate) < 1:
            raise ValueError(f"{name}: kernel_size {self.kernel_size}, strides {self.strides} and dilation_rate "
                             f"{self.dilation_rate} must be positive")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{name}: strides > 1 together with dilation_rate > 1 is not supported (as Keras)")
        self.padding = normalize_padding(padding, name)
        self._kernel_settings(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                              bias_regularizer, kernel_constraint, bias_constraint)
        self.input_channels = None

    def _expected(self, channels="channels"):
        return f"(batch, {', '.join(self._spatial)}, {channels})"

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected an input of shape {self._expected()}, "
                             f"got {input_shape}")
        self.input_channels = input_shape[-1]
        BaseConv.compute_output_shape(self, input_shape)  # fail now if the kernel does not fit
        self._add_kernel_and_bias(self.kernel_size + (self.input_channels, self.filters), self.filters)

    def call(self, x):
        if x.ndim != self.rank + 2 or x.shape[-1] != self.input_channels:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected input "
                             f"{self._expected(self.input_channels)}, got shape {x.shape}")
        # The op fuses the activation into its GEMM when the output gives its gradient.
        conv = F.conv1d if self.rank == 1 else F.conv2d
        return conv(x, self.kernel, self.bias, strides=self.strides, padding=self.padding,
                    dilation_rate=self.dilation_rate, activation=self.activation)

    def compute_output_shape(self, input_shape):
        label = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{label}: expected an input of shape {self._expected()}, got {tuple(input_shape)}")
        return window_output_shape(label, input_shape, self.kernel_size, self.strides, self.dilation_rate,
                                   self.padding, self.filters, self.kernel_size + (input_shape[-1], self.filters))

    def get_config(self):
        # Conv1D's files hold plain ints, Conv2D's lists, as they always have.
        v = (lambda t: t[0]) if self.rank == 1 else list
        return {**super().get_config(), "filters": self.filters, "kernel_size": v(self.kernel_size),
                "strides": v(self.strides), "padding": self.padding, "dilation_rate": v(self.dilation_rate),
                **self._kernel_config()}


class Conv1D(ChannelsFirst, BaseConv):
    """Conv1D(filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
    use_bias=True, ..., data_format=None): (N, T, C_in) -> (N, T', filters); kernel
    (k, C_in, filters), for text CNNs. ``data_format="channels_first"``: (N, C_in, T) -> (N, filters, T').

    Example:
        >>> layer = pynn.layers.Conv1D(8, 3, activation="relu")
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 3, 8)
    """
    rank = 1
    _spatial = ("steps",)


class Conv2D(ChannelsFirst, BaseConv):
    """Conv2D(filters, kernel_size, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
    activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
    kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None):
    data_format=None): NHWC images (N, H, W, C_in) -> (N, OH, OW, filters); kernel
    (kh, kw, C_in, filters). ``data_format="channels_first"``: (N, C_in, H, W) -> (N, filters, OH, OW).

    Example:
        >>> layer = pynn.layers.Conv2D(16, 3, padding="same", activation="relu")
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 8, 8, 16)
    """
    rank = 2
    _spatial = ("height", "width")
