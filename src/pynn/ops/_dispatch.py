"""The cheap per-call choice between NumPy and the native kernels.

Every rule here is a handful of attribute reads and integer compares (0.03-0.1 µs in
the Cython-compiled ops/_numeric.py, measured by bench/numpy_dropin.py's "dispatch
cost" rows), so routing a small call to NumPy costs less than NumPy's own call
overhead; ``dot`` and ``where`` win it back by calling NumPy's C function past its
``__array_function__`` dispatcher. Thresholds come from the measured crossover on
this machine (2-core AMD EPYC, AVX2 kernels against NumPy's AVX-512 loops); see the
README's "NumPy drop-in" section and bench/numpy_dropin.py, which re-measures them.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Tensor

F32 = np.dtype(np.float32)
ndarray = np.ndarray

F64 = np.dtype(np.float64)

# Crossovers measured with bench/numpy_dropin.py on one core (thread CPU time, so a busy
# neighbour does not bias them); ties go to NumPy, the reference.
#
# GEMM: pybind11's call overhead plus the native SGEMM's packing lose to OpenBLAS's
# small-matrix path below about a million multiply-adds (the lecture MLP's 32x64x128 runs at
# 0.8x natively, 32x128x10 at 0.7x), so those stay on np.dot. Above it the native kernel wins
# for a row-major A (256x64x512 1.09x, 256x512x10 1.27x, 256x10x512 1.02x), except with fewer
# than 16 rows or 8 output columns; a column-major A only with a narrow output (below).
GEMM_MIN_MACS = 1 << 20
GEMM_MIN_SIDE = 16
GEMM_MIN_N = 8
# An inner dimension under 16 (the lecture's ``dh = dscores @ W2.T``, k = 10) is mostly packing
# for the native kernel: 256x10x512 measured 0.85-1.02x np.dot on one thread, a tie at best.
GEMM_MIN_K = 16
# ... except the small products below GEMM_MIN_MACS with such an inner dimension and a
# column-major B: backprop's dX = dY @ W.T of a narrow layer (the lecture's dh = dscores @ W2.T,
# 32x10x128). OpenBLAS copies the transposed B there; the native small path packs it into
# panels in one pass: measured 1.3x np.dot at 1 and 2 threads (32x10x128: 2.2 -> 1.7 µs), 1.0-1.8x
# from 16x10x32 to 64x10x256 at 2 threads, losses from 128x10x256 (327680 MACs) up.
GEMM_NT_MAX_MACS = 1 << 17
GEMM_NT_MIN_SIDE = 16
# With 2+ threads OpenBLAS splits these GEMMs across both cores and the native SGEMM gained
# little from its second thread on this shared machine (re-measured for this issue at load 7-11,
# 2 threads, wall time: 256x64x512 0.77-1.42x, 256x128x512 0.62x, 256x256x512 0.57x, 128x784x256
# 0.58x, 512x256x10 (x.T) 0.42x, 256x10x512 1.03-1.23x, 1024x10x512 0.70x), so GEMMs go
# native on one thread only: a loss more often than a win at 2 threads.
GEMM_MAX_THREADS = 1
# Below GEMM_MIN_MACS OpenBLAS runs one thread at any count; from 2**18 multiply-adds the native
# SGEMM splits a product across two threads (csrc/gemm/config.h kSingleThreadWork), so with 2+
# threads a lecture 32x64x128 could run there at ~0.7x of OpenBLAS's time. SPLIT_MIN_MACS turns
# that route on (None: off; see the README for the measurement behind the choice).
GEMM_SPLIT_MIN_MACS = None
# A column-major A (``h.T @ dscores``, the lecture's weight gradients) with a narrow output:
# OpenBLAS leaves its small-matrix kernel above ~1M multiply-adds and its packed path is slow
# for so few columns. Re-measured (one thread, process CPU time, after the native SGEMM's
# packing work): 512x256x10 1.7-1.9x, 1024x256x10 1.7x, 2048x128x10 1.8x, 784x128x10 1.8x,
# 512x256x32 1.1x native; wider outputs tie (256x256x64, 64x256x512: 0.99-1.0x) and a long
# inner dimension loses (512x1024x10 0.78x, 128x1024x10 0.86x), so those stay NumPy's.
GEMM_COLMAJOR_MAX_N = 32
GEMM_COLMAJOR_MAX_K = 256
# Reductions (sum, mean, max, min over the last axis, the first axis or all of a
# C-contiguous float32/float64 array) and maximum/minimum with a Python scalar run the
# NumPy-order kernels of csrc/nn/elementwise.h (bit for bit, see there). Small arrays win
# by far: NumPy's reduce machinery costs 1.5-7 µs per call on a 32x10 matrix, the native
# call ~0.3 µs: every reduction up to REDUCE_SMALL_MAX_SIZE elements goes native.
REDUCE_SMALL_MAX_SIZE = 1 << 16
# Larger arrays go native only where the kernel itself wins, measured on one thread (process CPU
# time, three interleaved rounds; ratios NumPy time / native time):
# - sum/mean over the first axis (rows added in order, vectorised across columns): 1.4-1.9x up
#   to 1M elements (256x512, 1024x1024, both dtypes), 0.6-1.4x beyond (cache-exceeding; since
#   narrowed to 4 MB, see REDUCE_COLS_MAX_BYTES);
# - max/min over the first axis: 1.1-1.6x up to 1M elements, 0.7-1.6x beyond;
# - max/min over the last axis (or all): 1.1-3.3x up to 4M elements, both dtypes;
# - sum/mean over the last axis or all (pairwise): 0.6-1.0x above 64k: NumPy keeps them.
# The kernels run these single-threaded (csrc/nn/elementwise.cpp splits a reduction only from
# 4M elements per thread: at load 7-11 a 2-thread split ran 0.13-0.9x of NumPy where one
# thread ran 1.4x), so the same rules hold at any thread count.
# ops6 re-measured the first-axis kernels after giving them register-resident column blocks
# (1 thread, CPU time, interleaved, two runs each): float32 1024x1024 (4 MB) 1.1-1.7x, float64
# 512x1024 (4 MB) 0.9-1.6x, float64 1024x1024 (8 MB) 0.74-0.97x: past 4 MB both loops wait on
# memory and NumPy's row streaming wins, so the limit is in bytes (float32 1M, float64 512k elements).
REDUCE_COLS_MAX_BYTES = 4 << 20
REDUCE_EXT_ROWS_MAX_SIZE = 1 << 22
# A first-axis reduction of fewer columns than this is mostly one long strided column walk.
REDUCE_COLS_MIN_WIDTH = 16
# maximum/minimum(x, python scalar) of a C-contiguous float32/float64 array: NumPy's ufunc call
# is ~0.65 µs up to a few hundred elements (0.42 with the scalar as a cached 0-d operand), the
# native kernel through its C entry np_fast_ext ~0.25 µs with pynn's call (it was ~1.0 µs through
# Python-side checks and pybind11, when this limit was 1024); past ~1000 elements NumPy's scalar
# broadcast loop (~1 ns/element) loses to the AVX2 kernel by 2-10x. Measured 1 thread, CPU time:
# 1 / 100 / 1000 elements 0.66 / 0.69 / 1.17 µs NumPy, 0.25 / 0.26 / 0.38 µs pynn.ops: every size.
EXT_SCALAR_MIN_SIZE = 1


def native_on() -> bool:
    """True when the native backend is active (``pynn.use_backend("numpy")`` turns every fast path off)."""
    return backend._active is backend.native_backend and backend.NATIVE_AVAILABLE


def threads() -> int:
    """pynn's kernel thread count (asked only for large arrays, where the call is noise)."""
    from pynn import _C  # noqa: PLC0415 (bound lazily: importing pynn.ops must not need _C)
    return _C.num_threads()


