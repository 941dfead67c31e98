"""Differentiable ops on Tensors (Tensors or arrays in, Tensors out).

Each op is one :class:`~pynn.autograd.Function` with forward and backward side
by side, registered in ``OP_REGISTRY``. Layers call only these functions; the
functions call the active backend's kernels.
"""
from ..autograd import Tensor
from .ctc import ctc_loss
from .elementwise import (abs, add, cast, clip, div, exp, log, log1p, maximum, minimum, mul, neg, power,  # noqa: A004
                          sqrt, square, sub, where)
from .einsum import einsum
from .normalization import batch_norm, layer_norm
from .movement import concatenate, expand_dims, flatten, getitem, reshape, split, squeeze, stack, transpose
from .activation import ACTIVATIONS, activation, log_softmax, softmax
from .attention import dot_product_attention, packed_self_attention, transformer_encoder_post_norm
from .nn import dense, dropout, matmul, sigmoid_binary_cross_entropy, softmax_cross_entropy
from .recurrent import embedding, gru, lstm, simple_rnn
from .reduce import max, mean, min, std, sum, var  # noqa: A004
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
    "cast", "log1p", "einsum", "expand_dims", "split", "squeeze", "std", "var",
    "dot_product_attention", "packed_self_attention", "transformer_encoder_post_norm",
] + sorted(ACTIVATIONS)   # relu, sigmoid, ..., one per activation of the table

globals().update(ACTIVATIONS)


def _attach_tensor_methods():
    """Give Tensor its operators and methods, all routed through the op table."""
    T = Tensor
    T.__add__ = add  # the plain functions: one Python call less per operator
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = sub
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = mul
    T.__rmul__ = lambda a, b: mul(b, a)
    T.__truediv__ = div
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__pow__ = lambda a, b: power(a, b)
    T.__rpow__ = lambda a, b: power(b, a)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__neg__ = neg
    T.__getitem__ = getitem
    # Comparisons are not differentiable: they return plain boolean arrays.
    T.__lt__ = lambda a, b: a.data < getattr(b, "data", b)
    T.__le__ = lambda a, b: a.data <= getattr(b, "data", b)
    T.__gt__ = lambda a, b: a.data > getattr(b, "data", b)
    T.__ge__ = lambda a, b: a.data >= getattr(b, "data", b)
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
