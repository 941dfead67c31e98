"""pytest-benchmark: NHWC convolution and pooling, native vs numpy backend vs PyTorch CPU.

    python -m pytest bench/test_conv.py --benchmark-only --benchmark-group-by=group
"""
import numpy as np
import pytest

import pynn

from conftest import torch_or_skip
from conv_table import CONVS, POOLS, conv_data, conv_flops, pynn_conv, pynn_pool, torch_conv, torch_pool

CONV_IDS = [c[0].replace(" ", "_").replace("→", "to") for c in CONVS]
POOL_IDS = [p[0].replace(" ", "_") for p in POOLS]


@pytest.mark.parametrize("train", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("case", CONVS, ids=CONV_IDS)
def test_conv2d(benchmark, bench_backend, case, train):
    label, n, h, w, cin, cout, k, s, p = case
    benchmark.group = f"conv {label} {'fwd+bwd' if train else 'fwd'}"
    benchmark.extra_info.update(backend=bench_backend,
                                gflop=conv_flops(n, h, w, cin, cout, k, s, p) * (3 if train else 1) / 1e9)
    x, wt, b = conv_data(n, h, w, cin, cout, k)
    benchmark(pynn_conv(bench_backend, x, wt, b, s, p, train))


@pytest.mark.parametrize("train", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("case", CONVS, ids=CONV_IDS)
def test_conv2d_torch(benchmark, case, train):
    torch = torch_or_skip()
    label, n, h, w, cin, cout, k, s, p = case
    benchmark.group = f"conv {label} {'fwd+bwd' if train else 'fwd'}"
    benchmark.extra_info["backend"] = f"torch {torch.__version__} ({pynn.get_num_threads()} threads)"
    x, wt, b = conv_data(n, h, w, cin, cout, k)
    benchmark(torch_conv(torch, x, wt, b, s, p, train))


@pytest.mark.parametrize("train", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("case", POOLS, ids=POOL_IDS)
def test_pool(benchmark, bench_backend, case, train):
    label, n, h, w, c, kind = case
    benchmark.group = f"{label} {'fwd+bwd' if train else 'fwd'}"
    benchmark.extra_info["backend"] = bench_backend
    x = np.random.default_rng(0).standard_normal((n, h, w, c)).astype(np.float32)
    benchmark(pynn_pool(bench_backend, x, kind, train))


@pytest.mark.parametrize("train", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("case", POOLS, ids=POOL_IDS)
def test_pool_torch(benchmark, case, train):
    torch = torch_or_skip()
    label, n, h, w, c, kind = case
    benchmark.group = f"{label} {'fwd+bwd' if train else 'fwd'}"
    benchmark.extra_info["backend"] = f"torch {torch.__version__}"
    x = np.random.default_rng(0).standard_normal((n, h, w, c)).astype(np.float32)
    benchmark(torch_pool(torch, x, kind, train))
