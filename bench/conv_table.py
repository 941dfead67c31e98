"""Convolution and pooling: pynn native vs the numpy backend vs PyTorch CPU.

Prints a markdown table (milliseconds, GFLOPS for the convolutions, ratios) for
README; every number comes from one run, and the contenders are timed
round-robin, so compare ratios, not absolute times. PYNN_NUM_THREADS sets the
threads of both pynn and torch.
Layout conversion (NHWC -> NCHW for torch) happens outside the timed region.

    python bench/conv_table.py [--repeat 7] [--no-numpy] [--cpu-time] [--best]

--cpu-time runs everything on one thread and times process CPU time: ratios that
survive a machine shared with other busy processes (wall-clock 2-thread timings
there mostly measure the other processes). --best reports the fastest run instead
of the median.
"""
import argparse
import time

import numpy as np

import pynn
import pynn.functional as F
from pynn.autograd import Tensor

# (label, N, H, W, C_in, C_out, k, stride, padding); "same" for torch = symmetric k//2
CONVS = [
    ("N32 32x32 64→64 3x3 same", 32, 32, 32, 64, 64, 3, 1, "same"),
    ("N64 28x28 1→32 3x3 valid", 64, 28, 28, 1, 32, 3, 1, "valid"),
    # the second conv of bench/train_step.py's CNN (after a 2x2 pool): its gradients dominate that step
    ("N64 13x13 32→64 3x3 valid", 64, 13, 13, 32, 64, 3, 1, "valid"),
    ("N32 56x56 64→128 3x3 s2 same", 32, 56, 56, 64, 128, 3, 2, "same"),
    ("N32 28x28 256→64 1x1", 32, 28, 28, 256, 64, 1, 1, "valid"),
]
# (label, N, H, W, C, kind)
POOLS = [
    ("2x2 max pool N32 32x32x64", 32, 32, 32, 64, "max"),
    ("global avg pool N32 32x32x64", 32, 32, 32, 64, "gap"),
]


def conv_data(n, h, w, cin, cout, k, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = (r.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin)).astype(np.float32)
    b = r.standard_normal(cout).astype(np.float32)
    return x, wt, b


