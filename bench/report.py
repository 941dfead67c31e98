"""The README's performance table, from one command:

    python bench/report.py [--quick] [--threads N] [--out table.md]

Each row runs the same work on the native backend, the numpy backend and (when
importable) PyTorch CPU at the same thread count, in one run, and reports the
best of several repeats (ms), GFLOPS where the FLOP count is known, and the
ratios. Timings are reported, never asserted: this machine is shared and noisy.
The pytest-benchmark suites in bench/test_*.py measure the same things with
statistics.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pynn  # noqa: E402
from pynn import layers  # noqa: E402
from pynn.autograd import Tensor  # noqa: E402
from peak import peak_line  # noqa: E402

try:
    import torch
except ImportError:  # torch rows are skipped
    torch = None

R = np.random.default_rng(0)


def best_ms(fn, repeats, min_time=0.2):
    """Best time of ``repeats`` runs (ms), after one warm-up; at least ``min_time`` s in all.
    A 0.3 s pause first lets the previous contender's spinning worker threads
    (OpenBLAS, libgomp) go to sleep so they do not take a core from this one."""
    time.sleep(0.3)
    fn()
    times, start = [], time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 50 * repeats:
            break
    return 1e3 * min(times)


class Table:
    def __init__(self):
        self.rows = []
        self.notes = []  # sentences printed under the table (the measured peak)

    def add(self, name, flops, native, numpy_, torch_=None):
        self.rows.append((name, flops, native, numpy_, torch_))
        print(self._fmt(self.rows[-1]), flush=True)

    @staticmethod
    def _fmt(row):
        name, flops, nat, nump, tor = row
        gf = (lambda ms: f"{flops / ms / 1e6:.0f}") if flops else (lambda ms: "")
        cells = [name, f"{nat:.3f}", gf(nat), f"{nump:.3f}", gf(nump),
                 f"{tor:.3f}" if tor else "-", gf(tor) if tor else "-",
                 f"{nump / nat:.2f}x", f"{tor / nat:.2f}x" if tor else "-"]
        return "| " + " | ".join(cells) + " |"

    def markdown(self):
        head = ("| work | native ms | native GFLOPS | numpy ms | numpy GFLOPS | torch ms | torch GFLOPS | "
                "native vs numpy | native vs torch |\n|" + "---|" * 9)
        return head + "\n" + "\n".join(self._fmt(r) for r in self.rows) + "".join(
            "\n\n" + note for note in self.notes)


# ---------------------------------------------------------------- rows
def gemm_rows(t, shapes, repeats):
    # NumPy's OpenBLAS at pynn's thread count (threadpoolctl, when installed): --threads 1
    # otherwise compared one pynn thread with all of OpenBLAS's.
    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(pynn.get_num_threads())
    except ImportError:
        limit = None
    try:
        _gemm_rows(t, shapes, repeats)
    finally:
        if limit is not None:
            limit.restore_original_limits()


def batched_best_ms(fn, repeats, min_time=0.2, sample=2e-3):
    """best_ms for microsecond calls: each sample times a loop of calls lasting >= ``sample`` s,
    so the timer's own cost and a single preemption do not decide a 3 us product."""
    time.sleep(0.3)
    fn()
    inner = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        if time.perf_counter() - t0 >= sample:
            break
        inner *= 2
    best, start, count = float("inf"), time.perf_counter(), 0
    while count < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
        count += 1
    return 1e3 * best


def _gemm_rows(t, shapes, repeats):
    for m, k, n in shapes:
        a = R.standard_normal((m, k)).astype(np.float32)
        b = R.standard_normal((k, n)).astype(np.float32)
        timer = batched_best_ms if m * n * k <= 1 << 22 else best_ms
        native = timer(lambda: pynn.backend.native_backend.matmul(a, b), repeats)
        numpy_ = timer(lambda: pynn.backend.numpy_backend.matmul(a, b), repeats)
        tor = None
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            tor = timer(lambda: ta @ tb, repeats)
        t.add(f"matmul {m}x{k}x{n}", 2 * m * n * k, native, numpy_, tor)
        if (m, k, n) == (1024, 1024, 1024):
            # The same product against the machine's measured multiply-add peak, same minutes.
            peak, line = peak_line(pynn.get_num_threads())
            shares = ", ".join(f"{who} {100 * 2 * m * n * k / ms / 1e6 / peak:.0f}%"
                               for who, ms in (("native", native), ("numpy", numpy_), ("torch", tor)) if ms)
            t.notes.append(f"{line}; matmul 1024x1024x1024 reached {shares} of it.")
            print(t.notes[-1], flush=True)


