"""Lecture-style NumPy deep learning on the bundled digits: a two-layer MLP and a
small CNN (im2col written in NumPy), forward pass, manual backprop and SGD, all
spelled with plain ``np.``. The only line that differs between the NumPy run
and the pynn run is the one that binds the name ``np``:

    import numpy as np          # NumPy
    import pynn.ops as np       # pynn: same code, large float32 GEMMs on the native kernels

    python examples/numpy_mlp.py                      # both, timed, same seeds
    python examples/numpy_mlp.py --np pynn --model cnn --dtype float64
"""
import argparse
import importlib
import time

import numpy as np  # the one import line; --np pynn rebinds it to pynn.ops


# ----------------------------------------------------------------------------- MLP
def init_mlp(n_in, hidden, n_out, dtype, seed=0):
    rng = np.random.default_rng(seed)
    W1 = (rng.standard_normal((n_in, hidden)) * np.sqrt(2.0 / n_in)).astype(dtype)
    b1 = np.zeros(hidden, dtype=dtype)
    W2 = (rng.standard_normal((hidden, n_out)) * np.sqrt(2.0 / hidden)).astype(dtype)
    b2 = np.zeros(n_out, dtype=dtype)
    return [W1, b1, W2, b2]


def softmax_loss(scores, y):
    """Mean cross-entropy and its gradient w.r.t. the scores."""
    n = scores.shape[0]
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(shifted)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    loss = -np.mean(np.log(probs[np.arange(n), y] + 1e-12))
    dscores = probs.copy()
    dscores[np.arange(n), y] -= 1
    return loss, dscores / n


def mlp_epoch(params, X, y, batch_size, lr, rng):
    W1, b1, W2, b2 = params
    order = rng.permutation(X.shape[0])
    losses = []
    for start in range(0, X.shape[0], batch_size):
        idx = order[start:start + batch_size]
        xb, yb = X[idx], y[idx]
        z1 = np.dot(xb, W1) + b1                 # forward
        h = np.maximum(z1, 0)
        scores = np.dot(h, W2) + b2
        loss, dscores = softmax_loss(scores, yb)
        dW2 = np.dot(h.T, dscores)               # backward
        db2 = np.sum(dscores, axis=0)
        dh = np.dot(dscores, W2.T)
        dh[z1 <= 0] = 0
        dW1 = np.dot(xb.T, dh)
        db1 = np.sum(dh, axis=0)
        W1 -= lr * dW1                           # SGD, in place
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
        losses.append(loss)
    return float(np.mean(losses))


def mlp_predict(params, X):
    W1, b1, W2, b2 = params
    return np.argmax(np.dot(np.maximum(np.dot(X, W1) + b1, 0), W2) + b2, axis=1)


