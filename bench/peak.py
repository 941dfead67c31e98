"""The machine's multiply-add peak, measured, and GEMM 1024^3 as a fraction of it.

    python bench/peak.py [--threads 1 2] [--repeat 5]

The peak is what `pynn._C.fma_peak_gflops` measures: every thread runs 12 independent
8-lane multiply-add chains on registers, all threads at once (csrc/common/fma_peak.h). With
AVX2+FMA a core retires 2 FMAs x 8 lanes x 2 flops = 32 flops per cycle, so the peak also
gives the clock the host actually grants under an all-core vector load -- which can sit
below the clock one idle thread reads (boost, power limits, a hypervisor's share of the
cores). The GEMM ratio is against that measured peak, in the same run: a kernel cannot
exceed it, so "% of peak" says how much of the machine the kernel leaves unused.
"""
import argparse
import sys
import time

import numpy as np

import pynn
from pynn import _C

# Flops per cycle per core of the probe on the AVX2 build (2 FMA pipes x 8 lanes x 2).
AVX2_FLOPS_PER_CYCLE = 32


def fma_peak_gflops(threads, repeat=5, seconds=0.1):
    """Best of ``repeat`` probe runs of about ``seconds`` each, GFLOPS of all ``threads``."""
    iterations = 1 << 16
    while True:  # size one run to ~seconds (on one thread; more threads take as long)
        t0 = time.perf_counter()
        _C.fma_peak_gflops(1, iterations)
        if time.perf_counter() - t0 >= seconds / 4:
            break
        iterations *= 2
    iterations *= 4
    return max(_C.fma_peak_gflops(threads, iterations) for _ in range(repeat))


def effective_ghz(gflops, threads):
    """The per-core clock the probe's rate implies, or None off the AVX2 build."""
    if _C.isa() != "avx2":
        return None
    return gflops / threads / AVX2_FLOPS_PER_CYCLE


def peak_line(threads, repeat=5):
    """One sentence for a report: the measured peak at ``threads`` and its clock."""
    peak = fma_peak_gflops(threads, repeat)
    ghz = effective_ghz(peak, threads)
    clock = f", {ghz:.2f} GHz per core at {AVX2_FLOPS_PER_CYCLE} flops/cycle" if ghz else ""
    return peak, f"measured multiply-add peak at {threads} thread(s): {peak:.0f} GFLOPS ({_C.isa()}{clock})"


def best_seconds(fn, repeat, pause=0.3):
    """Best of ``repeat`` timed calls after two warm-ups; the pause first lets the previous
    contender's spinning worker threads (OpenBLAS, libgomp) sleep so they keep no core."""
    time.sleep(pause)
    fn()
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def best_gflops(fn, flops, repeat):
    return flops / best_seconds(fn, repeat) / 1e9


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    if not pynn.backend.NATIVE_AVAILABLE:
        sys.exit("bench/peak.py: the native extension is not built")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    rng = np.random.default_rng(0)
    n = 1024
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    print(f"pynn {pynn.__version__}, isa={_C.isa()}, numpy {np.__version__}; best of {args.repeat}")
    print("| threads | peak GFLOPS | GHz/core | pynn 1024^3 GFLOPS | % of peak | numpy 1024^3 GFLOPS | % of peak |")
    print("|---|---|---|---|---|---|---|")
    for threads in args.threads:
        pynn.set_num_threads(threads)
        peak = fma_peak_gflops(threads, args.repeat)
        ghz = effective_ghz(peak, threads)
        ours = best_gflops(lambda: pynn.ops.matmul(a, b), 2.0 * n ** 3, args.repeat)
        if threadpool_limits is not None:
            with threadpool_limits(threads):
                theirs = best_gflops(lambda: a @ b, 2.0 * n ** 3, args.repeat)
            theirs_cells = f"{theirs:.0f} | {100 * theirs / peak:.0f}%"
        else:
            theirs_cells = "n/a (threadpoolctl not installed) | -"
        print(f"| {threads} | {peak:.0f} | {f'{ghz:.2f}' if ghz else '-'} | {ours:.0f} | {100 * ours / peak:.0f}% | "
              f"{theirs_cells} |")


if __name__ == "__main__":
    main()
