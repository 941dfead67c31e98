"""Shared helpers for the benchmarks: every suite runs the same work on each
backend (and on PyTorch CPU when importable) so ratios come from one run."""
import numpy as np
import pytest

import pynn
from pynn import backend

BACKENDS = ["numpy"] + (["native"] if backend.NATIVE_AVAILABLE else [])


@pytest.fixture(params=BACKENDS)
def bench_backend(request):
    with pynn.use_backend(request.param):
        yield request.param


def torch_or_skip():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(pynn.get_num_threads())
    return torch


def rng():
    return np.random.default_rng(0)
