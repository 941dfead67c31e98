"""pytest-benchmark: batch norm and layer norm forward+backward, native vs numpy vs torch.

    python -m pytest bench/test_norm.py --benchmark-only
"""
import numpy as np
import pytest

import pynn
from pynn.autograd import Tensor

from conftest import torch_or_skip

SHAPES = {"batch_norm": (32, 32, 32, 64), "layer_norm": (32, 128, 256)}


def _inputs(shape):
    r = np.random.default_rng(0)
    c = shape[-1]
    return (r.standard_normal(shape).astype(np.float32), r.standard_normal(c).astype(np.float32),
            r.standard_normal(c).astype(np.float32), r.standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("op", ["batch_norm", "layer_norm"])
def test_norm_forward_backward(benchmark, bench_backend, op):
    shape = SHAPES[op]
    benchmark.group = f"{op} fwd+bwd {shape}"
    x, g, b, dy = _inputs(shape)
    fn = getattr(pynn.functional, op)
    gt, bt = Tensor(g, requires_grad=True), Tensor(b, requires_grad=True)

    def step():
        xt = Tensor(x, requires_grad=True)
        fn(xt, gt, bt).backward(dy)
    benchmark(step)
    benchmark.extra_info["GB/s"] = 4 * x.nbytes / benchmark.stats["min"] / 1e9  # x, dy read; y, dx written


@pytest.mark.parametrize("op", ["batch_norm", "layer_norm"])
def test_norm_forward_backward_torch(benchmark, op):
    torch = torch_or_skip()
    shape = SHAPES[op]
    benchmark.group = f"{op} fwd+bwd {shape}"
    x, g, b, dy = (torch.from_numpy(a) for a in _inputs(shape))
    g.requires_grad_(True)
    b.requires_grad_(True)

    def step():
        xt = x.clone().requires_grad_(True)
        if op == "batch_norm":
            y = torch.nn.functional.batch_norm(xt.reshape(-1, shape[-1]), None, None, g, b, training=True, eps=1e-3)
        else:
            y = torch.nn.functional.layer_norm(xt, (shape[-1],), g, b, eps=1e-3)
        y.backward(dy.reshape(y.shape))
    benchmark(step)
