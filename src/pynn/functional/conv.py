"""Convolution and pooling ops on NHWC tensors, forward and backward side by side.

Each Function calls the active backend's kernels (``pynn.backend.current()``):
conv2d's backward is ``conv2d_backward_input`` (dx), ``conv2d_backward_kernel``
(dw) and ``conv2d_backward_bias`` (db). Max pooling keeps the winning window cell
(uint8, ``max_pool2d_argmax``) so its backward reads neither x nor y again; the other
pooling backwards need no state from the forward.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..shapes import normalize_tuple, pair, pool_args
from .activation import check_fusable, fused_backward, split
from .movement import reshape
from .registry import register


def _B():
    return backend.current()


@register("conv2d")
class Conv2D(Function):
    """act(conv(x, w) + b): x (N, H, W, C_in), w (kh, kw, C_in, C_out), b (C_out,).

    activation: "linear" or one whose derivative its output determines, fused into
    the kernel's GEMM epilogue; dz = act'(y)·g read off the output y, then
    dx = conv2d_backward_input(dz), dw = conv2d_backward_kernel(x, dz), db = Σ dz.
    """

    # Set by MaxPool2D.backward: (a gradient with relu' already applied, the pooling's dy, its y);
    # db is read off the pooling's (dy, y), 1/(kh·kw) the size of the masked gradient.
    relu_masked = None

    def forward(self, x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), activation="linear"):
        check_fusable("conv2d", activation)
        self.x, self.w, self.args = x, w, (strides, padding, dilation)
        self.activation = activation
        self.y = _B().conv2d(x, w, b, strides, padding, dilation, None if activation == "linear" else activation)
        return self.y

    def backward(self, g):
        B, (strides, padding, dilation) = _B(), self.args
        need = self.needs_input_grad
        masked, self.relu_masked = self.relu_masked, None
        if masked is not None and g is masked[0]:   # the pooling's backward applied relu' (see MaxPool2D)
            dz, db = g, (B.max_pool2d_relu_bias_grad(*masked[1:]) if len(need) > 2 and need[2] else None)
        else:
            dz, db = fused_backward(self.activation, self.y, g, len(need) > 2 and need[2])   # NHWC: Σ over N, H, W
        dx = B.conv2d_backward_input(dz, self.w, self.x.shape, strides, padding, dilation) if need[0] else None
        dw = B.conv2d_backward_kernel(self.x, dz, self.w.shape, strides, padding, dilation) if need[1] else None
        return dx, dw, db


@register("max_pool2d")
class MaxPool2D(Function):
    """Window max; the gradient goes to the first maximum in window order (as TensorFlow)."""

    def forward(self, x, pool_size=(2, 2), strides=None, padding="valid"):
        self.args = (pool_size, strides, padding)
        (kh, kw), _ = pool_args(pool_size, strides)
        if kh * kw <= 256:  # the winner's cell is kept (uint8): the backward never re-reads x and y
            y, self.idx = _B().max_pool2d_argmax(x, pool_size, strides, padding)
            self.x_shape, self.x_dtype, self.y = x.shape, x.dtype, y
            return y
        self.idx, self.x = None, x
        self.y = _B().max_pool2d(x, pool_size, strides, padding)
        return self.y

    def backward(self, g):
        if self.idx is not None:
            g = g.astype(np.result_type(self.x_dtype, g), copy=False)
            conv = self.parents[0]._ctx if self.parents and hasattr(self.parents[0], "_ctx") else None
            if isinstance(conv, Conv2D) and conv.activation == "relu":
                # x is the output of conv2d + relu: relu' at the window's winning cell is
                # [its value > 0] = [y > 0], applied here in the same pass. The conv skips its
                # own relu' only when it receives this very array: when x has other consumers
                # the engine hands it a new sum, and the mask is applied to all of it there.
                dx = _B().max_pool2d_backward_argmax(self.idx, g, self.x_shape, *self.args, relu_y=self.y)
                conv.relu_masked = (dx, g, self.y)
                return dx
            return _B().max_pool2d_backward_argmax(self.idx, g, self.x_shape, *self.args)
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


def conv2d(x, w, b=None, strides=1, padding="valid", dilation_rate=1, activation=None):
    """2-D convolution of an NHWC tensor; see :class:`Conv2D`. ``padding``: "valid" | "same";
    ``activation`` None, a name or a callable (fused when its output gives its gradient)."""
    fused, after = split(activation)
    kwargs = dict(strides=pair(strides, "strides"), padding=padding, dilation=pair(dilation_rate, "dilation_rate"),
                  activation=fused)
    y = Conv2D.apply(x, w, **kwargs) if b is None else Conv2D.apply(x, w, b, **kwargs)
    return y if after is None else after(y)


def conv1d(x, w, b=None, strides=1, padding="valid", dilation_rate=1, activation=None):
    """1-D convolution of (N, T, C_in) with w (k, C_in, C_out): the 2-D op on a height-1
    view ((N, 1, T, C), kernel (1, k, C_in, C_out); reshapes are views, no copies)."""
    n, t, c = x.shape
    (s,), (d,) = normalize_tuple(strides, 1, "strides"), normalize_tuple(dilation_rate, 1, "dilation_rate")
    y = conv2d(reshape(x, (n, 1, t, c)), reshape(w, (1,) + tuple(w.shape)), b, strides=(1, s), padding=padding,
               dilation_rate=(1, d), activation=activation)
    return reshape(y, (n, y.shape[2], y.shape[3]))


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling, NHWC; ``strides`` defaults to ``pool_size``."""
    return MaxPool2D.apply(x, pool_size=pair(pool_size, "pool_size"),
                           strides=None if strides is None else pair(strides, "strides"), padding=padding)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling, NHWC; "same" padding averages over the real cells only."""
    return AvgPool2D.apply(x, pool_size=pair(pool_size, "pool_size"),
                           strides=None if strides is None else pair(strides, "strides"), padding=padding)


def _pool1d(pool2d, x, pool_size, strides, padding):
    n, t, c = x.shape
    (k,) = normalize_tuple(pool_size, 1, "pool_size")
    (s,) = (k,) if strides is None else normalize_tuple(strides, 1, "strides")
    y = pool2d(reshape(x, (n, 1, t, c)), (1, k), (1, s), padding)
    return reshape(y, (n, y.shape[2], c))


def max_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling over the steps of (N, T, C); the 2-D op on a height-1 view."""
    return _pool1d(max_pool2d, x, pool_size, strides, padding)


def avg_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling over the steps of (N, T, C); "same" averages the real steps only."""
    return _pool1d(avg_pool2d, x, pool_size, strides, padding)


def global_average_pool2d(x): return GlobalAveragePool2D.apply(x)
def global_max_pool2d(x): return GlobalMaxPool2D.apply(x)
