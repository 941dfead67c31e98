"""The training-step benchmark (bench/train_step.py) compares like with like:
with pynn's weights copied into the PyTorch twin (layouts converted), both
compute the same loss and the same gradient with respect to the input batch."""
import numpy as np
import pytest

import pynn


@pytest.fixture
def train_step(bench_on_path):
    import train_step
    return train_step


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm", "transformer"])
def test_benchmark_models_match_their_pytorch_twins(train_step, name, backend_name):
    torch = pytest.importorskip("torch")
    s = train_step.STEPS[name]
    x, y = s.data()
    x, y = x[:8], y[:8]
    pynn.set_seed(0)
    model = s.pynn_model()
    tmodel = s.torch_model(torch)
    train_step.copy_weights_to_torch(name, model, tmodel, torch)

    loss_fn = pynn.losses.SparseCategoricalCrossentropy(from_logits=True)
    xp = pynn.Tensor(x, requires_grad=True)
    loss = loss_fn(y, model(xp, training=True))
    loss.backward()

    xt = torch.from_numpy(s.torch_layout(x) if s.torch_layout else x.copy()).requires_grad_(True)
    tloss = torch.nn.functional.cross_entropy(tmodel(xt), torch.from_numpy(y.astype(np.int64)))
    tloss.backward()

    np.testing.assert_allclose(float(loss.data), tloss.item(), rtol=1e-4)
    gx = xt.grad.numpy()
    if s.torch_layout:
        gx = gx.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(xp.grad, gx, rtol=1e-3, atol=1e-6 * np.abs(gx).max())
