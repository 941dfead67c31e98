"""``python -m pynn demo``: train a small CNN (or, with ``--model mlp``, an MLP) on
scikit-learn's bundled digits on the native backend, then time the same training
epoch on the numpy backend.

``python -m pynn info`` prints the build: ISA, threads, which Python core is imported
(Cython-compiled or pure Python, with each module's file) and which kernels are native.
"""
import argparse
import os
import sys
import time

import numpy as np


def _build_model(pynn, kind, hidden):
    from pynn import layers
    if kind == "cnn":
        return pynn.Sequential([
            layers.Input((8, 8, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dense(hidden[0], activation="relu"), layers.Dense(10, activation="softmax"),
        ], name="digits_cnn")
    return pynn.Sequential([layers.Input((64,))]
                           + [layers.Dense(h, activation="relu") for h in hidden]
                           + [layers.Dense(10, activation="softmax")], name="digits_mlp")


def _compile(pynn, model, lr):
    model.compile(optimizer=pynn.optimizers.Adam(learning_rate=lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def _epoch_time(pynn, backend_name, x, y, kind, hidden, batch_size, lr, repeats):
    """Best-of-``repeats`` wall time of one training epoch (after one warm-up epoch)."""
    with pynn.use_backend(backend_name):
        pynn.set_seed(0)
        model = _build_model(pynn, kind, hidden)
        _compile(pynn, model, lr)
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
            best = min(best, time.perf_counter() - t0)
    return best


def _isa_paths(C):
    """The ISA paths this build can run here (generic always; avx2 when compiled in and the CPU
    has AVX2+FMA), found by switching to each and back."""
    active, paths = C.isa(), []
    for isa in ("generic", "avx2"):
        try:
            C.set_isa(isa)
            paths.append(isa)
        except ValueError:
            pass
    C.set_isa(active)
    return paths


def _openmp_runtimes():
    """Files of the OpenMP runtimes mapped into this process (Linux /proc/self/maps): the system
    libgomp for a source build, ``pynn_cpu.libs/libgomp-<hash>`` for a repaired wheel, and any
    other library's own copy (torch ships one) when it was imported too."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if p.rsplit("/", 1)[-1].startswith(("libgomp", "libomp", "libiomp")))


def info(pynn):
    cov = pynn.coverage()
    native = sum(v == "native" for v in cov.values())
    print(f"pynn {pynn.__version__}  backend={pynn.backend.name()}  threads={pynn.get_num_threads()}")
    print(f"python {sys.version.split()[0]}  numpy {np.__version__}  package {pynn.__file__.rsplit('/', 1)[0]}")
    if pynn.backend.NATIVE_AVAILABLE:
        from pynn import _C
        print(f"isa: {_C.isa()} (paths runnable here: {', '.join(_isa_paths(_C))})")
        omp = _openmp_runtimes()
        print(f"openmp: {'yes' if _C.has_openmp else 'no (single-threaded build)'}"
              + (f"  runtime: {', '.join(omp)}" if omp else ""))
    else:
        print("native extension not built: every kernel runs on numpy")
    from pynn import _core
    pure_note = "  (PYNN_PURE_PYTHON=1)" if _core.PURE_REQUESTED else ""
    print(f"python core: {_core.name()}{pure_note}")
    for mod, (core, path) in _core.status().items():
        stale = "  (compiled module older than this .py: rebuild)" if mod in _core.STALE else ""
        print(f"  {mod:28s} {core:8s} {path}{stale}")
    print(f"native kernels: {native}/{len(cov)}")
    for name, where in cov.items():
        print(f"  {name:28s} {where}")


def demo(pynn, args):
    from pynn import datasets
    if not pynn.backend.NATIVE_AVAILABLE:
        print("warning: the native extension is not built; the demo runs on numpy only", file=sys.stderr)
    hidden = tuple(args.hidden) if args.hidden else ((64,) if args.model == "cnn" else (256, 128))
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(flatten=args.model == "mlp")
    print(f"digits (scikit-learn, bundled): {len(x_train)} train / {len(x_test)} test images of 8x8")
    main_backend = "native" if pynn.backend.NATIVE_AVAILABLE else "numpy"
    with pynn.use_backend(main_backend):
        pynn.set_seed(args.seed)
        model = _build_model(pynn, args.model, hidden)
        _compile(pynn, model, args.lr)
        model.summary()
        print(f"training on the {main_backend} backend")
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=1)
        loss, acc = model.evaluate(x_test, y_test)
    print(f"\ntest accuracy: {acc:.4f}  (test loss {loss:.4f})")

    if pynn.backend.NATIVE_AVAILABLE:
        print("\ntiming one training epoch on each backend (best of %d)..." % args.repeats)
        t_native = _epoch_time(pynn, "native", x_train, y_train, args.model, hidden, args.batch_size, args.lr,
                               args.repeats)
        t_numpy = _epoch_time(pynn, "numpy", x_train, y_train, args.model, hidden, args.batch_size, args.lr,
                              args.repeats)
        print(f"  native: {t_native * 1e3:8.1f} ms/epoch")
        print(f"  numpy : {t_numpy * 1e3:8.1f} ms/epoch")
        print(f"  speedup native vs numpy: {t_numpy / t_native:.2f}x")
    return acc


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pynn", description=__doc__)
    from . import __version__   # the package's version string, without loading the kernels
    parser.add_argument("--version", action="version", version=f"pynn {__version__}")
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="train a CNN (or an MLP) on the bundled digits, then compare backends",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d.add_argument("--model", choices=["cnn", "mlp"], default="cnn",
                   help="network to train: a small convnet or a multilayer perceptron")
    d.add_argument("--epochs", type=int, default=15, help="training epochs")
    d.add_argument("--batch-size", type=int, default=32, help="samples per optimizer step")
    d.add_argument("--hidden", type=int, nargs="+", default=None,
                   help="Dense widths (None: 64 for cnn, 256 128 for mlp)")
    d.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    d.add_argument("--repeats", type=int, default=3, help="timed epochs per backend (the best is reported)")
    d.add_argument("--seed", type=int, default=0, help="random seed (weight initialisation, shuffling, dropout)")
    sub.add_parser("info", help="print the build and which kernels are native")
    args = parser.parse_args(argv)

    import pynn
    if args.command == "demo":
        demo(pynn, args)
    elif args.command == "info":
        try:
            info(pynn)
        except BrokenPipeError:   # `python -m pynn info | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
