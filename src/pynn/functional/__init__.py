"""Differentiable ops on Tensors (Tensors or arrays in, Tensors out).

Each op is one :class:`~pynn.autograd.Function` with forward and backward side
by side, registered in ``OP_REGISTRY``. Layers call only these functions; the
functions call the active backend's kernels.
"""
import operator

from ..autograd import Tensor
from .ctc import ctc_loss
from .elementwise import (abs, add, clip, div, exp, log, maximum, minimum, mul, neg, power, sqrt,  # noqa: A004
                          square, sub, where)
from .normalization import batch_norm, layer_norm
from .movement import concatenate, flatten, getitem, reshape, stack, transpose
from .activation import ACTIVATIONS, activation, log_softmax, softmax
from .nn import dense, dropout, matmul, sigmoid_binary_cross_entropy, softmax_cross_entropy
from .recurrent import embedding, gru, lstm, simple_rnn
from .reduce import max, mean, min, sum  # noqa: A004
from .conv import (avg_pool1d, avg_pool2d, conv1d, conv2d, global_average_pool2d, global_max_pool2d, max_pool1d,
                   max_pool2d)
from .registry import OP_REGISTRY, unbroadcast

__all__ = [
    "OP_REGISTRY", "unbroadcast", "ctc_loss", "abs", "add", "clip", "div", "exp", "log", "maximum", "minimum", "mul",
    "neg", "power", "sqrt", "square", "sub", "where", "concatenate", "flatten", "getitem", "reshape", "stack",
    "transpose", "embedding", "gru", "lstm", "simple_rnn", "batch_norm", "layer_norm", "dense", "dropout",
    "activation", "log_softmax", "matmul", "sigmoid_binary_cross_entropy", "softmax", "softmax_cross_entropy",
    "max", "mean", "min", "sum", "avg_pool1d", "avg_pool2d", "conv1d", "conv2d", "global_average_pool2d",
    "global_max_pool2d", "max_pool1d", "max_pool2d",
] + sorted(ACTIVATIONS)   # relu, sigmoid, ..., one per activation of the table

globals().update(ACTIVATIONS)


def _attach_tensor_methods():
    """Give Tensor its operators and methods, all routed through the op table."""
    T = Tensor
    for name, op in (("add", add), ("sub", sub), ("mul", mul), ("truediv", div), ("pow", power),
                     ("matmul", matmul)):
        setattr(T, f"__{name}__", lambda a, b, op=op: op(a, b))
        setattr(T, f"__r{name}__", lambda a, b, op=op: op(b, a))
    T.__neg__ = lambda a: neg(a)
    T.__getitem__ = lambda a, idx: getitem(a, idx)
    # Comparisons are not differentiable: they return plain boolean arrays.
    for name in ("lt", "le", "gt", "ge"):
        compare = getattr(operator, name)
        setattr(T, f"__{name}__", lambda a, b, compare=compare: compare(a.data, getattr(b, "data", b)))
    T.exp, T.log, T.sqrt, T.abs, T.square = exp, log, sqrt, abs, square
    T.sum = lambda a, axis=None, keepdims=False: sum(a, axis, keepdims)
    T.mean = lambda a, axis=None, keepdims=False: mean(a, axis, keepdims)
    T.max = lambda a, axis=None, keepdims=False: max(a, axis, keepdims)
    T.min = lambda a, axis=None, keepdims=False: min(a, axis, keepdims)
    T.reshape = lambda a, *shape: reshape(a, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)
    T.transpose = lambda a, *axes: transpose(a, (axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes) or None)
    T.T = property(lambda a: transpose(a))
    T.flatten = flatten
    T.clip = clip
    for name in ("relu", "sigmoid", "tanh", "gelu", "elu", "leaky_relu"):
        setattr(T, name, ACTIVATIONS[name])
    T.softmax = lambda a, axis=-1: softmax(a, axis)
    T.log_softmax = lambda a, axis=-1: log_softmax(a, axis)


_attach_tensor_methods()
