"""Reverse-mode autograd, micrograd-small.

A :class:`Tensor` wraps an ``np.ndarray``. Every differentiable operation is a
:class:`Function` (see ``pynn.functional``) whose ``forward`` computes on raw
arrays and whose ``backward`` maps the output gradient to one gradient per
input. ``Function.apply`` records the graph only when some input requires a
gradient and grad mode is on; ``Tensor.backward`` walks it in reverse
topological order and sums the gradients that reach each tensor.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Run the block without recording a graph (inference, optimizer updates)."""
    previous = is_grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


@contextlib.contextmanager
def enable_grad():
    previous = is_grad_enabled()
    _state.enabled = True
    try:
        yield
    finally:
        _state.enabled = previous


def _as_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if isinstance(data, np.generic):  # numpy scalars keep their dtype (float64 gradchecks)
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data, dtype=dtype)
    # Python floats and lists become float32, the library's default dtype.
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return arr


class Tensor:
    """An ``np.ndarray`` with an autograd history.

    ``data`` is the array itself (no copy is made of an ndarray argument);
    ``grad`` is an ``np.ndarray`` of the same shape once ``backward`` reached it.
    Arithmetic operators, reductions, reshaping and the activations are methods
    and record the graph when ``requires_grad`` is set on an input.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_keras_logits", "_keras_mask", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor dispatches to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self.name = name
        self._keras_logits = None  # set by softmax/sigmoid: lets the loss use the fused logits path
        self._keras_mask = None    # (N, T) bool from Embedding(mask_zero=True), read by recurrent layers

    # ------------------------------------------------------------ array-like
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        return self.data.item()

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}{grad})"

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def detach(self) -> "Tensor":
        """A tensor sharing the data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------ backward
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` defaults to 1 for a scalar; a non-scalar needs an explicit
        gradient of its own shape. The graph is freed afterwards unless
        ``retain_graph``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input had requires_grad=True)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implicit only for a scalar output, got shape {self.shape}")
            grad = np.ones_like(self.data)
        else:
            grad = _as_array(grad, self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape} but the tensor has shape {self.shape}")

        handed_out = set()
        for leaf, g in _backprop(self, grad, retain_graph):
            if leaf.grad is None:
                # Adopt the backward pass's own array when nothing else can see it (saves a
                # full copy of every gradient, e.g. 8 MB for a pooled activation): it owns its
                # memory, is writeable and of the leaf's dtype, is not the caller's ``grad``,
                # was not given to another leaf, and the graph is freed (no retained op can
                # hold it). Otherwise copy, so later ``+=`` accumulation touches nothing else.
                if (retain_graph or g is grad or id(g) in handed_out or g.dtype != leaf.data.dtype
                        or g.base is not None or not g.flags.owndata or not g.flags.writeable):
                    g = np.array(g, dtype=leaf.data.dtype, copy=True)
                handed_out.add(id(g))
                leaf.grad = g
            else:
                leaf.grad += g

    # ------------------------------------------------------------ operators
    # Defined in pynn.functional and attached at import (see functional/__init__.py),
    # so each op's forward and backward live in one place.


def _backprop(root: "Tensor", grad: np.ndarray, retain_graph: bool):
    """Walk the graph from ``root`` in reverse topological order; yield (leaf, gradient)
    for every leaf that requires grad. Frees the graph unless ``retain_graph``."""
    order = _topological_order(root)
    grads = {id(root): grad}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        ctx = node._ctx
        if ctx is None:
            yield node, g
            continue
        input_grads = ctx.backward(g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, pg in zip(ctx.parents, input_grads):
            if pg is None or not isinstance(parent, Tensor) or not parent.requires_grad:
                continue
            if pg.shape != parent.shape:
                raise RuntimeError(f"{type(ctx).__name__}.backward returned a gradient of shape {pg.shape} "
                                   f"for an input of shape {parent.shape}")
            key = id(parent)
            grads[key] = grads[key] + pg if key in grads else pg
        if not retain_graph:
            node._ctx = None


def grad(output: "Tensor", inputs, grad_output=None, retain_graph: bool = False, copy: bool = True):
    """d output / d input for each input, returned as arrays; no ``.grad`` is touched.

    ``inputs`` are leaf tensors (weights, data); unconnected inputs get zeros.
    ``copy=False`` hands back the backward pass's own arrays, cast to each
    input's dtype, without the defensive copy: faster (the training step uses
    it), but they may be read-only views or shared between inputs, so treat
    them as read-only.
    """
    if not output.requires_grad:
        raise RuntimeError("grad: the output does not require grad")
    if grad_output is None:
        if output.data.size != 1:
            raise RuntimeError(f"grad: grad_output is implicit only for a scalar output, got shape {output.shape}")
        grad_output = np.ones_like(output.data)
    wanted = {id(t): i for i, t in enumerate(inputs)}
    result = [None] * len(inputs)
    for leaf, g in _backprop(output, np.asarray(grad_output, output.dtype), retain_graph):
        i = wanted.get(id(leaf))
        if i is not None:
            result[i] = g if result[i] is None else result[i] + g
    if copy:
        return [np.zeros_like(t.data) if r is None else np.array(r, copy=True) for t, r in zip(inputs, result)]
    return [np.zeros_like(t.data) if r is None else np.asarray(r, dtype=t.data.dtype) for t, r in zip(inputs, result)]


def _topological_order(root: Tensor) -> list:
    """Tensors reachable from root, each after all of its inputs (iterative DFS: deep RNN graphs)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for p in node._ctx.parents:
                if isinstance(p, Tensor) and p.requires_grad and id(p) not in visited:
                    stack.append((p, False))
    return order


class Function:
    """One differentiable op: ``forward`` on arrays, ``backward`` beside it.

    ``forward(*args, **kwargs)`` receives ndarrays where Tensors were passed and
    may save what backward needs on ``self``. ``backward(grad)`` returns one
    gradient per positional argument (``None`` where no gradient is needed;
    ``self.needs_input_grad[i]`` says which are). Subclasses are registered in
    ``pynn.functional.registry.OP_REGISTRY``.
    """

    parents: tuple = ()
    needs_input_grad: tuple = ()

    @classmethod
    def apply(cls, *args, **kwargs) -> Tensor:
        ctx = cls()
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = any(needs) and is_grad_enabled()
        ctx.needs_input_grad = needs
        out = Tensor(ctx.forward(*raw, **kwargs))
        if record:
            out.requires_grad = True
            out._ctx = ctx
            ctx.parents = args
        return out

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError
