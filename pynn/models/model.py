"""``pynn.Model``: the training loop (compile / fit / evaluate / predict).

A Model is a Layer, so models nest. Subclass it and write ``call(self, x,
training=False)``; layers assigned as attributes are tracked for weights.
``Sequential`` (models/sequential.py) is the common special case.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from .. import losses as losses_mod, metrics as metrics_mod
from ..autograd import Tensor, no_grad
from ..callbacks import CallbackList, History, ProgbarLogger
from ..layers.base import Layer
from ..random import generator


def _optimizers():
    from .. import optimizers  # imported lazily: optimizers are independent of models
    return optimizers


class Model(Layer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.stop_training = False

    # ------------------------------------------------------------ structure
    @property
    def layers(self):
        """Layers assigned as attributes, in assignment order (subclassed models)."""
        return [v for k, v in vars(self).items() if isinstance(v, Layer) and not k.startswith("_")]

    @property
    def weights(self):
        seen, out = set(), []
        for layer in self.layers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        seen, out = set(), []
        for layer in self.layers:
            for w in layer.trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = value

    def get_weights(self):
        return [w.data.copy() for w in self.weights]

    def set_weights(self, weights):
        weights = list(weights)
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"Model {self.name!r}: set_weights expected {len(mine)} arrays, got {len(weights)}")
        for w, value in zip(mine, weights):
            if np.shape(value) != w.shape:
                raise ValueError(f"Model {self.name!r}: weight {w.name!r} has shape {w.shape}, "
                                 f"got an array of shape {np.shape(value)}")
        for w, value in zip(mine, weights):
            w.assign(value)

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def __call__(self, inputs, training=False):
        if not isinstance(inputs, Tensor):
            inputs = Tensor(inputs)
        if not self.built:
            self.build(tuple(inputs.shape))
        return self.call(inputs, training=training) if self._accepts_training else self.call(inputs)

    def build(self, input_shape):
        self.built = True

    # ------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Set the optimizer (name or object), the loss (name, Loss or callable) and metrics."""
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = _optimizers().get(optimizer)
        self.loss = losses_mod.get(loss)
        self._metric_specs = list(metrics or [])
        self.compiled_metrics = [metrics_mod.get(m, self.loss) for m in self._metric_specs]
        self._loss_tracker = metrics_mod.Mean("loss")

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer, loss) first")

    # ------------------------------------------------------------ data checks
    def _prepare_x(self, x, what):
        x = x.data if isinstance(x, Tensor) else np.asarray(x)
        if x.dtype.kind == "f" and x.dtype != np.float32:
            x = x.astype(np.float32)  # the model's dtype, as Keras casts inputs
        if x.ndim == 0:
            raise ValueError(f"{what}: x must have a batch dimension, got a scalar")
        self._check_input_shape(x.shape, what)
        return x

    def _check_input_shape(self, shape, what):
        pass  # Sequential checks against its Input

    def _check_xy(self, x, y, sample_weight, what):
        if y is None:
            raise ValueError(f"{what}: y is required")
        y = y.data if isinstance(y, Tensor) else np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"{what}: x and y have different numbers of samples: x has {len(x)} "
                             f"(shape {x.shape}), y has {len(y)} (shape {y.shape})")
        for arr, label in ((x, "x"), (y, "y")):
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = np.argwhere(~np.isfinite(arr))[0]
                raise ValueError(f"{what}: {label} contains NaN or Inf (first at index {tuple(int(i) for i in bad)}, "
                                 f"shape {arr.shape}); clean the data before training")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, np.float32)
            if sample_weight.shape[:1] != (len(x),):
                raise ValueError(f"{what}: sample_weight has shape {sample_weight.shape}, expected ({len(x)},)")
        return y, sample_weight

    # ------------------------------------------------------------ steps
    def _loss_value(self, y, y_pred, sample_weight):
        loss = self.loss(y, y_pred, sample_weight)
        reg = [w.regularizer(w) for w in self.trainable_weights if getattr(w, "regularizer", None) is not None]
        for r in reg:
            loss = loss + r
        return loss

    def _train_step(self, x, y, sample_weight=None):
        weights = self.trainable_weights
        for w in weights:
            w.grad = None
        y_pred = self(Tensor(x), training=True)
        loss = self._loss_value(y, y_pred, sample_weight)
        if loss.requires_grad:
            loss.backward()
        grads = [w.grad if w.grad is not None else np.zeros_like(w.data) for w in weights]
        if weights:
            self.optimizer.apply_gradients(zip(grads, weights))
        for w in weights:
            w.grad = None
        return float(loss.data), y_pred.data

    def _update_metrics(self, loss, y, y_pred, sample_weight, n):
        self._loss_tracker.update_state(loss, sample_weight=n)
        for m in self.compiled_metrics:
            m.update_state(y, y_pred, sample_weight)
        return self._logs()

    def _logs(self):
        logs = {"loss": self._loss_tracker.result()}
        for m in self.compiled_metrics:
            logs[m.name] = m.result()
        return logs

    def _reset_metrics(self):
        self._loss_tracker.reset_state()
        for m in self.compiled_metrics:
            m.reset_state()

    def train_on_batch(self, x, y, sample_weight=None):
        """One optimizer step on one batch; returns the loss."""
        self._require_compiled("train_on_batch")
        x = self._prepare_x(x, "train_on_batch")
        y, sample_weight = self._check_xy(x, y, sample_weight, "train_on_batch")
        loss, _ = self._train_step(x, y, sample_weight)
        return loss

    def test_on_batch(self, x, y, sample_weight=None):
        self._require_compiled("test_on_batch")
        x = self._prepare_x(x, "test_on_batch")
        y, sample_weight = self._check_xy(x, y, sample_weight, "test_on_batch")
        with no_grad():
            return float(self._loss_value(y, self(Tensor(x), training=False), sample_weight).data)

    def predict_on_batch(self, x):
        x = self._prepare_x(x, "predict_on_batch")
        with no_grad():
            return self(Tensor(x), training=False).data

    # ------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, sample_weight=None, initial_epoch=0):
        """Train for ``epochs`` over (x, y) in mini-batches; returns a History."""
        self._require_compiled("fit")
        x = self._prepare_x(x, "fit")
        y, sample_weight = self._check_xy(x, y, sample_weight, "fit")
        if batch_size is None:
            batch_size = 32
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"fit: batch_size must be a positive integer, got {batch_size!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        if validation_split and validation_data is None:
            # Keras takes the last fraction, before shuffling.
            split = int(len(x) * (1.0 - validation_split))
            validation_data = (x[split:], y[split:])
            x, y = x[:split], y[:split]
            sample_weight = None if sample_weight is None else sample_weight[:split]
        if len(x) == 0:
            raise ValueError("fit: no training samples")

        n = len(x)
        steps = (n + batch_size - 1) // batch_size
        history = History()
        cbs = [history] + list(callbacks or [])
        if verbose:
            cbs.append(ProgbarLogger(verbose=verbose))
        cblist = CallbackList(cbs, self, {"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        cblist.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            cblist.on_epoch_begin(epoch)
            order = generator().permutation(n) if shuffle else np.arange(n)
            logs = {}
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                if not shuffle:
                    idx = slice(step * batch_size, (step + 1) * batch_size)
                xb, yb = x[idx], y[idx]
                swb = None if sample_weight is None else sample_weight[idx]
                cblist.on_train_batch_begin(step)
                loss, y_pred = self._train_step(xb, yb, swb)
                logs = self._update_metrics(loss, yb, y_pred, swb, len(xb))
                cblist.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if validation_data is not None:
                val = self.evaluate(*validation_data, batch_size=batch_size, verbose=0, return_dict=True)
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            cblist.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cblist.on_train_end()
        return history

    def evaluate(self, x=None, y=None, batch_size=32, verbose=0, sample_weight=None, return_dict=False):
        """Loss (and metrics) over (x, y): a float, a list [loss, *metrics], or a dict."""
        self._require_compiled("evaluate")
        x = self._prepare_x(x, "evaluate")
        y, sample_weight = self._check_xy(x, y, sample_weight, "evaluate")
        self._reset_metrics()
        with no_grad():
            for start in range(0, len(x), batch_size or 32):
                sl = slice(start, start + (batch_size or 32))
                y_pred = self(Tensor(x[sl]), training=False)
                swb = None if sample_weight is None else sample_weight[sl]
                loss = float(self._loss_value(y[sl], y_pred, swb).data)
                self._update_metrics(loss, y[sl], y_pred.data, swb, len(x[sl]))
        logs = self._logs()
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for x, computed in batches without recording a graph."""
        x = self._prepare_x(x, "predict")
        outs = []
        with no_grad():
            for start in range(0, len(x), batch_size or 32):
                outs.append(self(Tensor(x[start:start + (batch_size or 32)]), training=False).data)
        if not outs:
            raise ValueError("predict: x has no samples")
        return np.concatenate(outs, axis=0)

    # ------------------------------------------------------------ weights on disk
    def save_weights(self, filepath):
        """Write every weight to an .npz, atomically (a temporary file, then rename)."""
        filepath = os.fspath(filepath)
        directory = os.path.dirname(os.path.abspath(filepath))
        fd, tmp = tempfile.mkstemp(prefix=".pynn-", suffix=".npz", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **{f"w{i:04d}": w.data for i, w in enumerate(self.weights)})
            os.replace(tmp, filepath)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def load_weights(self, filepath):
        """Load weights saved by save_weights; shapes are checked before anything is set."""
        with np.load(os.fspath(filepath)) as data:
            arrays = [data[f"w{i:04d}"] for i in range(len(data.files))]
        self.set_weights(arrays)

    # ------------------------------------------------------------ summary
    def summary(self, print_fn=print):
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape = getattr(self, "_build_input_shape", None)
        for layer in self.layers:
            if shape is not None:
                shape = layer.compute_output_shape(shape)
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape) if shape is not None else "?",
                         f"{layer.count_params():,}"))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "_" * sum(widths)
        out = [f'Model: "{self.name}"', line]
        for i, r in enumerate(rows):
            out.append("".join(c.ljust(w) for c, w in zip(r, widths)))
            out.append("=" * sum(widths) if i == 0 else "")
        trainable = sum(w.size for w in self.trainable_weights)
        total = self.count_params()
        out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}", line]
        print_fn("\n".join(o for o in out if o != ""))
