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

# "compiled" when this file was built by Cython (CMakeLists.txt), "pure" when it
# runs as Python (PYNN_PURE_PYTHON=1, or no compiled module; see pynn/_core.py).
CORE = "pure" if __file__.endswith((".py", ".pyc")) else "compiled"


class _GradMode(threading.local):
    enabled = True  # per thread; the class attribute is every new thread's default


_state = _GradMode()


def is_grad_enabled() -> bool:
    """Whether autograd records operations now (``torch.is_grad_enabled``).

    Returns:
        True when operations on Tensors are recorded for backpropagation (the default),
        False inside ``pynn.no_grad()``.

    Example:
        >>> pynn.is_grad_enabled()
        True
        >>> with pynn.no_grad():
        ...     print(pynn.is_grad_enabled())
        False
    """
    return _state.enabled


class _SetGradMode(contextlib.ContextDecorator):
    """Grad mode set for a ``with`` block (or a decorated function), restored after.

    A class rather than a generator-based context manager: entering and leaving
    costs a few attribute writes, not a generator (inference calls it per batch).
    Subclasses set ``_mode``: ``no_grad`` (False) and ``enable_grad`` (True).

    Example:
        >>> with pynn.no_grad():
        ...     with pynn.enable_grad():
        ...         print(pynn.is_grad_enabled())
        True
    """

    __slots__ = ("_previous",)
    _mode = True

    def __enter__(self):
        self._previous = _state.enabled
        _state.enabled = self._mode
        return None

    def __exit__(self, *exc):
        _state.enabled = self._previous
        return False

    def _recreate_cm(self):
        return type(self)()   # a fresh one per decorated call: recursion nests correctly


class no_grad(_SetGradMode):  # noqa: N801 - the torch/pynn spelling
    """Run the block without recording a graph (inference, optimizer updates)."""

    __slots__ = ()
    _mode = False


class enable_grad(_SetGradMode):  # noqa: N801
    """Record the graph inside the block even within ``no_grad``."""

    __slots__ = ()
    _mode = True


def _as_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, _TensorBase):
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


def _restore(cls):
    """Unpickling/deepcopy: an empty instance of ``cls``; ``__setstate__`` fills it."""
    return cls.__new__(cls)


