"""Optimizer step benchmark: pynn native vs pynn numpy backend vs torch.optim.

    python bench/optim_table.py            # prints a markdown table for the README

Each row is one optimizer step over float32 params (1M and 10M in one tensor,
100 tensors of 10k) through ``opt.apply_gradients`` (so Python overhead
counts), median of several steps. Effective GB/s = bytes each update must
read+write / time: Adam 28 B/param (read p, g, m, v; write p, m, v), SGD with
momentum and RMSprop 20 B/param (read p, g, s; write p, s).
Also used by bench/test_optim.py (pytest-benchmark).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

BYTES_PER_PARAM = {"adam": 28, "sgd_momentum": 20, "rmsprop": 20}
LAYOUTS = {"1x1M": [1_000_000], "1x10M": [10_000_000], "100x10k": [10_000] * 100}
IMPLS = ["pynn-native", "pynn-numpy", "torch-foreach", "torch-fused"]


class _Var:
    def __init__(self, data):
        self.data, self.name, self.constraint = data, "w", None


def make_step(opt_name, layout, impl):
    """A zero-argument callable doing one optimizer step, or None if unavailable."""
    sizes = LAYOUTS[layout]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n, dtype=np.float32) for n in sizes]
    grads = [rng.standard_normal(n, dtype=np.float32) * 1e-2 for n in sizes]
    if impl.startswith("pynn"):
        import pynn.backend as B
        from pynn import optimizers
        backend = impl.split("-")[1]
        if backend == "native" and not B.NATIVE_AVAILABLE:
            return None
        opt = {"adam": lambda: optimizers.Adam(1e-3),
               "sgd_momentum": lambda: optimizers.SGD(1e-3, momentum=0.9),
               "rmsprop": lambda: optimizers.RMSprop(1e-3)}[opt_name]()
        vs = [_Var(p) for p in params]
        pairs = list(zip(grads, vs))
        opt.build(vs)

        def step():
            with B.use_backend(backend):
                opt.apply_gradients(pairs)
        return step
    try:
        import torch
    except ImportError:
        return None
    ps = [torch.from_numpy(p) for p in params]
    for p, g in zip(ps, grads):
        p.requires_grad_(True)
        p.grad = torch.from_numpy(g)
    kw = {"foreach": True} if impl == "torch-foreach" else {"fused": True}
    try:
        opt = {"adam": lambda: torch.optim.Adam(ps, lr=1e-3, **kw),
               "sgd_momentum": lambda: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, **kw),
               "rmsprop": lambda: torch.optim.RMSprop(ps, lr=1e-3, **kw)}[opt_name]()
        opt.step()
    except (RuntimeError, TypeError, ValueError):
        return None  # e.g. no fused CPU implementation of this optimizer
    return opt.step


def total_params(layout):
    return sum(LAYOUTS[layout])


def time_step(step, min_time=0.3, max_reps=50):
    step()  # warm-up (builds state, first touch)
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < max_reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def set_threads(n):
    """Same thread count for pynn's kernels and torch (0 = leave the defaults)."""
    if not n:
        return
    try:
        from pynn import _C
        _C.set_num_threads(n)
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="threads for pynn and torch (default: library defaults)")
    ap.add_argument("--optimizers", default="adam,sgd_momentum,rmsprop")
    args = ap.parse_args()
    set_threads(args.threads)
    rows = []
    for opt_name in args.optimizers.split(","):
        for layout in LAYOUTS:
            res = {}
            for impl in IMPLS:
                step = make_step(opt_name, layout, impl)
                res[impl] = None if step is None else time_step(step)
                del step
            rows.append((opt_name, layout, res))
    gb = lambda o, l, t: BYTES_PER_PARAM[o] * total_params(l) / t / 1e9  # noqa: E731
    print(f"threads: {args.threads or 'default'}; median ms per step (effective GB/s)\n")
    print("| optimizer | params | " + " | ".join(f"{i} ms (GB/s)" for i in IMPLS) +
          " | native vs numpy | native vs torch-fused |")
    print("|" + "---|" * (len(IMPLS) + 4))
    for o, l, res in rows:
        cells = ["n/a" if res[i] is None else f"{res[i] * 1e3:.2f} ({gb(o, l, res[i]):.1f})" for i in IMPLS]
        nat = res["pynn-native"]
        r1 = f"{res['pynn-numpy'] / nat:.1f}x" if nat and res["pynn-numpy"] else "n/a"
        r2 = f"{res['torch-fused'] / nat:.2f}x" if nat and res["torch-fused"] else "n/a"
        print(f"| {o} | {l} | " + " | ".join(cells) + f" | {r1} | {r2} |")


if __name__ == "__main__":
    main()
