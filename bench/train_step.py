"""One full training step (forward, loss, backward, optimizer update) of the
MLP 784-256-128-10 at batch 128 with Adam, built identically in pynn and
PyTorch. Used by bench/test_train_step.py and bench/report.py."""
import numpy as np

import pynn
from pynn import layers

SIZES = (784, 256, 128, 10)
BATCH = 128


def data(seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((BATCH, SIZES[0])).astype(np.float32), r.integers(0, SIZES[-1], BATCH)


def pynn_step(x, y):
    """A callable running one pynn training step on the active backend."""
    pynn.set_seed(0)
    model = pynn.Sequential([layers.Input((SIZES[0],))]
                            + [layers.Dense(n, activation="relu") for n in SIZES[1:-1]]
                            + [layers.Dense(SIZES[-1])])
    model.compile(optimizer=pynn.optimizers.Adam(1e-3),
                  loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return lambda: model.train_on_batch(x, y)


def torch_step(x, y):
    import torch
    torch.manual_seed(0)
    mods = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(SIZES) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(np.asarray(y, np.int64))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()
    return step
