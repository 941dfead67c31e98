"""Native NHWC convolution and pooling: thin wrappers over ``pynn._C``.

Same names and signatures as ``pynn.backend.numpy.conv``. float32 inputs go
to the C++ kernels (made C-contiguous first when they are not); any other
dtype (float64 gradient checks) goes to the numpy reference kernel, explicitly.
The C++ binding validates every shape before it computes.
"""
import numpy as np

from pynn import _C

from ...shapes import pair, pool_args as _pool_args
from ..numpy import activations as _table, conv as _ref
from ..numpy.core import check_activation
from .nn import NATIVE_ACTIVATIONS, activate

__all__ = list(_ref.__all__)


def _f32(*arrays):
    return all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)


def _c(a):
    return np.ascontiguousarray(a)


def _shape4(op, shape):
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4:
        raise ValueError(f"{op}: expected a 4-D NHWC shape (N, H, W, C), got {shape}")
    return shape


def conv2d(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), activation=None, alpha=None):
    if not _f32(x, w) or (b is not None and not _f32(b)):
        return _ref.conv2d(x, w, b, strides, padding, dilation, activation, alpha)
    check_activation("conv2d", activation)
    fused = activation if activation in NATIVE_ACTIVATIONS else None
    extra = {} if fused is None or _table.ACTIVATIONS[fused].param is None else \
        {"act_alpha": _table.param_value(fused, alpha)}
    y = _C.conv2d(_c(x), _c(w), None if b is None else _c(b), pair(strides), padding, pair(dilation), fused, **extra)
    # An activation _C lacks: the reference kernel after.
    return y if activation is None or fused is not None else activate(y, activation, alpha)


def conv2d_backward_input(dy, w, x_shape, strides=(1, 1), padding="valid", dilation=(1, 1)):
    if not _f32(dy, w):
        return _ref.conv2d_backward_input(dy, w, x_shape, strides, padding, dilation)
    return _C.conv2d_backward_input(_c(dy), _c(w), _shape4("conv2d_backward_input", x_shape), pair(strides),
                                    padding, pair(dilation))


def conv2d_backward_kernel(x, dy, w_shape, strides=(1, 1), padding="valid", dilation=(1, 1)):
    if not _f32(x, dy):
        return _ref.conv2d_backward_kernel(x, dy, w_shape, strides, padding, dilation)
    w_shape = tuple(int(d) for d in w_shape)
    if len(w_shape) != 4:
        raise ValueError(f"conv2d_backward_kernel: expected a kernel shape (kh, kw, C_in, C_out), got {w_shape}")
    return _C.conv2d_backward_kernel(_c(x), _c(dy), w_shape, pair(strides), padding, pair(dilation))


def conv2d_backward_bias(dy):
    if not _f32(dy) or dy.ndim != 4:
        return _ref.conv2d_backward_bias(dy)
    return _C.conv2d_backward_bias(_c(dy))


def max_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    if not _f32(x):
        return _ref.max_pool2d(x, pool_size, strides, padding)
    return _C.max_pool2d(_c(x), *_pool_args(pool_size, strides), padding)


def max_pool2d_argmax(x, pool_size=(2, 2), strides=None, padding="valid"):
    if not _f32(x):
        return _ref.max_pool2d_argmax(x, pool_size, strides, padding)
    return _C.max_pool2d_argmax(_c(x), *_pool_args(pool_size, strides), padding)


def max_pool2d_backward_argmax(idx, dy, x_shape, pool_size=(2, 2), strides=None, padding="valid", relu_y=None):
    if not _f32(dy) or (relu_y is not None and not _f32(relu_y)):
        return _ref.max_pool2d_backward_argmax(idx, dy, x_shape, pool_size, strides, padding, relu_y)
    return _C.max_pool2d_backward_argmax(idx, _c(dy), _shape4("max_pool2d_backward_argmax", x_shape),
                                         *_pool_args(pool_size, strides), padding,
                                         None if relu_y is None else _c(relu_y))


def max_pool2d_relu_bias_grad(dy, relu_y):
    if not _f32(dy, relu_y):
        return _ref.max_pool2d_relu_bias_grad(dy, relu_y)
    return _C.max_pool2d_relu_bias_grad(_c(dy), _c(relu_y))


def max_pool2d_backward(x, y, dy, pool_size=(2, 2), strides=None, padding="valid"):
    if not _f32(x, y, dy):
        return _ref.max_pool2d_backward(x, y, dy, pool_size, strides, padding)
    return _C.max_pool2d_backward(_c(x), _c(y), _c(dy), *_pool_args(pool_size, strides), padding)


def avg_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    if not _f32(x):
        return _ref.avg_pool2d(x, pool_size, strides, padding)
    return _C.avg_pool2d(_c(x), *_pool_args(pool_size, strides), padding)


def avg_pool2d_backward(dy, x_shape, pool_size=(2, 2), strides=None, padding="valid"):
    if not _f32(dy):
        return _ref.avg_pool2d_backward(dy, x_shape, pool_size, strides, padding)
    return _C.avg_pool2d_backward(_c(dy), _shape4("avg_pool2d_backward", x_shape), *_pool_args(pool_size, strides),
                                  padding)


def global_avg_pool2d(x):
    if not _f32(x) or x.ndim != 4 or x.shape[1] * x.shape[2] == 0:  # the reference owns those errors
        return _ref.global_avg_pool2d(x)
    return _C.global_avg_pool2d(_c(x))


def global_avg_pool2d_backward(dy, x_shape):
    if not _f32(dy):
        return _ref.global_avg_pool2d_backward(dy, x_shape)
    return _C.global_avg_pool2d_backward(_c(dy), _shape4("global_avg_pool2d_backward", x_shape))


def global_max_pool2d(x):
    if not _f32(x):
        return _ref.global_max_pool2d(x)
    return _C.global_max_pool2d(_c(x))


def global_max_pool2d_backward(x, y, dy):
    if not _f32(x, y, dy):
        return _ref.global_max_pool2d_backward(x, y, dy)
    return _C.global_max_pool2d_backward(_c(x), _c(y), _c(dy))