def dense_fused_row(t, repeats):
    m, k, n = 128, 784, 256
    x = R.standard_normal((m, k)).astype(np.float32)
    w = R.standard_normal((k, n)).astype(np.float32)
    b = R.standard_normal(n).astype(np.float32)
    native = best_ms(lambda: pynn.backend.native_backend.matmul(x, w, bias=b, activation="relu"), repeats)
    numpy_ = best_ms(lambda: np.maximum(x @ w + b, 0), repeats)
    tor = None
    if torch is not None:
        tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w.T.copy()), torch.from_numpy(b)
        tor = best_ms(lambda: torch.relu(torch.nn.functional.linear(tx, tw, tb)), repeats)
    t.add(f"dense fwd relu(x@W+b) {m}x{k}x{n}", 2 * m * n * k, native, numpy_, tor)


def elementwise_rows(t, repeats):
    x = R.standard_normal(1 << 20).astype(np.float32)
    dy = R.standard_normal(1 << 20).astype(np.float32)
    nat, ref = pynn.backend.native_backend, pynn.backend.numpy_backend
    for name in ("relu", "sigmoid", "gelu"):
        y = getattr(nat, name)(x)
        native = best_ms(lambda: (getattr(nat, name)(x), getattr(nat, name + "_grad")(x, y, dy)), repeats)
        numpy_ = best_ms(lambda: (getattr(ref, name)(x), getattr(ref, name + "_grad")(x, y, dy)), repeats)
        tor = None
        if torch is not None:
            fn = {"relu": torch.relu, "sigmoid": torch.sigmoid, "gelu": torch.nn.functional.gelu}[name]
            tx = torch.from_numpy(x)
            tdy = torch.from_numpy(dy)

            def step():
                xt = tx.clone().requires_grad_(True)
                fn(xt).backward(tdy)
            tor = best_ms(step, repeats)
        t.add(f"{name} fwd+bwd 1M floats", 0, native, numpy_, tor)


def softmax_xent_row(t, repeats):
    for n, c in ((4096, 1000), (128, 10)):
        z = R.standard_normal((n, c)).astype(np.float32)
        y = R.integers(0, c, n)
        native = best_ms(lambda: pynn.backend.native_backend.softmax_cross_entropy(z, y), repeats)
        numpy_ = best_ms(lambda: pynn.backend.numpy_backend.softmax_cross_entropy(z, y), repeats)
        tor = None
        if torch is not None:
            tz, ty = torch.from_numpy(z), torch.from_numpy(y)

            def step():
                zt = tz.clone().requires_grad_(True)
                torch.nn.functional.cross_entropy(zt, ty, reduction="sum").backward()
            tor = best_ms(step, repeats)
        t.add(f"softmax+cross-entropy fwd+bwd {n}x{c}", 0, native, numpy_, tor)


def norm_rows(t, repeats):
    for op, shape in (("batch_norm", (32 * 32 * 32, 64)), ("layer_norm", (32 * 128, 256))):
        x = R.standard_normal(shape).astype(np.float32)
        g, b = R.standard_normal(shape[1]).astype(np.float32), R.standard_normal(shape[1]).astype(np.float32)
        dy = R.standard_normal(shape).astype(np.float32)

        def make(backend):
            mod = getattr(pynn.backend, f"{backend}_backend")

            def step():
                y, mean, inv = getattr(mod, op)(x, g, b, 1e-3)
                getattr(mod, op + "_grad")(x, dy, mean, inv, g)
            return step
        tor = None
        if torch is not None:
            tx, tg, tb, tdy = (torch.from_numpy(a) for a in (x, g, b, dy))

            def step():
                xt = tx.clone().requires_grad_(True)
                if op == "batch_norm":
                    y = torch.nn.functional.batch_norm(xt, None, None, tg, tb, training=True, eps=1e-3)
                else:
                    y = torch.nn.functional.layer_norm(xt, (shape[1],), tg, tb, eps=1e-3)
                y.backward(tdy)
            tor = best_ms(step, repeats)
        t.add(f"{op} fwd+bwd {shape}", 0, best_ms(make("native"), repeats), best_ms(make("numpy"), repeats), tor)