# ----------------------------------------------------------------------------- CNN
def im2col(x, k):
    """(N, H, W, C) -> (N·OH·OW, k·k·C) patches of a 'valid' k×k convolution."""
    N, H, W, C = x.shape
    OH, OW = H - k + 1, W - k + 1
    cols = np.zeros((N, OH, OW, k, k, C), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = x[:, i:i + OH, j:j + OW, :]
    return cols.reshape(N * OH * OW, k * k * C)


def init_cnn(C, filters, n_out, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    Wc = (rng.standard_normal((k * k * C, filters)) * np.sqrt(2.0 / (k * k * C))).astype(dtype)
    bc = np.zeros(filters, dtype=dtype)
    n_flat = 3 * 3 * filters  # 8x8 digits -> 6x6 valid conv -> 3x3 after 2x2 pooling
    Wf = (rng.standard_normal((n_flat, n_out)) * np.sqrt(2.0 / n_flat)).astype(dtype)
    bf = np.zeros(n_out, dtype=dtype)
    return [Wc, bc, Wf, bf]


def cnn_forward(params, xb, k=3):
    Wc, bc, Wf, bf = params
    N, H, W, C = xb.shape
    OH, OW, F = H - k + 1, W - k + 1, Wc.shape[1]
    cols = im2col(xb, k)
    z = np.dot(cols, Wc) + bc                         # convolution as one GEMM
    a = np.maximum(z, 0).reshape(N, OH, OW, F)
    windows = a.reshape(N, OH // 2, 2, OW // 2, 2, F)
    pooled = np.max(windows, axis=(2, 4))             # 2x2 max pooling
    flat = pooled.reshape(N, -1)
    scores = np.dot(flat, Wf) + bf
    return cols, z, windows, pooled, flat, scores


def cnn_epoch(params, X, y, batch_size, lr, rng, k=3):
    Wc, bc, Wf, bf = params
    order = rng.permutation(X.shape[0])
    losses = []
    for start in range(0, X.shape[0], batch_size):
        idx = order[start:start + batch_size]
        xb, yb = X[idx], y[idx]
        cols, z, windows, pooled, flat, scores = cnn_forward(params, xb, k)
        loss, dscores = softmax_loss(scores, yb)
        dWf = np.dot(flat.T, dscores)
        dbf = np.sum(dscores, axis=0)
        dpooled = np.dot(dscores, Wf.T).reshape(pooled.shape)
        mask = windows == pooled[:, :, np.newaxis, :, np.newaxis, :]   # route to the max (ties share)
        da = (mask * dpooled[:, :, np.newaxis, :, np.newaxis, :]).reshape(z.shape)
        dz = da * (z > 0)
        dWc = np.dot(cols.T, dz)
        dbc = np.sum(dz, axis=0)
        Wc -= lr * dWc
        bc -= lr * dbc
        Wf -= lr * dWf
        bf -= lr * dbf
        losses.append(loss)
    return float(np.mean(losses))


def cnn_predict(params, X):
    return np.argmax(cnn_forward(params, X)[-1], axis=1)


# ----------------------------------------------------------------------------- driver
def load(dtype, image=False):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    X = (d.images / 16.0).astype(dtype)
    X = X[..., np.newaxis] if image else X.reshape(len(X), -1)
    return train_test_split(X, d.target, test_size=0.2, random_state=0)


def run(model="mlp", hidden=128, batch_size=32, epochs=10, lr=0.1, dtype="float32", seed=0):
    """Train with whatever module is bound to ``np`` now; returns (losses, accuracy, seconds/epoch)."""
    X, Xt, y, yt = load(dtype, image=(model == "cnn"))
    rng = np.random.default_rng(seed)
    if model == "mlp":
        params, epoch, predict = init_mlp(X.shape[1], hidden, 10, dtype, seed), mlp_epoch, mlp_predict
    else:
        params, epoch, predict = init_cnn(1, hidden, 10, 3, dtype, seed), cnn_epoch, cnn_predict
    losses, t0 = [], time.perf_counter()
    for _ in range(epochs):
        losses.append(epoch(params, X, y, batch_size, lr, rng))
    seconds = (time.perf_counter() - t0) / epochs
    return losses, float(np.mean(predict(params, Xt) == yt)), seconds


def use(module_name):
    """Bind the global name ``np`` (what the lecture code above calls) to numpy or pynn.ops."""
    global np
    np = importlib.import_module({"numpy": "numpy", "pynn": "pynn.ops"}[module_name])
    return np


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--np", choices=["numpy", "pynn", "both"], default="both", help="module bound to the name np")
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp", help="two-layer MLP or the im2col CNN")
    p.add_argument("--hidden", type=int, default=128, help="MLP hidden units / CNN filters")
    p.add_argument("--batch-size", type=int, default=32, help="minibatch size")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="array dtype")
    args = p.parse_args()
    results = {}
    for name in (["numpy", "pynn"] if args.np == "both" else [args.np]):
        use(name)
        losses, acc, sec = run(args.model, args.hidden, args.batch_size, args.epochs, dtype=args.dtype)
        results[name] = (losses, acc, sec)
        print(f"np = {np.__name__:10s} {args.model} loss {losses[0]:.4f} -> {losses[-1]:.4f}  "
              f"test accuracy {acc:.4f}  {sec * 1e3:.1f} ms/epoch")
    if len(results) == 2:
        (l0, a0, s0), (l1, a1, s1) = results["numpy"], results["pynn"]
        print(f"max |loss difference| {max(abs(u - v) for u, v in zip(l0, l1)):.2e}, accuracy "
              f"{a0:.4f} vs {a1:.4f}; pynn.ops is {s0 / s1:.2f}x NumPy's speed")
