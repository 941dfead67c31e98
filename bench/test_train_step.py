"""pytest-benchmark: one full training step (forward, loss, backward, Adam) of
each model in bench/train_step.py (MLP, CNN, LSTM, Transformer block) on the
native backend, the numpy backend and PyTorch CPU at the same thread count.

    python -m pytest bench/test_train_step.py --benchmark-only --benchmark-group-by=group

bench/train_table.py prints the same comparison as one table with peak memory.
"""
import pytest

import pynn

from conftest import torch_or_skip
from train_step import STEPS


@pytest.mark.parametrize("name", list(STEPS))
def test_train_step(benchmark, bench_backend, name):
    s = STEPS[name]
    benchmark.group = f"train step {s.title} Adam"
    benchmark.extra_info["backend"] = bench_backend
    step = s.pynn(*s.data())
    benchmark(step)


@pytest.mark.parametrize("name", list(STEPS))
def test_train_step_torch(benchmark, name):
    torch = torch_or_skip()
    s = STEPS[name]
    benchmark.group = f"train step {s.title} Adam"
    benchmark.extra_info["backend"] = f"torch {torch.__version__} ({pynn.get_num_threads()} threads)"
    benchmark(s.torch(*s.data()))
