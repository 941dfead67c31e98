"""Transfer learning on the bundled digits: learn features on the digits 0-4,
freeze them, and fit a new head on the digits 5-9 from only a few labelled
examples per class. Compared with the same network trained from scratch on
those few examples.

    python examples/transfer_learning.py [--per-class 10]
"""
import argparse

import numpy as np

import pynn
from pynn import datasets, layers, optimizers


def _few(x, y, per_class, seed):
    r = np.random.default_rng(seed)
    idx = np.concatenate([r.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)])
    return x[idx], y[idx]


def _head(features_trainable, base=None):
    inp = pynn.Input((64,))
    if base is None:
        base = pynn.Sequential([layers.Input((64,)), layers.Dense(128, activation="relu"),
                                layers.Dense(64, activation="relu")], name="features")
    base.trainable = features_trainable
    out = layers.Dense(5, activation="softmax", name="head")(base(inp))
    return pynn.Model(inp, out), base


def main(per_class=10, pretrain_epochs=30, finetune_epochs=100, verbose=0):
    (x, y), (xt, yt) = datasets.load_digits(flatten=True)
    low, high = y < 5, y >= 5
    pynn.set_seed(0)
    # 1. pretrain features + a 5-way head on the digits 0-4 (all their data)
    pre, base = _head(True)
    pre.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    pre.fit(x[low], y[low], epochs=pretrain_epochs, batch_size=32, verbose=verbose)
    # 2. freeze the features, new head on 5-9 from a few examples
    xf, yf = _few(x[high], y[high] - 5, per_class, seed=1)
    pynn.set_seed(1)
    tuned, _ = _head(False, base)
    tuned.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    tuned.fit(xf, yf, epochs=finetune_epochs, batch_size=16, verbose=verbose)
    acc_transfer = tuned.evaluate(xt[yt >= 5], yt[yt >= 5] - 5, return_dict=True)["accuracy"]
    # 3. the same network from scratch on the same few examples
    pynn.set_seed(1)
    scratch, _ = _head(True)
    scratch.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    scratch.fit(xf, yf, epochs=finetune_epochs, batch_size=16, verbose=verbose)
    acc_scratch = scratch.evaluate(xt[yt >= 5], yt[yt >= 5] - 5, return_dict=True)["accuracy"]
    print(f"digits 5-9 from {per_class} examples per class: transfer {acc_transfer:.4f}, "
          f"from scratch {acc_scratch:.4f}")
    return acc_transfer, acc_scratch


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=10)
    main(p.parse_args().per_class, verbose=0)
