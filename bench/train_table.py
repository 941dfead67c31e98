"""Issue #9's table: one full training step of each model in bench/train_step.py
(MLP, CNN, LSTM, Transformer block) on pynn's native backend, its numpy backend
and PyTorch CPU, plus a whole fit() epoch on scikit-learn's digits; time and
peak memory side by side, from one run at one thread count.

    python bench/train_table.py [--repeat 10] [--threads 2] [--json out.json]
    python bench/plot.py out.json docs/train_step.png      # the README's bar chart

Time: the best of ``--repeat`` steps after two warm-up steps, each contender
in its own phase after a 0.3 s pause (so the previous one's spinning BLAS/OpenMP
threads are asleep), two passes over the contenders. Ratios: native/torch is a time ratio (< 1 means
pynn is faster; the issue's targets are <= 0.8 for MLP and CNN, <= 1.0 for LSTM
and Transformer), numpy/native a speedup.

Peak memory: each (model, contender) runs in a fresh subprocess that builds
the model and the batch, resets the kernel's resident-set high-water mark
(/proc/self/clear_refs) and runs three steps; the figure is VmHWM minus the
resident set just before the first step, i.e. what the step itself (activations,
gradients, optimizer state, scratch) adds on top of weights, data and the
libraries. Linux only; elsewhere the column reads n/a.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pynn  # noqa: E402
from train_step import STEPS  # noqa: E402

CONTENDERS = ("native", "numpy", "torch")


def make_step(name, who):
    """A zero-argument callable running one training step of STEPS[name] on ``who``."""
    s = STEPS[name]
    x, y = s.data()
    if who == "torch":
        return s.torch(x, y)
    with pynn.use_backend(who):
        step = s.pynn(x, y)

    def run():
        with pynn.use_backend(who):
            step()
    return run


def digits_epoch(who):
    """One epoch of the digits MLP 64-256-128-10 at batch 32 with Adam, shuffled,
    loss and accuracy tracked: pynn's fit(), or the same loop written in PyTorch."""
    (x, y), _ = pynn.datasets.load_digits(flatten=True)
    if who == "torch":
        import torch
        torch.manual_seed(0)
        nn = torch.nn
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        rng = np.random.default_rng(0)

        def run():
            perm = torch.from_numpy(rng.permutation(len(x)))
            correct, total = 0, 0.0
            for i in range(0, len(x), 32):
                idx = perm[i:i + 32]
                opt.zero_grad(set_to_none=True)
                out = model(xt[idx])
                loss = loss_fn(out, yt[idx])
                loss.backward()
                opt.step()
                total += loss.item()
                correct += int((out.argmax(1) == yt[idx]).sum())
        return run
    from pynn import layers
    with pynn.use_backend(who):
        pynn.set_seed(0)
        m = pynn.Sequential([layers.Input((64,)), layers.Dense(256, activation="relu"),
                             layers.Dense(128, activation="relu"), layers.Dense(10)])
        m.compile(optimizer=pynn.optimizers.Adam(1e-3),
                  loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    def run():
        with pynn.use_backend(who):
            m.fit(x, y, batch_size=32, epochs=1, verbose=0)
    return run


ROWS = [(name, s.title, lambda who, name=name: make_step(name, who)) for name, s in STEPS.items()]
ROWS.append(("digits_epoch", "fit() epoch, digits MLP 64-256-128-10 b32", digits_epoch))


def phased_best_ms(makers, repeat, passes=2, pause=0.3, clock=time.perf_counter):
    """Best time (ms) of each callable: each contender is timed in its own phase
    (two warm-up steps, then ``repeat`` steps), after a ``pause`` so the previous
    contender's spinning worker threads (OpenBLAS, libgomp) have gone to sleep and
    do not take a core from it; ``passes`` rounds over all contenders, so a burst
    of load on a shared machine rarely hits one contender's every phase."""
    fns = {who: make() for who, make in makers.items()}
    best = {who: float("inf") for who in fns}
    for _ in range(passes):
        for who, fn in fns.items():
            time.sleep(pause)
            fn()
            fn()
            for _ in range(repeat):
                t = clock()
                fn()
                best[who] = min(best[who], clock() - t)
    return {who: 1e3 * t for who, t in best.items()}


def _status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _measure_memory(row, who, threads):
    """Run in a subprocess: MiB the first three steps add above the resident set."""
    pynn.set_num_threads(threads)
    if who == "torch":
        import torch
        torch.set_num_threads(threads)
    make = dict((r[0], r[2]) for r in ROWS)[row]
    fn = make(who)
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set
    for _ in range(3):
        fn()
    print(json.dumps((_status_kib("VmHWM") - before) / 1024))


def peak_memory_mib(row, who, threads):
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    out = subprocess.run([sys.executable, __file__, "--_memory", row, who, "--threads", str(threads)],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return None
    return float(out.stdout.strip().splitlines()[-1])


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def markdown(results):
    head = ("| training step | native ms | numpy ms | torch ms | native / torch time | native speedup vs numpy "
            "| peak MiB native | peak MiB numpy | peak MiB torch | memory native / torch |\n|" + "---|" * 10)
    lines = [head]
    for r in results:
        t, m = r["ms"], r["peak_mib"]
        lines.append("| " + " | ".join([
            r["title"], fmt(t.get("native"), ".2f"), fmt(t.get("numpy"), ".2f"), fmt(t.get("torch"), ".2f"),
            fmt(t["native"] / t["torch"] if t.get("torch") else None, ".2f") + ("x" if t.get("torch") else ""),
            fmt(t["numpy"] / t["native"], ".2f") + "x",
            fmt(m.get("native"), ".1f"), fmt(m.get("numpy"), ".1f"), fmt(m.get("torch"), ".1f"),
            (fmt(m["native"] / m["torch"], ".2f") + "x") if m.get("native") and m.get("torch") else "-"]) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rows", nargs="*", default=None, help=f"subset of {[r[0] for r in ROWS]}")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--cpu-time", action="store_true",
                   help="1 thread, process CPU time: ratios that survive a machine busy with other processes")
    p.add_argument("--json", default=None, help="write the results here (input of bench/plot.py)")
    p.add_argument("--_memory", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    threads = 1 if args.cpu_time else (args.threads or pynn.get_num_threads())
    if args._memory:
        return _measure_memory(*args._memory, threads)
    if not pynn.backend.NATIVE_AVAILABLE:
        sys.exit("bench/train_table.py: the native extension is not built")
    pynn.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
        contenders = CONTENDERS
        tv = torch.__version__
    except ImportError:
        contenders, tv = CONTENDERS[:2], "not installed"
    from pynn import _C
    print(f"pynn {pynn.__version__}, isa={_C.isa()}, threads={threads}, numpy {np.__version__}, torch {tv}",
          flush=True)
    results = []
    for row, title, make in ROWS:
        if args.rows and row not in args.rows:
            continue
        repeat = args.repeat if row != "digits_epoch" else max(3, args.repeat // 3)
        ms = phased_best_ms({who: (lambda who=who: make(who)) for who in contenders}, repeat,
                            clock=time.process_time if args.cpu_time else time.perf_counter)
        mem = {} if args.no_memory else {who: peak_memory_mib(row, who, threads) for who in contenders}
        results.append({"row": row, "title": title, "ms": ms, "peak_mib": mem})
        print(markdown(results[-1:]).splitlines()[-1], flush=True)
    md = markdown(results)
    print("\n" + md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": threads, "numpy": np.__version__, "torch": tv, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
