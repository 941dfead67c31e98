"""NumPy's names with two faces.

Each function looks at its arguments once: if any is a :class:`pynn.Tensor`
it calls the differentiable op in :mod:`pynn.functional` (the graph is
recorded, as ``keras.ops`` does); otherwise it is NumPy's function with
NumPy's signature, except where :mod:`._dispatch` routes a large float32 call
to a native kernel. NumPy-only arguments (``out=``, ``dtype=``, ``where=``...)
given with a Tensor are a TypeError, never silently dropped.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd import Tensor
from . import _dispatch as D

_np = np
_ndarray = np.ndarray
_np_maximum = np.maximum
_np_dot = np.dot
# np.dot is an __array_function__ dispatcher in front of the C function; for two exact ndarrays
# (no override possible) calling the C function itself is the same computation, bit for bit,
# ~0.15-0.3 µs sooner (measured 0.53 -> 0.34-0.39 µs on a 1-element dot): that pays for pynn's
# routing checks, so a lecture-sized ``pynn.ops.dot`` is at least np.dot's speed.
_np_dot_c = getattr(np.dot, "_implementation", np.dot)
_np_where_c = getattr(np.where, "_implementation", np.where)
_np_matmul = np.matmul
_C = None  # pynn._C, bound on first native use (importing pynn must not need it)
# NumPy's "argument not given" default: np.sum(m, keepdims=False) passes keepdims on to an
# ndarray subclass's own method (np.matrix.sum has none: a TypeError), an omitted keepdims
# does not. The reductions below default to the same object, so a subclass sees what NumPy
# would hand it; the C entry np_fast_reduce reads it as False (np_fast_novalue).
_NoValue = np._NoValue
# The backend switch every fast path reads: ``_backend._active is _NATIVE_BACKEND`` is one attribute
# read (D.native_on() is a call into another module, ~0.07 µs of a ~0.3 µs fast call).
_backend = D.backend
_NATIVE_BACKEND = _backend.native_backend if _backend.NATIVE_AVAILABLE else None


def _set_limits(c):
    """Hand _dispatch's routing limits to the per-call C entries (np_fast_reduce / np_fast_ext /
    np_fast_dot); called once when _C is first bound, and again by whoever changes a limit."""
    c.np_fast_limits(D.REDUCE_SMALL_MAX_SIZE, D.REDUCE_COLS_MAX_BYTES, D.REDUCE_COLS_MIN_WIDTH,
                     D.REDUCE_EXT_ROWS_MAX_SIZE, D.EXT_SCALAR_MIN_SIZE)
    c.np_gemm_limits(D.GEMM_MIN_MACS, D.GEMM_MIN_SIDE, D.GEMM_MIN_N, D.GEMM_MIN_K, D.GEMM_COLMAJOR_MAX_N,
                     D.GEMM_COLMAJOR_MAX_K, D.GEMM_MAX_THREADS, D.GEMM_NT_MAX_MACS, D.GEMM_NT_MIN_SIDE,
                     (1 << 62) if D.GEMM_SPLIT_MIN_MACS is None else D.GEMM_SPLIT_MIN_MACS)


def _native():
    global _C
    if _C is None:
        from pynn import _C as c
        _set_limits(c)
        c.np_fast_novalue(_NoValue)
        _C = c
    return _C


_UFUNC_ATTRS = ("at", "reduce", "accumulate", "reduceat", "outer", "nin", "nout", "nargs", "ntypes", "types",
                "identity", "signature")


def _keep_ufunc_methods(f, np_fn):
    """``np.add.at(dW, idx, g)``, ``np.maximum.reduce(x)``: the wrapper keeps the ufunc's methods (NumPy's own)."""
    for attr in _UFUNC_ATTRS:
        if hasattr(np_fn, attr):
            setattr(f, attr, getattr(np_fn, attr))
    return f


def face(kind):
    """Mark a public function: "dual" (NumPy + Tensor faces) or "accelerated" (also a native fast path)."""
    def deco(f):
        f._pynn_face = kind
        return f
    return deco


def _reject(name, extra):
    """The Tensor face takes no NumPy-only arguments: name them instead of ignoring them."""
    extra = {k: v for k, v in extra.items() if v is not None}
    if extra:
        raise TypeError(f"pynn.ops.{name}: argument(s) {sorted(extra)} are not supported when an input "
                        "is a pynn.Tensor (the NumPy face only)")


def _given(**named):
    """The NumPy-only arguments among ``named`` that were given (not NumPy's "not given" default),
    for :func:`_reject`."""
    return {k: v for k, v in named.items() if v is not _NoValue}


def _doc(np_name, extra=""):
    first = (getattr(np, np_name).__doc__ or "").strip().splitlines()[0] if hasattr(np, np_name) else ""
    return (f"NumPy's ``{np_name}`` ({first}) with NumPy's signature; with a pynn.Tensor argument "
            f"it records the autograd graph.{(' ' + extra) if extra else ''}")


# ------------------------------------------------------------------ elementwise
# Call shapes matter at NumPy's scale: forwarding ``*args, **kwargs`` costs ~0.15 µs per call,
# so the common case (no extra arguments, ndarray input) calls NumPy with the bare operands.
def _unary(name, tensor_fn):
    np_fn = getattr(np, name)

    def f(x, /, *args, **kwargs):
        if args or kwargs:
            if isinstance(x, Tensor):
                _reject(name, dict(kwargs, **{f"arg{i + 1}": a for i, a in enumerate(args)}))
                return tensor_fn(x)  # every extra argument was None (e.g. out=None)
            return np_fn(x, *args, **kwargs)
        if type(x) is _ndarray or not isinstance(x, Tensor):
            return np_fn(x)
        return tensor_fn(x)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = _doc(name)
    return face("dual")(_keep_ufunc_methods(f, np_fn))


def _binary(name, tensor_fn):
    np_fn = getattr(np, name)

    def f(x1, x2, /, *args, **kwargs):
        if args or kwargs:
            if isinstance(x1, Tensor) or isinstance(x2, Tensor):
                _reject(name, dict(kwargs, **{f"arg{i + 2}": a for i, a in enumerate(args)}))
                return tensor_fn(x1, x2)  # every extra argument was None (e.g. out=None)
            return np_fn(x1, x2, *args, **kwargs)
        if type(x1) is _ndarray and type(x2) is _ndarray or not (isinstance(x1, Tensor) or isinstance(x2, Tensor)):
            return np_fn(x1, x2)
        return tensor_fn(x1, x2)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = _doc(name)
    return face("dual")(_keep_ufunc_methods(f, np_fn))


exp = _unary("exp", F.exp)
log = _unary("log", F.log)
log1p = _unary("log1p", F.log1p)
sqrt = _unary("sqrt", F.sqrt)
square = _unary("square", F.square)
abs = _unary("abs", F.abs)  # noqa: A001
absolute = _unary("absolute", F.abs)
negative = _unary("negative", F.neg)
add = _binary("add", F.add)
subtract = _binary("subtract", F.sub)
multiply = _binary("multiply", F.mul)
divide = _binary("divide", F.div)
true_divide = _binary("true_divide", F.div)
power = _binary("power", F.power)
_F32, _F64 = D.F32, D.F64
# Read on every in-place maximum(x, s, out=x), bound once (a module attribute read is ~25 ns).
_EXT_MIN = D.EXT_SCALAR_MIN_SIZE


# Python ints NumPy casts to float32/float64 exactly as C++'s cast of their double does (NEP 50
# weak scalars): up to 2**53, exact in a double. Floats: within float32's range (no overflow).
_EXACT_INT = 1 << 53
_copysign = __import__("math").copysign

# Below EXT_SCALAR_MIN_SIZE NumPy computes ``maximum(x, s)``, but NumPy spends ~0.3 µs of its
# ~0.7 µs call turning the Python scalar into an operand (NEP 50 weak-scalar promotion). Given a
# 0-d array of x's own dtype holding s instead, it resolves the same (dtype, dtype) -> dtype
# loop and runs it on the same values: the same result bit for bit, ~0.3 µs sooner. Zero (the
# lecture relu ``maximum(z, 0)``; +0.0 only, -0.0 is another operand) has a constant operand;
# any other scalar gets one when the same scalar object comes twice in a row (a constant in a
# loop is one object), kept in a one-entry slot per dtype: a miss costs two compares, never an
# allocation, so a loop of ever-new scalars runs at NumPy's own speed.
_ZERO32 = np.zeros((), np.float32)
_ZERO64 = np.zeros((), np.float64)
_ZERO32.flags.writeable = _ZERO64.flags.writeable = False
# Per dtype, one (scalar object, its read-only 0-d array or None) pair, replaced whole: a thread
# reads the pair once, so it never pairs one thread's scalar with another thread's operand.
_SLOT32 = [(None, None)]
_SLOT64 = [(None, None)]


def _scalar_operand(dt, s):
    """A read-only 0-d array of dtype ``dt`` holding ``s`` (range-checked by the caller), or None."""
    slot = _SLOT32 if dt is _F32 else _SLOT64
    seen, z = slot[0]
    if seen is s:
        if z is None:
            z = np.array(s, dtype=dt)  # the cast NumPy applies to a weak scalar
            z.flags.writeable = False
            slot[0] = (s, z)
        return z
    slot[0] = (s, None)
    return None


def _extremum_binary(name, is_max, tensor_fn, np_fn):
    # Inlined checks, no helper calls: this runs on every np.maximum of a lecture loop, where
    # each Python-level call costs ~0.07 µs against NumPy's ~0.7 µs.
    def f(x1, x2, /, *args, out=None, **kwargs):
        if args:  # NumPy's positional out (deprecated there: NumPy gives its own warning)
            if isinstance(x1, Tensor) or isinstance(x2, Tensor):
                _reject(name, dict(kwargs, out=out, **{f"arg{i + 3}": a for i, a in enumerate(args)}))
                return tensor_fn(x1, x2)  # every extra argument was None (e.g. a positional out=None)
            return np_fn(x1, x2, *args, **kwargs) if out is None else np_fn(x1, x2, *args, out=out, **kwargs)
        if out is None and not kwargs and _backend._active is _NATIVE_BACKEND:
            # One C call checks and computes the large-array case (or returns None).
            r = (_C or _native()).np_fast_ext(x1, x2, is_max)
            if r is not None:
                return r
        if type(x1) is _ndarray:
            x, s, first = x1, x2, False
        elif type(x2) is _ndarray:
            x, s, first = x2, x1, True
        else:
            x = None
        if x is not None and not kwargs:
            t = type(s)
            if t is int or t is float or t is _ndarray:  # no Tensor among the operands
                if t is not _ndarray and (out is None or out is x):
                    dt = x.dtype
                    if ((dt is _F32 or dt is _F64)
                            and (t is float and -1e38 < s < 1e38 or t is int and -_EXACT_INT <= s <= _EXACT_INT)):
                        if (out is not None and x.size >= _EXT_MIN and x.ndim and (fl := x.flags).c_contiguous
                                and fl.writeable and D.native_on()):  # out=x in place (out=None: np_fast_ext)
                            return (_C or _native()).np_max_scalar(x, s, is_max, first, out)
                        if s == 0 and (t is int or _copysign(1.0, s) > 0):  # the lecture relu: no lookup
                            z = _ZERO32 if dt is _F32 else _ZERO64
                        else:
                            z = _scalar_operand(dt, s)
                        if z is not None:
                            a, b = (z, x) if first else (x, z)
                            return np_fn(a, b) if out is None else np_fn(a, b, out=out)
                return np_fn(x1, x2) if out is None else np_fn(x1, x2, out=out)
        if isinstance(x1, Tensor) or isinstance(x2, Tensor):
            _reject(name, dict(kwargs, out=out))
            return tensor_fn(x1, x2)
        if out is None:
            return np_fn(x1, x2, **kwargs) if kwargs else np_fn(x1, x2)
        return np_fn(x1, x2, out=out, **kwargs)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"NumPy's ``{name}``; with a Tensor argument it records the graph.\n\n"
                 f"``{name}(x, s)`` / ``{name}(s, x)`` of a C-contiguous float32/float64 array of at least\n"
                 "``_dispatch.EXT_SCALAR_MIN_SIZE`` elements and a Python scalar (the lecture relu\n"
                 "``maximum(z, 0)``; ``out=None`` or ``out=x``) runs the native kernel: NumPy's values bit for\n"
                 "bit, NaN propagation and sign of zero included. Smaller ones run NumPy's loop with the scalar\n"
                 "as a cached 0-d array of x's dtype (the same loop on the same values, less call overhead).")
    return face("accelerated")(_keep_ufunc_methods(f, np_fn))


maximum = _extremum_binary("maximum", True, F.maximum, _np_maximum)
minimum = _extremum_binary("minimum", False, F.minimum, np.minimum)


@face("dual")
def where(condition, /, *args):
    """NumPy's ``where``; ``where(cond, x, y)`` with a Tensor x or y records the graph (cond is not differentiated)."""
    if len(args) == 2:
        x, y = args
        tx, ty = type(x), type(y)
        if (type(condition) is _ndarray and (tx is _ndarray or tx is float or tx is int)
                and (ty is _ndarray or ty is float or ty is int)):
            return _np_where_c(condition, x, y)  # no __array_function__ override possible: NumPy's C function
        if isinstance(x, Tensor) or isinstance(y, Tensor) or isinstance(condition, Tensor):
            return F.where(condition, x, y)
    return np.where(condition, *args)


@face("dual")
def clip(a, *args, **kwargs):
    """NumPy's ``clip(a, a_min, a_max)`` (also ``min=``/``max=``); with a Tensor it records the graph
    (the gradient passes where a_min <= a <= a_max)."""
    if isinstance(a, Tensor):
        bounds = list(args[:2]) + [None] * (2 - len(args[:2]))
        for i, keys in enumerate((("a_min", "min"), ("a_max", "max"))):
            for key in keys:
                if key in kwargs:
                    bounds[i] = kwargs.pop(key)
        _reject("clip", dict(kwargs, **({"out": args[2]} if len(args) > 2 else {})))
        lo, hi = bounds
        lo = -np.inf if lo is None else (lo.data if isinstance(lo, Tensor) else lo)
        hi = np.inf if hi is None else (hi.data if isinstance(hi, Tensor) else hi)
        return F.clip(a, lo, hi)
    return np.clip(a, *args, **kwargs)


# ------------------------------------------------------------------ GEMM
def _tensor_matmul(name, a, b, extra):
    _reject(name, extra)
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        if name == "matmul":
            raise ValueError("pynn.ops.matmul: operands must not be scalars (0-d), as in NumPy")
        return F.mul(a, b)
    if name == "dot" and np.ndim(b) > 2:
        raise ValueError(f"pynn.ops.dot on Tensors: b with {np.ndim(b)} dims (NumPy's sum over a's last and b's "
                         "second-to-last axis) is not differentiable here; use matmul or einsum")
    return F.matmul(a, b)




@face("accelerated")
def matmul(x1, x2, /, out=None, **kwargs):
    """NumPy's ``matmul`` (``x1 @ x2``); with a Tensor it records the graph.

    2-D float32 products that the native SGEMM wins (``_dispatch.native_gemm_wins``) run
    there (any strides, ``out=`` written in place). Batched stacks and float64 use NumPy
    (OpenBLAS; measured at least as fast as pynn's paths, see README)."""
    if type(x1) is _ndarray and type(x2) is _ndarray:
        if not kwargs and _backend._active is _NATIVE_BACKEND:
            r = (_C or _native()).np_fast_dot(x1, x2, out)  # the route's checks and the product in one C call
            if r is not None:
                return r
        if out is None and not kwargs:
            return _np_matmul(x1, x2)
    elif isinstance(x1, Tensor) or isinstance(x2, Tensor):
        return _tensor_matmul("matmul", x1, x2, dict(kwargs, out=out))
    return _np_matmul(x1, x2, out=out, **kwargs)


@face("accelerated")
def dot(a, b, out=None):
    """NumPy's ``dot``; with a Tensor it records the graph (scalars, vectors, matrices; b at most 2-D).

    2-D float32 products route as :func:`matmul` does."""
    if type(a) is _ndarray and type(b) is _ndarray:
        if _backend._active is _NATIVE_BACKEND and (out is None or type(out) is _ndarray and out.flags.c_contiguous):
            # One C call (np_fast_dot) checks dtype, rank, layout and _dispatch's GEMM rules on the
            # array structs and computes the product, or returns None for NumPy's route: ~0.05 µs
            # on a lecture product that stays NumPy's, where the same checks in Python took ~0.45.
            # (np.dot takes only a C-contiguous out=, and names any other in its ValueError.)
            r = (_C or _native()).np_fast_dot(a, b, out)
            if r is not None:
                return r
        if out is None:
            return _np_dot_c(a, b)
        return (_np_dot_c if type(out) is _ndarray else _np_dot)(a, b, out)  # out joins NumPy's dispatch
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return _tensor_matmul("dot", a, b, {"out": out})
    return _np_dot(a, b) if out is None else _np_dot(a, b, out)


@face("dual")
def einsum(subscripts, /, *operands, **kwargs):
    """NumPy's ``einsum``; with Tensor operands it records the graph (no repeated letter within one operand)."""
    if isinstance(subscripts, str) and any(isinstance(o, Tensor) for o in operands):
        _reject("einsum", kwargs)
        return F.einsum(subscripts, *operands)
    return np.einsum(subscripts, *operands, **kwargs)


# ------------------------------------------------------------------ reductions
# For an exact ndarray, np.sum / np.max / np.min are ``np.add.reduce`` / ``np.maximum.reduce`` /
# ``np.minimum.reduce`` behind about 1.4 µs of Python argument handling (numpy's
# ``_wrapreduction``): calling the ufunc's reduce directly is the same computation, bit for bit.
# A C-contiguous float32/float64 array reduced over its last axis, its first axis or all of it
# goes further, to the native kernels that add in NumPy's own order (csrc/nn/elementwise.h):
# NumPy's reduce machinery costs 1.5-7 µs even on a 32x10 matrix. One C call, np_fast_reduce,
# checks the array and the axis and runs the kernel, or returns None for NumPy's route
# (ops.sum(x, axis=0) of 32x10: 0.93 µs with the checks in Python, ~0.4 µs so). Anything else (lists,
# subclasses, ``where=``, ``initial=``, ``dtype=``, ``out=``, tuple axes) takes NumPy's function.
_add_reduce = np.add.reduce
_max_reduce = np.maximum.reduce
_min_reduce = np.minimum.reduce
_true_divide = np.true_divide
_SUM, _MEAN, _MAX, _MIN = 0, 1, 2, 3


@face("accelerated")
def sum(a, axis=None, dtype=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):  # noqa: A001
    """NumPy's ``sum``; a Tensor records the graph.

    A C-contiguous float32/float64 ndarray summed over its last axis, first axis or all of it
    runs the native kernel that adds in NumPy's order (pairwise along a row, row by row down
    the columns): bit for bit NumPy's result. Other ndarrays call ``np.add.reduce`` directly."""
    if type(a) is _ndarray:
        if initial is _NoValue and where is _NoValue:
            if dtype is None and out is None and _backend._active is _NATIVE_BACKEND:
                r = (_C or _native()).np_fast_reduce(a, _SUM, axis, keepdims)
                if r is not None:
                    return r
            if keepdims is _NoValue:
                return _add_reduce(a, axis, dtype, out)
            return _add_reduce(a, axis, dtype, out, keepdims=keepdims)
    elif isinstance(a, Tensor):
        _reject("sum", _given(dtype=dtype, out=out, initial=initial, where=where))
        return F.sum(a, axis, keepdims is not _NoValue and keepdims)
    return np.sum(a, axis, dtype, out, keepdims, initial, where)


@face("accelerated")
def mean(a, axis=None, dtype=None, out=None, keepdims=_NoValue, **kwargs):
    """NumPy's ``mean``; a Tensor records the graph. A float32/float64 ndarray runs the same
    sum-then-divide NumPy does, bit for bit: natively where :func:`sum` would, else through
    ``np.add.reduce`` without NumPy's Python layer."""
    if type(a) is _ndarray:
        if not kwargs and dtype is None and out is None:
            if _backend._active is _NATIVE_BACKEND:
                r = (_C or _native()).np_fast_reduce(a, _MEAN, axis, keepdims)
                if r is not None:
                    return r
            # NumPy's own mean for other dtypes, empty arrays and axes that are not None or an int
            # (np.mean normalises them itself: axis=True is axis 1 there, a TypeError to add.reduce),
            # and for any axis of a 0-d array (an AxisError there; add.reduce takes axis 0 of a 0-d)
            if not ((a.dtype is _F32 or a.dtype is _F64) and a.size and (axis is None or type(axis) is int and a.ndim)):
                return np.mean(a, axis=axis, keepdims=keepdims)
            s = _add_reduce(a, axis, None, None, keepdims=keepdims is not _NoValue and keepdims)
            count = a.size // (s.size or 1) if type(s) is _ndarray else a.size
            if type(s) is _ndarray:
                return _true_divide(s, count, out=s, casting="unsafe")
            return s.dtype.type(s / count)
    elif isinstance(a, Tensor):
        _reject("mean", dict(kwargs, dtype=dtype, out=out))
        return F.mean(a, axis, keepdims is not _NoValue and keepdims)
    return np.mean(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kwargs)


def _extremum(name, op, tensor_fn, ufunc_reduce):
    np_fn = getattr(np, name)

    # **kwargs only so that an unknown keyword reaches NumPy's function and gets its error message
    # (this function's own would name "f").
    def f(a, axis=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue, **kwargs):
        if type(a) is _ndarray:
            if initial is _NoValue and where is _NoValue and not kwargs:
                if out is None and _backend._active is _NATIVE_BACKEND:
                    r = (_C or _native()).np_fast_reduce(a, op, axis, keepdims)
                    if r is not None:
                        return r
                if keepdims is _NoValue:
                    return ufunc_reduce(a, axis, None, out)
                return ufunc_reduce(a, axis, None, out, keepdims=keepdims)
        elif isinstance(a, Tensor):
            _reject(name, dict(kwargs, **_given(out=out, initial=initial, where=where)))
            return tensor_fn(a, axis, keepdims is not _NoValue and keepdims)
        return np_fn(a, axis, out, keepdims, initial, where, **kwargs)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = _doc(name, "Tied extremes share the gradient equally. A C-contiguous float32/float64 ndarray "
                           "reduced over its last axis, first axis or all of it runs the native kernel (NumPy's "
                           "values and NaN propagation; see csrc/nn/elementwise.h for the sign of a zero extreme).")
    return face("accelerated")(f)


max = _extremum("max", _MAX, F.max, _max_reduce)  # noqa: A001
min = _extremum("min", _MIN, F.min, _min_reduce)  # noqa: A001
amax = _extremum("amax", _MAX, F.max, _max_reduce)
amin = _extremum("amin", _MIN, F.min, _min_reduce)


def _moment(name, tensor_fn):
    np_fn = getattr(np, name)

    def f(a, axis=None, dtype=None, out=None, ddof=0, keepdims=_NoValue, **kwargs):
        if isinstance(a, Tensor):
            _reject(name, dict(kwargs, dtype=dtype, out=out))
            return tensor_fn(a, axis, keepdims is not _NoValue and keepdims, ddof)
        return np_fn(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kwargs)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = _doc(name)
    return face("dual")(f)


std = _moment("std", F.std)
var = _moment("var", F.var)


def _arg(name):
    np_fn = getattr(np, name)

    # keepdims not given is not keepdims=False: NumPy then calls a subclass's own method without
    # it (np.matrix.argmax has none and returns a scalar; given keepdims, NumPy wraps a matrix).
    def f(a, axis=None, out=None, *, keepdims=_NoValue):
        if type(a) is D.ndarray:  # the method NumPy's function ends up calling
            if keepdims is _NoValue:
                return getattr(a, name)(axis, out)
            return getattr(a, name)(axis, out, keepdims=keepdims)
        if isinstance(a, Tensor):
            _reject(name, {"out": out})
            return Tensor(np_fn(a.data, axis=axis, keepdims=keepdims))  # integer indices: no gradient
        return np_fn(a, axis=axis, out=out, keepdims=keepdims)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = _doc(name, "A Tensor input gives an integer Tensor (not differentiable).")
    return face("dual")(f)


argmax = _arg("argmax")
argmin = _arg("argmin")


# ------------------------------------------------------------------ shape and joining
def _tensor_seq(arrays):
    """``arrays`` as a list when it is a Tensor or a sequence holding one (the Tensor face), else None.
    An iterator without ``__getitem__`` (a generator) is left to NumPy, which refuses it: turning
    it into a list here would accept what NumPy does not."""
    if type(arrays) is _ndarray:
        return None
    if isinstance(arrays, Tensor):
        return list(arrays)
    if hasattr(arrays, "__getitem__") and D.any_tensor_in(arrays):
        return list(arrays)
    return None


@face("dual")
def reshape(a, /, *args, **kwargs):
    """NumPy's ``reshape(a, shape, order='C')``; with a Tensor it records the graph (C order only)."""
    if isinstance(a, Tensor):
        shape = args[0] if args else kwargs.pop("shape", kwargs.pop("newshape", None))
        order = args[1] if len(args) > 1 else kwargs.pop("order", "C")
        if order != "C":
            raise TypeError(f"pynn.ops.reshape: order={order!r} is not supported on Tensors (C order only)")
        _reject("reshape", kwargs)
        return F.reshape(a, shape)
    return np.reshape(a, *args, **kwargs)


@face("dual")
def transpose(a, axes=None):
    """NumPy's ``transpose``; with a Tensor it records the graph."""
    if isinstance(a, Tensor):
        return F.transpose(a, None if axes is None else tuple(axes))
    return np.transpose(a, axes)


@face("dual")
def expand_dims(a, axis):
    """NumPy's ``expand_dims``; with a Tensor it records the graph."""
    return F.expand_dims(a, axis) if isinstance(a, Tensor) else np.expand_dims(a, axis)


@face("dual")
def squeeze(a, axis=None):
    """NumPy's ``squeeze``; with a Tensor it records the graph."""
    return F.squeeze(a, axis) if isinstance(a, Tensor) else np.squeeze(a, axis)


@face("dual")
def concatenate(arrays, /, axis=0, out=None, **kwargs):
    """NumPy's ``concatenate``; if any input is a Tensor it records the graph."""
    seq = _tensor_seq(arrays)
    if seq is not None:
        _reject("concatenate", dict(kwargs, out=out))
        if axis is None:
            return F.concatenate([F.reshape(a, (-1,)) if isinstance(a, Tensor) else np.ravel(a) for a in seq], 0)
        return F.concatenate(seq, axis)
    return np.concatenate(arrays, axis=axis, out=out, **kwargs)


@face("dual")
def stack(arrays, axis=0, out=None, **kwargs):
    """NumPy's ``stack``; if any input is a Tensor it records the graph."""
    seq = _tensor_seq(arrays)
    if seq is not None:
        _reject("stack", dict(kwargs, out=out))
        return F.stack(seq, axis)
    return np.stack(arrays, axis=axis, out=out, **kwargs)


@face("dual")
def split(ary, indices_or_sections, axis=0):
    """NumPy's ``split``; a Tensor gives a list of differentiable slices."""
    if isinstance(ary, Tensor):
        return F.split(ary, indices_or_sections, axis)
    return np.split(ary, indices_or_sections, axis)


@face("dual")
def shape(a):
    """NumPy's ``shape``: the shape tuple of an array, list or Tensor."""
    return a.shape if isinstance(a, Tensor) else np.shape(a)


@face("dual")
def zeros_like(a, dtype=None, *args, **kwargs):
    """NumPy's ``zeros_like``; a Tensor gives a constant Tensor (no gradient flows through a constant)."""
    if isinstance(a, Tensor):
        _reject("zeros_like", dict(kwargs, **{f"arg{i + 2}": v for i, v in enumerate(args)}))
        return Tensor(np.zeros_like(a.data, dtype=dtype))
    return np.zeros_like(a, dtype, *args, **kwargs)


@face("dual")
def ones_like(a, dtype=None, *args, **kwargs):
    """NumPy's ``ones_like``; a Tensor gives a constant Tensor."""
    if isinstance(a, Tensor):
        _reject("ones_like", dict(kwargs, **{f"arg{i + 2}": v for i, v in enumerate(args)}))
        return Tensor(np.ones_like(a.data, dtype=dtype))
    return np.ones_like(a, dtype, *args, **kwargs)


# ------------------------------------------------------------------ Keras-ops names that NumPy lacks
@face("dual")
def cast(x, dtype):
    """``x`` as ``dtype`` (keras.ops.cast): an ndarray copy, or a differentiable Tensor cast."""
    if isinstance(x, Tensor):
        return F.cast(x, dtype)
    return np.asarray(x).astype(dtype)


@face("dual")
def one_hot(x, num_classes, axis=-1, dtype="float32"):
    """One-hot encode integer labels (keras.ops.one_hot): a new axis of ``num_classes`` at ``axis``.

    Labels outside [0, num_classes) are a ValueError (NumPy indexing would wrap -1 silently)."""
    is_t = isinstance(x, Tensor)
    labels = np.asarray(x.data if is_t else x)
    if labels.dtype.kind not in "iu":
        if labels.size and not np.all(labels == np.round(labels)):
            raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got range "
                         f"[{labels.min()}, {labels.max()}]")
    out = np.eye(num_classes, dtype=dtype)[labels]
    if axis != -1:
        out = np.moveaxis(out, -1, axis)
    return Tensor(out) if is_t else out


@face("dual")
def convert_to_tensor(x, dtype=None):
    """A pynn.Tensor holding ``x`` (keras.ops.convert_to_tensor); a Tensor is returned as is
    (or cast, differentiably, when ``dtype`` differs)."""
    if isinstance(x, Tensor):
        return x if dtype is None or np.dtype(dtype) == x.dtype else F.cast(x, dtype)
    return Tensor(x, dtype=None if dtype is None else np.dtype(dtype))


@face("dual")
def convert_to_numpy(x):
    """``x`` as an np.ndarray (keras.ops.convert_to_numpy): a Tensor's data, or np.asarray(x)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)

