"""One full training step (forward, loss, backward, optimizer update) of the
models issue #9 names, built identically in pynn and in PyTorch CPU:

    mlp          MLP 784-256-128-10, batch 128, Adam
    cnn          Conv(1->32,3x3)-MaxPool-Conv(32->64,3x3)-MaxPool-Dense(1600->128)-Dense(10),
                 28x28x1, batch 64, Adam
    lstm         LSTM(128) over 50 steps of 32 features, batch 64, then Dense(10), Adam
    transformer  one Transformer encoder block (d=128, 4 heads, feed-forward 512, post-norm,
                 relu), seq 64, batch 32, mean over time, Dense(10), Adam

Every model ends in 10 logits and a sparse softmax cross-entropy on integer
labels. pynn's layout is channels-last (N, H, W, C), PyTorch's (N, C, H, W):
each side gets its own layout of the same data before timing starts.

``STEPS[name].pynn(x, y)`` / ``.torch(x, y)`` return a callable that runs one
step on the active pynn backend / on PyTorch. Used by bench/test_train_step.py,
bench/train_table.py and bench/report.py.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

import pynn
from pynn import layers

LR = 1e-3


# ------------------------------------------------------------ pynn models
def _pynn_mlp():
    return pynn.Sequential([layers.Input((784,)), layers.Dense(256, activation="relu"),
                            layers.Dense(128, activation="relu"), layers.Dense(10)])


def _pynn_cnn():
    return pynn.Sequential([layers.Input((28, 28, 1)),
                            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                            layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10)])


def _pynn_lstm():
    return pynn.Sequential([layers.Input((50, 32)), layers.LSTM(128), layers.Dense(10)])


def _pynn_transformer():
    return pynn.Sequential([layers.Input((64, 128)),
                            layers.TransformerEncoder(intermediate_dim=512, num_heads=4),
                            layers.GlobalAveragePooling1D(), layers.Dense(10)])


def copy_encoder_to_torch(enc, blk, t):
    """Copy a built pynn TransformerEncoder's weights into torch's nn.TransformerEncoderLayer
    ``blk`` (under torch.no_grad()); ``t`` turns an ndarray into a torch tensor. Keras kernels
    are (in, out) and torch's (out, in); torch packs the query/key/value projections into one."""
    mha = enc.attention
    d = mha.num_heads * mha.key_dim
    names = ("query", "key", "value")
    blk.self_attn.in_proj_weight.copy_(t(np.concatenate(
        [getattr(mha, f"{n}_kernel").data.reshape(d, d).T for n in names], 0)))
    blk.self_attn.in_proj_bias.copy_(t(np.concatenate([getattr(mha, f"{n}_bias").data.reshape(d) for n in names])))
    blk.self_attn.out_proj.weight.copy_(t(mha.output_kernel.data.reshape(d, d).T))
    blk.self_attn.out_proj.bias.copy_(t(mha.output_bias.data))
    for ours, theirs in ((enc.ff1, blk.linear1), (enc.ff2, blk.linear2)):
        theirs.weight.copy_(t(ours.kernel.data.T))
        theirs.bias.copy_(t(ours.bias.data))
    for ours, theirs in ((enc.norm1, blk.norm1), (enc.norm2, blk.norm2)):
        theirs.weight.copy_(t(ours.gamma.data))
        theirs.bias.copy_(t(ours.beta.data))


# ----------------------------------------------------------- torch models
def _torch_mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def _torch_cnn(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))


def _torch_lstm(torch):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(32, 128, batch_first=True)
            self.head = nn.Linear(128, 10)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.head(h[-1])
    return Net()


def _torch_transformer(torch):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            # dropout=0 as pynn's default; the fast path only applies to inference.
            self.block = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0,
                                                    activation="relu", batch_first=True, norm_first=False)
            self.head = nn.Linear(128, 10)

        def forward(self, x):
            return self.head(self.block(x).mean(dim=1))
    return Net()


# ------------------------------------------------------------------ data
def _nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


@dataclass(frozen=True)
class Step:
    title: str
    batch: int
    input_shape: tuple             # per sample, pynn layout
    pynn_model: Callable
    torch_model: Callable
    torch_layout: Callable = None  # pynn-layout batch -> torch-layout batch

    def data(self, seed=0):
        r = np.random.default_rng(seed)
        x = r.standard_normal((self.batch, *self.input_shape)).astype(np.float32)
        return x, r.integers(0, 10, self.batch)

    def pynn(self, x, y):
        """A callable running one pynn training step on the active backend."""
        pynn.set_seed(0)
        model = self.pynn_model()
        model.compile(optimizer=pynn.optimizers.Adam(LR),
                      loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
        return lambda: model.train_on_batch(x, y)

    def torch(self, x, y):
        """A callable running one PyTorch CPU training step."""
        import torch
        torch.manual_seed(0)
        model = self.torch_model(torch)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt = torch.from_numpy(self.torch_layout(x) if self.torch_layout else x)
        yt = torch.from_numpy(np.asarray(y, np.int64))

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt), yt)
            loss.backward()
            opt.step()
            return loss.item()
        return step


STEPS = {
    "mlp": Step("MLP 784-256-128-10 b128", 128, (784,), _pynn_mlp, _torch_mlp),
    "cnn": Step("CNN 28x28 conv32-pool-conv64-pool-128-10 b64", 64, (28, 28, 1), _pynn_cnn, _torch_cnn, _nchw),
    "lstm": Step("LSTM(128) 50 steps x 32 b64 + Dense(10)", 64, (50, 32), _pynn_lstm, _torch_lstm),
    "transformer": Step("Transformer block d128 4 heads seq64 b32", 32, (64, 128), _pynn_transformer,
                        _torch_transformer),
}


# ------------------------------------------- same weights on both sides
def copy_weights_to_torch(name, model, tmodel, torch):
    """Load pynn ``model``'s weights into the PyTorch twin ``tmodel`` (layouts
    converted), so tests can check the two compute the same loss and gradients:
    the benchmark compares like with like."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.no_grad():
        if name in ("mlp", "cnn"):
            mods = [m for m in tmodel if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
            params = [lay for lay in model.layers if lay.weights]
            for lay, mod in zip(params, mods):
                k, b = lay.weights[0].data, lay.weights[1].data
                if k.ndim == 4:                       # (kh, kw, in, out) -> (out, in, kh, kw)
                    k = k.transpose(3, 2, 0, 1)
                elif name == "cnn" and k.shape[0] == 1600:
                    # pynn flattens (5, 5, 64) channels-last; torch flattens (64, 5, 5)
                    k = k.reshape(5, 5, 64, -1).transpose(2, 0, 1, 3).reshape(1600, -1).T
                else:
                    k = k.T
                mod.weight.copy_(t(k))
                mod.bias.copy_(t(b))
        elif name == "lstm":
            lstm, dense = model.layers[0], model.layers[1]
            k, rk, b = (w.data for w in lstm.weights)   # Keras gate order i, f, c, o == torch's i, f, g, o
            tmodel.lstm.weight_ih_l0.copy_(t(k.T))
            tmodel.lstm.weight_hh_l0.copy_(t(rk.T))
            tmodel.lstm.bias_ih_l0.copy_(t(b))
            tmodel.lstm.bias_hh_l0.zero_()
            tmodel.head.weight.copy_(t(dense.weights[0].data.T))
            tmodel.head.bias.copy_(t(dense.weights[1].data))
        elif name == "transformer":
            enc, dense = model.layers[0], model.layers[2]
            copy_encoder_to_torch(enc, tmodel.block, t)
            tmodel.head.weight.copy_(t(dense.weights[0].data.T))
            tmodel.head.bias.copy_(t(dense.weights[1].data))
        else:
            raise KeyError(name)
