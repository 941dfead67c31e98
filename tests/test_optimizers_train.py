"""Every optimizer trains the foundation's digits MLP, on both backends."""
import pytest

import pynn
from pynn import layers, optimizers

pytest.importorskip("sklearn")

# Learning rates as a Keras user would pick them for this model (Adadelta is
# meant to run at 1.0, as in torch and the original paper).
OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(learning_rate=0.1),
    "sgd_momentum_nesterov": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(learning_rate=1e-3),
    "adam_amsgrad": lambda: optimizers.Adam(learning_rate=1e-3, amsgrad=True),
    "adamw": lambda: optimizers.AdamW(learning_rate=1e-3),
    "rmsprop": lambda: optimizers.RMSprop(learning_rate=1e-3),
    "adagrad": lambda: optimizers.Adagrad(learning_rate=0.05),
    "adadelta": lambda: optimizers.Adadelta(learning_rate=1.0),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_trains_the_digits_mlp(backend_name, name):
    pynn.set_seed(0)
    (x, y), (xt, yt) = pynn.datasets.load_digits(flatten=True)
    model = pynn.Sequential([layers.Input((64,)), layers.Dense(64, activation="relu"),
                             layers.Dense(10, activation="softmax")])
    model.compile(optimizer=OPTIMIZERS[name](), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    acc = model.evaluate(xt, yt, return_dict=True)["accuracy"]
    assert acc >= 0.9, f"{name} on {backend_name}: test accuracy {acc:.3f}"
