"""pynn.ops as a NumPy drop-in: per-function speed vs NumPy and the whole-epoch ratio.

    python bench/numpy_dropin.py [--quick] [--threads 1 2]

Every ratio is NumPy's time / pynn.ops' time for the same call on the same
arrays, measured in one run with the two interleaved (min over many short
batches, so a noisy neighbour inflates both sides or neither). > 1 means pynn
is faster. Threads: OpenBLAS via threadpoolctl (when installed) and pynn's
OpenMP via pynn.set_num_threads, set to the same count.
"""
import argparse
import contextlib
import importlib.util
import pathlib
import time

import numpy as np

import pynn
import pynn.ops as ops

ROOT = pathlib.Path(__file__).resolve().parents[1]


def threads(n):
    """Limit OpenBLAS and pynn to ``n`` threads inside the block."""
    pynn.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(n)
    except ImportError:  # without threadpoolctl OpenBLAS keeps its own count (OPENBLAS_NUM_THREADS)
        return contextlib.nullcontext()


CLOCK = time.perf_counter
NOTES = []  # printed after a thread count's table


def per_call(f, budget=0.02):
    """Seconds per call of ``f`` over one short batch sized to ~``budget`` seconds."""
    f()
    n, t = 1, 0.0
    while True:
        t0 = CLOCK()
        for _ in range(n):
            f()
        t = CLOCK() - t0
        if t > budget / 4 or n > 1 << 20:
            return t / n, n
        n *= 4


def compare(f_np, f_ops, rounds=15, budget=0.02):
    """(numpy seconds, pynn seconds): min over ``rounds`` interleaved batches."""
    _, n1 = per_call(f_np, budget)
    _, n2 = per_call(f_ops, budget)
    best = [np.inf, np.inf]
    for _ in range(rounds):
        for i, (f, n) in enumerate(((f_np, n1), (f_ops, n2))):
            t0 = CLOCK()
            for _ in range(n):
                f()
            best[i] = min(best[i], (CLOCK() - t0) / n)
    return best


def fmt_us(s):
    return f"{s * 1e6:9.1f}" if s < 1e-2 else f"{s * 1e3:7.1f}ms"


