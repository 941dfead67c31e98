"""Activation ops on Tensors: one autograd op serves every elementwise activation
of the table (``pynn.backend.numpy.activations``), plus softmax and log-softmax.

The named functions (``relu(x)``, ``elu(x, alpha=1.0)``, ``mish(x)`` ...)
are made from the table, so an activation added there is here too; only
``leaky_relu`` (two keyword names), ``gelu`` (``approximate``) and ``sigmoid``
(which marks its output for the losses' logits path) are written out.
"""
import inspect

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend.numpy import activations as _table
from .registry import register


def _B():
    return backend.current()


@register("activation")
class Activate(Function):
    """y = act(x) elementwise, ``name`` any activation of the table and ``alpha`` its
    parameter (None when it has none); backward is the backend's ``name_grad`` kernel."""

    def forward(self, x, name, alpha=None):
        self.x, self.name, self.args = x, name, (() if alpha is None else (alpha,))
        self.y = getattr(_B(), name)(x, *self.args)
        return self.y

    def backward(self, g):
        return getattr(_B(), self.name + "_grad")(self.x, self.y, g, *self.args)


def activation(x, name, alpha=None):
    """The activation ``name`` (a Keras name or alias) of ``x``; ``alpha`` its parameter, None for
    the default (leaky_relu's negative_slope 0.2, elu's alpha 1.0)."""
    name = _table.ALIASES.get(name, name)
    if _table.get(name).param is None and alpha is not None:
        raise TypeError(f"activation {name!r} takes no parameter, got alpha={alpha!r}")
    return Activate.apply(x, name=name, alpha=_table.param_value(name, alpha))


# What each activation's docstring example prints for x = [-1, 0, 1], rounded to 3 places
# (a name added to the table without a row here gets an example that fails the doctest).
_EXAMPLE_OUTPUT = {
    'relu': '[0. 0. 1.]',
    'leaky_relu': '[-0.2  0.   1. ]',
    'sigmoid': '[0.269 0.5   0.731]',
    'tanh': '[-0.762  0.     0.762]',
    'elu': '[-0.632  0.     1.   ]',
    'selu': '[-1.111  0.     1.051]',
    'softplus': '[0.313 0.693 1.313]',
    'softsign': '[-0.5  0.   0.5]',
    'exponential': '[0.368 1.    2.718]',
    'relu6': '[0. 0. 1.]',
    'hard_sigmoid': '[0.333 0.5   0.667]',
    'silu': '[-0.269  0.     0.731]',
    'hard_silu': '[-0.333  0.     0.667]',
    'gelu': '[-0.159  0.     0.841]',
    'gelu_tanh': '[-0.159  0.     0.841]',
    'mish': '[-0.303  0.     0.865]',
    'softmax': '[0.09  0.245 0.665]',
    'log_softmax': '[-2.408 -1.408 -0.408]',
    'linear': '[-1.  0.  1.]',
}


def _example(name):
    """The ``Example:`` block of the activation ``name``'s docstring (run by tests/test_docstring_examples.py)."""
    return ("\n\n    Example:\n"
            "        >>> x = np.array([-1.0, 0.0, 1.0], np.float32)\n"
            f"        >>> print(np.round(np.asarray(pynn.activations.{name}(x)), 3))\n"
            f"        {_EXAMPLE_OUTPUT.get(name, '<add its output to _EXAMPLE_OUTPUT>')}\n    ")


def _named(name):
    """``name(x)``, or ``name(x, <keyword>=<default>)`` with the Keras keyword of its parameter."""
    param = _table.ACTIVATIONS[name].param
    if param is None:
        def f(x):
            return Activate.apply(x, name=name)
    else:
        sig = inspect.Signature([inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                                 inspect.Parameter(param[0], inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                   default=param[1])])

        def f(x, *args, **kwargs):
            if not kwargs and len(args) <= 1:              # the common calls skip binding
                alpha = args[0] if args else param[1]
            elif not args and len(kwargs) == 1 and param[0] in kwargs:
                alpha = kwargs[param[0]]
            else:
                bound = sig.bind(x, *args, **kwargs)      # TypeError for a wrong keyword
                alpha = bound.arguments.get(param[0], param[1])
            return Activate.apply(x, name=name, alpha=alpha)
        f.__signature__ = sig
    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"The {name} activation of x, elementwise (see pynn.backend.numpy.activations).\n\n"
                 "    Args:\n"
                 "        x: a Tensor or array.\n"
                 + (f"        {param[0]}: the activation's parameter (default {param[1]}).\n" if param else "")
                 + "\n    Returns:\n        A Tensor of x's shape." + _example(name))
    return f


ACTIVATIONS = {name: _named(name) for name in _table.ACTIVATIONS}
ALIASES = _table.ALIASES   # swish -> silu, hard_swish -> hard_silu


def leaky_relu(x, negative_slope=0.2, *, alpha=None):
    """x for x >= 0, negative_slope·x below (Keras 3's keyword; ``alpha`` is its older name).

    Args:
        x: a Tensor or array.
        negative_slope: the slope below 0 (default 0.2).
        alpha: older name of negative_slope.

    Returns:
        A Tensor of x's shape.

    Example:
        >>> x = np.array([-1.0, 0.0, 1.0], np.float32)
        >>> print(np.round(np.asarray(pynn.activations.leaky_relu(x)), 3))
        [-0.2  0.   1. ]
    """
    if alpha is not None:
        if negative_slope != 0.2:
            raise TypeError("leaky_relu: pass negative_slope or alpha, not both")
        negative_slope = alpha
    return Activate.apply(x, name="leaky_relu", alpha=negative_slope)


