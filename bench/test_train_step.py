"""pytest-benchmark: one MLP training step, native vs numpy backend vs PyTorch CPU.

    python -m pytest bench/test_train_step.py --benchmark-only
"""
import pynn

from conftest import torch_or_skip
from train_step import data, pynn_step, torch_step


def test_mlp_train_step(benchmark, bench_backend):
    benchmark.group = "train step MLP 784-256-128-10 b128 Adam"
    x, y = data()
    benchmark.extra_info["backend"] = bench_backend
    benchmark(pynn_step(x, y))


def test_mlp_train_step_torch(benchmark):
    torch = torch_or_skip()
    benchmark.group = "train step MLP 784-256-128-10 b128 Adam"
    benchmark.extra_info["backend"] = f"torch {torch.__version__} ({pynn.get_num_threads()} threads)"
    x, y = data()
    benchmark(torch_step(x, y))
