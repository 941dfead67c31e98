"""Print the SGEMM comparison table for the README (markdown).

    python bench/gemm_table.py [--repeat 7] [--threads 1 2] [--quick] [--cpu-time]
    python bench/gemm_table.py --lecture [--cpu-time | --threads 1 2]

For every shape (M x K x N) and thread count it times pynn's native GEMM,
NumPy (OpenBLAS) and PyTorch (if installed) with the same thread count, best of
--repeat runs (each run long enough to time), and prints GFLOPS = 2*M*N*K/time
and the pynn/NumPy ratio. All numbers in one table come from one run.

--lecture prints instead the small products of a lecture-style NumPy MLP (issue #19) and
their backprop transposes (dW = X^T dY, dX = dY W^T), each as ``np.dot`` and as pynn's
leanest entry ``_C.mm`` (both allocating their result, as ``np.dot`` does), one thread,
and the ratio: what ``pynn.ops`` needs to route ``dot``/``matmul`` by shape. One thread
unless --threads is given (NumPy's OpenBLAS limited to the same count).

--cpu-time (single thread only) times with the calling thread's CPU clock
instead of the wall clock: on a machine shared with other jobs it measures the
cycles each library actually got, so the ratios stay meaningful under load.
"""
import argparse
import time

import numpy as np

from pynn import _C

try:
    import torch
except ImportError:
    torch = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

SHAPES = [(64, 64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
          (2048, 2048, 2048), (64, 784, 128), (128, 784, 256), (32, 128, 10),
          (32768, 576, 64), (3136, 1152, 128)]


CLOCK = time.perf_counter


def best_time(fn, repeat, min_time=0.05):
    # Let the previous library's worker threads go idle first: OpenBLAS's and
    # libgomp's pools keep spinning for a while after a call, and on 2 cores a
    # spinning thread of one library takes a core from the next one's threads
    # (measured on the shared machine, 64x784x128 at 2 threads: 20 pynn calls
    # right after 200 NumPy calls took 1.4-4 ms each, after a 0.3 s pause 0.15 ms).
    time.sleep(0.3)
    fn()  # warm-up: page in buffers, spin up thread pools
    inner, elapsed = 1, 0.0
    while True:  # calls per timing so that one timing lasts >= min_time
        t0 = CLOCK()
        for _ in range(inner):
            fn()
        elapsed = CLOCK() - t0
        if elapsed >= min_time:
            break
        inner *= 2
    best = elapsed / inner
    for _ in range(repeat - 1):
        t0 = CLOCK()
        for _ in range(inner):
            fn()
        best = min(best, (CLOCK() - t0) / inner)
    return best


# (batch, fan_in, fan_out) of the lecture MLPs: hidden 64/128/256 at batch 32, 128 and 256.
LECTURE_LAYERS = [(32, 64, 128), (32, 128, 10), (32, 64, 64), (128, 128, 10), (128, 256, 128), (256, 64, 512),
                  (256, 512, 10), (128, 784, 256)]


def best_time_discarding(fn, repeat, min_time=0.02):
    """best_time without the pause, for microsecond calls (results dropped at once, so the
    allocator reuses one block, as in a training loop)."""
    def timed(inner):
        t0 = CLOCK()
        for _ in range(inner):
            fn()
        return CLOCK() - t0
    fn()
    inner = 1
    while timed(inner) < min_time:
        inner *= 2
    return min(timed(inner) / inner for _ in range(repeat))


def lecture_table(repeat, threads):
    print("| product | form | threads | np.dot us | pynn _C.mm us | pynn/np.dot speed |")
    print("|---|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for batch, fan_in, fan_out in LECTURE_LAYERS:
        x = rng.standard_normal((batch, fan_in), dtype=np.float32)
        w = rng.standard_normal((fan_in, fan_out), dtype=np.float32)
        dy = rng.standard_normal((batch, fan_out), dtype=np.float32)
        for form, a, b in (("X @ W", x, w), ("X^T @ dY", x.T, dy), ("dY @ W^T", dy, w.T)):
            for t in threads:   # both libraries at the same count, np.dot first then pynn
                _C.set_num_threads(t)
                pause = (lambda: time.sleep(0.3)) if t > 1 else (lambda: None)  # see best_time
                pause()
                if threadpool_limits is not None:
                    with threadpool_limits(t):
                        t_np = best_time_discarding(lambda: np.dot(a, b), repeat)
                else:
                    t_np = best_time_discarding(lambda: np.dot(a, b), repeat)
                pause()
                t_pynn = best_time_discarding(lambda: _C.mm(a, b), repeat)
                m, k = a.shape
                print(f"| {m}x{k}x{b.shape[1]} | {form} | {t} | {t_np * 1e6:.2f} | {t_pynn * 1e6:.2f} "
                      f"| {t_np / t_pynn:.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 2 (--lecture: 1)")
    ap.add_argument("--quick", action="store_true", help="skip 2048^3")
    ap.add_argument("--cpu-time", action="store_true", help="time with the thread CPU clock (1 thread)")
    ap.add_argument("--lecture", action="store_true", help="the lecture-MLP products vs np.dot, 1 thread")
    args = ap.parse_args()
    args.threads_default = args.threads is None
    if args.threads is None:
        args.threads = [1, 2]
    global CLOCK
    if args.cpu_time:
        if args.threads != [1] and not args.lecture:
            ap.error("--cpu-time measures one thread: use it with --threads 1")
        CLOCK = time.thread_time
    if args.lecture:
        threads = [1] if args.threads_default else args.threads
        if args.cpu_time and threads != [1]:
            ap.error("--cpu-time measures one thread: use it with --threads 1")
        print(f"pynn ISA {_C.isa()}, numpy {np.__version__}, threads {threads}, "
              f"clock: {'thread CPU time' if args.cpu_time else 'wall'}, best of {args.repeat}\n")
        lecture_table(max(args.repeat, 15), threads)
        return

    print(f"pynn ISA {_C.isa()}, numpy {np.__version__}, torch {torch.__version__ if torch else 'n/a'}, "
          f"clock: {'thread CPU time' if args.cpu_time else 'wall'}")
    print()
    print("| shape (MxKxN) | threads | pynn GFLOPS | numpy GFLOPS | torch GFLOPS | pynn/numpy |")
    print("|---|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        if args.quick and m * k * n >= 2048 ** 3:
            continue
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.empty((m, n), np.float32)
        flops = 2.0 * m * n * k
        for t in args.threads:
            _C.set_num_threads(t)
            if threadpool_limits is not None:
                with threadpool_limits(t):
                    t_np = best_time(lambda: np.matmul(a, b, out=c), args.repeat)
            else:
                t_np = best_time(lambda: np.matmul(a, b, out=c), args.repeat)
            t_pynn = best_time(lambda: _C.gemm(a, b, c), args.repeat)
            torch_col = "n/a"
            if torch is not None:
                torch.set_num_threads(t)
                ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
                torch_col = f"{flops / best_time(lambda: torch.matmul(ta, tb, out=tc), args.repeat) / 1e9:.1f}"
            g_pynn, g_np = flops / t_pynn / 1e9, flops / t_np / 1e9
            print(f"| {m}x{k}x{n} | {t} | {g_pynn:.1f} | {g_np:.1f} | {torch_col} | {g_pynn / g_np:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
