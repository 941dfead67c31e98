"""``pynn.ops``: one namespace, two faces.

* **NumPy face** — ``import pynn.ops as np`` runs lecture-style NumPy code
  unchanged: ndarrays (and lists, scalars) in, ``np.ndarray`` out, with NumPy's
  names, argument names, defaults, broadcasting and type promotion. Every NumPy
  name pynn adds nothing to is NumPy's own: constants, dtypes, submodules and
  gradient-free functions are NumPy's objects (``random``, ``float32``,
  ``newaxis``, ``pi``, ``zeros``, ``arange``, ``asarray``); other functions
  (``outer``, ``sin``, ``cumsum`` ...) are NumPy's behind a guard that refuses a
  pynn.Tensor (NumPy would silently drop its graph). All are bound at import
  (no per-lookup cost). A wrapped ufunc is a Python function that keeps the ufunc's
  methods and attributes (``add.at``, ``maximum.reduce``, ``nin``), so
  ``isinstance(pynn.ops.exp, np.ufunc)`` is False: the one visible difference. A few functions are **accelerated**
  (:data:`ACCELERATED`): a cheap per-call check (size, dtype, layout) sends
  large float32 GEMMs, float32/float64 reductions over the last or first axis
  (native kernels that add in NumPy's order: NumPy's bits) and maximum/minimum
  with a scalar to the native kernels, and everything else to NumPy.
* **Tensor face** — the same functions given a :class:`pynn.Tensor` record
  the autograd graph through :mod:`pynn.functional`, as ``keras.ops`` does in
  Keras (:data:`TENSOR_FACE`). NumPy-only arguments (``out=``...) with a
  Tensor are a TypeError, never silently ignored.

pynn's own array functions (``dense``, ``relu``, ``softmax``,
``softmax_cross_entropy``, ``conv2d``, ``max_pool2d`` ...) run on the active
backend, and every backend kernel (``relu_grad``, ``sgd_step`` ...) is
reachable by name. ``pynn.use_backend("numpy")`` turns every native fast path off.
"""
import builtins as _builtins  # this module's globals shadow any/sum/max/min/abs with NumPy's
import types as _types

import numpy as _np

from .. import backend as _backend
from ..autograd import Tensor as _Tensor
from . import _dispatch as dispatch  # noqa: F401  (thresholds, documented)
from ._numeric import _keep_ufunc_methods
from ._numeric import (abs, absolute, add, amax, amin, argmax, argmin, cast, clip, concatenate,  # noqa: A004
                       convert_to_numpy, convert_to_tensor, divide, dot, einsum, exp, expand_dims, log, log1p,
                       matmul, max, maximum, mean, min, minimum, multiply, negative, one_hot, ones_like, power,
                       reshape, shape, split, sqrt, square, squeeze, stack, std, subtract, sum, transpose,
                       true_divide, var, where, zeros_like)
from ._nn import (avg_pool2d, bias_add, conv2d, ctc_loss, dense, elu, gelu, leaky_relu, log_softmax, max_pool2d,
                  relu, sigmoid, softmax, softmax_cross_entropy, tanh)

_ndarray = _np.ndarray
_OWN = {k: v for k, v in globals().items() if not k.startswith("_")}

#: Functions with a native fast path on the NumPy face (everything else there is NumPy itself).
ACCELERATED = tuple(sorted(k for k, v in _OWN.items() if getattr(v, "_pynn_face", None) == "accelerated"))
#: Functions that record the autograd graph when an argument is a pynn.Tensor.
TENSOR_FACE = tuple(sorted(k for k, v in _OWN.items() if getattr(v, "_pynn_face", None) in ("dual", "accelerated")))

def _tensor_guard(name, np_fn):
    """NumPy's function, refusing pynn.Tensors: NumPy would turn one into an array through
    ``__array__`` and the result would silently leave the autograd graph."""
    def refuse():
        raise TypeError(f"pynn.ops.{name} is NumPy's own function and has no Tensor face: it would drop "
                        f"the autograd graph. Tensor-face functions: {', '.join(TENSOR_FACE)}; or pass "
                        "tensor.data / pynn.ops.convert_to_numpy(t) to compute without gradients")

    def f(*args, **kwargs):
        # Plain loops, not any(<generator>): this runs on every call of np.zeros, np.arange ...
        for a in args:
            t = type(a)
            if t is _ndarray or t is int or t is float or t is type or t is str:
                continue
            if t is tuple or t is list:
                for e in a:
                    if isinstance(e, _Tensor):
                        refuse()
            elif isinstance(a, _Tensor):
                refuse()
        if kwargs:
            for a in kwargs.values():
                if isinstance(a, _Tensor):
                    refuse()
            return np_fn(*args, **kwargs)
        return np_fn(*args)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = np_fn.__doc__
    f.__wrapped__ = np_fn
    if isinstance(np_fn, _np.ufunc):
        _keep_ufunc_methods(f, np_fn)
    return f


def _is_numpy_function(obj):
    return callable(obj) and not isinstance(obj, type) and not isinstance(obj, _types.ModuleType)


# Functions whose result carries no gradient by nature: array creation from sizes, explicit
# conversion to an ndarray (the user asks for the array), and metadata queries. They stay NumPy's
# own objects, unguarded, so np.arange/np.zeros in a training loop cost exactly what NumPy's do.
_NO_GRAPH = {"arange", "zeros", "ones", "empty", "full", "eye", "identity", "linspace", "logspace", "geomspace",
             "array", "asarray", "asanyarray", "ascontiguousarray", "ndim", "size", "isscalar", "iterable",
             "result_type", "can_cast", "promote_types", "issubdtype", "dtype", "finfo", "iinfo"}

# NumPy's public names that pynn does not define: constants, dtypes, classes, submodules and the
# functions above are NumPy's own objects; other functions and ufuncs are NumPy's behind a Tensor guard.
for _name in _np.__all__:
    if _name not in _OWN:
        _obj = getattr(_np, _name)
        guard = _is_numpy_function(_obj) and _name not in _NO_GRAPH
        globals()[_name] = _tensor_guard(_name, _obj) if guard else _obj
del _name, _obj, guard

#: NumPy names served by NumPy itself (functions among them refuse a pynn.Tensor).
NUMPY_OWN = tuple(sorted(n for n in _np.__all__ if n not in _OWN))


def __getattr__(name):
    # Every other kernel of the active backend (gradients, optimizer steps, ...), then
    # anything else NumPy has (names outside numpy.__all__).
    if name in _backend.KERNELS:
        return _raw_kernel(name)
    try:
        return getattr(_np, name)
    except AttributeError:
        raise AttributeError(f"pynn.ops has no {name!r} (neither a pynn function nor a NumPy name)") from None


def _raw_kernel(name):
    """A raw kernel called directly: its callers are layers that pass consistent shapes, so
    some kernels index before they check. Called from here with arrays that do not fit
    together, an IndexError from deep inside becomes a ValueError naming the kernel and
    the shapes it was given."""
    def kernel(*args, **kwargs):
        try:
            return getattr(_backend.current(), name)(*args, **kwargs)
        except IndexError as e:
            shapes = [getattr(a, "shape", type(a).__name__) for a in args]
            raise ValueError(f"{name}: arguments of shapes {shapes} do not fit together ({e})") from e
    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = getattr(_backend.current(), name).__doc__
    return kernel


def __dir__():
    return sorted(set(globals()) | set(_backend.KERNELS))
