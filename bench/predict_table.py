"""Inference table: pynn ``model.predict_on_batch`` vs ONNX Runtime on the graph pynn
exports (``pynn.onnx.export``) vs PyTorch eval/no_grad, on the MLP, CNN, LSTM and
Transformer models of bench/train_step.py, at batch 1 and batch 64.

    python bench/predict_table.py [--threads 2] [--min-time 1.0] [--json out.json]

All three run with the same weights (PyTorch's twin gets pynn's weights through
train_step.copy_weights_to_torch) and the script first checks that their outputs
agree. ONNX Runtime: CPU provider, ``intra_op_num_threads=--threads``, all graph
optimisations. PyTorch: ``torch.set_num_threads(--threads)``, ``eval()`` and
``torch.no_grad()``. pynn: native backend, ``pynn.set_num_threads(--threads)``.

Time: the best of calls repeated for at least ``--min-time`` seconds after three
warm-up calls (the best, not the median: on a shared machine the other load only
ever adds time); each contender in its own phase after a 0.3 s pause (so the
previous one's spinning threads are asleep). Ratios are pynn / ONNX Runtime and
pynn / PyTorch (< 1 means pynn is faster), from this one run.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pynn  # noqa: E402
import pynn.onnx  # noqa: E402
from train_step import STEPS, copy_weights_to_torch  # noqa: E402

BATCHES = (1, 64)


def _best_time(fn, min_time):
    for _ in range(3):
        fn()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


def contenders(name, threads, tmpdir):
    """name -> {who: (callable factory taking x, output getter)} with the same weights everywhere."""
    import onnxruntime as ort
    import torch
    step = STEPS[name]
    pynn.set_seed(0)
    model = step.pynn_model()
    path = os.path.join(tmpdir, f"{name}.onnx")
    pynn.onnx.export(model, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    tmodel = step.torch_model(torch)
    copy_weights_to_torch(name, model, tmodel, torch)
    tmodel.eval()
    layout = step.torch_layout or (lambda a: a)

    def run_pynn(x):
        return lambda: model.predict_on_batch(x)

    def run_ort(x):
        return lambda: sess.run(None, {in_name: x})[0]

    def run_torch(x):
        xt = torch.from_numpy(layout(x))

        def f():
            with torch.no_grad():
                return tmodel(xt).numpy()
        return f
    return {"pynn": run_pynn, "onnxruntime": run_ort, "torch": run_torch}, step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--models", default="mlp,cnn,lstm,transformer")
    p.add_argument("--json")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    pynn.set_backend("native")
    pynn.set_num_threads(args.threads)
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmpdir:
        for name in args.models.split(","):
            runners, step = contenders(name, args.threads, tmpdir)
            for batch in BATCHES:
                x = np.random.default_rng(0).standard_normal((batch, *step.input_shape)).astype(np.float32)
                outs = {who: make(x)() for who, make in runners.items()}
                for who in ("onnxruntime", "torch"):
                    np.testing.assert_allclose(outs[who], outs["pynn"], rtol=1e-3, atol=1e-4,
                                               err_msg=f"{name} batch {batch}: {who} disagrees with pynn")
                times = {}
                for who, make in runners.items():
                    time.sleep(0.3)
                    times[who] = _best_time(make(x), args.min_time)
                row = {"model": name, "batch": batch, **{f"{k}_ms": v * 1e3 for k, v in times.items()},
                       "pynn/ort": times["pynn"] / times["onnxruntime"], "pynn/torch": times["pynn"] / times["torch"]}
                rows.append(row)
                print(f"{name:12s} b{batch:<3d} pynn {row['pynn_ms']:8.3f} ms  ORT {row['onnxruntime_ms']:8.3f} ms  "
                      f"torch {row['torch_ms']:8.3f} ms   pynn/ORT {row['pynn/ort']:.2f}  "
                      f"pynn/torch {row['pynn/torch']:.2f}", flush=True)
    # The load decides how much of the 2-thread numbers is waiting for descheduled workers.
    print(f"\nload average (1 min): {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
          f"on {os.cpu_count()} CPUs")
    print("\n| model | batch | pynn predict_on_batch (ms) | ONNX Runtime (ms) | PyTorch eval (ms) | pynn/ORT | "
          "pynn/torch |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['pynn_ms']:.3f} | {r['onnxruntime_ms']:.3f} | {r['torch_ms']:.3f} "
              f"| {r['pynn/ort']:.2f} | {r['pynn/torch']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "load_average": [load_before, os.getloadavg()[0]], "rows": rows}, f,
                  indent=1)
    return rows


if __name__ == "__main__":
    main()