def conv_flops(n, h, w, cin, cout, k, stride, padding):
    oh = -(-h // stride) if padding == "same" else (h - k) // stride + 1
    ow = -(-w // stride) if padding == "same" else (w - k) // stride + 1
    return 2.0 * n * oh * ow * k * k * cin * cout


def pynn_conv(backend, x, w, b, stride, padding, train):
    """A callable: forward (ndarrays) or forward+backward (Tensors, all three grads)."""
    def fwd():
        with pynn.use_backend(backend):
            return pynn.ops.conv2d(x, w, b, strides=stride, padding=padding)

    def fwd_bwd():
        with pynn.use_backend(backend):
            ts = [Tensor(a, requires_grad=True) for a in (x, w, b)]
            y = F.conv2d(*ts, strides=stride, padding=padding)
            y.backward(dy_cache.setdefault(y.shape, np.ones(y.shape, np.float32)))
    dy_cache = {}
    return fwd_bwd if train else fwd


def torch_conv(torch, x, w, b, stride, padding, train):
    k = w.shape[0]
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    bt = torch.from_numpy(b)
    pad = k // 2 if padding == "same" else 0
    if not train:
        def fwd():
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
        return fwd
    xt.requires_grad_(True), wt.requires_grad_(True), bt.requires_grad_(True)
    dy = {}

    def fwd_bwd():
        xt.grad = wt.grad = bt.grad = None
        y = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
        y.backward(dy.setdefault(tuple(y.shape), torch.ones_like(y)))
    return fwd_bwd


def pynn_pool(backend, x, kind, train):
    def run():
        with pynn.use_backend(backend):
            if not train:
                return pynn.ops.max_pool2d(x, 2) if kind == "max" else pynn.backend.current().global_avg_pool2d(x)
            t = Tensor(x, requires_grad=True)
            y = F.max_pool2d(t, 2) if kind == "max" else F.global_average_pool2d(t)
            y.backward(np.ones(y.shape, np.float32))
    return run


def torch_pool(torch, x, kind, train):
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    xt = xt.contiguous(memory_format=torch.channels_last)  # torch's own NHWC pooling path

    def op(t):
        return torch.nn.functional.max_pool2d(t, 2) if kind == "max" else t.mean(dim=(2, 3))
    if not train:
        def fwd():
            with torch.no_grad():
                return op(xt)
        return fwd
    xt.requires_grad_(True)

    def fwd_bwd():
        xt.grad = None
        y = op(xt)
        y.backward(torch.ones_like(y))
    return fwd_bwd


CLOCK = time.perf_counter
STAT = np.median


def interleaved_ms(fns, repeat):
    """Median ms of each callable, timed round-robin (A B C A B C ...) so that load
    from other processes on a shared machine hits every contender alike."""
    for fn in fns:
        fn()  # warm-up: allocations, thread pools
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t0 = CLOCK()
            fn()
            ts.append(CLOCK() - t0)
    return [1e3 * float(STAT(ts)) for ts in times]


def _measure(fns, repeat):
    names = [k for k, f in fns.items() if f is not None]
    ms = dict(zip(names, interleaved_ms([fns[k] for k in names], repeat)))
    return ms.get("native"), ms.get("numpy"), ms.get("torch")


def main(repeat=7, with_numpy=True):
    try:
        import torch
        torch.set_num_threads(pynn.get_num_threads())
    except ImportError:
        torch = None
    threads = pynn.get_num_threads()
    print(f"pynn native ({threads} threads) vs numpy backend vs PyTorch "
          f"{torch.__version__ if torch else '(not installed)'} CPU ({threads} threads); "
          f"{'best' if STAT is np.min else 'median'} {'process CPU time' if CLOCK is time.process_time else 'wall time'} of {repeat} "
          f"round-robin runs ({3 * repeat} for pooling).\n")
    print("| case | pass | native ms | native GFLOPS | numpy ms | torch ms | torch GFLOPS | native vs numpy | native vs torch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for label, n, h, w, cin, cout, k, s, p in CONVS:
        x, wt, b = conv_data(n, h, w, cin, cout, k)
        flops = conv_flops(n, h, w, cin, cout, k, s, p)
        for train in (False, True):
            f = flops * (3 if train else 1)
            nat, num, tor = _measure({
                "native": pynn_conv("native", x, wt, b, s, p, train),
                "numpy": pynn_conv("numpy", x, wt, b, s, p, train) if with_numpy else None,
                "torch": torch_conv(torch, x, wt, b, s, p, train) if torch else None}, repeat)
            rows.append((label, "fwd+bwd" if train else "fwd", nat, f / nat / 1e6, num, tor,
                         f / tor / 1e6 if tor else None))
    for label, n, h, w, c, kind in POOLS:
        x = np.random.default_rng(0).standard_normal((n, h, w, c)).astype(np.float32)
        for train in (False, True):
            nat, num, tor = _measure({
                "native": pynn_pool("native", x, kind, train),
                "numpy": pynn_pool("numpy", x, kind, train) if with_numpy else None,
                "torch": torch_pool(torch, x, kind, train) if torch else None}, repeat * 3)
            rows.append((label, "fwd+bwd" if train else "fwd", nat, None, num, tor, None))
    fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
    for label, pas, nat, gf, num, tor, tgf in rows:
        print(f"| {label} | {pas} | {nat:.2f} | {fmt(gf, '.0f')} | {fmt(num, '.2f')} | {fmt(tor, '.2f')} | "
              f"{fmt(tgf, '.0f')} | {fmt(num and num / nat, '.1f')}× | {fmt(tor and tor / nat, '.2f')}× |")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-numpy", action="store_true", help="skip the (slow) numpy backend")
    ap.add_argument("--cpu-time", action="store_true", help="1 thread, process CPU time (busy machines)")
    ap.add_argument("--best", action="store_true", help="report the fastest run, not the median")
    args = ap.parse_args()
    if args.cpu_time:
        pynn.set_num_threads(1)
        CLOCK = time.process_time
    if args.best:
        STAT = np.min
    main(args.repeat, not args.no_numpy)
