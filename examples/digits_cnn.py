"""A small CNN on the bundled 8x8 digits, two ways:

1. ``Sequential``: Conv-Pool-Conv-Pool-Dense ("same" padding keeps 8x8 -> 4x4 -> 2x2).
2. A subclassed ``pynn.Model`` with a ResNet-style block: two conv paths
   (3x3 -> 3x3, and a 1x1 projection) added with ``+``, then ReLU.

    python examples/digits_cnn.py [--epochs 15] [--model cnn|resnet|both] [--backend native|numpy]

``main(epochs=...)`` returns the test accuracy of the last model trained, so a
test can run it at a smaller setting.
"""
import argparse
import time

import numpy as np

import pynn
import pynn.functional as F
from pynn import layers


def build_cnn():
    return pynn.Sequential([
        layers.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10),
    ], name="digits_cnn")


class ResidualBlock(pynn.Model):
    """relu(conv3x3(relu(conv3x3(x))) + conv1x1(x)): the skip path projects the channels."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv_a = layers.Conv2D(filters, 3, padding="same", activation="relu")
        self.conv_b = layers.Conv2D(filters, 3, padding="same")
        self.shortcut = layers.Conv2D(filters, 1)

    def call(self, x, training=False):
        return F.relu(self.conv_b(self.conv_a(x)) + self.shortcut(x))


class DigitsResNet(pynn.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.stem = layers.Conv2D(16, 3, padding="same", activation="relu")
        self.block = ResidualBlock(32)
        self.pool = layers.MaxPooling2D(2)
        self.flatten = layers.Flatten()
        self.head = layers.Dense(10)

    def call(self, x, training=False):
        x = self.block(self.stem(x))
        return self.head(self.flatten(self.pool(x)))


def train(model, data, epochs, batch_size=32, verbose=1):
    (x_train, y_train), (x_test, y_test) = data
    model(x_train[:2])  # build the weights before the optimizer sees them
    model.compile(optimizer="adam", loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose)
    seconds = time.perf_counter() - start
    logits = model.predict(x_test, batch_size=256)
    accuracy = float(np.mean(np.argmax(np.asarray(logits), axis=-1) == y_test))
    return accuracy, seconds


def main(epochs=15, model="both", seed=0, verbose=1):
    """Train the chosen model(s) on digits; return the test accuracy of the last one."""
    pynn.set_seed(seed)
    data = pynn.datasets.load_digits()
    accuracy = None
    for name in (["cnn", "resnet"] if model == "both" else [model]):
        net = build_cnn() if name == "cnn" else DigitsResNet(name="digits_resnet")
        accuracy, seconds = train(net, data, epochs, verbose=verbose)
        if verbose:
            if name == "cnn":
                net.summary()
            print(f"{name}: test accuracy {accuracy:.4f} after {epochs} epochs, {seconds:.1f} s "
                  f"on the {pynn.backend.name()} backend")
    return accuracy


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="CNN and ResNet-style block on the 8x8 digits")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--model", choices=["cnn", "resnet", "both"], default="both")
    ap.add_argument("--backend", choices=["native", "numpy"], default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.backend:
        pynn.set_backend(args.backend)
    main(args.epochs, args.model, args.seed)
