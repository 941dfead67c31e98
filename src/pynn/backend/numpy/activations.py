"""Every elementwise activation of pynn, once: the table the rest derives from.

``ACTIVATIONS`` maps a Keras name to an :class:`Activation`: its forward
``f(x, a)``, its gradient ``g(x, y, dy, a)`` (``x`` the input, ``y = f(x, a)``,
``dy`` the upstream gradient; returns ``f'(x)·dy``), whether that gradient can
be read off the output alone, and its one float parameter (Keras keyword and
default) if it has one; ``a`` is that parameter (None when there is none).

From this table come the numpy kernels (``relu``/``relu_grad`` ...), the
activations the numpy GEMM and convolution apply in their epilogue, the
autograd op and named functions of ``pynn.functional``, and the names
``pynn.activations`` and the layers' ``activation=`` accept. The native
backend replaces the kernels of the names ``pynn._C`` implements.

``from_output`` is True when ``g(y, y, dy, a)`` equals ``g(x, y, dy, a)``: ``g``
reads ``x`` at most through its sign, which ``y`` shares. A Dense or Conv2D op
fuses such an activation into its kernel and keeps only ``y`` for backward; the
others are applied after it as their own op. An activation with a parameter is
never flagged (leaky_relu's sign argument fails for a negative slope, and the
fused kernels take none): it runs as its own op, which has ``x``.

Keras 3 definitions throughout (``hard_sigmoid`` is ``relu6(x + 3) / 6``,
``leaky_relu``'s slope defaults to 0.2). Outputs keep the input's dtype.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import numpy as np

from ._erf import erfc


class Activation(NamedTuple):
    forward: Callable
    grad: Callable
    from_output: bool
    param: Optional[tuple] = None   # (Keras keyword, default), e.g. ("negative_slope", 0.2)


def _c(v, like):
    """A Python scalar as a 0-d array of ``like``'s dtype (keeps float32 float32)."""
    return np.asarray(v, dtype=like.dtype)


def _sigmoid(x):
    """1 / (1 + exp(-x)) through exp(-|x|), so it never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _softplus(x):
    """log(1 + exp(x)) without overflow."""
    return np.logaddexp(_c(0, x), x)


def _normal_cdf(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2: no cancellation in the left tail."""
    return (0.5 * erfc(-x * _c(math.sqrt(0.5), x))).astype(x.dtype, copy=False)


def _hard_sigmoid(x):
    return np.clip(x + _c(3, x), 0, 6) / _c(6, x)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_GELU_K = math.sqrt(2.0 / math.pi)   # tanh approximation: tanh(k (x + 0.044715 x^3))


def _gelu_tanh_gate(x):
    """0.5 (1 + tanh(u)) = sigmoid(2u), u = k (x + 0.044715 x^3): no cancellation as tanh(u) -> -1."""
    return _sigmoid(_c(2 * _GELU_K, x) * (x + _c(0.044715, x) * x * x * x))


def _gelu_tanh_grad(x, y, dy, a):
    s = _gelu_tanh_gate(x)
    return dy * (s + x * 2 * s * (1 - s) * _c(_GELU_K, x) * (1 + _c(3 * 0.044715, x) * x * x))


def _mish_grad(x, y, dy, a):
    t = np.tanh(_softplus(x))
    return dy * (t + x * _sigmoid(x) * (1 - t * t))


def _silu_grad(x, y, dy, a):
    s = _sigmoid(x)
    return dy * s * (1 + x * (1 - s))


