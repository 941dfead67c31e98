"""Sequence-to-sequence with attention: learn to reverse strings of digits.

Encoder: Embedding -> Bidirectional GRU. Decoder: Embedding -> GRU over the
shifted target (teacher forcing), Luong attention over the encoder states,
then a softmax over the vocabulary at every step. Decoding is greedy, one
token at a time.

    python examples/seq2seq_reverse.py [--epochs 30] [--length 5]
"""
import argparse

import numpy as np

import pynn
from pynn import layers, optimizers

START = 11  # ids: 0 pad (unused), 1..10 digits 0..9, 11 start-of-sequence


def make_data(n, length, seed):
    r = np.random.default_rng(seed)
    x = r.integers(1, 11, (n, length))
    y = x[:, ::-1].copy()
    decoder_in = np.concatenate([np.full((n, 1), START), y[:, :-1]], axis=1)
    return x, decoder_in, y


def build(length, units=64):
    enc_in, dec_in = pynn.Input((length,), dtype="int64"), pynn.Input((length,), dtype="int64")
    enc = layers.Bidirectional(layers.GRU(units, return_sequences=True))(layers.Embedding(12, 32)(enc_in))
    dec = layers.GRU(2 * units, return_sequences=True)(layers.Embedding(12, 32)(dec_in))
    context = layers.Attention()([dec, enc])
    out = layers.TimeDistributed(layers.Dense(12, activation="softmax"))(layers.Concatenate()([dec, context]))
    return pynn.Model([enc_in, dec_in], out, name="seq2seq_attention")


def greedy_decode(model, x, length):
    dec = np.zeros_like(x)
    dec[:, 0] = START
    for i in range(length):
        step = model.predict([x, dec], batch_size=256, verbose=0)[:, i].argmax(-1)
        if i + 1 < length:
            dec[:, i + 1] = step
        out = step if i == 0 else np.column_stack([out, step])
    return out


def main(epochs=30, length=5, n_train=4000, verbose=0):
    pynn.set_seed(0)
    x, dec_in, y = make_data(n_train, length, seed=0)
    xt, _, yt = make_data(500, length, seed=1)
    model = build(length)
    model.compile(optimizer=optimizers.Adam(learning_rate=3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit([x, dec_in], y, epochs=epochs, batch_size=64, verbose=verbose)
    pred = greedy_decode(model, xt, length)
    exact = float(np.mean(np.all(pred == yt, axis=1)))
    print(f"reversing {length}-digit strings: exact-sequence accuracy {exact:.4f} on 500 unseen strings")
    return exact


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--length", type=int, default=5)
    a = p.parse_args()
    main(a.epochs, a.length, verbose=1)
