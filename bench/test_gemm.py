"""SGEMM benchmarks: pynn's native GEMM vs NumPy (OpenBLAS) vs PyTorch (if
installed), same shapes, same thread count, one run, so the ratios are fair on a
shared machine. GFLOPS (2*M*N*K / best time) go into ``benchmark.extra_info``;
nothing is asserted about speed.

    python -m pytest bench/test_gemm.py --benchmark-only \
        --benchmark-columns=min,median --benchmark-sort=name

Shapes are M x K x N: C (M, N) = A (M, K) @ B (K, N).
"""
import contextlib

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
_C = pytest.importorskip("pynn._C")
from pynn.backend.native import core as native  # noqa: E402

try:
    import torch
except ImportError:  # torch is optional: its columns are skipped
    torch = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

SQUARE = [(s, s, s) for s in (64, 128, 256, 512, 1024, 2048)]
MLP = [(64, 784, 128), (128, 784, 256), (32, 128, 10)]
CONV = [(32768, 576, 64), (3136, 1152, 128)]
SHAPES = SQUARE + MLP + CONV
IMPLS = ["pynn", "numpy", "torch"]


def shape_id(s):
    return "x".join(map(str, s))


@contextlib.contextmanager
def threads(n):
    """Give every library the same thread count for the duration of a benchmark."""
    old_pynn = _C.num_threads()
    _C.set_num_threads(n)
    old_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    limit = threadpool_limits(n) if threadpool_limits is not None else contextlib.nullcontext()
    try:
        with limit:
            yield
    finally:
        _C.set_num_threads(old_pynn)
        if torch is not None:
            torch.set_num_threads(old_torch)


def rounds_for(flops):
    return max(3, min(200, int(2e9 / flops)))


def matmul_fn(impl, m, k, n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.empty((m, n), np.float32)
    if impl == "pynn":
        return lambda: _C.gemm(a, b, c)
    if impl == "numpy":
        return lambda: np.matmul(a, b, out=c)
    if torch is None:
        pytest.skip("torch is not installed")
    ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
    return lambda: torch.matmul(ta, tb, out=tc)


@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_sgemm(benchmark, shape, impl, nthreads):
    m, k, n = shape
    flops = 2.0 * m * n * k
    fn = matmul_fn(impl, m, k, n)
    benchmark.group = f"sgemm {shape_id(shape)} t{nthreads}"
    with threads(nthreads):
        benchmark.pedantic(fn, rounds=rounds_for(flops), iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(shape=shape_id(shape), threads=nthreads, impl=impl,
                                gflops=flops / benchmark.stats.stats.min / 1e9)


def dense_fn(impl, m, k, n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    if impl == "pynn":  # one call: GEMM with bias + ReLU fused into the epilogue
        return lambda: native.matmul(x, w, bias=b, activation="relu")
    if impl == "numpy":  # three passes over the output
        return lambda: np.maximum(x @ w + b, 0)
    if torch is None:
        pytest.skip("torch is not installed")
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    return lambda: torch.relu(torch.addmm(tb, tx, tw))


@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", MLP + [(256, 1024, 1024)], ids=shape_id)
def test_dense_forward_fused(benchmark, shape, impl, nthreads):
    m, k, n = shape
    flops = 2.0 * m * n * k
    fn = dense_fn(impl, m, k, n)
    benchmark.group = f"dense relu(x@w+b) {shape_id(shape)} t{nthreads}"
    with threads(nthreads):
        benchmark.pedantic(fn, rounds=rounds_for(flops), iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(shape=shape_id(shape), threads=nthreads, impl=impl,
                                gflops=flops / benchmark.stats.stats.min / 1e9)
