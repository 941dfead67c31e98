"""DepthwiseConv2D's tap sum against the block-diagonal dense conv it replaced, one run.

    python bench/depthwise_conv.py [--repeat 5]

Forward + backward of a 3x3 depthwise convolution ("same", depth_multiplier 1) on the
active backend: ``taps`` is ``layers.conv_more.depthwise_conv2d`` (a sum over the kernel
taps of strided input views times the tap's (C, m) weights: depthwise FLOPs); ``block``
is one ``functional.conv2d`` with the (kh, kw, C, C·m) block-diagonal kernel (C times
the FLOPs, but one GEMM). Ratios are within this run only; nothing is asserted.
"""
import argparse
import time

import numpy as np

import pynn
from pynn import functional as F
from pynn.layers.conv_more import depthwise_conv2d

SHAPES = [(8, 32, 32), (8, 16, 128), (4, 56, 64)]   # (N, H=W, C)


def block_diagonal(x, k):
    kh, kw, c, m = k.shape
    mask = np.eye(c, dtype=np.float32).reshape(1, 1, c, c, 1)
    full = F.reshape(F.reshape(k, (kh, kw, 1, c, m)) * mask, (kh, kw, c, c * m))
    return F.conv2d(x, full, None, padding="same")


def seconds(fn, repeat):
    fn().sum().backward()   # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        fn().sum().backward()
    return (time.perf_counter() - t) / repeat


def main(repeat=5):
    rng = np.random.default_rng(0)
    rows = []
    for n, h, c in SHAPES:
        x = pynn.Tensor(rng.standard_normal((n, h, h, c)).astype(np.float32), requires_grad=True)
        k = pynn.Tensor(rng.standard_normal((3, 3, c, 1)).astype(np.float32), requires_grad=True)
        taps = seconds(lambda: depthwise_conv2d(x, k, (1, 1), "same", (1, 1)), repeat)
        block = seconds(lambda: block_diagonal(x, k), repeat)
        rows.append((n, h, c, taps, block))
        print(f"N={n} H=W={h} C={c}: taps {taps * 1e3:.1f} ms, block-diagonal conv {block * 1e3:.1f} ms "
              f"(forward+backward), block/taps {block / taps:.2f}")
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions per shape")
    main(p.parse_args().repeat)
