"""fit()'s prepared step (models/fit_loop.py, issue #16): the common case runs a plan
chosen once per fit, which must give the weights and history of the generic
per-batch loop bit for bit, call every hook the generic loop calls, and step
aside for an overridden train_step."""
import io
import json
import os
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout

import numpy as np
import pytest

import pynn
from pynn import layers
from pynn.models import fit_loop


def _data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((203, 12)).astype(np.float32)
    return (x, rng.integers(0, 4, 203), rng.standard_normal((203, 3)).astype(np.float32),
            rng.uniform(0.5, 1.5, 203).astype(np.float32))


class _TagBatches(pynn.callbacks.Callback):
    """A batch-hook callback that writes into the logs (the epoch's logs keep it)."""

    def __init__(self):
        super().__init__()
        self.begins, self.ends = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.begins.append(batch)

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append((batch, sorted(logs)))
        logs["tag"] = batch


def _sequential_dropout():
    x, y, _, _ = _data()
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"), layers.Dropout(0.2),
                         layers.Dense(8, activation="tanh"), layers.Dense(4)])
    m.compile(pynn.optimizers.Adam(1e-2), pynn.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    return m, m.fit(x, y, batch_size=32, epochs=3, verbose=0, validation_split=0.2)


def _functional_weighted():
    x, _, yr, sw = _data()
    pynn.set_seed(1)
    i = pynn.Input((12,))
    o = layers.Dense(3)(layers.Dense(10, activation="relu")(i))
    m = pynn.Model(i, o)
    m.compile(pynn.optimizers.SGD(0.05, momentum=0.9), "mse", metrics=["mae"])
    return m, m.fit(x, yr, batch_size=16, epochs=2, verbose=0, shuffle=False, sample_weight=sw)


def _unbuilt_regularized():
    x, y, _, _ = _data()
    pynn.set_seed(2)
    m = pynn.Sequential([layers.Dense(16, activation="relu", kernel_regularizer=pynn.regularizers.L2(1e-3),
                                      kernel_constraint=pynn.constraints.MaxNorm(1.0)),
                         layers.Dense(4, activation="softmax")])
    m.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m, m.fit(x, y, batch_size=25, epochs=2, verbose=0, class_weight={0: 2.0, 1: 0.5})


def _callbacks_and_bar():
    x, y, _, _ = _data()
    pynn.set_seed(4)
    m = pynn.Sequential([layers.Input((12,)), layers.Dense(8, activation="relu"), layers.Dense(4)])
    m.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    with redirect_stdout(io.StringIO()):
        h = m.fit(x, y, batch_size=64, epochs=2, verbose=1, callbacks=[_TagBatches()])
    return m, h


def _two_outputs():
    x, y, yr, _ = _data()
    pynn.set_seed(5)
    i = pynn.Input((12,))
    hdn = layers.Dense(8, activation="relu")(i)
    m = pynn.Model(i, [layers.Dense(4, name="cls")(hdn), layers.Dense(3, name="reg")(hdn)])
    m.compile("adam", [pynn.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
              loss_weights=[1.0, 0.5], metrics=[["accuracy"], ["mae"]])
    return m, m.fit(x, [y, yr], batch_size=40, epochs=2, verbose=0)


def _freeze_midway():
    """Callbacks that freeze a layer at a batch and unfreeze it at an epoch's start: the
    generic loop reads trainable_weights every step, so the plan must follow."""
    x, y, _, _ = _data()

    class Freeze(pynn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.layers[0].trainable = False

    class Unfreeze(pynn.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.layers[0].trainable = True
    pynn.set_seed(6)
    m = pynn.Sequential([layers.Input((12,)), layers.Dense(8, activation="relu"), layers.Dense(4)])
    m.compile(pynn.optimizers.SGD(0.1), pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m, m.fit(x, y, batch_size=50, epochs=2, verbose=0, callbacks=[Freeze(), Unfreeze()])


CASES = {"freeze_midway": _freeze_midway, "sequential_dropout": _sequential_dropout, "functional_weighted": _functional_weighted,
         "unbuilt_regularized": _unbuilt_regularized, "callbacks_and_bar": _callbacks_and_bar,
         "two_outputs": _two_outputs}


def _run(case, plan, monkeypatch):
    used = []
    real_plan_for, real_run = fit_loop.plan_for, fit_loop.TrainPlan.run_epoch

    def run_epoch(self):
        used.append(True)
        return real_run(self)
    with monkeypatch.context() as mp:
        mp.setattr(fit_loop.TrainPlan, "run_epoch", run_epoch)
        if not plan:
            mp.setattr(fit_loop, "plan_for", lambda *a, **k: None)
        m, h = CASES[case]()
    assert bool(used) == plan, "the prepared step was not the one that ran" if plan else "the plan ran"
    assert real_plan_for is not None
    return m.get_weights(), h.history


@pytest.mark.parametrize("case", sorted(CASES))
def test_prepared_step_gives_the_generic_loops_weights_and_history_bit_for_bit(case, monkeypatch):
    w_plan, h_plan = _run(case, True, monkeypatch)
    w_gen, h_gen = _run(case, False, monkeypatch)
    assert len(w_plan) == len(w_gen)
    for a, b in zip(w_plan, w_gen):
        np.testing.assert_array_equal(a, b)
    assert h_plan.keys() == h_gen.keys()
    for k in h_gen:
        np.testing.assert_array_equal(np.asarray(h_plan[k]), np.asarray(h_gen[k]), err_msg=k)


def test_batch_hooks_get_every_step_and_the_logs_callbacks_wrote_reach_history():
    x, y, _, _ = _data()
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((12,)), layers.Dense(4)])
    m.compile("sgd", pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    cb = _TagBatches()
    h = m.fit(x, y, batch_size=50, epochs=2, verbose=0, callbacks=[cb])
    steps = 5   # ceil(203 / 50)
    assert cb.begins == list(range(steps)) * 2
    assert [b for b, _ in cb.ends] == list(range(steps)) * 2
    assert all(keys == ["accuracy", "loss"] for _, keys in cb.ends)
    assert h.history["tag"] == [steps - 1, steps - 1]


def test_stop_training_from_a_batch_hook_ends_the_epoch_at_that_step():
    x, y, _, _ = _data()

    class StopAt(pynn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.last = batch
            if batch == 2:
                self.model.stop_training = True
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((12,)), layers.Dense(4)])
    m.compile("sgd", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = StopAt()
    h = m.fit(x, y, batch_size=20, epochs=3, verbose=0, callbacks=[cb])
    assert cb.last == 2 and len(h.history["loss"]) == 1
    assert m.optimizer.iterations == 3


def test_progress_bar_still_prints_the_final_line_per_epoch():
    x, y, _, _ = _data()
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((12,)), layers.Dense(4)])
    m.compile("sgd", pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    out = io.StringIO()
    with redirect_stdout(out):
        h = m.fit(x, y, batch_size=32, epochs=2, verbose=1)
    text = out.getvalue()
    assert "Epoch 1/2" in text and "Epoch 2/2" in text
    assert f"loss: {h.history['loss'][-1]:.4f}" in text


def test_an_overridden_train_step_is_what_fit_calls_not_the_prepared_step(monkeypatch):
    x, y, _, _ = _data()
    calls = []

    class Custom(pynn.Sequential):
        def train_step(self, data):
            calls.append(len(data[0]))
            return super().train_step(data)
    monkeypatch.setattr(fit_loop, "plan_for", lambda *a, **k: pytest.fail("plan_for asked for a custom step"))
    pynn.set_seed(0)
    m = Custom([layers.Input((12,)), layers.Dense(4)])
    m.compile("sgd", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert calls == [64, 64, 64, 11]


def test_a_model_overriding_a_step_method_keeps_the_generic_loop():
    x, y, _, _ = _data()
    seen = []

    class Logged(pynn.Sequential):
        def _train_step(self, xs, ys, sample_weight=None):
            seen.append(len(xs[0]))
            return super()._train_step(xs, ys, sample_weight)
    pynn.set_seed(0)
    m = Logged([layers.Input((12,)), layers.Dense(4)])
    m.compile("sgd", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, batch_size=100, epochs=1, verbose=0)
    assert seen == [100, 100, 3]


def test_a_subclassed_layer_runs_through_its_own_call_in_the_prepared_step():
    x, y, _, _ = _data()

    class Penalized(layers.Dense):   # a user layer: add_loss inside call must reach the loss
        def call(self, inp):
            out = super().call(inp)
            self.add_loss(pynn.functional.sum(out * out) * 1e-3)
            return out

    def fit(plan, monkeypatch_ctx):
        pynn.set_seed(0)
        m = pynn.Sequential([layers.Input((12,)), Penalized(4)])
        m.compile("sgd", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
        if not plan:
            monkeypatch_ctx.setattr(fit_loop, "plan_for", lambda *a, **k: None)
        return m.fit(x, y, batch_size=64, epochs=2, verbose=0).history["loss"], m.get_weights()

    mp = pytest.MonkeyPatch()
    try:
        loss_plan, w_plan = fit(True, mp)
        loss_gen, w_gen = fit(False, mp)
    finally:
        mp.undo()
    assert loss_plan == loss_gen
    for a, b in zip(w_plan, w_gen):
        np.testing.assert_array_equal(a, b)


_BOTH = """
    import json, numpy as np, pynn
    from pynn import layers, _core
    rng = np.random.default_rng(0)
    x = rng.standard_normal((150, 10)).astype(np.float32); y = rng.integers(0, 3, 150)
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((10,)), layers.Dense(16, activation="relu"), layers.Dense(3)])
    m.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    h = m.fit(x, y, batch_size=32, epochs=2, verbose=0)
    print(json.dumps({"core": _core.name(), "history": h.history,
                      "weights": [w.tobytes().hex() for w in m.get_weights()]}))
"""


def test_compiled_and_pure_cores_train_to_the_same_bits():
    runs = []
    for pure in (False, True):
        env = dict(os.environ)
        env.pop("PYNN_PURE_PYTHON", None)
        if pure:
            env["PYNN_PURE_PYTHON"] = "1"
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(_BOTH)], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[1]["core"] == "pure"
    assert runs[0]["history"] == runs[1]["history"]
    assert runs[0]["weights"] == runs[1]["weights"]


# ---------------------------------------------------------------- the Dense-stack step
# A Sequential of plain Dense layers runs fit_loop._DenseStack: the layers' own forward and
# backward (functional.nn.dense_forward/dense_backward) on arrays, and for a softmax
# cross-entropy the loss and its gradient without a graph. It must give the generic
# per-batch loop's weights and history bit for bit, and step aside where it cannot.

def _digits_like(n=203, d=12, c=4, seed=3, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, n)


def _stack_mlp(out_act=None, dtype="float32", use_bias=True):
    pynn.set_seed(0)
    return pynn.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu", dtype=dtype),
                            layers.Dense(8, activation="tanh", use_bias=use_bias, dtype=dtype),
                            layers.Dense(4, activation=out_act, dtype=dtype)])


def _stack_sparse_logits_adam():
    x, y = _digits_like()
    m = _stack_mlp()
    m.compile(pynn.optimizers.Adam(1e-2), pynn.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    return m, m.fit(x, y, batch_size=32, epochs=3, verbose=0, validation_split=0.2)


def _stack_softmax_class_weight():
    x, y = _digits_like()
    m = _stack_mlp(out_act="softmax", use_bias=False)
    m.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    yf = y.astype(np.float32)[:, None]   # float class ids of shape (n, 1)
    return m, m.fit(x, yf, batch_size=25, epochs=2, verbose=0, class_weight={0: 2.0, 1: 0.5})


def _stack_onehot_sgd_unshuffled():
    x, y = _digits_like()
    m = _stack_mlp()
    m.compile(pynn.optimizers.SGD(0.05, momentum=0.9), pynn.losses.CategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    return m, m.fit(x, np.eye(4, dtype=np.float32)[y], batch_size=30, epochs=2, verbose=0, shuffle=False)


def _stack_mse_sample_weight():
    x, _ = _digits_like()
    rng = np.random.default_rng(7)
    yr = rng.standard_normal((len(x), 4)).astype(np.float32)
    m = _stack_mlp()
    m.compile("adam", "mse", metrics=["mae"])
    return m, m.fit(x, yr, batch_size=40, epochs=2, verbose=0, sample_weight=rng.uniform(0.5, 1.5, len(x)))


def _stack_float64_batch_hooks():
    x, y = _digits_like(dtype=np.float64)
    m = _stack_mlp(dtype="float64")
    m.compile(pynn.optimizers.Adam(1e-2), pynn.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    return m, m.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[_TagBatches()])


def _stack_dropouts():
    x, y = _digits_like()
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((12,)), layers.Dropout(0.1), layers.Dense(16, activation="relu"),
                         layers.Dropout(0.3, seed=5), layers.Dense(8, activation="sigmoid"), layers.Dropout(0.0),
                         layers.Dense(4, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m, m.fit(x, y, batch_size=32, epochs=2, verbose=0, validation_split=0.1)


def _stack_numpy_backend():
    with pynn.use_backend("numpy"):
        return _stack_sparse_logits_adam()


# case: (make, graph-free cross-entropy expected, native kernels called directly expected)
STACK_CASES = {"sparse_logits_adam": (_stack_sparse_logits_adam, True, True),
               "softmax_class_weight": (_stack_softmax_class_weight, True, True),
               "onehot_sgd_unshuffled": (_stack_onehot_sgd_unshuffled, True, True),
               "mse_sample_weight": (_stack_mse_sample_weight, False, True),
               "float64_batch_hooks": (_stack_float64_batch_hooks, True, False),
               "numpy_backend": (_stack_numpy_backend, True, False),
               "dropouts": (_stack_dropouts, True, True)}
# Steps per fit: epochs * ceil(training samples / batch size); 203 samples (162 after a 0.2 split).
STACK_STEPS = {"sparse_logits_adam": 3 * 6, "softmax_class_weight": 2 * 9, "onehot_sgd_unshuffled": 2 * 7,
               "mse_sample_weight": 2 * 6, "float64_batch_hooks": 2 * 7, "numpy_backend": 3 * 6,
               "dropouts": 2 * 6}


def _run_stack(make, plan, monkeypatch):
    runs = []   # per stack step: whether the graph-free cross-entropy ran
    real_run = fit_loop._DenseStack.run

    def run(self, model, x, ys, sw, labels):
        runs.append((labels is not None, self.native is not None and pynn.backend.current() is self.native))
        return real_run(self, model, x, ys, sw, labels)
    with monkeypatch.context() as mp:
        mp.setattr(fit_loop._DenseStack, "run", run)
        if not plan:
            mp.setattr(fit_loop, "plan_for", lambda *a, **k: None)
        m, h = make()
    return m.get_weights(), h.history, runs


@pytest.mark.parametrize("case", sorted(STACK_CASES))
def test_dense_stack_step_gives_the_generic_loops_weights_and_history_bit_for_bit(case, monkeypatch):
    make, xent, native = STACK_CASES[case]
    w_plan, h_plan, runs = _run_stack(make, True, monkeypatch)
    w_gen, h_gen, runs_gen = _run_stack(make, False, monkeypatch)
    assert runs_gen == []
    # Every step ran the stack (the models are built: they start with an Input).
    assert runs == [(xent, native)] * STACK_STEPS[case]
    for a, b in zip(w_plan, w_gen):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert h_plan.keys() == h_gen.keys()
    for k in h_gen:
        np.testing.assert_array_equal(np.asarray(h_plan[k]), np.asarray(h_gen[k]), err_msg=k)


def _two_dropouts_in_a_row():
    return pynn.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"), layers.Dropout(0.3),
                            layers.Dropout(0.2), layers.Dense(4)])


def _dropout_last():
    return pynn.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"), layers.Dense(4),
                            layers.Dropout(0.2)])


def _regularized():
    return pynn.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu",
                                                              kernel_regularizer=pynn.regularizers.L2(1e-3)),
                            layers.Dense(4)])


