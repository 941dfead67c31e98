"""Callbacks with Keras hook names. ``fit`` always adds History (returned) and,
when ``verbose``, the progress-bar logger."""
import csv
import os
import sys

import numpy as np

from .utils.progbar import Progbar


class Callback:
    """Base class of callbacks: override any ``on_{train,epoch,batch}_{begin,end}``
    hook; ``self.model`` is the model being fitted.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> class Count(pynn.callbacks.Callback):
        ...     epochs = 0
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         Count.epochs += 1
        ...
        >>> _ = model.fit(x, y, epochs=3, callbacks=[Count()], verbose=0)
        >>> Count.epochs
        3
    """
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


class CallbackList:
    """Calls each hook on every callback, in order. ``CallbackList.of(callbacks, ...)``
    passes a CallbackList through (fit hands its own to the validation evaluate).

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> seen = []
        >>> cbs = pynn.callbacks.CallbackList([pynn.callbacks.LambdaCallback(
        ...     on_epoch_end=lambda epoch, logs: seen.append(epoch))], model=model, params={})
        >>> cbs.on_epoch_end(0, {})
        >>> seen
        [0]
    """

    @classmethod
    def of(cls, callbacks, model, params):
        return callbacks if isinstance(callbacks, cls) else cls(callbacks or [], model, params)

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)
        return call


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]`` is a list per epoch.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> history = model.fit(x, y, epochs=2, verbose=0)   # fit returns its History
        >>> type(history).__name__, sorted(history.history), history.epoch
        ('History', ['loss'], [0, 1])
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and a progress bar with the running loss and metrics.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> import io
        >>> out = io.StringIO()
        >>> _ = model.fit(x, y, epochs=1, callbacks=[pynn.callbacks.ProgbarLogger(stream=out)], verbose=0)
        >>> "loss" in out.getvalue()
        True
    """

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream or sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        self.stream.write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")
        self.bar = Progbar(self.params["steps"], verbose=self.verbose, stream=self.stream)

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 < self.params["steps"]:
            self.bar.update(batch + 1, list((logs or {}).items()))

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(self.params["steps"], list((logs or {}).items()), finalize=True)


def _better(monitor, mode):
    """Comparison for 'min'/'max'/'auto' (auto: max for accuracy-like names, as Keras)."""
    if mode == "auto":
        mode = "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs; optionally restore the best epoch's weights.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> cb = pynn.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
        >>> len(model.fit(x, y, epochs=10, callbacks=[cb], verbose=0).history["loss"])
        2
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.baseline = verbose, baseline
        self.mode = _better(monitor, mode)
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch

    def _improved(self, current, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = self.baseline, None

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not in the logs {sorted(logs or {})}")
        if epoch < self.start_from_epoch:
            return
        if self._improved(current, self.best):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        # Keras 3's messages, word for word.
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None and self.stopped_epoch > 0:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) after each epoch, or only when
    ``monitor`` improved (``save_best_only``). ``filepath`` may hold ``{epoch}``
    and log keys: ``"ckpt-{epoch:02d}-{val_loss:.2f}.pynn"``. Writes are atomic.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "best.keras")
        >>> cb = pynn.callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)
        >>> _ = model.fit(x, y, epochs=2, callbacks=[cb], verbose=0)
        >>> os.path.exists(path)
        True
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto"):
        super().__init__()
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _better(monitor, mode)
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if not np.isfinite(logs.get("loss", 0.0)):
            # Never overwrite a good checkpoint with weights a NaN step may have corrupted.
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: loss is {logs.get('loss')}, checkpoint not written")
            return
        # The messages are Keras 3's, word for word.
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                raise ValueError(f"ModelCheckpoint: monitor {self.monitor!r} is not in the logs {sorted(logs)}")
            best_str = "None" if self.best is None else f"{self.best:.5f}"
            improved = current == current and (   # NaN never counts as an improvement
                self.best is None or (current < self.best if self.mode == "min" else current > self.best))
            if not improved:
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start: ``schedule(epoch, lr) -> new lr``
    (step decay: ``lambda e, lr: lr * 0.5 if e and e % 10 == 0 else lr``).

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> cb = pynn.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
        >>> _ = model.fit(x, y, epochs=2, callbacks=[cb], verbose=0)
        >>> round(float(model.optimizer.learning_rate), 4)
        0.05
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.schedule(epoch, float(_current_lr(self.model.optimizer))))
        self.model.optimizer.learning_rate = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {lr:.6g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(_current_lr(self.model.optimizer))


def _current_lr(optimizer):
    lr = optimizer.learning_rate
    return lr(optimizer.iterations) if callable(lr) else lr


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved
    for ``patience`` epochs; wait ``cooldown`` epochs after; never below ``min_lr``.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> cb = pynn.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
        >>> history = model.fit(x, y, epochs=2, callbacks=[cb], verbose=0)
        >>> [round(float(v), 4) for v in history.history["learning_rate"]]
        [0.01, 0.005]
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.mode = _better(monitor, mode)
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            raise ValueError(f"ReduceLROnPlateau: monitor {self.monitor!r} is not in the logs {sorted(logs or {})}")
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        improved = self.best is None or (current < self.best - self.min_delta if self.mode == "min"
                                         else current > self.best + self.min_delta)
        if improved:
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(_current_lr(self.model.optimizer))
                new = max(old * self.factor, self.min_lr)
                if old - new > 1e-12:
                    self.model.optimizer.learning_rate = new
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                self.cooldown_counter, self.wait = self.cooldown, 0
        if logs is not None:
            logs["learning_rate"] = float(_current_lr(self.model.optimizer))


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> y_huge = np.full((8, 1), 1e30, np.float32)          # its squared error overflows float32
        >>> history = model.fit(x, y_huge, epochs=5, callbacks=[pynn.callbacks.TerminateOnNaN()], verbose=0)
        Batch 0: invalid loss inf, terminating training
        >>> len(history.history["loss"])
        1
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Append one row per epoch (epoch, then the logs' keys) to a CSV file.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> _ = model.fit(x, y, epochs=2, callbacks=[pynn.callbacks.CSVLogger(path)], verbose=0)
        >>> open(path).readline().strip()
        'epoch,loss'
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = str(filename), separator, append

    def on_train_begin(self, logs=None):
        self._keys = None
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = csv.writer(self._file, delimiter=self.separator)
        self._header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
        if not self._header_written:
            self._writer.writerow(["epoch"] + self._keys)
            self._header_written = True
        self._writer.writerow([epoch] + [logs.get(k, "NA") for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class LambdaCallback(Callback):
    """A callback from plain functions: LambdaCallback(on_epoch_end=lambda epoch, logs: ...).

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> losses = []
        >>> cb = pynn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
        >>> _ = model.fit(x, y, epochs=2, callbacks=[cb], verbose=0)
        >>> len(losses)
        2
    """

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}; hooks: "
                                 f"{sorted(h for h in vars(Callback) if h.startswith('on_'))}")
            setattr(self, name, fn)


class BackupAndRestore(Callback):
    """BackupAndRestore(backup_dir, save_freq="epoch", delete_checkpoint=True):
    after every epoch, write the weights, the optimizer state and the epoch number
    to ``backup_dir`` (atomically); a ``fit`` that starts and finds a backup
    restores it and continues from the next epoch, so an interrupted job resumes
    where it stopped (Keras' fault-tolerance callback). After a fit that completes,
    the backup is deleted (``delete_checkpoint``). Only ``save_freq="epoch"``.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> import tempfile
        >>> cb = pynn.callbacks.BackupAndRestore(backup_dir=tempfile.mkdtemp())
        >>> len(model.fit(x, y, epochs=2, callbacks=[cb], verbose=0).history["loss"])
        2
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"BackupAndRestore: only save_freq='epoch' is supported, got {save_freq!r}")
        self.backup_dir, self.save_freq, self.delete_checkpoint = str(backup_dir), save_freq, delete_checkpoint
        self._path = os.path.join(self.backup_dir, "backup.npz")

    def on_train_begin(self, logs=None):
        if not os.path.exists(self._path):
            return
        model = self.model
        with np.load(self._path) as data:
            n_w, n_s = int(data["n_weights"]), int(data["n_state"])
            weights = [data[f"w{i:04d}"] for i in range(n_w)]
            state = [data[f"s{i:04d}"] for i in range(n_s)]
            epoch = int(data["epoch"])
        model.set_weights(weights)   # checks every shape before setting anything
        if state and model.optimizer is not None:
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_weights)
            model.optimizer.set_state(state)
        model._resume_epoch = epoch + 1   # read by fit right after on_train_begin

    def on_epoch_end(self, epoch, logs=None):
        from .saving import atomic_write
        model = self.model
        arrays = {f"w{i:04d}": w for i, w in enumerate(model.get_weights())}
        opt = model.optimizer
        state = opt.get_state() if opt is not None and opt.built else []
        arrays.update({f"s{i:04d}": s for i, s in enumerate(state)})
        arrays.update(n_weights=np.array(len(model.weights)), n_state=np.array(len(state)), epoch=np.array(epoch))
        os.makedirs(self.backup_dir, exist_ok=True)
        atomic_write(self._path, lambda f: np.savez(f, **arrays))

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            import shutil
            shutil.rmtree(self.backup_dir)


