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


def test_train_table_and_plot_run_end_to_end(bench_on_path, tmp_path, capsys):
    # A smoke run of the README's commands (one repeat, one row): the table and
    # the chart are produced; no timing is asserted.
    import json

    import train_table
    out = tmp_path / "t.json"
    train_table.main(["--repeat", "1", "--rows", "mlp", "--no-memory", "--json", str(out)])
    results = json.loads(out.read_text())["results"]
    assert [r["row"] for r in results] == ["mlp"]
    assert results[0]["ms"]["native"] > 0 and results[0]["ms"]["numpy"] > 0
    peak = train_table.peak_memory_mib("mlp", "native", threads=1)   # the subprocess measurement
    assert peak is None or 0 <= peak < 1024
    assert "| MLP 784-256-128-10 b128 |" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    import plot
    if results[0]["ms"].get("torch"):
        plot.main([str(out), str(tmp_path / "t.png")])
        assert (tmp_path / "t.png").stat().st_size > 1000
