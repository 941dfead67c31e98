"""A ResNet-style functional model on the bundled digits: residual blocks
``x + F(x)`` joined with ``layers.Add``, BatchNormalization, early stopping
with restore_best_weights, and the training curves written to a PNG.

    python examples/resnet_functional.py [--epochs 40] [--plot history.png]
"""
import argparse

import pynn
from pynn import callbacks, datasets, layers, optimizers


def residual_block(x, units):
    h = layers.Dense(units, activation="relu")(x)
    h = layers.BatchNormalization()(h)
    h = layers.Dense(units)(h)
    return layers.Activation("relu")(layers.Add()([x, h]))


def build(units=64, blocks=2):
    inp = pynn.Input((64,))
    x = layers.Dense(units, activation="relu")(inp)
    for _ in range(blocks):
        x = residual_block(x, units)
    out = layers.Dense(10, activation="softmax")(layers.Dropout(0.2)(x))
    return pynn.Model(inp, out, name="resnet_mlp")


def main(epochs=40, plot=None, verbose=0):
    pynn.set_seed(0)
    (x, y), (xt, yt) = datasets.load_digits(flatten=True)
    model = build()
    model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if verbose:
        model.summary()
    history = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.15, verbose=verbose,
                        callbacks=[callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    acc = model.evaluate(xt, yt, return_dict=True)["accuracy"]
    print(f"ResNet-style MLP: {len(history.history['loss'])} epochs, test accuracy {acc:.4f}")
    if plot:
        pynn.plot_history(history, plot)
    return acc, history


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--plot", default=None)
    a = p.parse_args()
    main(a.epochs, a.plot, verbose=1)
