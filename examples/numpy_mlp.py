"""A hand-written NumPy MLP (manual backprop) on the bundled digits, run twice:
once with plain NumPy, once with ``a @ b`` and the activations swapped for
``pynn.ops`` — the drop-in face of pynn. Prints both timings.

    python examples/numpy_mlp.py [--epochs 30] [--hidden 512]
"""
import argparse
import time

import numpy as np

import pynn
from pynn import ops

try:
    from tqdm import trange
except ImportError:  # tqdm comes with the [examples] extra; plain range otherwise
    trange = range


class NumpyOps:
    """The same operations, spelled in plain NumPy."""

    @staticmethod
    def matmul(a, b):
        return a @ b

    @staticmethod
    def dense(x, w, b=None, activation=None):
        y = x @ w + b
        return np.maximum(y, 0) if activation == "relu" else y

    @staticmethod
    def softmax_cross_entropy(logits, labels):
        z = logits - logits.max(-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
        one_hot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
        return -(one_hot * log_p).sum(-1), np.exp(log_p) - one_hot


def train(k, x, y, x_test, y_test, hidden, epochs, batch_size=64, lr=0.1, seed=0):
    """Two-layer MLP, SGD, softmax cross-entropy; ``k`` supplies the kernels."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((x.shape[1], hidden)) * np.sqrt(2 / x.shape[1])).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    w2 = (rng.standard_normal((hidden, 10)) * np.sqrt(2 / hidden)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    for _ in trange(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            h = k.dense(xb, w1, b1, activation="relu")          # forward
            logits = k.dense(h, w2, b2)
            _, dlogits = k.softmax_cross_entropy(logits, yb)
            dlogits /= len(xb)
            dw2 = k.matmul(h.T, dlogits)                         # backward: transposes are views
            dh = k.matmul(dlogits, w2.T) * (h > 0)
            dw1 = k.matmul(xb.T, dh)
            w2 -= lr * dw2
            b2 -= lr * dlogits.sum(0)
            w1 -= lr * dw1
            b1 -= lr * dh.sum(0)
    logits = k.dense(k.dense(x_test, w1, b1, activation="relu"), w2, b2)
    return float((logits.argmax(-1) == y_test).mean())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = pynn.datasets.load_digits(flatten=True)
    results = {}
    for name, k in (("numpy", NumpyOps), (f"pynn.ops ({pynn.backend.name()})", ops)):
        t0 = time.perf_counter()
        acc = train(k, x_train, y_train, x_test, y_test, args.hidden, args.epochs)
        results[name] = time.perf_counter() - t0
        print(f"{name:22s} test accuracy {acc:.4f}  time {results[name]:.2f} s")
    t_np, t_pynn = results.values()
    print(f"speedup pynn.ops vs numpy: {t_np / t_pynn:.2f}x")