ACTIVATIONS = {
    "linear": Activation(lambda x, a: x, lambda x, y, dy, a: dy, True),
    "relu": Activation(lambda x, a: np.maximum(x, _c(0, x)),
                       lambda x, y, dy, a: np.where(x > 0, dy, _c(0, dy)), True),
    "leaky_relu": Activation(lambda x, a: np.where(x < 0, _c(a, x) * x, x),
                             lambda x, y, dy, a: np.where(x > 0, dy, _c(a, dy) * dy), False,
                             ("negative_slope", 0.2)),
    "sigmoid": Activation(lambda x, a: _sigmoid(x), lambda x, y, dy, a: dy * y * (1 - y), True),
    "tanh": Activation(lambda x, a: np.tanh(x), lambda x, y, dy, a: dy * (1 - y * y), True),
    # below 0, d/dx a (exp(x) - 1) = a exp(x) = y + a
    "elu": Activation(lambda x, a: np.where(x > 0, x, _c(a, x) * np.expm1(np.minimum(x, _c(0, x)))),
                      lambda x, y, dy, a: np.where(x > 0, dy, dy * (y + _c(a, y))), False, ("alpha", 1.0)),
    "selu": Activation(lambda x, a: _c(_SELU_SCALE, x) * np.where(
                           x > 0, x, _c(_SELU_ALPHA, x) * np.expm1(np.minimum(x, _c(0, x)))),
                       lambda x, y, dy, a: np.where(x > 0, _c(_SELU_SCALE, dy) * dy,
                                                    dy * (y + _c(_SELU_SCALE * _SELU_ALPHA, y))), True),
    # d softplus = sigmoid(x) = 1 - exp(-y)
    "softplus": Activation(lambda x, a: _softplus(x), lambda x, y, dy, a: -dy * np.expm1(-y), True),
    "softsign": Activation(lambda x, a: x / (1 + np.abs(x)),   # (1 - |y|)^2 would cancel for large |x|
                           lambda x, y, dy, a: dy / np.square(1 + np.abs(x)), False),
    "exponential": Activation(lambda x, a: np.exp(x), lambda x, y, dy, a: dy * y, True),
    "relu6": Activation(lambda x, a: np.clip(x, 0, 6).astype(x.dtype, copy=False),
                        lambda x, y, dy, a: np.where((x > 0) & (x < 6), dy, _c(0, dy)), True),
    # y in (0, 1) exactly where x in (-3, 3)
    "hard_sigmoid": Activation(lambda x, a: _hard_sigmoid(x),
                               lambda x, y, dy, a: np.where((y > 0) & (y < 1), dy / _c(6, dy), _c(0, dy)), True),
    "silu": Activation(lambda x, a: x * _sigmoid(x), _silu_grad, False),
    "hard_silu": Activation(lambda x, a: x * _hard_sigmoid(x),
                            lambda x, y, dy, a: dy * np.where(x < -3, _c(0, x), np.where(
                                x > 3, _c(1, x), (2 * x + _c(3, x)) / _c(6, x))), False),
    "gelu": Activation(lambda x, a: x * _normal_cdf(x),   # exact: Keras approximate=False, torch's default
                       lambda x, y, dy, a: dy * (_normal_cdf(x) + x * _c(1 / math.sqrt(2 * math.pi), x)
                                                 * np.exp(-0.5 * x * x)), False),
    "gelu_tanh": Activation(lambda x, a: x * _gelu_tanh_gate(x),   # gelu(approximate=True)
                            _gelu_tanh_grad, False),
    "mish": Activation(lambda x, a: x * np.tanh(_softplus(x)), _mish_grad, False),
}

# Other names Keras accepts for the same functions.
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def get(name):
    """The table entry of ``name`` (aliases resolved); ValueError naming the known ones."""
    entry = ACTIVATIONS.get(ALIASES.get(name, name))
    if entry is None:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return entry


def param_value(name, alpha=None):
    """The float parameter a kernel of ``name`` gets: ``alpha``, or the default (None if it has none)."""
    param = get(name).param
    if param is None:
        return None
    return param[1] if alpha is None else float(alpha)


def apply(x, name, alpha=None):
    """``name``'s forward on ``x`` (the GEMM/convolution epilogue of the reference)."""
    a = param_value(name, alpha)
    return get(name).forward(x, None if a is None else _c(a, x))


def float_input(op, x):
    """The input of a float activation: integer and bool arrays compute in float32
    (as torch.sigmoid of an int tensor returns float; NumPy's ufuncs would pick
    float64 or truncate back to int), complex arrays are a TypeError (pynn computes
    real numbers only), float arrays pass unchanged. relu keeps integer dtypes
    (max(x, 0) is exact there)."""
    x = np.asarray(x)
    kind = x.dtype.kind
    if kind in "iub" and not (op == "relu" and kind in "iu"):
        return x.astype(np.float32)
    if kind not in "iuf":
        raise TypeError(f"{op}: expected a real (integer, bool or float) array, got dtype {x.dtype}"
                        + ("; complex numbers are not supported" if kind == "c" else ""))
    return x


def _kernels(name, act):
    """The backend kernels ``name(x[, alpha])`` and ``name_grad(x, y, dy[, alpha])``."""
    if act.param is None:
        def forward(x):
            return act.forward(float_input(name, x), None)

        def grad(x, y, dy):
            return act.grad(x, y, dy, None)
    else:
        default = act.param[1]

        def forward(x, alpha=default):
            x = float_input(name, x)
            return act.forward(x, _c(alpha, x))

        def grad(x, y, dy, alpha=default):
            return act.grad(x, y, dy, _c(alpha, dy))
    forward.__name__, grad.__name__ = name, name + "_grad"
    forward.__doc__ = f"{name} elementwise (reference kernel; see pynn.backend.numpy.activations)."
    grad.__doc__ = f"{name}'(x) * dy, with y = {name}(x) (reference kernel)."
    return {name: forward, name + "_grad": grad}


KERNELS = {k: f for name, act in ACTIVATIONS.items() for k, f in _kernels(name, act).items()}
