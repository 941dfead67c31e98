"""pytest-benchmark: sequence kernels, native vs numpy backend vs PyTorch CPU.

    python -m pytest bench/test_sequence.py --benchmark-only
"""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn import layers
from pynn.autograd import Tensor

from conftest import torch_or_skip

N, T, C, S = 32, 100, 28, 20


def _ctc_data():
    r = np.random.default_rng(0)
    logits = r.standard_normal((N, T, C)).astype(np.float32)
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = r.integers(1, C, (N, S))
    return lp.astype(np.float32), labels, np.full(N, T), r.integers(S // 2, S + 1, N)


def test_ctc_loss_and_gradient(benchmark, bench_backend):
    benchmark.group = f"CTC loss+grad N{N} T{T} C{C}"
    lp, labels, il, ll = _ctc_data()
    benchmark(lambda: pynn.backend.current().ctc_loss(lp, labels, il, ll, 0))


def test_ctc_loss_and_gradient_torch(benchmark):
    torch = torch_or_skip()
    benchmark.group = f"CTC loss+grad N{N} T{T} C{C}"
    lp, labels, il, ll = _ctc_data()
    x = torch.from_numpy(lp).permute(1, 0, 2).contiguous()
    lab, ilt, llt = (torch.from_numpy(a) for a in (labels, il, ll))

    def step():
        xt = x.clone().requires_grad_(True)
        torch.nn.functional.ctc_loss(xt, lab, ilt, llt, reduction="sum").backward()
    benchmark(step)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_forward_backward(benchmark, bench_backend, kind):
    benchmark.group = f"{kind}(256) fwd+bwd b64 x 100 steps x 128"
    pynn.set_seed(0)
    layer = getattr(layers, kind)(256, return_sequences=True)
    x = np.random.default_rng(0).standard_normal((64, 100, 128)).astype(np.float32)
    layer.build((None, 100, 128))
    g = np.ones((64, 100, 256), np.float32)

    def step():
        layer(Tensor(x, requires_grad=True)).backward(g)
    benchmark.pedantic(step, rounds=3, iterations=1)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_forward_backward_torch(benchmark, kind):
    torch = torch_or_skip()
    benchmark.group = f"{kind}(256) fwd+bwd b64 x 100 steps x 128"
    mod = getattr(torch.nn, kind)(128, 256, batch_first=True)
    x = torch.randn(64, 100, 128)

    def step():
        out, _ = mod(x.requires_grad_(True))
        out.backward(torch.ones_like(out))
    benchmark.pedantic(step, rounds=3, iterations=1)


def test_multi_head_attention_forward_backward(benchmark, bench_backend):
    benchmark.group = "MultiHeadAttention 8 heads d512 seq128 b16 fwd+bwd"
    pynn.set_seed(0)
    mha = layers.MultiHeadAttention(num_heads=8, key_dim=64)
    x = np.random.default_rng(0).standard_normal((16, 128, 512)).astype(np.float32)
    mha(x, x)

    def step():
        xt = Tensor(x, requires_grad=True)
        mha(xt, xt).sum().backward()
    benchmark.pedantic(step, rounds=3, iterations=1)


def test_multi_head_attention_forward_backward_torch(benchmark):
    torch = torch_or_skip()
    benchmark.group = "MultiHeadAttention 8 heads d512 seq128 b16 fwd+bwd"
    mha = torch.nn.MultiheadAttention(512, 8, batch_first=True)
    x = torch.randn(16, 128, 512)

    def step():
        xt = x.clone().requires_grad_(True)
        mha(xt, xt, xt, need_weights=False)[0].sum().backward()
    benchmark.pedantic(step, rounds=3, iterations=1)
