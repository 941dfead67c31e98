"""Kernel backends: ``numpy`` (the reference, the definition of correct) and
``native`` (thin wrappers over the C++ extension ``pynn._C``).

Both expose the same kernel functions with the same signatures (``KERNELS``).
A kernel is a pure function over ndarrays: it never sees Tensors or autograd.
The native backend starts as a copy of the numpy one and overrides each kernel
it has in C++; :func:`coverage` tells which is which, so a numpy fallback is
never mistaken for a native kernel.

Selection is process-wide: :func:`set_backend`, the :func:`use_backend`
context manager, or the ``PYNN_BACKEND`` environment variable. The default is
native when the extension imports, else numpy with one warning.
"""
from __future__ import annotations

import contextlib
import os
import warnings

from . import numpy as numpy_backend

try:
    from . import native as native_backend
    NATIVE_AVAILABLE = True
    NATIVE_IMPORT_ERROR = None
except ImportError as e:  # the extension did not build or load
    native_backend = None
    NATIVE_AVAILABLE = False
    NATIVE_IMPORT_ERROR = e

KERNELS = tuple(numpy_backend.KERNELS)

_BACKENDS = {"numpy": numpy_backend}
if NATIVE_AVAILABLE:
    _BACKENDS["native"] = native_backend


def _initial():
    name = os.environ.get("PYNN_BACKEND", "").strip().lower()
    if name:
        if name not in ("numpy", "native"):
            raise ValueError(f"PYNN_BACKEND must be 'numpy' or 'native', got {name!r}")
        if name == "native" and not NATIVE_AVAILABLE:
            raise ImportError(f"PYNN_BACKEND=native but pynn._C failed to import: {NATIVE_IMPORT_ERROR}")
        return _BACKENDS[name]
    if NATIVE_AVAILABLE:
        return native_backend
    warnings.warn(
        f"pynn: the native extension pynn._C could not be imported ({NATIVE_IMPORT_ERROR}); "
        "using the slow numpy reference backend. Reinstall with `pip install .` to build it.",
        RuntimeWarning, stacklevel=2)
    return numpy_backend


_active = _initial()


def current():
    """The active backend module (``pynn.backend.numpy`` or ``pynn.backend.native``)."""
    return _active


def name() -> str:
    return _active.NAME


def set_backend(backend: str) -> None:
    """Make ``backend`` ("native" or "numpy") active for the whole process.

    Args:
        backend: "native" (the compiled kernels) or "numpy" (the reference kernels).

    Returns:
        None. Raises ValueError for another name, RuntimeError for "native" when the
        extension is not built.

    Example:
        >>> previous = pynn.backend.name()
        >>> pynn.set_backend("numpy")
        >>> pynn.backend.name()
        'numpy'
        >>> pynn.set_backend(previous)
    """
    global _active
    _active = _get(backend)


def _get(backend):
    if backend not in ("numpy", "native"):
        raise ValueError(f"set_backend: expected 'numpy' or 'native', got {backend!r}")
    if backend == "native" and not NATIVE_AVAILABLE:
        raise RuntimeError(f"set_backend('native'): pynn._C failed to import: {NATIVE_IMPORT_ERROR}")
    return _BACKENDS[backend]


@contextlib.contextmanager
def use_backend(backend: str):
    """Context manager: run the block on ``backend``, then restore the previous one.

    Args:
        backend: "native" or "numpy", as for ``set_backend``.

    Returns:
        A context manager; ``with`` binds the backend module made active.

    Example:
        >>> with pynn.use_backend("numpy"):
        ...     print(pynn.backend.name())
        numpy
    """
    global _active
    previous = _active
    _active = _get(backend)
    try:
        yield _active
    finally:
        _active = previous


def coverage() -> dict:
    """Map each kernel name to "native" or "numpy (fallback)" for the native backend.

    Returns:
        A dict {kernel name: "native", "numpy (fallback)" or
        "numpy (fallback: extension not built)"}.

    Example:
        >>> table = pynn.coverage()
        >>> "matmul" in table
        True
        >>> sorted({v.split(" ")[0] for v in table.values()} - {"native", "numpy"})
        []
    """
    out = {}
    for k in KERNELS:
        if not NATIVE_AVAILABLE:
            out[k] = "numpy (fallback: extension not built)"
        elif getattr(native_backend, k) is getattr(numpy_backend, k):
            out[k] = "numpy (fallback)"
        else:
            out[k] = "native"
    return out