def pool_rows(t, repeats):
    """Max pooling as training runs it (forward keeping the argmax, then the backward from it),
    on the CNN step's two pools; torch on the same memory viewed channels_last."""
    for n, h, c in ((64, 26, 32), (64, 11, 64)):
        x = np.maximum(R.standard_normal((n, h, h, c)), 0).astype(np.float32)

        def make(mod):
            def step():
                y, idx = mod.max_pool2d_argmax(x, (2, 2), None, "valid")
                mod.max_pool2d_backward_argmax(idx, y, x.shape, (2, 2), None, "valid")
            return step
        tor = None
        if torch is not None:
            tx = torch.from_numpy(x).permute(0, 3, 1, 2)   # NCHW view of NHWC memory: channels_last

            def step():
                xt = tx.detach().requires_grad_(True)
                y = torch.nn.functional.max_pool2d(xt, 2)
                y.backward(y.detach())
            tor = best_ms(step, repeats)
        t.add(f"max_pool2d 2x2 fwd+bwd N{n} {h}x{h}x{c}", 0, best_ms(make(pynn.backend.native_backend), repeats),
              best_ms(make(pynn.backend.numpy_backend), max(2, repeats // 3)), tor)


def ctc_row(t, repeats):
    n, steps, c, s = 32, 100, 28, 20
    logits = R.standard_normal((n, steps, c)).astype(np.float32)
    lp = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
    labels, il, ll = R.integers(1, c, (n, s)), np.full(n, steps), R.integers(s // 2, s + 1, n)
    native = best_ms(lambda: pynn.backend.native_backend.ctc_loss(lp, labels, il, ll, 0), repeats)
    numpy_ = best_ms(lambda: pynn.backend.numpy_backend.ctc_loss(lp, labels, il, ll, 0), repeats)
    tor = None
    if torch is not None:
        x = torch.from_numpy(lp).permute(1, 0, 2).contiguous()
        tl, ti, tll = torch.from_numpy(labels), torch.from_numpy(il), torch.from_numpy(ll)

        def step():
            xt = x.clone().requires_grad_(True)
            torch.nn.functional.ctc_loss(xt, tl, ti, tll, reduction="sum").backward()
        tor = best_ms(step, repeats)
    t.add(f"CTC loss+grad N{n} T{steps} C{c}", 0, native, numpy_, tor)


def conv_rows(t, repeats):
    n, h, c, f = 32, 32, 64, 64
    x = R.standard_normal((n, h, h, c)).astype(np.float32)
    w = (R.standard_normal((3, 3, c, f)) * 0.05).astype(np.float32)
    flops = 2 * n * h * h * f * 9 * c
    native = best_ms(lambda: pynn.backend.native_backend.conv2d(x, w, None, (1, 1), "same", (1, 1)), repeats)
    numpy_ = best_ms(lambda: pynn.backend.numpy_backend.conv2d(x, w, None, (1, 1), "same", (1, 1)), max(2, repeats // 3))
    tor = None
    if torch is not None:
        tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        tw = torch.from_numpy(w.transpose(3, 2, 0, 1).copy())
        tor = best_ms(lambda: torch.nn.functional.conv2d(tx, tw, padding=1), repeats)
    t.add(f"conv2d fwd N{n} {h}x{h} {c}->{f} 3x3 same", flops, native, numpy_, tor)
    # Issue #17's first-layer conv (every MNIST-style model's): one input channel, K = 9, where
    # the per-pixel overhead, not the FMAs, decides (the small-channel direct kernel).
    n, h, c, f = 64, 28, 1, 32
    x = R.standard_normal((n, h, h, c)).astype(np.float32)
    w = (R.standard_normal((3, 3, c, f)) * 0.3).astype(np.float32)
    flops = 2 * n * (h - 2) * (h - 2) * f * 9 * c
    native = best_ms(lambda: pynn.backend.native_backend.conv2d(x, w, None, (1, 1), "valid", (1, 1)), repeats)
    numpy_ = best_ms(lambda: pynn.backend.numpy_backend.conv2d(x, w, None, (1, 1), "valid", (1, 1)),
                     max(2, repeats // 3))
    tor = None
    if torch is not None:
        tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        tw = torch.from_numpy(w.transpose(3, 2, 0, 1).copy())
        tor = best_ms(lambda: torch.nn.functional.conv2d(tx, tw), repeats)
    t.add(f"conv2d fwd N{n} {h}x{h} {c}->{f} 3x3 valid", flops, native, numpy_, tor)


def recurrent_rows(t, repeats):
    n, steps, feat, units = 64, 100, 128, 256
    x = R.standard_normal((n, steps, feat)).astype(np.float32)
    g = np.ones((n, steps, units), np.float32)
    for kind in ("LSTM", "GRU"):
        def make(backend):
            with pynn.use_backend(backend):
                pynn.set_seed(0)
                layer = getattr(layers, kind)(units, return_sequences=True)
                layer.build((None, steps, feat))

            def step():
                with pynn.use_backend(backend):
                    layer(Tensor(x, requires_grad=True)).backward(g)
            return step
        tor = None
        if torch is not None:
            mod = getattr(torch.nn, kind)(feat, units, batch_first=True)
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)

            def tstep():
                out, _ = mod(tx.clone().requires_grad_(True))
                out.backward(tg)
            tor = best_ms(tstep, max(2, repeats // 3))
        t.add(f"{kind}({units}) fwd+bwd b{n} x {steps} steps x {feat}", 0, best_ms(make("native"), max(2, repeats // 3)),
              best_ms(make("numpy"), 2, min_time=0), tor)


def lstm_forward_rows(t, repeats):
    """Issue #17's "LSTM forward alone", on the training table's LSTM (bench/train_step.py):
    the layer's forward without a graph (inference) and with one (a training step's forward,
    which saves the gates), each against PyTorch's nn.LSTM forward in the same mode."""
    n, steps, feat, units = 64, 50, 32, 128
    x = R.standard_normal((n, steps, feat)).astype(np.float32)
    flops = 2 * n * steps * 4 * units * (feat + units)
    for grad in (False, True):
        def make(backend):
            with pynn.use_backend(backend):
                pynn.set_seed(0)
                layer = layers.LSTM(units)
                layer.build((None, steps, feat))

            def step():
                with pynn.use_backend(backend):
                    if grad:
                        layer(Tensor(x, requires_grad=True))
                    else:
                        with pynn.no_grad():
                            layer(Tensor(x))
            return step
        tor = None
        if torch is not None:
            mod = torch.nn.LSTM(feat, units, batch_first=True)
            tx = torch.from_numpy(x)

            def tstep():
                if grad:
                    mod(tx.clone().requires_grad_(True))
                else:
                    with torch.no_grad():
                        mod(tx)
            tor = best_ms(tstep, repeats)
        mode = "with grad (training forward)" if grad else "no grad"
        t.add(f"LSTM({units}) forward b{n} x {steps} steps x {feat}, {mode}", flops, best_ms(make("native"), repeats),
              best_ms(make("numpy"), 2, min_time=0), tor)


def attention_row(t, repeats):
    b, s, d, h = 16, 128, 512, 8
    x = R.standard_normal((b, s, d)).astype(np.float32)

    def make(backend):
        with pynn.use_backend(backend):
            pynn.set_seed(0)
            mha = layers.MultiHeadAttention(num_heads=h, key_dim=d // h)
            mha(x, x)

        def step():
            with pynn.use_backend(backend):
                xt = Tensor(x, requires_grad=True)
                mha(xt, xt).sum().backward()
        return step
    tor = None
    if torch is not None:
        tm = torch.nn.MultiheadAttention(d, h, batch_first=True)
        tx = torch.from_numpy(x)

        def tstep():
            xt = tx.clone().requires_grad_(True)
            tm(xt, xt, xt, need_weights=False)[0].sum().backward()
        tor = best_ms(tstep, max(2, repeats // 3))
    t.add(f"MultiHeadAttention {h} heads d{d} seq{s} b{b} fwd+bwd", 0, best_ms(make("native"), max(2, repeats // 3)),
          best_ms(make("numpy"), max(2, repeats // 3)), tor)


def adam_row(t, repeats):
    size = 10_000_000
    p, g = R.standard_normal(size).astype(np.float32), R.standard_normal(size).astype(np.float32)

    def make(backend):
        with pynn.use_backend(backend):
            var = layers.Variable(p.copy(), name="w")
            opt = pynn.optimizers.Adam(learning_rate=1e-3)

        def step():
            with pynn.use_backend(backend):
                opt.apply_gradients([(g, var)])
        return step
    tor = None
    if torch is not None:
        tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
        tp.grad = torch.from_numpy(g)
        topt = torch.optim.Adam([tp], lr=1e-3, fused=True)
        tor = best_ms(topt.step, repeats)
    t.add("Adam step, 10M params (torch: fused=True)", 0, best_ms(make("native"), repeats),
          best_ms(make("numpy"), max(2, repeats // 3)), tor)


def mlp_step_row(t, repeats):
    # The step of bench/train_step.py, built and timed by bench/train_table.py: one definition
    # of the step and one timing method for both tables (each contender the same number of
    # steps, in its own phase, two passes). best_ms ran each contender for >= 0.2 s instead,
    # so the faster one got more samples to take the best of (pynn ~140, torch ~90).
    from train_table import make_step, phased_best_ms
    who = ("native", "numpy") + (("torch",) if torch is not None else ())
    ms = phased_best_ms({w: (lambda w=w: make_step("mlp", w)) for w in who}, repeats)
    t.add("train step MLP 784-256-128-10 b128 Adam", 0, ms["native"], ms["numpy"], ms.get("torch"))


def digits_epoch_row(t, repeats):
    if not importable("sklearn"):
        return
    from train_table import digits_epoch
    t.add("fit() epoch, digits MLP 64-256-128-10 b32", 0, best_ms(digits_epoch("native"), max(2, repeats // 3)),
          best_ms(digits_epoch("numpy"), max(2, repeats // 3)), None)


def importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


# Row groups in table order (--only picks some).
GROUPS = {"gemm": gemm_rows, "dense": dense_fused_row, "elementwise": elementwise_rows,
          "softmax_xent": softmax_xent_row, "norm": norm_rows, "pool": pool_rows, "ctc": ctc_row, "conv": conv_rows,
          "recurrent": recurrent_rows, "lstm_forward": lstm_forward_rows, "attention": attention_row,
          "adam": adam_row, "mlp_step": mlp_step_row,
          "digits_epoch": digits_epoch_row}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats, smaller GEMMs")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="also write the markdown table to this file")
    p.add_argument("--only", nargs="+", default=None, choices=sorted(GROUPS),
                   help="run only these row groups (e.g. --only recurrent)")
    args = p.parse_args(argv)
    if not pynn.backend.NATIVE_AVAILABLE:
        sys.exit("bench/report.py: the native extension is not built")
    if args.threads:
        pynn.set_num_threads(args.threads)
    threads = pynn.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    repeats = 3 if args.quick else 10
    from pynn import _C
    print(f"pynn {pynn.__version__}, isa={_C.isa()}, threads={threads}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else ", torch not installed"))
    t = Table()
    shapes = [(64, 64, 64), (256, 256, 256), (1024, 1024, 1024), (64, 784, 128), (128, 784, 256), (32, 128, 10),
              (32768, 576, 64)]
    if args.quick:
        shapes = [s for s in shapes if s[0] * s[1] * s[2] <= 1 << 28]
    for name, rows in GROUPS.items():
        if args.only is None or name in args.only:
            rows(t, shapes, repeats) if name == "gemm" else rows(t, repeats)
    md = t.markdown()
    print("\n" + md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md + "\n")


if __name__ == "__main__":
    main()
