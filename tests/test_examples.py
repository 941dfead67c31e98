"""Every example runs, and reaches its published number (at full or reduced settings)."""
import importlib
import numpy as np

import pytest

pytest.importorskip("sklearn")
pytestmark = pytest.mark.usefixtures("examples_on_path")


def example(name):
    return importlib.import_module(name)


def test_xor_example_reaches_100_percent_and_writes_its_boundary(tmp_path):
    pytest.importorskip("matplotlib")
    assert example("xor").main(epochs=800, out=str(tmp_path / "xor.png")) == 1.0
    assert (tmp_path / "xor.png").stat().st_size > 1000


@pytest.mark.parametrize("problem,threshold", [("breast_cancer", 0.95), ("iris", 0.93), ("wine", 0.95)])
def test_tabular_classifiers_reach_their_accuracy(problem, threshold):
    assert example("tabular").PROBLEMS[problem]() >= threshold


def test_diabetes_regression_reaches_r2_of_0_4():
    assert example("tabular").diabetes() >= 0.4


def test_resnet_functional_example_learns_digits(tmp_path):
    pytest.importorskip("matplotlib")
    acc, history = example("resnet_functional").main(epochs=40, plot=str(tmp_path / "h.png"))
    assert acc >= 0.95 and (tmp_path / "h.png").exists()


def test_transfer_learning_example_runs_and_is_deterministic():
    # A tiny setting (the documented one takes minutes and shows a tie, not a win: see the example's docstring).
    def run():
        return example("transfer_learning").main(shots=(1, 2), draws=2, pretrain_epochs=2, transforms=2,
                                                 head_epochs=5, finetune_epochs=2, scratch_epochs=5, verbose=False)
    first, second = run(), run()
    assert sorted(first) == [1, 2]
    for k in first:
        for arm in ("frozen", "finetuned", "scratch"):
            assert first[k][arm].shape == (2,) and ((0.0 < first[k][arm]) & (first[k][arm] <= 1.0)).all()
            assert (first[k][arm] == second[k][arm]).all()


def test_shifted_domain_transfer_example_runs_deterministically_and_reports_every_arm():
    # A tiny setting; the documented run (10 draws, 150 epochs) is in docs/keras_compatibility.md.
    mod = example("transfer_shifted_domain")

    def run():
        return mod.main(shots=(1,), draws=2, epochs=10, every=5, target=0.3, pretrain_epochs=2, verbose=False)
    first, second = run(), run()
    assert sorted(first) == [1] and first[1]["target"] == 0.3
    for arm in ("frozen", "finetuned", "scratch"):
        r = first[1][arm]
        assert r["acc"].shape == (2,) and r["curve"].shape == (2, 2)
        assert ((0.0 < r["acc"]) & (r["acc"] <= 1.0)).all()
        assert (r["acc"] == second[1][arm]["acc"]).all()
        assert all(e is None or e in (5, 10) for e in r["epochs_to_target"])
    assert "beats scratch" in mod.table_rows(1, first[1], 2)
    scratch_goal = mod.main(shots=(1,), draws=1, epochs=5, every=5, pretrain_epochs=1, verbose=False)[1]
    assert scratch_goal["target"] == scratch_goal["scratch"]["acc"].mean()
    assert scratch_goal["scratch"]["epochs_to_target"] == [5]
    # the target domain is a real shift of the same images, reproducible from its seed
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    a, b = mod.shift_domain(x, seed=3), mod.shift_domain(x, seed=3)
    assert (a == b).all() and not np.allclose(a, x) and a.min() >= 0.0 and a.max() <= 1.0


@pytest.mark.parametrize("model,hidden,batch", [("mlp", 128, 32), ("mlp", 512, 256), ("cnn", 8, 32)])
def test_numpy_lecture_code_gives_the_same_training_with_pynn_ops_as_np(model, hidden, batch):
    """Only the module bound to the name ``np`` changes; the losses and accuracy follow NumPy's."""
    mod = example("numpy_mlp")
    mod.use("numpy")
    loss_np, acc_np, _ = mod.run(model, hidden, batch, epochs=3)
    mod.use("pynn")
    assert mod.np.__name__ == "pynn.ops"
    loss_ops, acc_ops, _ = mod.run(model, hidden, batch, epochs=3)
    mod.use("numpy")
    assert acc_np > 0.8
    np.testing.assert_allclose(loss_ops, loss_np, rtol=1e-4)
    assert abs(acc_np - acc_ops) <= 1 / 360  # at most one of the 360 test digits may flip


def test_demo_reaches_95_percent_and_reports_the_speedup(capsys):
    from pynn.__main__ import main
    main(["demo", "--epochs", "10", "--repeats", "1"])
    out = capsys.readouterr().out
    acc = float(out.split("test accuracy: ")[1].split()[0])
    assert acc >= 0.95
    if pynn_native():
        assert "speedup native vs numpy" in out


def pynn_native():
    import pynn
    return pynn.backend.NATIVE_AVAILABLE
