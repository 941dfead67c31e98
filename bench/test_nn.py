"""Benchmarks of the nn kernels: native vs numpy backend (vs torch CPU when it
imports), same inputs, one run, so ratios are meaningful on a shared machine.
Each records the effective bandwidth (bytes read + written / time) in
extra_info["GB/s"]. Reported, never asserted.

    python -m pytest bench/test_nn.py --benchmark-columns=median,ops \
        --benchmark-group-by=group -q
    PYNN_NUM_THREADS=1 ...   # one thread for native and torch: steadier on a loaded machine
"""
import os

import numpy as np
import pytest

from pynn.backend import numpy as npb

try:
    from pynn.backend import native as nb
except ImportError:
    nb = None
try:
    import torch
except Exception:  # torch is optional
    torch = None

if torch is not None and os.environ.get("PYNN_NUM_THREADS"):
    # Same team size for both native libraries when the run pins it.
    torch.set_num_threads(int(os.environ["PYNN_NUM_THREADS"]))

BACKENDS = ["numpy", "native", "torch"]
N1M = 1 << 20


def _skip(backend):
    if backend == "native" and nb is None:
        pytest.skip("pynn._C not built")
    if backend == "torch" and torch is None:
        pytest.skip("torch not importable")


def _gbs(benchmark, nbytes):
    benchmark.extra_info["GB/s"] = round(nbytes / benchmark.stats.stats.median / 1e9, 2)


def _run(benchmark, fn, nbytes):
    benchmark(fn)
    _gbs(benchmark, nbytes)


ELEM = {
    # name -> (numpy/native kernel call, torch call, arrays read + written)
    "relu": (lambda B, x, y, dy: B.relu(x), lambda x, y, dy: torch.relu(x), 2),
    "relu_grad": (lambda B, x, y, dy: B.relu_grad(x, y, dy),
                  lambda x, y, dy: torch.ops.aten.threshold_backward(dy, x, 0.0), 3),
    "sigmoid": (lambda B, x, y, dy: B.sigmoid(x), lambda x, y, dy: torch.sigmoid(x), 2),
    "gelu": (lambda B, x, y, dy: B.gelu(x), lambda x, y, dy: torch.nn.functional.gelu(x), 2),
    "gelu_grad": (lambda B, x, y, dy: B.gelu_grad(x, y, dy),
                  lambda x, y, dy: torch.ops.aten.gelu_backward(dy, x), 3),
    "tanh": (lambda B, x, y, dy: B.tanh(x), lambda x, y, dy: torch.tanh(x), 2),
    "elu": (lambda B, x, y, dy: B.elu(x), lambda x, y, dy: torch.nn.functional.elu(x), 2),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", list(ELEM))
def test_elementwise_1M(benchmark, op, backend):
    _skip(backend)
    benchmark.group = f"{op} 1M"
    rng = np.random.default_rng(0)
    x = rng.standard_normal(N1M).astype(np.float32)
    dy = rng.standard_normal(N1M).astype(np.float32)
    call, tcall, arrays = ELEM[op]
    y = getattr(npb, op.replace("_grad", ""))(x)
    if backend == "torch":
        tx, ty, tdy = map(torch.from_numpy, (x, y, dy))
        _run(benchmark, lambda: tcall(tx, ty, tdy), arrays * 4 * N1M)
    else:
        B = nb if backend == "native" else npb
        _run(benchmark, lambda: call(B, x, y, dy), arrays * 4 * N1M)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(4096, 1000), (128, 10)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_softmax(benchmark, shape, backend):
    _skip(backend)
    benchmark.group = f"softmax {shape}"
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    nbytes = 2 * x.nbytes
    if backend == "torch":
        tx = torch.from_numpy(x)
        _run(benchmark, lambda: torch.softmax(tx, -1), nbytes)
    else:
        B = nb if backend == "native" else npb
        _run(benchmark, lambda: B.softmax(x), nbytes)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(4096, 1000), (128, 10)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_softmax_cross_entropy(benchmark, shape, backend):
    """Loss and dlogits (torch: loss forward + backward, the same work)."""
    _skip(backend)
    benchmark.group = f"softmax_cross_entropy {shape}"
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    labels = rng.integers(0, shape[1], size=shape[0])
    nbytes = 2 * x.nbytes
    if backend == "torch":
        tl = torch.from_numpy(labels)

        def step():
            tx = torch.from_numpy(x).requires_grad_()
            torch.nn.functional.cross_entropy(tx, tl, reduction="sum").backward()
            return tx.grad
        _run(benchmark, step, nbytes)
    else:
        B = nb if backend == "native" else npb
        _run(benchmark, lambda: B.softmax_cross_entropy(x, labels), nbytes)