class TensorBoard(Callback):
    """TensorBoard(log_dir="logs", update_freq="epoch"): after every epoch write the
    logs as scalars, Keras' layout: ``log_dir/train`` gets ``epoch_loss``,
    ``epoch_<metric>``; ``log_dir/validation`` gets the ``val_`` values under the
    same tags. View with ``tensorboard --logdir log_dir``. The event files are
    written by pynn itself (pynn.tensorboard), so no TensorFlow is needed.

    Histograms, graphs, images, embeddings and profiling are not supported: those
    arguments raise unless left at off (``write_graph`` defaults to False here).

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
        >>> import os, tempfile
        >>> logdir = tempfile.mkdtemp()
        >>> _ = model.fit(x, y, epochs=1, callbacks=[pynn.callbacks.TensorBoard(logdir)], verbose=0)
        >>> sorted(os.listdir(logdir))
        ['train']
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=False, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0):
        super().__init__()
        unsupported = {k: v for k, v in (("histogram_freq", histogram_freq), ("write_graph", write_graph),
                                         ("write_images", write_images), ("profile_batch", profile_batch),
                                         ("embeddings_freq", embeddings_freq),
                                         ("write_steps_per_second", write_steps_per_second)) if v}
        if unsupported:
            raise ValueError(f"TensorBoard: only epoch scalars are written; unsupported: {unsupported}")
        if update_freq != "epoch":
            raise ValueError(f"TensorBoard: only update_freq='epoch' is supported, got {update_freq!r}")
        self.log_dir = str(log_dir)
        self._writers = {}

    def _writer(self, which):
        from .tensorboard import EventFileWriter
        if which not in self._writers:
            self._writers[which] = EventFileWriter(os.path.join(self.log_dir, which))
        return self._writers[which]

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: v for k, v in (logs or {}).items() if np.size(v) == 1}
        train = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        val = {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")}
        if train:
            self._writer("train").scalars(epoch, train)
        if val:
            self._writer("validation").scalars(epoch, val)

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}
