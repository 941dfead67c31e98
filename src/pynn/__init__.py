"""pynn: a fast deep-learning library for the CPU.

C++ kernels (SIMD/OpenMP) behind a NumPy reference twin, a reverse-mode
autograd and a Keras-style model API. See README.md for a tour.
"""
__version__ = "0.1.0"

import os as _os

# OpenMP threads that busy-wait after a kernel (libgomp spins ~300k iterations by
# default) starve OpenBLAS's threads, and vice versa, whenever numpy and pynn
# kernels alternate on a machine with few cores: measured 6x slower training on
# 2 cores. A short spin still covers the barriers inside one kernel; between
# Python-level calls the threads sleep. Set OMP_WAIT_POLICY or GOMP_SPINCOUNT
# yourself to override. Must happen before pynn._C loads libgomp.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"

# Freed activations stay on the heap for the next step instead of being faulted
# in again (see _allocator.py; PYNN_MALLOC_TUNING=0 opts out).
from ._allocator import tune_malloc as _tune_malloc  # noqa: E402

MALLOC_TUNED = _tune_malloc()

# PYNN_PURE_PYTHON=1: import the pure-Python source of the Cython-compiled core (see _core.py).
from . import _core  # noqa: E402

_core.install()

from . import backend  # noqa: E402
from .autograd import GradientTape, Tensor, enable_grad, is_grad_enabled, no_grad
from .backend import coverage, set_backend, use_backend
from .random import set_seed
from ._weights_epoch import bump as weights_changed  # noqa: E402  (before a direct write into a weight's .data)
from . import functional, ops, activations, initializers, losses, metrics, callbacks, layers, datasets  # noqa: E402
from . import optimizers  # noqa: E402
# Keras' modules, reachable after a plain `import pynn`.
from . import config, constraints, models, regularizers, saving, utils  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Model, Sequential  # noqa: E402
from .saving import load_model, register_serializable  # noqa: E402
from . import keras_file  # noqa: E402  (registers the .keras loader with saving.load_model; h5py is imported lazily)
from . import onnx  # noqa: E402  (pynn.onnx.export; the onnx package itself is imported only when exporting)
from .plotting import plot_decision_boundary, plot_history  # noqa: E402


def set_num_threads(n: int) -> None:
    """Threads used by the native kernels (default: PYNN_NUM_THREADS, else all cores).
    In a process forked after the kernels ran multi-threaded only 1 is allowed (see README).

    Args:
        n: a positive int.

    Returns:
        None (a no-op without the native extension).

    Example:
        >>> previous = pynn.get_num_threads()
        >>> pynn.set_num_threads(1)
        >>> pynn.get_num_threads()
        1
        >>> pynn.set_num_threads(previous)
    """
    if isinstance(n, bool) or not hasattr(n, "__index__") or int(n) < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    if backend.NATIVE_AVAILABLE:
        from . import _C
        _C.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the native kernels use (see ``set_num_threads``).

    Returns:
        An int >= 1 (1 when the native extension is not built).

    Example:
        >>> pynn.get_num_threads() >= 1
        True
    """
    if backend.NATIVE_AVAILABLE:
        from . import _C
        return _C.num_threads()
    return 1


__all__ = ["GradientTape", "Tensor", "no_grad", "enable_grad", "is_grad_enabled", "set_backend", "use_backend", "coverage",
           "set_seed", "weights_changed", "set_num_threads", "get_num_threads", "functional", "ops", "activations", "initializers",
           "losses", "metrics", "callbacks", "layers", "datasets", "optimizers", "Input", "Model", "Sequential",
           "backend", "load_model", "register_serializable",
           "plot_history", "plot_decision_boundary", "constraints", "models", "regularizers", "saving", "utils"]
