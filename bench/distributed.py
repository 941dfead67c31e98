"""Data-parallel scaling on this machine: fit() epoch time of the same model and
global batch on 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1 thread
(MPI, pynn.distribution.DataParallel), and what the gradient allreduce costs.

    python bench/distributed.py [--model cnn|mlp|both] [--epochs 3] [--rounds 2] [--json out.json]

Each configuration runs in its own process(es) (``mpiexec -n 2 python -m mpi4py``
for two ranks) with PYNN_NUM_THREADS fixed; the configurations alternate for
``--rounds`` rounds and the best epoch of each is kept (the machine is shared:
the minimum is the least disturbed run). Figures:

- epoch: seconds per fit() epoch (digits, 1437 samples, global batch 64),
  after one warm-up epoch; cpu: CPU seconds of that epoch summed over all
  processes and threads (less sensitive to other load on the machine; spinning
  OpenMP threads and MPI's busy-polling count);
- speedup vs 1x1 and efficiency = speedup / cores used;
- allreduce/step: time inside the per-step gradient Allreduce as fit sees it
  (this includes waiting for the slower rank), and the same buffer's Allreduce
  timed alone, call by call after a barrier: minimum and median (the pure
  communication cost; the minimum is what both ranks running at once see); logs/step: the
  tiny allreduce of the metric states (once per epoch unless a callback reads
  batch logs), per call;
- idle proj.: what an idle machine would show, from CPU time that preemption
  does not inflate: 1x1 = its CPU seconds; 2 ranks = the slowest rank's CPU
  outside MPI calls + steps x the stand-alone allreduce. It ignores the two
  ranks' contention for memory bandwidth and cache; no projection exists for
  threads (their CPU seconds overlap).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
MODELS = ("cnn", "mlp")
CONFIGS = (("1 rank x 1 thread", 1, 1), ("1 rank x 2 threads", 1, 2), ("2 ranks x 1 thread", 2, 1))


# ---------------------------------------------------------------- worker (one process of one run)
def build(name):
    import pynn
    from pynn import layers
    if name == "cnn":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples"))
        from digits_cnn import build_cnn
        model, flat = build_cnn(), False
    else:
        model = pynn.Sequential([layers.Input((64,)), layers.Dense(256, activation="relu"),
                                 layers.Dense(128, activation="relu"), layers.Dense(10)])
        flat = True
    model.compile(optimizer=pynn.optimizers.Adam(1e-3),
                  loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model, flat


def worker(args):
    import numpy as np
    import pynn
    from pynn import distribution
    MPI = None
    dp = None
    if args.ranks > 1:
        from mpi4py import MPI
        dp = distribution.DataParallel()
        distribution.set_distribution(dp)
    comm = dp.comm if dp else None
    pynn.set_seed(0)
    model, flat = build(args.model)
    (x, y), _ = pynn.datasets.load_digits(flatten=flat)
    times, cpu, compute = [], [], []

    class EpochTimer(pynn.callbacks.Callback):
        """Times each epoch inside one fit() call, as a user's training runs
        (fit's start-up broadcasts happen once, before the first epoch)."""

        def on_epoch_begin(self, epoch, logs=None):
            if comm:
                comm.Barrier()   # every rank starts the epoch together
            self.t, self.c = time.perf_counter(), time.process_time()
            self.in_mpi = dp.stats["collective_cpu_seconds"] if dp else 0.0

        def on_epoch_end(self, epoch, logs=None):
            c = time.process_time() - self.c
            # This rank's CPU outside the collectives: its own work, which preemption does not inflate.
            work = c - ((dp.stats["collective_cpu_seconds"] - self.in_mpi) if dp else 0.0)
            if comm:
                comm.Barrier()   # the epoch ends when the slowest rank is done
            wall = time.perf_counter() - self.t
            if epoch == 0:   # warm-up (allocator, caches); count the timed epochs' collectives only
                if dp:
                    for k in dp.stats:
                        dp.stats[k] = type(dp.stats[k])(0)
                return
            times.append(wall)
            cpu.append(comm.allreduce(c) if comm else c)   # all processes and threads, MPI's busy-polling included
            compute.append(comm.allreduce(work, op=MPI.MAX) if comm else work)

    model.fit(x, y, batch_size=args.batch_size, epochs=1 + args.epochs, verbose=0, callbacks=[EpochTimer()])
    result = {"model": args.model, "ranks": args.ranks, "threads": pynn.get_num_threads(),
              "epoch_s": min(times), "epochs_s": times, "cpu_s": min(cpu), "compute_cpu_s": min(compute),
              "steps": -(-len(x) // args.batch_size),
              "params": model.count_params()}
    if dp:
        s = dp.stats
        result["allreduce_in_fit_ms"] = 1e3 * s["allreduce_seconds"] / max(s["allreduce_calls"], 1)
        result["logs_reduce_in_fit_ms"] = 1e3 * s["logs_reduce_seconds"] / max(s["logs_reduce_calls"], 1)
        result["allreduce_bytes"] = s["allreduce_bytes"] // max(s["allreduce_calls"], 1)
        buf = np.zeros(result["allreduce_bytes"] // 4, np.float32)
        alone = []
        for _ in range(300):   # each call timed alone: the minimum is the cost when both ranks are running
            comm.Barrier()
            t = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf)
            alone.append(time.perf_counter() - t)
        alone = np.array(alone)
        comm.Allreduce(MPI.IN_PLACE, alone, op=MPI.MAX)   # a call ends for both ranks when the later one is done
        result["allreduce_alone_ms"] = 1e3 * float(np.min(alone))
        result["allreduce_alone_median_ms"] = 1e3 * float(np.median(alone))
        # What an idle machine would show: the slowest rank's own work plus the
        # collectives at their measured stand-alone cost.
        result["projected_idle_epoch_s"] = (result["compute_cpu_s"]
                                            + result["steps"] * result["allreduce_alone_ms"] / 1e3)
    if dp is None or dp.rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------- driver
def launch(model, ranks, threads, epochs, batch_size):
    env = dict(os.environ, PYNN_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads))
    cmd = [sys.executable, HERE, "--worker", "--model", model, "--ranks", str(ranks), "--epochs", str(epochs),
           "--batch-size", str(batch_size)]
    if ranks > 1:
        from pynn.distribution import find_mpiexec
        mpiexec = find_mpiexec()
        if mpiexec is None:
            raise SystemExit("no mpiexec found: pip install mpi4py mpich")
        cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py"] + cmd[1:]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=MODELS + ("both",), default="both")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per run (after one warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds over the configurations")
    ap.add_argument("--batch-size", type=int, default=64, help="the global batch")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ranks", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    models = MODELS if args.model == "both" else (args.model,)
    best = {}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for _ in range(args.rounds):
        for model in models:
            for label, ranks, threads in CONFIGS:
                r = launch(model, ranks, threads, args.epochs, args.batch_size)
                key = (model, label)
                if key not in best or r["epoch_s"] < best[key]["epoch_s"]:
                    best[key] = r
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"fit() epoch on digits (1437 samples), global batch {args.batch_size}, Adam; "
          f"best of {args.rounds} rounds x {args.epochs} epochs; {os.cpu_count()} cores; "
          f"load average {load_before:.1f} before, {load_after:.1f} after")
    header = (f"{'model':5} {'configuration':20} {'epoch s':>8} {'cpu s':>7} {'speedup':>8} {'effic.':>7} "
              f"{'idle proj. s':>12} {'speedup':>8} "
              f"{'allreduce/step in fit':>22} {'alone min/med ms':>16} {'logs/step':>10} {'grad bytes':>11}")
    print(header)
    print("-" * len(header))
    rows = []
    for model in models:
        base = best[(model, CONFIGS[0][0])]["epoch_s"]
        for label, ranks, threads in CONFIGS:
            r = best[(model, label)]
            speedup = base / r["epoch_s"]
            eff = speedup / (ranks * threads)
            share = r["allreduce_in_fit_ms"] * r["steps"] / 1e3 / r["epoch_s"] if ranks > 1 else 0.0
            ar = (f"{r['allreduce_in_fit_ms']:.3f} ms ({100 * share:.0f}%)"
                  if ranks > 1 else "-")
            alone = (f"{r['allreduce_alone_ms']:.3f}/{r['allreduce_alone_median_ms']:.3f}" if ranks > 1 else "-")
            logs = f"{r['logs_reduce_in_fit_ms']:.3f} ms" if ranks > 1 else "-"
            nbytes = f"{r['allreduce_bytes']:,}" if ranks > 1 else "-"
            base_cpu = best[(model, CONFIGS[0][0])]["compute_cpu_s"]
            proj = r["compute_cpu_s"] if ranks * threads == 1 else r.get("projected_idle_epoch_s")
            proj_s = f"{proj:12.3f} {base_cpu / proj:8.2f}" if proj else f"{'-':>12} {'-':>8}"
            print(f"{model:5} {label:20} {r['epoch_s']:8.3f} {r['cpu_s']:7.3f} {speedup:8.2f} {eff:7.2f} {proj_s} "
                  f"{ar:>22} {alone:>16} "
                  f"{logs:>10} {nbytes:>11}")
            rows.append({**r, "configuration": label, "speedup": speedup, "efficiency": eff,
                         "projected_speedup": base_cpu / proj if proj else None})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
