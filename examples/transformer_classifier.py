"""A small Transformer encoder classifier: token + learned position embeddings,
one TransformerEncoder block, average pooling, softmax. The task needs global
attention: does token 1 occur more often than token 2 in the sequence?

    python examples/transformer_classifier.py [--epochs 20]
"""
import argparse

import numpy as np

import pynn
from pynn import layers, optimizers

LENGTH, VOCAB = 10, 5


def make_data(n, seed):
    x = np.random.default_rng(seed).integers(1, VOCAB, (n, LENGTH))
    return x, ((x == 1).sum(1) > (x == 2).sum(1)).astype(np.int64)


def build(dim=16, heads=2):
    inp = pynn.Input((LENGTH,), dtype="int64")
    tokens = layers.Embedding(VOCAB, dim)(inp)
    h = layers.Add()([tokens, layers.PositionEmbedding(LENGTH)(tokens)])
    h = layers.TransformerEncoder(intermediate_dim=2 * dim, num_heads=heads)(h)
    out = layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(h))
    return pynn.Model(inp, out, name="transformer_classifier")


def main(epochs=20, n_train=800, verbose=0):
    pynn.set_seed(0)
    (x, y), (xt, yt) = make_data(n_train, 0), make_data(400, 1)
    model = build()
    model.compile(optimizer=optimizers.Adam(learning_rate=3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=verbose)
    acc = model.evaluate(xt, yt, return_dict=True)["accuracy"]
    print(f"Transformer encoder classifier: test accuracy {acc:.4f} (majority {max(yt.mean(), 1 - yt.mean()):.4f})")
    return acc


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    main(p.parse_args().epochs, verbose=1)
