"""Callbacks' exact behaviour: patience counting, best-weight restore, LR changes, NaN stop."""
import csv

import numpy as np
import pytest

import pynn
from pynn import callbacks, layers, optimizers


class Scripted(callbacks.Callback):
    """Overwrites a logged value with a scripted sequence, to test monitors exactly."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def _model(lr=0.01):
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((2,)), layers.Dense(1)])
    m.compile(optimizer=optimizers.SGD(learning_rate=lr), loss="mse")
    return m


X = np.random.default_rng(0).standard_normal((16, 2)).astype(np.float32)
Y = X.sum(1, keepdims=True)


def test_early_stopping_counts_patience_and_restores_the_best_weights():
    m = _model()
    snapshots = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(m.get_weights()))
    # best at epoch 2 (0-based 1); patience 2 → stops after epoch 4 (0-based 3)
    es = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = m.fit(X, Y, epochs=10, verbose=0, validation_data=(X, Y),
              callbacks=[Scripted("val_loss", [5.0, 1.0, 2.0, 1.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), record, es])
    assert len(h.history["loss"]) == 4 and es.stopped_epoch == 3 and es.best_epoch == 1
    for a, b in zip(m.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_min_delta_and_max_mode():
    m = _model()
    es = callbacks.EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05)
    h = m.fit(X, Y, epochs=10, verbose=0, validation_data=(X, Y),
              callbacks=[Scripted("val_accuracy", [0.5, 0.6, 0.62, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]), es])
    assert es.mode == "max" and len(h.history["loss"]) == 3  # 0.62 is not > 0.6 + 0.05


def test_reduce_lr_on_plateau_reduces_at_the_right_epoch():
    m = _model(lr=0.1)
    lrs = []
    rl = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=0.0, min_lr=0.02)
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: lrs.append(m.optimizer.learning_rate))
    m.fit(X, Y, epochs=8, verbose=0, callbacks=[Scripted("loss", [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]), rl, rec])
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02])


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    m = _model(lr=1.0)
    seen = []
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs["learning_rate"]))
    m.fit(X, Y, epochs=3, verbose=0, callbacks=[sched, rec])
    np.testing.assert_allclose(seen, [0.1, 0.05, 0.025])


def test_terminate_on_nan_stops_and_leaves_the_checkpoint_intact(tmp_path):
    m = _model(lr=0.01)
    path = tmp_path / "best.pynn"
    ckpt = callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=False)
    m.fit(X, Y, epochs=1, verbose=0, callbacks=[ckpt])
    good = pynn.load_model(path).get_weights()
    m.optimizer.learning_rate = 1e30  # diverge: loss becomes inf/NaN
    h = m.fit(X * 1e20, Y, epochs=5, batch_size=4, verbose=0, callbacks=[callbacks.TerminateOnNaN(), ckpt])
    assert len(h.history["loss"]) == 1 and not np.isfinite(h.history["loss"][0])
    for a, b in zip(good, pynn.load_model(path).get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_save_best_only_writes_on_improvement(tmp_path):
    m = _model()
    path = tmp_path / "w-{epoch}.npz"
    ckpt = callbacks.ModelCheckpoint(str(path), monitor="val_loss", save_best_only=True, save_weights_only=True)
    m.fit(X, Y, epochs=4, verbose=0, validation_data=(X, Y), callbacks=[Scripted("val_loss", [3, 1, 2, 0.5]), ckpt])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-1.npz", "w-2.npz", "w-4.npz"]


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    m = _model()
    path = tmp_path / "log.csv"
    m.fit(X, Y, epochs=3, verbose=0, validation_data=(X, Y), callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "val_loss"] and [r[0] for r in rows[1:]] == ["0", "1", "2"]


def test_user_callback_hooks_are_called_in_keras_order():
    calls = []

    class Spy(callbacks.Callback):
        def on_train_begin(self, logs=None): calls.append("train_begin")
        def on_epoch_begin(self, epoch, logs=None): calls.append(f"epoch_begin {epoch}")
        def on_train_batch_end(self, batch, logs=None): calls.append(f"batch_end {batch}")
        def on_epoch_end(self, epoch, logs=None): calls.append(f"epoch_end {epoch}")
        def on_train_end(self, logs=None): calls.append("train_end")
    _model().fit(X, Y, epochs=2, batch_size=8, verbose=0, callbacks=[Spy()])
    assert calls == ["train_begin", "epoch_begin 0", "batch_end 0", "batch_end 1", "epoch_end 0",
                     "epoch_begin 1", "batch_end 0", "batch_end 1", "epoch_end 1", "train_end"]


def test_early_stopping_unknown_monitor_is_a_clear_error():
    with pytest.raises(ValueError, match="monitor 'val_acc' is not in the logs"):
        _model().fit(X, Y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_acc")])


class Recorder(callbacks.Callback):
    """Records every hook call as (hook, batch or None, sorted log keys)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            def hook(*args, logs=None):
                if args and isinstance(args[0], dict):   # on_test_end(logs): no batch index
                    args = (None,) + args
                batch = args[0] if args else None
                logs = args[1] if len(args) > 1 else logs
                self.calls.append((name, batch, sorted(logs) if isinstance(logs, dict) else None))
            return hook
        return super().__getattribute__(name)


def test_evaluate_fires_the_test_hooks_per_batch_as_keras():
    m = _model()
    rec = Recorder()
    m.evaluate(X, Y, batch_size=6, callbacks=[rec])
    assert [c[:2] for c in rec.calls] == [("on_test_begin", None),
                                          ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
                                          ("on_test_batch_begin", 1), ("on_test_batch_end", 1),
                                          ("on_test_batch_begin", 2), ("on_test_batch_end", 2),
                                          ("on_test_end", None)]
    assert rec.calls[2][2] == ["loss"] and rec.calls[-1][2] == ["loss"]
    assert rec.params["steps"] == 3 and rec.model is m


def test_predict_fires_the_predict_hooks_with_the_batch_outputs():
    m = _model()
    seen = []
    cb = callbacks.LambdaCallback(on_predict_batch_end=lambda batch, logs: seen.append((batch, logs["outputs"].shape)))
    rec = Recorder()
    out = m.predict(X, batch_size=10, callbacks=[rec, cb])
    assert out.shape == (16, 1)
    assert seen == [(0, (10, 1)), (1, (6, 1))]
    assert [c[0] for c in rec.calls] == ["on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end",
                                         "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end"]


def test_fit_validation_fires_the_test_hooks_of_the_fit_callbacks():
    m = _model()
    rec = Recorder()
    m.fit(X, Y, epochs=2, batch_size=8, verbose=0, validation_data=(X, Y), callbacks=[rec])
    hooks = [c[0] for c in rec.calls]
    assert hooks.count("on_test_begin") == 2 and hooks.count("on_test_batch_end") == 2 * 2
    # validation runs after the epoch's batches and before its on_epoch_end, as in Keras
    first_end = hooks.index("on_epoch_end")
    assert hooks.index("on_test_begin") < first_end and hooks.index("on_train_batch_end") < hooks.index("on_test_begin")