def gelu(x, approximate=False):
    """GELU: exact x·Φ(x) (Keras' and torch's default), or with ``approximate=True`` its tanh form.

    Args:
        x: a Tensor or array.
        approximate: use the tanh approximation.

    Returns:
        A Tensor of x's shape.

    Example:
        >>> x = np.array([-1.0, 0.0, 1.0], np.float32)
        >>> print(np.round(np.asarray(pynn.activations.gelu(x)), 3))
        [-0.159  0.     0.841]
    """
    return Activate.apply(x, name="gelu_tanh" if approximate else "gelu")


def sigmoid(x):
    """1 / (1 + exp(-x)); a binary cross-entropy on this output may use the logits path.

    Args:
        x: a Tensor or array.

    Returns:
        A Tensor of x's shape.

    Example:
        >>> x = np.array([-1.0, 0.0, 1.0], np.float32)
        >>> print(np.round(np.asarray(pynn.activations.sigmoid(x)), 3))
        [0.269 0.5   0.731]
    """
    out = Activate.apply(x, name="sigmoid")
    out._keras_logits = x
    return out


def linear(x):
    """x unchanged (no op is recorded).

    Args:
        x: anything.

    Returns:
        x itself.

    Example:
        >>> x = np.array([-1.0, 0.0, 1.0], np.float32)
        >>> print(np.round(np.asarray(pynn.activations.linear(x)), 3))
        [-1.  0.  1.]
    """
    return x


ACTIVATIONS.update(linear=linear, leaky_relu=leaky_relu, gelu=gelu, sigmoid=sigmoid)


@register("softmax")
class Softmax(Function):
    """softmax along ``axis``; backward reads the output alone (``<kernel>_grad(y, g)``)."""
    kernel = "softmax"

    def forward(self, x, axis=-1):
        self.axis = axis
        self.y = getattr(_B(), self.kernel)(x, axis=axis)
        return self.y

    def backward(self, g):
        return getattr(_B(), self.kernel + "_grad")(self.y, g, axis=self.axis)


@register("log_softmax")
class LogSoftmax(Softmax):
    kernel = "log_softmax"


def softmax(x, axis=-1):
    """exp(x) / Σ exp(x) along ``axis``.

    Args:
        x: a Tensor or array.
        axis: the axis normalised over (default -1).

    Returns:
        A Tensor of x's shape whose values along axis sum to 1.

    Example:
        >>> x = np.array([-1.0, 0.0, 1.0], np.float32)
        >>> print(np.round(np.asarray(pynn.activations.softmax(x)), 3))
        [0.09  0.245 0.665]
    """
    out = Softmax.apply(x, axis=axis)
    if axis in (-1, np.ndim(x) - 1):
        out._keras_logits = x  # a CCE loss on this output may use the fused logits path
    return out


def log_softmax(x, axis=-1):
    """x − logsumexp(x) along ``axis``.

    Args:
        x: a Tensor or array.
        axis: the axis normalised over (default -1).

    Returns:
        A Tensor of x's shape.

    Example:
        >>> x = np.array([-1.0, 0.0, 1.0], np.float32)
        >>> print(np.round(np.asarray(pynn.activations.log_softmax(x)), 3))
        [-2.408 -1.408 -0.408]
    """
    return LogSoftmax.apply(x, axis=axis)


_BY_NAME = {**ACTIVATIONS, "softmax": softmax, "log_softmax": log_softmax}
_NAME_OF = {id(f): name for name, f in _BY_NAME.items()}


def split(activation):
    """A Dense/Conv activation as ``(fused, after)``: ``fused`` the name the op applies in its
    kernel (an activation whose gradient its output determines; "linear" if none) and
    ``after`` a callable applied to the op's output, or None. ``activation``: None, a name
    (or alias) of an activation, or a callable (this module's functions are recognised)."""
    if activation is None:
        return "linear", None
    if isinstance(activation, str):
        name = _table.ALIASES.get(activation, activation)
        if name not in _BY_NAME:
            raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(_BY_NAME)}")
        fn = _BY_NAME[name]
    else:
        fn, name = activation, _NAME_OF.get(id(activation))
    entry = _table.ACTIVATIONS.get(name)
    if entry is not None and entry.from_output:
        return name, None
    return "linear", fn


def check_fusable(op, activation):
    """ValueError naming ``op`` unless ``activation`` can be fused into it (see :func:`split`)."""
    entry = _table.ACTIVATIONS.get(activation)
    if entry is None or not entry.from_output:
        raise ValueError(f"{op}: activation {activation!r} cannot be fused (its gradient needs the input); "
                         f"fusable: {sorted(n for n, e in _table.ACTIVATIONS.items() if e.from_output)}")


def fused_backward(activation, y, g, need_bias):
    """(dz, db) for an op that fused ``activation`` and kept its output ``y``: dz = act'(y)·g
    and db = Σ dz over all but the last axis (None unless ``need_bias``)."""
    if activation == "linear" and not need_bias:
        return g, None
    dz, db = _B().act_bias_grad(y, g, activation)   # one pass for act' and Σ
    return dz, (db if need_bias else None)