class _TensorBase:
    """The fields of :class:`Tensor` and its methods that the engine itself uses.

    Compiled, this is a C struct (pynn/autograd/engine.pxd), so the engine reads
    ``data``/``grad``/``requires_grad``/``_ctx`` without a dictionary or
    descriptor lookup and a new tensor starts with every field ``None``.
    ``Tensor`` is a plain subclass of it so that ``pynn.functional`` can attach
    the operators to it, and users can subclass it (``Variable`` does).
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_keras_logits", "_keras_mask", "__weakref__")

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        self.data = data if dtype is None and type(data) is np.ndarray else _as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self.name = name
        self._keras_logits = None  # set by softmax/sigmoid: lets the loss use the fused logits path
        self._keras_mask = None    # (N, T) bool from Embedding(mask_zero=True), read by recurrent layers

    # ------------------------------------------------------------ pickling
    # Explicit, so the compiled and the pure core pickle alike (and a subclass's
    # own __slots__, e.g. Variable.trainable, are kept by deepcopy).
    def __reduce_ex__(self, protocol):
        return (_restore, (type(self),), self.__getstate__())

    def __getstate__(self):
        state = {}
        for klass in type(self).__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for key in ((slots,) if isinstance(slots, str) else slots):
                if key in ("__weakref__", "__dict__") or key in state:
                    continue
                try:
                    state[key] = getattr(self, key)
                except AttributeError:  # a subclass slot never assigned
                    pass
        extra = getattr(self, "__dict__", None)
        if extra:
            state["__dict__"] = dict(extra)
        return state

    def __setstate__(self, state):
        for key, value in state.items():
            if key == "__dict__":
                self.__dict__.update(value)
            else:
                setattr(self, key, value)

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

    # float(t) / int(t) of a one-element Tensor, as NumPy and PyTorch allow (a loss value
    # logged by a user's loop); any other shape raises NumPy's TypeError.
    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

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
        return _wrap(self.data)

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
            if grad.shape != self.data.shape:
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


class Tensor(_TensorBase):
    """An ``np.ndarray`` with an autograd history.

    ``data`` is the array itself (no copy is made of an ndarray argument);
    ``grad`` is an ``np.ndarray`` of the same shape once ``backward`` reached it.
    Arithmetic operators, reductions, reshaping and the activations are methods
    and record the graph when ``requires_grad`` is set on an input.
    """

    __slots__ = ()
    __array_priority__ = 1000  # so ndarray + Tensor dispatches to Tensor.__radd__

    # ------------------------------------------------------------ operators
    # Defined in pynn.functional and attached at import (see functional/__init__.py),
    # so each op's forward and backward live in one place.


_ndarray = np.ndarray
_new = _TensorBase.__new__   # bound once: a new Tensor without __init__ (and without looking __new__ up)


def _wrap(arr):
    """A new graph-less Tensor holding ``arr`` (an ndarray): ``Tensor(arr)`` without
    the argument handling (every other field starts as None/False)."""
    t = _new(Tensor)
    t.data = arr
    t.grad = None
    t.requires_grad = False
    t._ctx = None
    t.name = None
    t._keras_logits = None
    t._keras_mask = None
    return t


def _apply(cls, args, kwargs):
    """``Function.apply`` (``kwargs`` a dict or None). One and two positional
    arguments without keywords (nearly every op) take a path without the
    intermediate lists."""
    ctx = cls()
    n = len(args)
    if n == 2 and not kwargs:
        a0 = args[0]
        a1 = args[1]
        r0 = a0
        r1 = a1
        n0 = False
        n1 = False
        if isinstance(a0, _TensorBase):
            t = a0
            r0 = t.data
            n0 = t.requires_grad
        if isinstance(a1, _TensorBase):
            t = a1
            r1 = t.data
            n1 = t.requires_grad
        record = n0 or n1
        ctx.needs_input_grad = (n0, n1)
        res = ctx.forward(r0, r1)
    elif n == 1 and not kwargs:
        a0 = args[0]
        r0 = a0
        n0 = False
        if isinstance(a0, _TensorBase):
            t = a0
            r0 = t.data
            n0 = t.requires_grad
        record = n0
        ctx.needs_input_grad = (n0,)
        res = ctx.forward(r0)
    else:
        raw = list(args)
        needs = [False] * n
        record = _unwrap_args(args, raw, needs)
        ctx.needs_input_grad = tuple(needs)
        res = ctx.forward(*raw, **kwargs) if kwargs else ctx.forward(*raw)
    out = _wrap(res if isinstance(res, _ndarray) else _as_array(res))
    if record and _state.enabled:
        out.requires_grad = True
        out._ctx = ctx
        ctx.parents = args
    return out


def _unwrap_args(args, raw, needs):
    """Function.apply's argument scan: Tensors in ``raw`` become their arrays and
    ``needs[i]`` says whether argument i requires grad; True if any does."""
    record = False
    for i in range(len(args)):
        a = args[i]
        if isinstance(a, _TensorBase):
            t = a
            raw[i] = t.data
            if t.requires_grad:
                needs[i] = True
                record = True
    return record


def _backprop(root, grad, retain_graph):
    """The graph from ``root`` walked in reverse topological order; returns the
    [(leaf, gradient)] pairs for every leaf that requires grad. Frees the graph
    unless ``retain_graph``.

    A node's gradient is summed in place once the engine owns the sum (the
    second contribution allocates it; later ones add into it), never into an
    array a backward returned, which may be shared or a view."""
    order = _topological_order(root)
    grads = {id(root): grad}
    owned = set()   # ids of nodes whose grads[] array the engine allocated itself
    leaves = []
    for i in range(len(order) - 1, -1, -1):
        node = order[i]
        key = id(node)
        g = grads.pop(key, None)
        if g is None:
            continue
        ctx = node._ctx
        if ctx is None:
            leaves.append((node, g))
            continue
        input_grads = ctx.backward(g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        parents = ctx.parents
        for j in range(min(len(parents), len(input_grads))):
            pg = input_grads[j]
            parent = parents[j]
            if pg is None or not isinstance(parent, _TensorBase):
                continue
            tp = parent
            if not tp.requires_grad:
                continue
            if pg.shape != tp.data.shape:
                raise RuntimeError(f"{type(ctx).__name__}.backward returned a gradient of shape {pg.shape} "
                                   f"for an input of shape {tp.data.shape}")
            pkey = id(tp)
            acc = grads.get(pkey)
            if acc is None:
                grads[pkey] = pg
            elif pkey in owned and acc.dtype == pg.dtype:
                np.add(acc, pg, out=acc)
            else:
                grads[pkey] = acc + pg
                owned.add(pkey)
        if not retain_graph:
            node._ctx = None
    return leaves


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
    inputs = list(inputs)
    wanted = {id(t): i for i, t in enumerate(inputs)}
    result = [None] * len(inputs)
    for leaf, g in _backprop(output, np.asarray(grad_output, output.dtype), retain_graph):
        i = wanted.get(id(leaf))
        if i is not None:
            result[i] = g if result[i] is None else result[i] + g
    if copy:
        return [np.zeros_like(t.data) if r is None else np.array(r, copy=True) for t, r in zip(inputs, result)]
    return [np.zeros_like(t.data) if r is None else np.asarray(r, dtype=t.data.dtype) for t, r in zip(inputs, result)]


def _topological_order(root) -> list:
    """Tensors reachable from root, each after all of its inputs (iterative DFS: deep RNN graphs).

    A node is marked when it is expanded, not when pushed: a node pushed early
    and reached again from a later node is pushed again, so it finishes before
    that node (a stale stack entry is skipped)."""
    order = []
    visited = set()
    nodes = [root]       # the DFS stack: a node, and whether its inputs were pushed already
    expanded = [False]
    while nodes:
        node = nodes.pop()
        if expanded.pop():
            order.append(node)
            continue
        key = id(node)
        if key in visited:
            continue
        visited.add(key)
        nodes.append(node)
        expanded.append(True)
        ctx = node._ctx
        if ctx is not None:
            for p in ctx.parents:
                if isinstance(p, _TensorBase):
                    tp = p
                    if tp.requires_grad and id(tp) not in visited:
                        nodes.append(tp)
                        expanded.append(False)
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
        """Run ``forward`` on the arrays behind ``args``; record the graph when an
        input requires grad and grad mode is on."""
        return _apply(cls, args, kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError
