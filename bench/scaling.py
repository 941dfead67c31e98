"""How the native kernels scale with the thread count, beside PyTorch CPU at the same count:
GFLOPS of GEMM 1024^3 and of the conv N32 32x32 64->64 3x3 forward, and the time of the
training steps of bench/train_step.py (MLP, CNN, LSTM, Transformer), at 1, 2, 4, 8 threads
(or --threads). Run it on a machine with more cores to see the splits past two; on a 2-core
machine the rows above 2 threads show what oversubscription costs (pynn vs torch, same run).

    python bench/scaling.py [--threads 1 2 4 8] [--repeat 5] [--only gemm conv steps]

The GFLOPS rows also give pynn's share of the machine's multiply-add peak measured at the
same thread count in the same run (bench/peak.py). Efficiency = speed at N threads /
(N x speed at 1 thread), over the threads the machine has
(os.cpu_count()); past that the ideal stays the all-cores speed. Each contender is timed in its
own phase after a pause (see bench/train_table.py: spinning worker threads of the previous one
would take a core). Ratios from one run; absolute times drift on a shared machine.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pynn  # noqa: E402
from train_table import make_step  # noqa: E402
from train_step import STEPS  # noqa: E402
from peak import best_seconds, fma_peak_gflops  # noqa: E402

try:
    import torch
except ImportError:  # the torch columns read n/a
    torch = None


def set_threads(n):
    pynn.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def gemm_row(rng):
    n = 1024
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    makers = {"pynn": lambda: (lambda: pynn.ops.matmul(a, b))}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        makers["torch"] = lambda: (lambda: ta @ tb)
    return "GEMM 1024^3 (GFLOPS)", 2.0 * n ** 3, makers


def conv_row(rng):
    x = rng.standard_normal((32, 32, 32, 64), dtype=np.float32)
    w = rng.standard_normal((3, 3, 64, 64), dtype=np.float32)
    makers = {"pynn": lambda: (lambda: pynn.ops.conv2d(x, w, padding="same"))}
    if torch is not None:
        tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        tw = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
        makers["torch"] = lambda: (lambda: torch.nn.functional.conv2d(tx, tw, padding=1))
    return "conv N32 32x32 64->64 3x3 fwd (GFLOPS)", 2.0 * 32 * 32 * 32 * 64 * 64 * 9, makers


def step_row(name):
    makers = {"pynn": lambda: make_step(name, "native")}
    if torch is not None:
        makers["torch"] = lambda: make_step(name, "torch")
    return f"{STEPS[name].title} (ms/step)", None, makers


def measure(rows, threads, repeat):
    cores = os.cpu_count() or 1
    print(f"{cores} cores; threads {threads}; best of {repeat}; pynn {pynn.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else ""))
    # The machine's measured multiply-add peak at each count (bench/peak.py), taken right after
    # each GFLOPS row's timings at that count and kept as the best seen: the GFLOPS rows then say
    # what share of the cores pynn reaches, apart from the clock the cores keep under an all-core
    # load (on a busy machine a peak taken minutes apart could read below the kernel itself).
    peaks = {}
    for title, flops, makers in rows:
        print(f"\n{title}")
        print(f"  {'threads':>7} " + " ".join(f"{who:>10} {'eff':>5}" for who in makers)
              + ("   pynn/torch time" if "torch" in makers else "") + ("   peak  pynn/peak" if flops else ""))
        base = {}
        for n in threads:
            set_threads(n)
            secs = {who: best_seconds(make(), repeat) for who, make in makers.items()}
            cells = []
            for who, s in secs.items():
                value = flops / s / 1e9 if flops else s * 1e3
                base.setdefault(who, s)
                ideal = base[who] / min(n, cores) * min(threads[0], cores)
                cells.append(f"{value:10.1f} {ideal / s:5.2f}")
            ratio = f"   {secs['pynn'] / secs['torch']:.2f}" if "torch" in secs else ""
            share = ""
            if flops:
                peaks[n] = max(peaks.get(n, 0.0), fma_peak_gflops(n, repeat))
                share = f"   {peaks[n]:5.0f} {100 * flops / secs['pynn'] / 1e9 / peaks[n]:5.0f}%"
            print(f"  {n:>7} " + " ".join(cells) + ratio + share)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--only", nargs="+", choices=["gemm", "conv", "steps"], default=["gemm", "conv", "steps"])
    args = p.parse_args(argv)
    if not pynn.backend.NATIVE_AVAILABLE:
        sys.exit("bench/scaling.py: the native extension is not built")
    pynn.set_backend("native")
    rng = np.random.default_rng(0)
    rows = []
    if "gemm" in args.only:
        rows.append(gemm_row(rng))
    if "conv" in args.only:
        rows.append(conv_row(rng))
    if "steps" in args.only:
        rows += [step_row(name) for name in STEPS]
    measure(rows, sorted(args.threads), args.repeat)


if __name__ == "__main__":
    main()
