"""CTC: transcribe unsegmented sequences. Each input step is a noisy one-hot of a
symbol that is held for 2-3 steps; the model (bidirectional GRU + per-step
softmax) is trained with the CTC loss on the symbol sequence alone, with no
alignment, and decoded greedily (collapse repeats, drop blanks).

    python examples/ctc_transcription.py [--epochs 25]
"""
import argparse

import numpy as np

import pynn
from pynn import layers, optimizers

STEPS, CLASSES = 12, 4  # blank 0, symbols 1..3


def make_data(n, seed):
    r = np.random.default_rng(seed)
    x = np.zeros((n, STEPS, CLASSES), np.float32)
    y = np.full((n, 4), -1)
    for i in range(n):
        symbols = r.integers(1, CLASSES, r.integers(2, 5))
        steps = np.concatenate([[s] * r.integers(2, 4) for s in symbols])[:STEPS]
        x[i, np.arange(len(steps)), steps] = 1.0
        collapsed = [s for j, s in enumerate(steps) if j == 0 or s != steps[j - 1]]
        y[i, :len(collapsed)] = collapsed
    return x + r.normal(0, 0.1, x.shape).astype(np.float32), y


def greedy_decode(scores):
    best = scores.argmax(-1)
    return [[int(s) for j, s in enumerate(row) if s != 0 and (j == 0 or s != row[j - 1])] for row in best]


def main(epochs=25, n_train=512, verbose=0):
    pynn.set_seed(0)
    (x, y), (xt, yt) = make_data(n_train, 3), make_data(200, 4)
    model = pynn.Sequential([layers.Input((STEPS, CLASSES)),
                             layers.Bidirectional(layers.GRU(16, return_sequences=True)),
                             layers.TimeDistributed(layers.Dense(CLASSES))])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss=pynn.losses.CTC(blank=0))
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=verbose)
    decoded = greedy_decode(model.predict(xt))
    truth = [[int(s) for s in row if s != -1] for row in yt]
    exact = float(np.mean([d == t for d, t in zip(decoded, truth)]))
    print(f"CTC: exact transcriptions {exact:.4f} of {len(truth)} unseen sequences")
    return exact


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=25)
    main(p.parse_args().epochs, verbose=1)
