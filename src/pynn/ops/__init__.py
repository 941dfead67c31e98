"""``pynn.ops``: one namespace, two faces.

* **NumPy face** — ``import pynn.ops as np`` runs lecture-style NumPy code
  unchanged: ndarrays (and lists, scalars) in, ``np.ndarray`` out, with NumPy's
  names, argument names, defaults, broadcasting and type promotion. Every NumPy
  name pynn adds nothing to *is* NumPy's own object (``random``, ``float32``,
  ``newaxis``, ``pi``, ``zeros``, ``eye``, ``outer`` ...; bound at import, so
  lookups cost what ``np.x`` costs). A few functions are **accelerated**: a
  cheap per-call check (size, dtype, layout) sends large float32 work to the
  native kernels and everything else to NumPy (:data:`ACCELERATED`).
* **Tensor face** — the same functions given a :class:`pynn.Tensor` record
  the autograd graph through :mod:`pynn.functional`, as ``keras.ops`` does in
  Keras (:data:`TENSOR_FACE`). NumPy-only arguments (``out=``...) with a
  Tensor are a TypeError, never silently ignored.

pynn's own array functions (``dense``, ``relu``, ``softmax``,
``softmax_cross_entropy``, ``conv2d``, ``max_pool2d`` ...) run on the active
backend, and every backend kernel (``relu_grad``, ``sgd_step`` ...) is
reachable by name. ``pynn.use_backend("numpy")`` turns every native fast path off.
"""
import numpy as _np

from .. import backend as _backend
from . import _dispatch as dispatch  # noqa: F401  (thresholds, documented)
from ._numeric import (abs, absolute, add, amax, amin, argmax, argmin, cast, clip, concatenate,  # noqa: A004
                       convert_to_numpy, convert_to_tensor, divide, dot, einsum, exp, expand_dims, log, log1p,
                       matmul, max, maximum, mean, min, minimum, multiply, negative, one_hot, ones_like, power,
                       reshape, shape, split, sqrt, square, squeeze, stack, std, subtract, sum, transpose,
                       true_divide, var, where, zeros_like)
from ._nn import (avg_pool2d, bias_add, conv2d, ctc_loss, dense, elu, gelu, leaky_relu, log_softmax, max_pool2d,
                  relu, sigmoid, softmax, softmax_cross_entropy, tanh)

_OWN = {k: v for k, v in globals().items() if not k.startswith("_")}

#: Functions with a native fast path on the NumPy face (everything else there is NumPy itself).
ACCELERATED = tuple(sorted(k for k, v in _OWN.items() if getattr(v, "_pynn_face", None) == "accelerated"))
#: Functions that record the autograd graph when an argument is a pynn.Tensor.
TENSOR_FACE = tuple(sorted(k for k, v in _OWN.items() if getattr(v, "_pynn_face", None) in ("dual", "accelerated")))

# NumPy's public names that pynn does not define are NumPy's own objects.
for _name in _np.__all__:
    if _name not in _OWN:
        globals()[_name] = getattr(_np, _name)
del _name

#: NumPy names that are NumPy's own objects here (not accelerated, no Tensor face).
NUMPY_OWN = tuple(sorted(n for n in _np.__all__ if n not in _OWN))


def __getattr__(name):
    # Every other kernel of the active backend (gradients, optimizer steps, ...), then
    # anything else NumPy has (names outside numpy.__all__).
    if name in _backend.KERNELS:
        return getattr(_backend.current(), name)
    try:
        return getattr(_np, name)
    except AttributeError:
        raise AttributeError(f"pynn.ops has no {name!r} (neither a pynn function nor a NumPy name)") from None


def __dir__():
    return sorted(set(globals()) | set(_backend.KERNELS))
