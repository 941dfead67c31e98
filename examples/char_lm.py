"""A character-level language model: an LSTM reads 40 characters of the Zen of
Python (``import this``, shipped with Python) and predicts the next one, then
writes new text by sampling a character at a time.

    python examples/char_lm.py [--epochs 40] [--temperature 0.5]
"""
import argparse
import codecs

import numpy as np

import pynn
from pynn import layers, optimizers

WINDOW = 40


def zen():
    import this  # noqa: F401  (prints the Zen once; its text is stored rot13-encoded)
    return codecs.decode(this.s, "rot13")


def main(epochs=40, temperature=0.5, length=300, verbose=0):
    pynn.set_seed(0)
    text = zen()
    chars = sorted(set(text))
    idx = {c: i for i, c in enumerate(chars)}
    ids = np.array([idx[c] for c in text])
    x = np.stack([ids[i:i + WINDOW] for i in range(len(ids) - WINDOW)])
    y = ids[WINDOW:]
    model = pynn.Sequential([layers.Input((WINDOW,), dtype="int64"), layers.Embedding(len(chars), 24),
                             layers.LSTM(128), layers.Dense(len(chars), activation="softmax")])
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, batch_size=64, verbose=verbose)
    rng = np.random.default_rng(1)
    window = list(ids[:WINDOW])
    out = []
    for _ in range(length):
        p = model.predict(np.array([window[-WINDOW:]]), verbose=0)[0].astype(np.float64)
        logp = np.log(np.maximum(p, 1e-12)) / temperature
        p = np.exp(logp - logp.max())
        nxt = int(rng.choice(len(chars), p=p / p.sum()))
        out.append(chars[nxt])
        window.append(nxt)
    sample = text[:WINDOW] + "".join(out)
    print(sample)
    return history.history["loss"], sample


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--temperature", type=float, default=0.5)
    a = p.parse_args()
    main(a.epochs, a.temperature, verbose=1)