def function_rows(quick):
    rng = np.random.default_rng(0)
    r = lambda *s, dt=np.float32: rng.standard_normal(s).astype(dt)  # noqa: E731
    rows = []
    # (label, m, k, n, A is a transposed view, B is a transposed view): the layouts the lecture code
    # passes (h.T, xb.T and W2.T are column-major views).
    gemms = [("lecture fwd x@W1", 32, 64, 128, False, False), ("lecture fwd h@W2", 32, 128, 10, False, False),
             ("lecture dW2 = h.T@d", 128, 32, 10, True, False), ("lecture dh = d@W2.T", 32, 10, 128, False, True),
             ("lecture dW1 = x.T@dh", 64, 32, 128, True, False),
             ("h512 fwd x@W1", 256, 64, 512, False, False), ("h512 fwd h@W2", 256, 512, 10, False, False),
             ("h512 dW2 = h.T@d", 512, 256, 10, True, False),
             ("h512 dh = d@W2.T", 256, 10, 512, False, True), ("h512 dW1 = x.T@dh", 64, 256, 512, True, False),
             ("cnn im2col dWc = cols.T@dz", 9, 11520, 8, True, False)]
    if not quick:
        gemms.append(("square", 1024, 1024, 1024, False, False))
    for dt in (np.float32, np.float64):
        for label, m, k, n, trans_a, trans_b in gemms:
            a = r(k, m, dt=dt).T if trans_a else r(m, k, dt=dt)
            b = r(n, k, dt=dt).T if trans_b else r(k, n, dt=dt)
            rows.append((f"dot {m}x{k}x{n} {np.dtype(dt).name} ({label})",
                         compare(lambda: np.dot(a, b), lambda: ops.dot(a, b))))
    a, b = r(16, 128, 64), r(16, 64, 128)
    rows.append(("matmul batched 16x128x64x128 float32", compare(lambda: np.matmul(a, b), lambda: ops.matmul(a, b))))
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name
        for shape in ((32, 32), (32, 128), (256, 512), (1024, 1024)):
            x = r(*shape, dt=dt)
            rows.append((f"maximum(x, 0) {shape[0]}x{shape[1]} {name}",
                         compare(lambda: np.maximum(x, 0), lambda: ops.maximum(x, 0))))
        # The lecture's reductions: bias gradients (axis 0), the softmax's row max / row sum
        # (axis 1, keepdims), the loss mean (all), at lecture, hidden-512 and large sizes.
        for shape in ((32, 10), (32, 128), (256, 10), (256, 512), (1024, 1024)):
            x = r(*shape, dt=dt)
            tag = f"{shape[0]}x{shape[1]} {name}"
            rows.append((f"sum(x, axis=0) {tag}", compare(lambda: np.sum(x, axis=0), lambda: ops.sum(x, axis=0))))
            rows.append((f"sum(x, axis=1, keepdims) {tag}", compare(lambda: np.sum(x, axis=1, keepdims=True),
                                                                    lambda: ops.sum(x, axis=1, keepdims=True))))
            rows.append((f"max(x, axis=1, keepdims) {tag}", compare(lambda: np.max(x, axis=1, keepdims=True),
                                                                    lambda: ops.max(x, axis=1, keepdims=True))))
            rows.append((f"max(x, axis=0) {tag}", compare(lambda: np.max(x, axis=0), lambda: ops.max(x, axis=0))))
            rows.append((f"mean(x) {tag}", compare(lambda: np.mean(x), lambda: ops.mean(x))))
    for shape in ((32, 10), (256, 1000)):
        x = r(*shape)

        def np_softmax():
            e = np.exp(x - np.max(x, axis=1, keepdims=True))
            return e / np.sum(e, axis=1, keepdims=True)
        rows.append((f"softmax {shape[0]}x{shape[1]} float32 (vs the NumPy formula)",
                     compare(np_softmax, lambda: ops.softmax(x))))
    one, small, few = r(1), r(2, 2), r(100)
    rows.append(("dispatch cost: exp, 1 element (NumPy function behind the Tensor check)",
                 compare(lambda: np.exp(one), lambda: ops.exp(one))))
    rows.append(("dispatch cost: add, 1 element", compare(lambda: np.add(one, one), lambda: ops.add(one, one))))
    rows.append(("dispatch cost: maximum(x, 0), 100 elements (native through the np_fast_ext C entry)",
                 compare(lambda: np.maximum(few, 0), lambda: ops.maximum(few, 0))))
    rows.append(("dispatch cost: dot 2x2 (routed to np.dot)", compare(lambda: np.dot(small, small),
                                                                      lambda: ops.dot(small, small))))
    return rows


