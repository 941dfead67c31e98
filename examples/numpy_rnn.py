"""Lecture-style NumPy LSTM language model (min-char-rnn, batched, as in CS231n's
rnn_layers): embedding by one-hot, LSTM cells and a softmax readout, forward, manual
backprop through time, gradient clipping and Adam, all spelled with plain ``np.``. The
only line that differs between the NumPy run and the pynn run is the one that binds ``np``:

    import numpy as np          # NumPy
    import pynn.ops as np       # pynn: same code, large float32 GEMMs on the native kernels

    python examples/numpy_rnn.py                      # both, timed, same seeds
    python examples/numpy_rnn.py --np pynn --hidden 256 --dtype float64
"""
import argparse
import importlib
import time

import numpy as np  # the one import line; --np pynn rebinds it to pynn.ops

TEXT = ("the quick brown fox jumps over the lazy dog. a recurrent network reads one character at a "
        "time and learns to predict the next one from the ones it has seen. gradients flow back "
        "through every step, so they are clipped before each update. ") * 8


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def init_lstm(vocab, hidden, dtype, seed=0):
    rng = np.random.default_rng(seed)
    Wx = (rng.standard_normal((vocab, 4 * hidden)) / np.sqrt(vocab)).astype(dtype)
    Wh = (rng.standard_normal((hidden, 4 * hidden)) / np.sqrt(hidden)).astype(dtype)
    b = np.zeros(4 * hidden, dtype=dtype)
    b[hidden:2 * hidden] = 1.0                       # forget-gate bias: remember by default
    Wy = (rng.standard_normal((hidden, vocab)) / np.sqrt(hidden)).astype(dtype)
    by = np.zeros(vocab, dtype=dtype)
    return [Wx, Wh, b, Wy, by]


def lstm_loss(params, xs, ys, h0):
    """Mean cross-entropy over (N, T) targets and the gradients, by backprop through time."""
    Wx, Wh, b, Wy, by = params
    N, T, V = xs.shape
    H = Wh.shape[0]
    h, c = h0, np.zeros_like(h0)
    cache, loss = [], 0.0
    dWx, dWh, db, dWy, dby = (np.zeros_like(p) for p in params)
    for t in range(T):                              # forward
        a = np.dot(xs[:, t], Wx) + np.dot(h, Wh) + b
        i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H])
        g = np.tanh(a[:, 3 * H:])
        c_next = f * c + i * g
        tc = np.tanh(c_next)
        h_next = o * tc
        scores = np.dot(h_next, Wy) + by
        scores -= np.max(scores, axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= np.sum(probs, axis=1, keepdims=True)
        loss += -np.sum(np.log(probs[np.arange(N), ys[:, t]])) / (N * T)
        cache.append((xs[:, t], h, c, i, f, o, g, tc, h_next, probs))
        h, c = h_next, c_next
    dh_next, dc_next = np.zeros_like(h0), np.zeros_like(h0)
    for t in reversed(range(T)):                    # backward through time
        x, h_prev, c_prev, i, f, o, g, tc, h_t, probs = cache[t]
        dscores = probs.copy()
        dscores[np.arange(N), ys[:, t]] -= 1
        dscores /= N * T
        dWy += np.dot(h_t.T, dscores)
        dby += np.sum(dscores, axis=0)
        dh = np.dot(dscores, Wy.T) + dh_next
        dc = dc_next + dh * o * (1 - tc * tc)
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dh * tc * o * (1 - o),
                             dc * i * (1 - g * g)], axis=1)
        dWx += np.dot(x.T, da)
        dWh += np.dot(h_prev.T, da)
        db += np.sum(da, axis=0)
        dh_next = np.dot(da, Wh.T)
        dc_next = dc * f
    grads = [dWx, dWh, db, dWy, dby]
    for d in grads:
        np.clip(d, -5.0, 5.0, out=d)                # clip in place
    return loss, grads, h


def adam(params, grads, state, t, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    for p, g, (m, v) in zip(params, grads, state):
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * np.square(g)
        p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


def batches(text, chars, batch_size, steps):
    """(N, T, V) one-hot inputs and (N, T) next-character targets, N windows side by side."""
    ids = np.array([chars.index(ch) for ch in text])
    span = (len(ids) - 1) // batch_size
    rows = np.stack([ids[k * span:(k + 1) * span + 1] for k in range(batch_size)])
    eye = np.eye(len(chars))
    for start in range(0, span - steps + 1, steps):
        window = rows[:, start:start + steps + 1]
        yield eye[window[:, :-1]], window[:, 1:]


def run(hidden=128, batch_size=32, steps=16, epochs=3, dtype="float32", seed=0):
    """Train with whatever module is bound to ``np`` now; returns (losses, seconds/epoch)."""
    chars = sorted(set(TEXT))
    params = init_lstm(len(chars), hidden, dtype, seed)
    state = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    losses, t, t0 = [], 0, time.perf_counter()
    for _ in range(epochs):
        h = np.zeros((batch_size, hidden), dtype=dtype)
        epoch_losses = []
        for xs, ys in batches(TEXT, chars, batch_size, steps):
            t += 1
            loss, grads, h = lstm_loss(params, xs.astype(dtype), ys, h)
            adam(params, grads, state, t)
            epoch_losses.append(loss)
        losses.append(float(np.mean(epoch_losses)))
    return losses, (time.perf_counter() - t0) / epochs


def use(module_name):
    """Bind the global name ``np`` (what the lecture code above calls) to numpy or pynn.ops."""
    global np
    np = importlib.import_module({"numpy": "numpy", "pynn": "pynn.ops"}[module_name])
    return np


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--np", choices=["numpy", "pynn", "both"], default="both", help="module bound to the name np")
    p.add_argument("--hidden", type=int, default=128, help="LSTM hidden units")
    p.add_argument("--batch-size", type=int, default=32, help="sequences side by side")
    p.add_argument("--steps", type=int, default=16, help="time steps per truncated BPTT window")
    p.add_argument("--epochs", type=int, default=3, help="passes over the text")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="array dtype")
    args = p.parse_args()
    results = {}
    for name in (["numpy", "pynn"] if args.np == "both" else [args.np]):
        use(name)
        losses, sec = run(args.hidden, args.batch_size, args.steps, args.epochs, args.dtype)
        results[name] = (losses, sec)
        print(f"np = {np.__name__:10s} loss {losses[0]:.4f} -> {losses[-1]:.4f}  {sec * 1e3:.1f} ms/epoch")
    if len(results) == 2:
        (l0, s0), (l1, s1) = results["numpy"], results["pynn"]
        print(f"max |loss difference| {max(abs(u - v) for u, v in zip(l0, l1)):.2e}; "
              f"pynn.ops is {s0 / s1:.2f}x NumPy's speed")
