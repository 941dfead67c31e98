"""The cheap per-call choice between NumPy and the native kernels.

Every rule here is a handful of attribute reads and integer compares (about
0.1-0.2 µs, measured by bench/numpy_dropin.py), so routing a small call to NumPy
costs less than NumPy's own call overhead. Thresholds come from the measured
crossover on this machine class (2-core AVX2 Zen 3); see the README's "NumPy
drop-in" table and bench/numpy_dropin.py, which re-measures them.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Tensor

F32 = np.dtype(np.float32)
ndarray = np.ndarray

# GEMM: OpenBLAS's per-call overhead is ~1.5 µs and pybind11's about the same, so
# below this many multiply-adds (m·k·n) the two tie and NumPy keeps the call
# (it is the reference, so ties go to it). Above it the native SGEMM's
# prepacked microkernel and its OpenMP split win, except in the cases
# native_gemm_wins() sends back to NumPy.
GEMM_MIN_MACS = 1 << 18
# Elementwise relu through np.maximum(x, 0): the native kernel is one pass with
# no NaN/type-resolution machinery; it wins from a few thousand elements on.
RELU_MIN_SIZE = 1 << 12
# Column sums (db = dz.sum(axis=0)): the native kernel splits rows across threads.
COLSUM_MIN_SIZE = 1 << 16


def native_on() -> bool:
    """True when the native backend is active (``pynn.use_backend("numpy")`` turns every fast path off)."""
    return backend._active is backend.native_backend and backend.NATIVE_AVAILABLE


def any_tensor(args) -> bool:
    for a in args:
        if isinstance(a, Tensor):
            return True
    return False


def any_tensor_in(seq) -> bool:
    return any(isinstance(a, Tensor) for a in seq)


def native_gemm_wins(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a @ b`` (2-D float32 ndarrays) should run on the native SGEMM."""
    m, k = a.shape
    n = b.shape[1]
    if m * k * n < GEMM_MIN_MACS:
        return False
    return True
