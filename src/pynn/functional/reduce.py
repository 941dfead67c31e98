"""Reductions over axes, with keepdims."""
import builtins

import numpy as np

from ..autograd import Function
from .registry import register


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return tuple(a % ndim if ndim else a for a in axes)


def _expand(g, shape, axes, keepdims):
    """A reduced gradient spread back over the input's shape, as a new array
    (``np.array(np.broadcast_to(...))`` in two C calls: a loss's sum and mean run every step)."""
    g = np.asarray(g)
    if not keepdims and axes and g.ndim:
        g = g.reshape([1 if i in axes else s for i, s in enumerate(shape)])
    out = np.empty(shape, g.dtype)
    out[...] = g
    return out


@register("sum")
class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.keepdims = a.shape, keepdims
        self.axes = _norm_axes(axis, a.ndim)
        return np.asarray(np.sum(a, axis=axis, keepdims=keepdims))

    def backward(self, g):
        return _expand(g, self.shape, self.axes, self.keepdims)


@register("mean")
class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.keepdims = a.shape, keepdims
        self.axes = _norm_axes(axis, a.ndim)
        self.count = int(np.prod([a.shape[i] for i in self.axes])) if a.ndim else 1
        return np.asarray(np.mean(a, axis=axis, keepdims=keepdims))

    def backward(self, g):
        return _expand(g, self.shape, self.axes, self.keepdims) / builtins.max(self.count, 1)


class _Extremum(Function):
    """max/min: the gradient is shared equally among tied extremal entries
    (as torch.amax/amin), so it is well defined on plateaus."""

    reduce = None

    def forward(self, a, axis=None, keepdims=False):
        self.a, self.keepdims = a, keepdims
        self.axes = _norm_axes(axis, a.ndim)
        self.out = np.asarray(type(self).reduce(a, axis=axis, keepdims=True))
        return self.out if keepdims else np.squeeze(self.out, axis=self.axes)

    def backward(self, g):
        mask = self.a == self.out
        count = mask.sum(axis=self.axes, keepdims=True)
        if not self.keepdims:
            g = np.expand_dims(g, self.axes)
        return mask * (g / count)


@register("max")
class Max(_Extremum):
    reduce = staticmethod(np.max)


@register("min")
class Min(_Extremum):
    reduce = staticmethod(np.min)


def sum(a, axis=None, keepdims=False): return Sum.apply(a, axis=axis, keepdims=keepdims)  # noqa: A001
def mean(a, axis=None, keepdims=False): return Mean.apply(a, axis=axis, keepdims=keepdims)
def max(a, axis=None, keepdims=False): return Max.apply(a, axis=axis, keepdims=keepdims)  # noqa: A001
def min(a, axis=None, keepdims=False): return Min.apply(a, axis=axis, keepdims=keepdims)  # noqa: A001


def var(a, axis=None, keepdims=False, ddof=0):
    """Variance over ``axis`` with NumPy's ``ddof``, composed of differentiable ops."""
    from .elementwise import mul
    shape = a.shape
    axes = _norm_axes(axis, len(shape))
    n = int(np.prod([shape[i] for i in axes])) if shape else 1
    d = a - mean(a, axis, keepdims=True)
    return sum(mul(d, d), axis, keepdims) / builtins.max(n - ddof, 0)


def std(a, axis=None, keepdims=False, ddof=0):
    """Standard deviation: ``sqrt(var)`` (its gradient is infinite where the variance is 0, as in torch)."""
    from .elementwise import sqrt
    return sqrt(var(a, axis, keepdims, ddof))