def _frozen_first():
    m = _stack_mlp()
    m.layers[0].trainable = False
    return m


def _gelu_inside():   # an activation not fused into the GEMM, on a hidden layer
    return pynn.Sequential([layers.Input((12,)), layers.Dense(16, activation="gelu"), layers.Dense(4)])


@pytest.mark.parametrize("make_model", [_two_dropouts_in_a_row, _dropout_last, _regularized, _frozen_first,
                                        _gelu_inside])
def test_models_the_dense_stack_cannot_run_keep_the_generic_step(make_model, monkeypatch):
    x, y = _digits_like()

    def make():
        pynn.set_seed(0)
        m = make_model()
        m.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return m, m.fit(x, y, batch_size=32, epochs=2, verbose=0)
    w_plan, h_plan, runs = _run_stack(make, True, monkeypatch)
    w_gen, h_gen, _ = _run_stack(make, False, monkeypatch)
    assert runs == []
    for a, b in zip(w_plan, w_gen):
        np.testing.assert_array_equal(a, b)
    assert h_plan == h_gen


def test_dense_stack_with_an_out_of_range_label_raises_the_losses_error():
    x, y = _digits_like()
    y[150] = 4   # 4 classes: ids 0..3
    m = _stack_mlp()
    m.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="label 4 is out of range"):
        m.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)