def any_tensor_in(seq) -> bool:
    return any(isinstance(a, Tensor) for a in seq)


def native_gemm_wins(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a @ b`` (2-D float32 ndarrays, matching inner dims) runs on the native SGEMM: the
    rules above, applied per call in C (``_C.np_fast_dot``, csrc/nn/bind_nn.cpp) with these limits."""
    from ._numeric import _native  # noqa: PLC0415 (_numeric imports this module; _native sets the limits)
    return _native().np_gemm_route(a, b)


# The limits above that the per-call C entries read (handed over once, when pynn._C is first
# bound: a plain assignment to one of them later would not reach them).
LIMIT_NAMES = ("GEMM_MIN_MACS", "GEMM_MIN_SIDE", "GEMM_MIN_N", "GEMM_MIN_K", "GEMM_NT_MAX_MACS", "GEMM_NT_MIN_SIDE",
               "GEMM_MAX_THREADS", "GEMM_SPLIT_MIN_MACS", "GEMM_COLMAJOR_MAX_N", "GEMM_COLMAJOR_MAX_K",
               "REDUCE_SMALL_MAX_SIZE", "REDUCE_COLS_MAX_BYTES", "REDUCE_EXT_ROWS_MAX_SIZE", "REDUCE_COLS_MIN_WIDTH",
               "EXT_SCALAR_MIN_SIZE")


def set_limits(**limits) -> dict:
    """Change routing limits at run time (``set_limits(GEMM_MAX_THREADS=2)``) and hand them to the
    C entries at once; returns the previous values (``set_limits(**old)`` restores them). An unknown
    name or a non-integer value (``GEMM_SPLIT_MIN_MACS`` also takes None: off) is a TypeError."""
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            raise TypeError(f"pynn.ops.dispatch.set_limits: unknown limit {name!r} (limits: {', '.join(LIMIT_NAMES)})")
        if not (type(value) is int or (value is None and name == "GEMM_SPLIT_MIN_MACS")):
            raise TypeError(f"pynn.ops.dispatch.set_limits: {name} must be an int, got {value!r}")
    g = globals()
    old = {name: g[name] for name in limits}
    g.update(limits)
    if backend.NATIVE_AVAILABLE:
        from . import _numeric  # noqa: PLC0415 (_numeric imports this module)
        _numeric._set_limits(_numeric._native())
    return old
