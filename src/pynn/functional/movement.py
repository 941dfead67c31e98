"""Ops that move data without arithmetic: reshape, transpose, indexing, joining."""
import numpy as np

from ..autograd import Function, Tensor
from .registry import register


@register("reshape")
class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return np.reshape(a, shape)

    def backward(self, g):
        return np.reshape(g, self.shape), None


@register("transpose")
class Transpose(Function):
    def forward(self, a, axes=None):
        self.axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(ax % a.ndim for ax in axes)
        return np.transpose(a, self.axes)

    def backward(self, g):
        return np.transpose(g, np.argsort(self.axes)), None


@register("getitem")
class GetItem(Function):
    """Basic and advanced indexing; repeated indices accumulate (np.add.at).
    Basic indices (ints, slices, None, Ellipsis) select every element at most
    once, so their gradient is a plain assignment, which is far faster than
    the unbuffered np.add.at."""

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, g):
        out = np.zeros(self.shape, dtype=g.dtype)
        if _is_basic_index(self.index):
            out[self.index] = g
        else:
            np.add.at(out, self.index, g)
        return out, None


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) and not isinstance(p, bool)
               for p in parts)


@register("concatenate")
class Concatenate(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return np.concatenate(arrays, axis=axis)

    def backward(self, g):
        splits = np.cumsum(self.sizes)[:-1]
        parts = np.split(g, splits, axis=self.axis)
        return tuple(p if need else None for p, need in zip(parts, self.needs_input_grad))


@register("stack")
class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, g):
        parts = np.moveaxis(g, self.axis, 0)
        return tuple(p if need else None for p, need in zip(parts, self.needs_input_grad))


def reshape(a, shape): return Reshape.apply(a, tuple(shape) if not np.isscalar(shape) else (shape,))
def transpose(a, axes=None): return Transpose.apply(a, axes)
def getitem(a, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(a, index)
def concatenate(tensors, axis=0): return Concatenate.apply(*tensors, axis=axis)
def stack(tensors, axis=0): return Stack.apply(*tensors, axis=axis)
def flatten(a): return reshape(a, (a.shape[0], -1))


def expand_dims(a, axis):
    """Insert length-1 axes at ``axis`` (int or tuple), as np.expand_dims; a reshape."""
    return reshape(a, np.expand_dims(np.empty(a.shape, dtype=bool), axis).shape)


def squeeze(a, axis=None):
    """Drop length-1 axes (all, or those in ``axis``), as np.squeeze; a reshape."""
    return reshape(a, np.squeeze(np.empty(a.shape, dtype=bool), axis).shape)


def split(a, indices_or_sections, axis=0):
    """Split along ``axis`` as np.split; each piece is a differentiable slice."""
    n = a.shape[axis]
    if np.ndim(indices_or_sections) == 0:
        sections = int(indices_or_sections)
        if sections <= 0 or n % sections:
            raise ValueError(f"split: {n} elements along axis {axis} do not split into {sections} equal parts")
        bounds = list(range(0, n + 1, n // sections)) if n else [0] * (sections + 1)
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    ax = axis % a.ndim
    return [getitem(a, (slice(None),) * ax + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:])]