def load_example():
    spec = importlib.util.spec_from_file_location("numpy_mlp", ROOT / "examples" / "numpy_mlp.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def epoch_rows(quick):
    ex = load_example()
    configs = [("MLP hidden 128, batch 32", "mlp", 128, 32), ("MLP hidden 512, batch 256", "mlp", 512, 256),
               ("CNN 8 filters (im2col), batch 32", "cnn", 8, 32)]
    rows = []
    for dt in ("float32", "float64"):
        for label, model, hidden, batch in configs:
            X, _, y, _ = ex.load(dt, image=(model == "cnn"))
            states = {}
            for name in ("numpy", "pynn"):
                npm = ex.use(name)
                init = ex.init_mlp(X.shape[1], hidden, 10, dt) if model == "mlp" else ex.init_cnn(1, hidden, 10, 3, dt)
                states[name] = (npm, init, np.random.default_rng(0))
            epoch = ex.mlp_epoch if model == "mlp" else ex.cnn_epoch
            best = {"numpy": np.inf, "pynn": np.inf}
            for _ in range(2 if quick else 15):  # best of 15 interleaved epochs per side
                for name, (npm, params, rng) in states.items():
                    ex.np = npm
                    t0 = CLOCK()
                    epoch(params, X, y, batch, 0.05, rng)
                    best[name] = min(best[name], CLOCK() - t0)
            rows.append((f"epoch: {label}, {dt}", (best["numpy"], best["pynn"])))
    return rows


class _TimedModule:
    """The module bound to the lecture code's ``np`` with every function call timed into ``acc``."""

    def __init__(self, mod, acc):
        self._m, self._acc, self.__name__ = mod, acc, mod.__name__

    def __getattr__(self, name):
        f = getattr(self._m, name)
        if not callable(f) or isinstance(f, type):
            return f
        acc = self._acc

        def timed(*a, **k):
            t0 = CLOCK()
            r = f(*a, **k)
            acc[name] = acc.get(name, 0.0) + CLOCK() - t0
            acc[None] = acc.get(None, 0) + 1  # calls, for the proxy's own cost
            return r
        return timed


def _proxy_cost_per_call():
    """Seconds the timing proxy adds per call outside the timed region (lookup, closure, bookkeeping)."""
    mod = type(np)("noop")
    mod.noop = lambda: None
    acc = {}
    proxy, n, best = _TimedModule(mod, acc), 20000, np.inf
    for _ in range(5):
        acc.clear()
        t0 = CLOCK()
        for _ in range(n):
            proxy.noop()
        total = CLOCK() - t0
        t0 = CLOCK()
        for _ in range(n):
            mod.noop()
        direct = CLOCK() - t0
        best = min(best, (total - acc["noop"] - direct) / n)
    return max(best, 0.0)


def _line_times(ex, args):
    """Seconds per source line of mlp_epoch and softmax_loss for one epoch (sys.settrace line events;
    the cost of a called np.* function lands on the calling line)."""
    import sys
    codes = {ex.mlp_epoch.__code__, ex.softmax_loss.__code__}
    acc, cur = {}, [None, 0.0]

    def local(frame, event, arg):
        t = CLOCK()
        if cur[0] is not None:
            acc[cur[0]] = acc.get(cur[0], 0.0) + t - cur[1]
        if event == "return":
            back = frame.f_back
            cur[0] = back.f_lineno if back is not None and back.f_code in codes else None
        else:
            cur[0] = frame.f_lineno
        cur[1] = CLOCK()
        return local

    sys.settrace(lambda frame, event, arg: local(frame, event, arg) if frame.f_code in codes else None)
    try:
        t0 = CLOCK()
        ex.mlp_epoch(*args)
        return CLOCK() - t0, acc
    finally:
        sys.settrace(None)


def profile_rows(quick, hidden=512, batch=256):
    """Where the lecture MLP epoch's time goes, NumPy vs pynn.ops: per np.* function, the time outside
    every np.* function (ndarray operators, indexing, Python: code pynn.ops cannot reach), per line,
    and the bounds that part and the GEMMs' arithmetic put on any drop-in.

    NumPy and pynn epochs are interleaved; every figure is its minimum over the repeats (a busy
    neighbour inflates single epochs, not the minimum), so the outside time is if anything
    underestimated and the bounds optimistic."""
    ex = load_example()
    X, _, y, _ = ex.load("float32")
    reps = 3 if quick else 12
    per_call = _proxy_cost_per_call()
    state = {}
    for name in ("numpy", "pynn"):
        mod = ex.use(name)
        args = (ex.init_mlp(X.shape[1], hidden, 10, "float32"), X, y, batch, 0.05, np.random.default_rng(0))
        for _ in range(2):
            ex.mlp_epoch(*args)
        state[name] = dict(mod=mod, args=args, plain=np.inf, outside=np.inf, funcs={}, lines={})
    for _ in range(reps):
        for name, st in state.items():
            ex.np = st["mod"]
            t0 = CLOCK()
            ex.mlp_epoch(*st["args"])
            st["plain"] = min(st["plain"], CLOCK() - t0)
            acc = {}
            ex.np = _TimedModule(st["mod"], acc)
            t0 = CLOCK()
            ex.mlp_epoch(*st["args"])
            t = CLOCK() - t0
            ex.np = st["mod"]
            calls = acc.pop(None)
            st["outside"] = min(st["outside"], t - sum(acc.values()) - calls * per_call)
            for k, v in acc.items():
                st["funcs"][k] = min(st["funcs"].get(k, np.inf), v)
            for k, v in _line_times(ex, st["args"])[1].items():
                st["lines"][k] = min(st["lines"].get(k, np.inf), v)
    nps, ops_ = state["numpy"], state["pynn"]
    out = [(f"epoch (hidden {hidden}, batch {batch}, float32)", (nps["plain"], ops_["plain"]))]
    for f in sorted(nps["funcs"], key=lambda k: -nps["funcs"][k]):
        out.append((f"  in np.{f}", (nps["funcs"][f], ops_["funcs"].get(f, np.nan))))
    out.append(("  outside np.* functions (operators, indexing, Python)", (nps["outside"], ops_["outside"])))
    src = (ROOT / "examples" / "numpy_mlp.py").read_text().splitlines()
    for ln in sorted(nps["lines"]):
        if nps["lines"][ln] > 0.01 * nps["plain"]:
            out.append((f"  line {ln}: {src[ln - 1].split('#')[0].strip()}",
                        (nps["lines"][ln], ops_["lines"].get(ln, np.nan))))
    # The GEMMs cannot take no time: at best every core runs them at the large-matrix rate of the
    # native SGEMM on one core (512x512x512), perfectly split across the threads.
    th = pynn.get_num_threads()
    pynn.set_num_threads(1)
    try:
        from pynn import _C
        a = np.ones((512, 512), np.float32)
        _C.gemm(a, a)
        rate = 0.0
        for _ in range(5):
            t0 = CLOCK()
            _C.gemm(a, a)
            rate = max(rate, 512 ** 3 / (CLOCK() - t0))
    finally:
        pynn.set_num_threads(th)
    macs = len(X) * (X.shape[1] * hidden * 2 + hidden * 10 * 3)  # x@W1, x.T@dh; h@W2, h.T@d, d@W2.T
    gemm_min = macs / (rate * th)
    t_np, u = nps["plain"], nps["outside"]
    NOTES.append(f"Amdahl ({CLOCK.__name__}): code outside np.* functions is {u / t_np:.0%} of NumPy's epoch; with every "
                 f"np.* function taking no time at all a drop-in could reach at most {t_np / u:.2f}x NumPy's speed")
    NOTES.append(f"GEMM floor: the epoch's {macs / 1e6:.0f}M multiply-adds at {rate / 1e9:.0f}G/s per core (native "
                 f"SGEMM, 512^3) on {th} core(s) take {gemm_min * 1e3:.2f} ms; with that and every other np.* "
                 f"function free a drop-in reaches at most {t_np / (u + gemm_min):.2f}x NumPy's speed")
    return out


# Each statement of examples/numpy_mlp.py's mlp_epoch / softmax_loss, split where a line mixes an
# np.* call with ndarray operators or indexing, so the time of what pynn.ops can reach (np.* calls)
# and of what it cannot (operators, fancy indexing, Python) is measured separately.
# (label, kind): kind "np" = an np.* call, "op" = ndarray operators / indexing / Python.
LINE_STEPS = [
    ("idx = order[s:s+B]; xb, yb = X[idx], y[idx]", "op"),
    ("np.dot(xb, W1)", "np"), ("z1 = ... + b1", "op"),
    ("h = np.maximum(z1, 0)", "np"),
    ("np.dot(h, W2)", "np"), ("scores = ... + b2", "op"),
    ("np.max(scores, axis=1, keepdims=True)", "np"), ("shifted = scores - ...", "op"),
    ("exp_scores = np.exp(shifted)", "np"),
    ("np.sum(exp_scores, axis=1, keepdims=True)", "np"), ("probs = exp_scores / ...", "op"),
    ("np.arange(n) (loss)", "np"), ("probs[arange, y] + 1e-12", "op"), ("np.log(...)", "np"),
    ("np.mean(...)", "np"), ("loss = -...", "op"),
    ("dscores = probs.copy()", "op"), ("np.arange(n) (grad)", "np"), ("dscores[arange, y] -= 1", "op"),
    ("dscores / n", "op"),
    ("dW2 = np.dot(h.T, dscores)", "np"), ("db2 = np.sum(dscores, axis=0)", "np"),
    ("dh = np.dot(dscores, W2.T)", "np"), ("z1 <= 0", "op"), ("dh[mask] = 0", "op"),
    ("dW1 = np.dot(xb.T, dh)", "np"), ("db1 = np.sum(dh, axis=0)", "np"),
    ("W1 -= lr * dW1 (and b1, W2, b2)", "op"), ("losses.append(loss)", "op"),
]


def mlp_epoch_by_step(np, params, X, y, batch_size, lr, rng, acc, clock):
    """examples/numpy_mlp.py's mlp_epoch (softmax_loss inlined), the same operations in the same
    order, with ``clock()`` read between the LINE_STEPS; adds each step's seconds to ``acc``."""
    W1, b1, W2, b2 = params
    order = rng.permutation(X.shape[0])
    losses = []
    for start in range(0, X.shape[0], batch_size):
        t = [clock()]
        tick = t.append
        idx = order[start:start + batch_size]
        xb, yb = X[idx], y[idx]
        tick(clock())
        a = np.dot(xb, W1)
        tick(clock())
        z1 = a + b1
        tick(clock())
        h = np.maximum(z1, 0)
        tick(clock())
        a = np.dot(h, W2)
        tick(clock())
        scores = a + b2
        tick(clock())
        n = scores.shape[0]
        m = np.max(scores, axis=1, keepdims=True)
        tick(clock())
        shifted = scores - m
        tick(clock())
        exp_scores = np.exp(shifted)
        tick(clock())
        den = np.sum(exp_scores, axis=1, keepdims=True)
        tick(clock())
        probs = exp_scores / den
        tick(clock())
        ar = np.arange(n)
        tick(clock())
        picked = probs[ar, yb] + 1e-12
        tick(clock())
        lg = np.log(picked)
        tick(clock())
        mn = np.mean(lg)
        tick(clock())
        loss = -mn
        tick(clock())
        dscores = probs.copy()
        tick(clock())
        ar = np.arange(n)
        tick(clock())
        dscores[ar, yb] -= 1
        tick(clock())
        dscores = dscores / n
        tick(clock())
        dW2 = np.dot(h.T, dscores)
        tick(clock())
        db2 = np.sum(dscores, axis=0)
        tick(clock())
        dh = np.dot(dscores, W2.T)
        tick(clock())
        mask = z1 <= 0
        tick(clock())
        dh[mask] = 0
        tick(clock())
        dW1 = np.dot(xb.T, dh)
        tick(clock())
        db1 = np.sum(dh, axis=0)
        tick(clock())
        W1 -= lr * dW1
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
        tick(clock())
        losses.append(loss)
        tick(clock())
        for i in range(len(LINE_STEPS)):
            acc[i] += t[i + 1] - t[i]
    return float(np.mean(losses))


def line_rows(quick, hidden=512, batch=256, dtype="float32"):
    """The lecture MLP epoch per statement (LINE_STEPS), NumPy vs pynn.ops, and the bound on any
    drop-in: with every np.* call free, the epoch is still its operator/indexing statements.

    Epochs alternate NumPy / pynn (a plain epoch and an instrumented one each); a statement's
    figure is its median over the instrumented epochs (µs per epoch), the epoch's the median
    (and min) of the plain ones."""
    ex = load_example()
    X, _, y, _ = ex.load(dtype)
    reps = 5 if quick else 25
    state = {}
    for name in ("numpy", "pynn"):
        mod = ex.use(name)
        params = ex.init_mlp(X.shape[1], hidden, 10, dtype)
        args = (params, X, y, batch, 0.05, np.random.default_rng(0))
        for _ in range(3):
            ex.mlp_epoch(*args)
            mlp_epoch_by_step(mod, *args, [0.0] * len(LINE_STEPS), CLOCK)
        state[name] = dict(mod=mod, args=args, plain=[], steps=[])
    for _ in range(reps):
        for name, st in state.items():
            ex.np = st["mod"]
            t0 = CLOCK()
            ex.mlp_epoch(*st["args"])
            st["plain"].append(CLOCK() - t0)
            acc = [0.0] * len(LINE_STEPS)
            mlp_epoch_by_step(st["mod"], *st["args"], acc, CLOCK)
            st["steps"].append(acc)
    med = lambda v: float(np.median(v))  # noqa: E731
    nps, ops_ = state["numpy"], state["pynn"]
    rows = [(f"epoch median (hidden {hidden}, batch {batch}, {dtype})", (med(nps["plain"]), med(ops_["plain"]))),
            ("epoch min", (min(nps["plain"]), min(ops_["plain"])))]
    S_np, S_ops = np.array(nps["steps"]), np.array(ops_["steps"])
    tot = {}
    for i, (label, kind) in enumerate(LINE_STEPS):
        a, b = med(S_np[:, i]), med(S_ops[:, i])
        rows.append((f"  [{kind}] {label}", (a, b)))
    for kind in ("np", "op"):
        cols = [i for i, (_, k) in enumerate(LINE_STEPS) if k == kind]
        tot[kind] = (med(S_np[:, cols].sum(1)), med(S_ops[:, cols].sum(1)))
        rows.append((f"  sum of [{kind}] statements", tot[kind]))
    t_np = med(nps["plain"])
    NOTES.append(f"bound: with every np.* call free, pynn's epoch is still its [op] statements "
                 f"({tot['op'][1] * 1e3:.2f} ms): at most {t_np / tot['op'][1]:.2f}x NumPy's "
                 f"{t_np * 1e3:.2f} ms epoch; the target 1.5x needs pynn's np.* calls to take at most "
                 f"{(t_np / 1.5 - tot['op'][1]) * 1e3:.2f} ms (NumPy's take {tot['np'][0] * 1e3:.2f} ms)")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a smoke run)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to measure")
    p.add_argument("--only", choices=["functions", "epochs", "profile", "lines"],
                   help="measure one part only; profile: where the hidden-512 epoch's time goes "
                        "(per np.* function, outside them, per line) and the Amdahl bound")
    p.add_argument("--hidden", type=int, default=512, help="--only profile: the MLP's hidden units")
    p.add_argument("--batch-size", type=int, default=256, help="--only profile: the minibatch size")
    p.add_argument("--clock", choices=["auto", "wall", "cpu"], default="auto",
                   help="auto: process CPU time at 1 thread (immune to a busy neighbour: nothing else runs "
                        "in-process), wall time at more threads (CPU time would hide the parallel gain)")
    args = p.parse_args()
    global CLOCK
    print(f"pynn {pynn.__version__}, backend {pynn.backend.name()}, numpy {np.__version__}")
    for th in args.threads:
        use_cpu = args.clock == "cpu" or (args.clock == "auto" and th == 1)
        CLOCK = time.process_time if use_cpu else time.perf_counter
        with threads(th):
            rows = []
            if args.only == "profile":
                rows += profile_rows(args.quick, args.hidden, args.batch_size)
            elif args.only == "lines":
                rows += line_rows(args.quick, args.hidden, args.batch_size)
            else:
                if args.only != "epochs":
                    rows += function_rows(args.quick)
                if args.only != "functions":
                    rows += epoch_rows(args.quick)
        print(f"\n{th} thread(s), {'process CPU' if use_cpu else 'wall'} time\n| call | NumPy | pynn.ops | speed vs NumPy |\n|---|---:|---:|---:|")
        for label, (t_np, t_ops) in rows:
            print(f"| {label} | {fmt_us(t_np)} | {fmt_us(t_ops)} | {t_np / t_ops:.2f}x |", flush=True)
        for note in NOTES:
            print(note)
        NOTES.clear()
    print("\ntimes in µs per call unless marked ms")


if __name__ == "__main__":
    main()