def test_freezing_a_layer_midway_moves_between_the_stack_and_the_generic_step(monkeypatch):
    x, y = _digits_like()

    class Freeze(pynn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.layers[0].trainable = batch < 2 or batch > 4

    def make():
        pynn.set_seed(0)
        m = _stack_mlp()
        m.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return m, m.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[Freeze()])
    w_plan, h_plan, runs = _run_stack(make, True, monkeypatch)
    w_gen, h_gen, _ = _run_stack(make, False, monkeypatch)
    assert runs == [(True, True)] * 4   # 7 steps, the 3 frozen ones generic
    for a, b in zip(w_plan, w_gen):
        np.testing.assert_array_equal(a, b)
    assert h_plan == h_gen


def test_a_metric_keeping_the_arrays_it_is_given_sees_each_batch_as_the_generic_loop_gives_it(monkeypatch):
    """The prepared step reuses buffers across batches; what it hands a user's metric must
    still be that batch's own arrays (the generic loop passes new ones each step)."""
    x, y = _digits_like()

    class Keep(pynn.metrics.Metric):
        def __init__(self):
            self.seen = []
            super().__init__("keep")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.seen.append((y_true, y_pred))

        def result(self):
            return 0.0

    def make():
        m = _stack_mlp()
        m.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=[Keep(), "accuracy"])
        return m, m.fit(x, y, batch_size=32, epochs=1, verbose=0)
    seen = []
    for plan in (True, False):
        with monkeypatch.context() as mp:
            if not plan:
                mp.setattr(fit_loop, "plan_for", lambda *a, **k: None)
            m, _ = make()
        seen.append(m._output_metrics[0][0].seen)
    assert len(seen[0]) == len(seen[1]) == 7
    for (yt_a, yp_a), (yt_b, yp_b) in zip(*seen):
        np.testing.assert_array_equal(yt_a, yt_b)
        np.testing.assert_array_equal(yp_a, yp_b)
