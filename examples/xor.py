"""XOR, the problem a perceptron cannot solve: a 2-8-1 network learns it and the
decision boundary is written to a PNG.

    python examples/xor.py [--epochs 800] [--out xor_boundary.png]
"""
import argparse

import numpy as np

import pynn
from pynn import layers, optimizers

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
Y = np.array([[0], [1], [1], [0]], np.float32)


def main(epochs=800, out="xor_boundary.png", verbose=0):
    pynn.set_seed(3)
    model = pynn.Sequential([layers.Input((2,)), layers.Dense(8, activation="tanh"),
                             layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(X, Y, batch_size=4, epochs=epochs, verbose=verbose)
    accuracy = model.evaluate(X, Y)[1]
    print(f"XOR accuracy: {accuracy:.2f}; predictions {model.predict(X).ravel().round(3)}")
    if out:
        pynn.plot_decision_boundary(model, X, Y, out)
        print(f"decision boundary written to {out}")
    return accuracy


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=800)
    p.add_argument("--out", default="xor_boundary.png")
    a = p.parse_args()
    main(a.epochs, a.out)
