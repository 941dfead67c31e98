"""Convolution and pooling ops on NHWC tensors, forward and backward side by side.

Each Function calls the active backend's kernels (``pynn.backend.current()``):
conv2d's backward is ``conv2d_backward_input`` (dx), ``conv2d_backward_kernel``
(dw) and ``conv2d_backward_bias`` (db); pooling backwards recompute the winner
from (x, y) instead of storing an index array.
"""
from .. import backend
from ..autograd import Function
from .nn import _derivative_from_output
from .registry import register

_FUSABLE = ("linear", "relu", "sigmoid", "tanh")


def _B():
    return backend.current()


@register("conv2d")
class Conv2D(Function):
    """act(conv(x, w) + b): x (N, H, W, C_in), w (kh, kw, C_in, C_out), b (C_out,).

    activation: linear/relu/sigmoid/tanh, fused into the kernel's GEMM epilogue;
    its derivative is read off the output y. dz = act'(y)·g, then
    dx = conv2d_backward_input(dz), dw = conv2d_backward_kernel(x, dz), db = Σ dz.
    """

    def forward(self, x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), activation="linear"):
        if activation not in _FUSABLE:
            raise ValueError(f"conv2d: activation {activation!r} cannot be fused; use one of {_FUSABLE} "
                             "and apply others after")
        self.x, self.w, self.args = x, w, (strides, padding, dilation)
        self.activation = activation
        self.y = _B().conv2d(x, w, b, strides, padding, dilation, None if activation == "linear" else activation)
        return self.y

    def backward(self, g):
        B, (strides, padding, dilation) = _B(), self.args
        need = self.needs_input_grad
        if len(need) > 2 and need[2]:
            dz, db = B.act_bias_grad(self.y, g, self.activation)   # NHWC: Σ over N, H, W = all but C
        else:
            dz, db = _derivative_from_output(self.activation, self.y, g), None
        dx = B.conv2d_backward_input(dz, self.w, self.x.shape, strides, padding, dilation) if need[0] else None
        dw = B.conv2d_backward_kernel(self.x, dz, self.w.shape, strides, padding, dilation) if need[1] else None
        return dx, dw, db


@register("max_pool2d")
class MaxPool2D(Function):
    """Window max; the gradient goes to the first maximum in window order (as TensorFlow)."""

    def forward(self, x, pool_size=(2, 2), strides=None, padding="valid"):
        self.x, self.args = x, (pool_size, strides, padding)
        self.y = _B().max_pool2d(x, pool_size, strides, padding)
        return self.y

    def backward(self, g):
        return _B().max_pool2d_backward(self.x, self.y, g, *self.args)


@register("avg_pool2d")
class AvgPool2D(Function):
    """Window mean over the real (unpadded) cells, as Keras."""

    def forward(self, x, pool_size=(2, 2), strides=None, padding="valid"):
        self.x_shape, self.args = x.shape, (pool_size, strides, padding)
        return _B().avg_pool2d(x, pool_size, strides, padding)

    def backward(self, g):
        return _B().avg_pool2d_backward(g, self.x_shape, *self.args)


@register("global_average_pool2d")
class GlobalAveragePool2D(Function):
    """(N, H, W, C) -> (N, C) mean over space."""

    def forward(self, x):
        self.x_shape = x.shape
        return _B().global_avg_pool2d(x)

    def backward(self, g):
        return _B().global_avg_pool2d_backward(g, self.x_shape)


@register("global_max_pool2d")
class GlobalMaxPool2D(Function):
    """(N, H, W, C) -> (N, C) max over space; gradient to the first maximum."""

    def forward(self, x):
        self.x = x
        self.y = _B().global_max_pool2d(x)
        return self.y

    def backward(self, g):
        return _B().global_max_pool2d_backward(self.x, self.y, g)


def _pair(v):
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(a) for a in v)


def conv2d(x, w, b=None, strides=1, padding="valid", dilation_rate=1, activation="linear"):
    """2-D convolution of an NHWC tensor; see :class:`Conv2D`. ``padding``: "valid" | "same"."""
    kwargs = dict(strides=_pair(strides), padding=padding, dilation=_pair(dilation_rate),
                  activation=activation or "linear")
    return Conv2D.apply(x, w, **kwargs) if b is None else Conv2D.apply(x, w, b, **kwargs)


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling, NHWC; ``strides`` defaults to ``pool_size``."""
    return MaxPool2D.apply(x, pool_size=_pair(pool_size), strides=None if strides is None else _pair(strides),
                           padding=padding)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling, NHWC; "same" padding averages over the real cells only."""
    return AvgPool2D.apply(x, pool_size=_pair(pool_size), strides=None if strides is None else _pair(strides),
                           padding=padding)


def global_average_pool2d(x): return GlobalAveragePool2D.apply(x)
def global_max_pool2d(x): return GlobalMaxPool2D.apply(x)
