"""Elementwise arithmetic with NumPy broadcasting; gradients are sum-reduced
back to each input's shape (``unbroadcast``)."""
import numpy as np

from ..autograd import Function, Tensor
from ..autograd.engine import _apply
from .registry import register, unbroadcast


_ndarray = np.ndarray


def _shape(x):
    # np.shape costs ~5x an attribute read: ops call this on every forward.
    return x.shape if type(x) is _ndarray else np.shape(x)


# Add and Sub save nothing in forward (the cheapest ops pay most for it): backward runs
# only on a recorded graph, where an input needing a gradient is a parent Tensor,
# whose shape it reads.
@register("add")
class Add(Function):
    def forward(self, a, b):
        return np.add(a, b)

    def backward(self, g):
        need = self.needs_input_grad
        return (unbroadcast(g, self.parents[0].data.shape) if need[0] else None,
                unbroadcast(g, self.parents[1].data.shape) if need[1] else None)


@register("sub")
class Sub(Function):
    def forward(self, a, b):
        return np.subtract(a, b)

    def backward(self, g):
        need = self.needs_input_grad
        return (unbroadcast(g, self.parents[0].data.shape) if need[0] else None,
                unbroadcast(-g, self.parents[1].data.shape) if need[1] else None)


@register("mul")
class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.multiply(a, b)

    def backward(self, g):
        return (unbroadcast(g * self.b, _shape(self.a)) if self.needs_input_grad[0] else None,
                unbroadcast(g * self.a, _shape(self.b)) if self.needs_input_grad[1] else None)


@register("div")
class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.divide(a, b)

    def backward(self, g):
        ga = unbroadcast(g / self.b, _shape(self.a)) if self.needs_input_grad[0] else None
        gb = unbroadcast(-g * self.a / (self.b * self.b), _shape(self.b)) if self.needs_input_grad[1] else None
        return ga, gb


@register("pow")
class Pow(Function):
    """a ** b. d/da = b·a^(b-1); d/db = a^b·ln a (defined for a > 0)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = np.power(a, b)
        return self.out

    def backward(self, g):
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g * self.b * np.power(self.a, self.b - 1), _shape(self.a))
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(g * self.out * np.log(self.a), _shape(self.b))
        return ga, gb


@register("neg")
class Neg(Function):
    def forward(self, a):
        return np.negative(a)

    def backward(self, g):
        return -g


@register("exp")
class Exp(Function):
    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return g * self.out


@register("log")
class Log(Function):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return g / self.a


@register("log1p")
class Log1p(Function):
    """log(1 + a), accurate for small a; d/da = 1 / (1 + a)."""

    def forward(self, a):
        self.a = a
        return np.log1p(a)

    def backward(self, g):
        return g / (1 + self.a)


@register("cast")
class Cast(Function):
    """Change the dtype; the gradient is cast back to the input's dtype (float to float only)."""

    def forward(self, a, dtype):
        self.dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.dtype), None


@register("sqrt")
class Sqrt(Function):
    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, g):
        return g / (2 * self.out)


@register("abs")
class Abs(Function):
    def forward(self, a):
        self.a = a
        return np.abs(a)

    def backward(self, g):
        return g * np.sign(self.a)


@register("maximum")
class Maximum(Function):
    """Ties send half of the gradient to each side (the subgradient average)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        wa = (a > b) + 0.5 * (a == b)
        return (unbroadcast(g * wa, _shape(a)) if self.needs_input_grad[0] else None,
                unbroadcast(g * (1 - wa), _shape(b)) if self.needs_input_grad[1] else None)


@register("minimum")
class Minimum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        wa = (a < b) + 0.5 * (a == b)
        return (unbroadcast(g * wa, _shape(a)) if self.needs_input_grad[0] else None,
                unbroadcast(g * (1 - wa), _shape(b)) if self.needs_input_grad[1] else None)


@register("where")
class Where(Function):
    """where(cond, a, b): cond is not differentiable."""

    def forward(self, cond, a, b):
        self.cond = np.asarray(cond, dtype=bool)
        self.sa, self.sb = _shape(a), _shape(b)
        return np.where(self.cond, a, b)

    def backward(self, g):
        zero = np.zeros((), dtype=g.dtype)
        return (None,
                unbroadcast(np.where(self.cond, g, zero), self.sa) if self.needs_input_grad[1] else None,
                unbroadcast(np.where(self.cond, zero, g), self.sb) if self.needs_input_grad[2] else None)


@register("clip")
class Clip(Function):
    """Gradient passes where lo <= x <= hi (as torch.clamp and tf.clip_by_value)."""

    def forward(self, a, lo, hi):
        self.mask = (a >= lo) & (a <= hi)
        return np.clip(a, lo, hi)

    def backward(self, g):
        return g * self.mask, None, None


# The operators' entry points call the engine's _apply directly: Cls.apply(...)
# does the same through a classmethod (bound method, *args, **kwargs), ~0.1 us more.
def add(a, b): return _apply(Add, (a, b), None)
def sub(a, b): return _apply(Sub, (a, b), None)
def mul(a, b): return _apply(Mul, (a, b), None)
def div(a, b): return _apply(Div, (a, b), None)
def power(a, b): return _apply(Pow, (a, b), None)
def neg(a): return _apply(Neg, (a,), None)
def exp(a): return _apply(Exp, (a,), None)
def log(a): return _apply(Log, (a,), None)
def log1p(a): return _apply(Log1p, (a,), None)
def sqrt(a): return _apply(Sqrt, (a,), None)
def abs(a): return _apply(Abs, (a,), None)  # noqa: A001
def maximum(a, b): return _apply(Maximum, (a, b), None)
def minimum(a, b): return _apply(Minimum, (a, b), None)
def where(cond, a, b): return _apply(Where, (cond.data if isinstance(cond, Tensor) else cond, a, b), None)
def clip(a, lo, hi): return _apply(Clip, (a, lo, hi), None)
def square(a): return _apply(Mul, (a, a), None)


def cast(a, dtype):
    """``a`` as ``dtype``. Differentiable between floating dtypes; casting a Tensor that
    needs a gradient to an integer or bool dtype is a TypeError (the gradient would be lost)."""
    dt = np.dtype(dtype)
    if isinstance(a, Tensor) and a.requires_grad and dt.kind != "f":
        raise TypeError(f"cast: a Tensor that requires grad cannot be cast to {dt} "
                        "(not differentiable); use .detach() first")
    return Cast.apply(a, dt)
