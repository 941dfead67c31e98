"""``pynn.Model``: the training loop (compile / fit / evaluate / predict).

A Model is a Layer, so models nest. Subclass it and write ``call(self, x,
training=False)``; layers assigned as attributes are tracked for weights.
``Sequential`` (models/sequential.py) is the common special case.
"""
from __future__ import annotations

import os

import numpy as np

from .. import losses as losses_mod, metrics as metrics_mod
from ..autograd import Tensor, no_grad
from ..autograd.engine import grad as autograd_grad
from ..callbacks import CallbackList, History, ProgbarLogger
from ..layers.base import Layer, assign_weights, unique_weights
from ..random import generator


def _batch_size(op, batch_size):
    """batch_size for evaluate/predict: None means 32; anything but a positive integer is an error
    (-1 used to give an empty result, 0 silently became 32)."""
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{op}: batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _array(x):
    x = x.data if isinstance(x, Tensor) else np.asarray(x)
    if x.dtype.kind not in "biuf":  # complex would lose its imaginary part, object/str fail deep inside
        raise TypeError(f"model input: expected a real numeric array, got dtype {x.dtype}")
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype(np.float32)  # the model's dtype, as Keras casts inputs
    return x


def _is_batch_iterable(x):
    if isinstance(x, (np.ndarray, Tensor, list, tuple)) or x is None:
        return False
    return hasattr(x, "__iter__")


def _batch_source(source, steps_per_epoch):
    """Per-epoch batches from an iterable of (x, y[, sample_weight]) tuples."""
    one_shot = iter(source) is source  # a generator: consumed across epochs, steps_per_epoch at a time

    def batches(epoch):
        it = source if one_shot else iter(source)
        for step, batch in enumerate(it):
            if steps_per_epoch is not None and step >= steps_per_epoch:
                break
            xb, yb = batch[0], batch[1]
            swb = batch[2] if len(batch) > 2 else None
            xb = [_array(v) for v in (xb if isinstance(xb, (list, tuple)) else [xb])]
            yb = [np.asarray(v) for v in (yb if isinstance(yb, (list, tuple)) else [yb])]
            yield xb, yb, None if swb is None else np.asarray(swb, np.float32)
    return batches


def _optimizers():
    from .. import optimizers  # imported lazily: optimizers are independent of models
    return optimizers


class Model(Layer):
    """``pynn.Model(inputs, outputs)`` for a functional DAG of layers, or a base
    class: subclass it and write ``call(self, x, training=False)``."""

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.stop_training = False
        self._graph = None
        if inputs is not None or outputs is not None:
            from .functional import FunctionalGraph
            self._graph = FunctionalGraph(inputs, outputs, self.name)
            self._build_input_shape = self._graph.input_shapes[0] if len(self._graph.inputs) == 1 else None
            self.built = True

    # ------------------------------------------------------------ structure
    @property
    def layers(self):
        """The model's layers: graph order (functional) or attribute order (subclassed)."""
        if self._graph is not None:
            return self._graph.layers
        return [v for k, v in vars(self).items() if isinstance(v, Layer) and not k.startswith("_")]

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"Model {self.name!r} has no layer named {name!r}; "
                         f"layers: {[layer.name for layer in self.layers]}")

    def call(self, inputs, training=False):
        if self._graph is None:
            raise NotImplementedError(f"{type(self).__name__}: subclasses of pynn.Model must define "
                                      "call(self, x, training=False), or use pynn.Model(inputs, outputs)")
        return self._graph.run(inputs, training)

    def compute_output_shape(self, input_shape):
        if self._graph is not None:
            shapes = [t.shape for t in self._graph.outputs]
            return shapes[0] if len(shapes) == 1 else shapes
        # A subclassed model: run one sample of zeros through it to learn the shape.
        from ..autograd import no_grad
        probe = np.zeros(tuple(1 if d is None else d for d in input_shape), np.float32)
        with no_grad():
            out = self(probe, training=False)
        return (input_shape[0],) + tuple(out.shape[1:])

    @property
    def weights(self):
        return unique_weights(layer.weights for layer in self.layers)

    @property
    def trainable_weights(self):
        return unique_weights(layer.trainable_weights for layer in self.layers) if self.trainable else []

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
        assign_weights(f"Model {self.name!r}", self.weights, weights)

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def __call__(self, inputs, training=False):
        from ..layers.input_layer import is_symbolic
        if is_symbolic(inputs):
            return super().__call__(inputs, training=training)  # a nested model in a functional graph
        if isinstance(inputs, (list, tuple)):
            inputs = [t if isinstance(t, Tensor) else Tensor(t) for t in inputs]
        elif not isinstance(inputs, Tensor):
            inputs = Tensor(inputs)
        if not self.built:
            self.build(tuple(inputs.shape) if isinstance(inputs, Tensor) else [tuple(t.shape) for t in inputs])
        return self.call(inputs, training=training) if self._accepts_training else self.call(inputs)

    def build(self, input_shape):
        self.built = True

    def reset_states(self):
        """Zero the carried states of every stateful layer (recurrent layers with
        stateful=True, also inside Bidirectional and nested models)."""
        for layer in self.layers:
            inner = [layer] if not hasattr(layer, "forward_layer") else [layer.forward_layer, layer.backward_layer]
            for sub in inner:
                if isinstance(sub, Model) or getattr(sub, "stateful", False):
                    sub.reset_states()

    # ------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Set the optimizer (name or object), the loss (name, Loss or callable;
        for several outputs one loss for all or a list, one per output) and metrics."""
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = _optimizers().get(optimizer)
        self.loss = loss
        n_out = len(self._graph.outputs) if self._graph is not None else 1
        if isinstance(loss, (list, tuple)):
            if len(loss) != n_out:
                raise ValueError(f"compile: {len(loss)} losses given for a model with {n_out} outputs")
            self._losses = [losses_mod.get(item) for item in loss]
        else:
            self._losses = [losses_mod.get(loss)] * n_out
        self._metric_specs = list(metrics or [])
        self._output_metrics = []
        for i, out_loss in enumerate(self._losses):
            ms = [metrics_mod.get(m, out_loss) for m in self._metric_specs]
            if n_out > 1:
                for m in ms:
                    m.name = f"output_{i}_{m.name}"
            self._output_metrics.append(ms)
        self.compiled_metrics = [m for ms in self._output_metrics for m in ms]
        self._loss_tracker = metrics_mod.Mean("loss")

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer, loss) first")

    # ------------------------------------------------------------ data checks
    def _prepare_x(self, x, what):
        """x as a list of float32 (or integer) arrays, one per model input."""
        xs = [_array(v) for v in (x if isinstance(x, (list, tuple)) else [x])]
        n_in = len(self._graph.inputs) if self._graph is not None else 1
        if len(xs) != n_in:
            raise ValueError(f"{what}: model {self.name!r} has {n_in} inputs, got {len(xs)} arrays")
        for i, v in enumerate(xs):
            if v.ndim == 0:
                raise ValueError(f"{what}: x must have a batch dimension, got a scalar")
            if len({len(u) for u in xs}) > 1:
                raise ValueError(f"{what}: the inputs have different numbers of samples: {[len(u) for u in xs]}")
            self._check_input_shape(v.shape, what, i)
        return xs

    def _check_input_shape(self, shape, what, index=0):
        expected = None
        if self._graph is not None:
            expected = self._graph.input_shapes[index]
        elif index == 0:
            expected = getattr(self, "_build_input_shape", None)
        if expected is None:
            return
        ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected[1:], shape[1:]))
        if not ok:
            raise ValueError(f"{what}: model {self.name!r} expects input of shape {expected}, "
                             f"got an array of shape {tuple(shape)}")

    def _prepare_xy(self, x, y, sample_weight, what, class_weight=None):
        xs = self._prepare_x(x, what)
        if y is None:
            raise ValueError(f"{what}: y is required")
        ys = [v.data if isinstance(v, Tensor) else np.asarray(v) for v in (y if isinstance(y, (list, tuple)) else [y])]
        if len(ys) != len(self._losses):
            raise ValueError(f"{what}: model {self.name!r} has {len(self._losses)} outputs, got {len(ys)} targets")
        n = len(xs[0])
        for v in ys:
            if len(v) != n:
                raise ValueError(f"{what}: x and y have different numbers of samples: x has {n} "
                                 f"(shape {xs[0].shape}), y has {len(v)} (shape {v.shape})")
        for arrs, label in ((xs, "x"), (ys, "y")):
            for arr in arrs:
                if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                    bad = np.argwhere(~np.isfinite(arr))[0]
                    raise ValueError(f"{what}: {label} contains NaN or Inf (first at index "
                                     f"{tuple(int(i) for i in bad)}, shape {arr.shape}); clean the data first")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, np.float32)
            if sample_weight.shape[:1] != (n,):
                raise ValueError(f"{what}: sample_weight has shape {sample_weight.shape}, expected ({n},)")
        if class_weight is not None:
            labels = ys[0]
            labels = labels.argmax(-1) if labels.ndim > 1 and labels.shape[-1] > 1 else labels.reshape(n, -1)[:, 0]
            cw = np.array([class_weight.get(int(c), 1.0) for c in np.round(labels).astype(np.int64)], np.float32)
            sample_weight = cw if sample_weight is None else sample_weight * cw
        return xs, ys, sample_weight

    # ------------------------------------------------------------ steps
    def _forward(self, xs, training):
        inputs = [Tensor(v) for v in xs]
        out = self(inputs[0] if len(inputs) == 1 else inputs, training=training)
        return out if isinstance(out, (list, tuple)) else [out]

    def _loss_value(self, ys, y_preds, sample_weight):
        loss = None
        for out_loss, y, y_pred in zip(self._losses, ys, y_preds):
            term = out_loss(y, y_pred, sample_weight)
            loss = term if loss is None else loss + term
        for w in self.trainable_weights:
            if getattr(w, "regularizer", None) is not None:
                loss = loss + w.regularizer(w)
        return loss

    def _train_step(self, xs, ys, sample_weight=None):
        weights = self.trainable_weights
        y_preds = self._forward(xs, training=True)
        loss = self._loss_value(ys, y_preds, sample_weight)
        if loss.requires_grad:
            # The optimizer only reads the gradients: take the backward pass's own
            # arrays rather than copying each into .grad.
            grads = autograd_grad(loss, weights, copy=False)
        else:
            grads = [np.zeros_like(w.data) for w in weights]
        if weights:
            self.optimizer.apply_gradients(zip(grads, weights))
        return float(loss.data), [p.data for p in y_preds]

    def _update_metrics(self, loss, ys, y_preds, sample_weight, n):
        self._loss_tracker.update_state(loss, sample_weight=n)
        for ms, y, y_pred in zip(self._output_metrics, ys, y_preds):
            for m in ms:
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

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One optimizer step on one batch; returns the loss."""
        self._require_compiled("train_on_batch")
        xs, ys, sw = self._prepare_xy(x, y, sample_weight, "train_on_batch", class_weight)
        return self._train_step(xs, ys, sw)[0]

    def test_on_batch(self, x, y, sample_weight=None):
        self._require_compiled("test_on_batch")
        xs, ys, sw = self._prepare_xy(x, y, sample_weight, "test_on_batch")
        with no_grad():
            return float(self._loss_value(ys, self._forward(xs, training=False), sw).data)

    def predict_on_batch(self, x):
        xs = self._prepare_x(x, "predict_on_batch")
        with no_grad():
            outs = [o.data for o in self._forward(xs, training=False)]
        return outs[0] if len(outs) == 1 else outs

    # ------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None):
        """Train for ``epochs``; returns a History.

        ``x``/``y``: arrays (lists of arrays for several inputs/outputs), or ``x``
        an iterable of ``(x, y)`` / ``(x, y, sample_weight)`` batches (re-iterated
        each epoch; a one-shot generator needs ``steps_per_epoch``).
        """
        self._require_compiled("fit")
        if batch_size is None:
            batch_size = 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"fit: batch_size must be a positive integer, got {batch_size!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")

        if _is_batch_iterable(x):
            if y is not None:
                raise ValueError("fit: when x is an iterable of batches, y must be None (batches carry it)")
            batches_of = _batch_source(x, steps_per_epoch)
            steps = steps_per_epoch or (len(x) if hasattr(x, "__len__") else None)
            if steps is None:
                raise ValueError("fit: a generator of batches needs steps_per_epoch")
        else:
            xs, ys, sw = self._prepare_xy(x, y, sample_weight, "fit", class_weight)
            if validation_split and validation_data is None:
                # Keras takes the last fraction, before shuffling.
                split = int(len(xs[0]) * (1.0 - validation_split))
                validation_data = ([v[split:] for v in xs], [v[split:] for v in ys])
                xs, ys = [v[:split] for v in xs], [v[:split] for v in ys]
                sw = None if sw is None else sw[:split]
            n = len(xs[0])
            if n == 0:
                raise ValueError("fit: no training samples")
            steps = (n + batch_size - 1) // batch_size

            def batches_of(epoch):
                order = generator().permutation(n) if shuffle else None
                for step in range(steps):
                    idx = (order[step * batch_size:(step + 1) * batch_size] if shuffle
                           else slice(step * batch_size, (step + 1) * batch_size))
                    yield [v[idx] for v in xs], [v[idx] for v in ys], None if sw is None else sw[idx]

        history = History()
        cbs = [history] + list(callbacks or [])
        if verbose:
            cbs.append(ProgbarLogger(verbose=verbose))
        cblist = CallbackList(cbs, self, {"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        self.history = history
        cblist.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            cblist.on_epoch_begin(epoch)
            logs = {}
            for step, (xb, yb, swb) in enumerate(batches_of(epoch)):
                cblist.on_train_batch_begin(step)
                loss, y_preds = self._train_step(xb, yb, swb)
                logs = self._update_metrics(loss, yb, y_preds, swb, len(xb[0]))
                cblist.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if validation_data is not None:
                vx, vy = validation_data[0], validation_data[1]
                vsw = validation_data[2] if len(validation_data) > 2 else None
                val = self.evaluate(vx, vy, batch_size=batch_size, verbose=0, sample_weight=vsw, return_dict=True)
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            cblist.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cblist.on_train_end()
        return history

    def evaluate(self, x=None, y=None, batch_size=32, verbose=0, sample_weight=None, return_dict=False,
                 callbacks=None):
        """Loss (and metrics) over (x, y): a float, a list [loss, *metrics], or a dict."""
        self._require_compiled("evaluate")
        xs, ys, sw = self._prepare_xy(x, y, sample_weight, "evaluate")
        self._reset_metrics()
        bs = _batch_size("evaluate", batch_size)
        with no_grad():
            for start in range(0, len(xs[0]), bs):
                sl = slice(start, start + bs)
                xb, yb = [v[sl] for v in xs], [v[sl] for v in ys]
                swb = None if sw is None else sw[sl]
                y_preds = self._forward(xb, training=False)
                loss = float(self._loss_value(yb, y_preds, swb).data)
                self._update_metrics(loss, yb, [p.data for p in y_preds], swb, len(xb[0]))
        logs = self._logs()
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for x, computed in batches without recording a graph."""
        xs = self._prepare_x(x, "predict")
        if len(xs[0]) == 0:
            raise ValueError("predict: x has no samples")
        bs = _batch_size("predict", batch_size)
        outs = []
        with no_grad():
            for start in range(0, len(xs[0]), bs):
                outs.append([o.data for o in self._forward([v[start:start + bs] for v in xs], training=False)])
        merged = [np.concatenate(parts, axis=0) for parts in zip(*outs)]
        return merged[0] if len(merged) == 1 else merged

    # ------------------------------------------------------------ saving
    def save(self, filepath):
        """Architecture, weights and optimizer state in one file (atomic write)."""
        from ..saving import save_model
        save_model(self, filepath)

    def save_weights(self, filepath):
        """Write every weight to an .npz, atomically (a temporary file, then rename)."""
        from ..saving import atomic_write
        arrays = {f"w{i:04d}": w.data for i, w in enumerate(self.weights)}
        atomic_write(filepath, lambda f: np.savez(f, **arrays))

    def load_weights(self, filepath):
        """Load weights saved by save_weights; shapes are checked before anything is set."""
        with np.load(os.fspath(filepath)) as data:
            arrays = [data[f"w{i:04d}"] for i in range(len(data.files))]
        self.set_weights(arrays)

    def get_config(self):
        if self._graph is None:
            raise NotImplementedError(
                f"{type(self).__name__}: a subclassed model's architecture is Python code; define get_config() "
                "and from_config() (and @pynn.register_serializable) to save it, or use save_weights()")
        from ..layers.input_layer import KerasTensor
        from ..saving import serialize_layer
        g = self._graph
        layer_index = {id(layer): i for i, layer in enumerate(g.layers)}
        ref = {id(t): ["input", i] for i, t in enumerate(g.inputs)}
        calls = {}   # id(node) -> call number: the outputs of one call share it

        def keyword(layer, key, v):
            if isinstance(v, KerasTensor):
                return {"tensor": ref[id(v)]}
            if isinstance(v, (list, tuple)):
                return [keyword(layer, key, x) for x in v]
            if v is None or isinstance(v, (bool, int, float, str)):
                return v
            raise ValueError(f"Model {self.name!r}: cannot save the call of layer {layer.name!r} with "
                             f"{key}={type(v).__name__}; pass symbolic tensors or plain values")
        nodes = []
        for j, t in enumerate(g.order):
            parents = t.parents if isinstance(t.parents, list) else [t.parents]
            node = {"layer": layer_index[id(t.layer)], "inputs": [ref[id(p)] for p in parents],
                    "list": isinstance(t.parents, list), "call": calls.setdefault(id(t.node), len(calls))}
            if t.index is not None:
                node["index"] = t.index
            if t.node.kwargs:
                node["kwargs"] = {k: keyword(t.layer, k, v) for k, v in t.node.kwargs.items()}
            nodes.append(node)
            ref[id(t)] = ["node", j]
        return {"name": self.name,
                "inputs": [{"shape": list(t.shape[1:]), "dtype": t.dtype.name} for t in g.inputs],
                "layers": [serialize_layer(layer) for layer in g.layers], "nodes": nodes,
                "outputs": [ref[id(t)] for t in g.outputs], "single_output": g.single_output}

    @classmethod
    def from_config(cls, config):
        from ..layers.input_layer import Input
        from ..saving import deserialize_layer
        layers = [deserialize_layer(spec) for spec in config["layers"]]
        inputs = [Input(tuple(spec["shape"]), dtype=spec["dtype"]) for spec in config["inputs"]]
        made, calls = [], {}

        def get(r):
            return inputs[r[1]] if r[0] == "input" else made[r[1]]

        def keyword(v):
            if isinstance(v, dict) and set(v) == {"tensor"}:
                return get(v["tensor"])
            return [keyword(x) for x in v] if isinstance(v, list) else v
        for j, node in enumerate(config["nodes"]):
            call = node.get("call", ("node", j))   # files saved before multi-output calls: one call per node
            if call not in calls:
                args = [get(r) for r in node["inputs"]]
                kwargs = {k: keyword(v) for k, v in node.get("kwargs", {}).items()}
                calls[call] = layers[node["layer"]](args if node["list"] else args[0], **kwargs)
            out = calls[call]
            made.append(out if node.get("index") is None else out[node["index"]])
        outputs = [get(r) for r in config["outputs"]]
        return cls(inputs if len(inputs) > 1 else inputs[0],
                   outputs[0] if config["single_output"] else outputs, name=config["name"])

    # ------------------------------------------------------------ summary
    def summary(self, print_fn=print):
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shapes = {}
        if self._graph is not None:
            for t in reversed(self._graph.order):  # a shared layer shows its first call's shape
                shapes[id(t.layer)] = t.shape
        else:
            shape = getattr(self, "_build_input_shape", None)
            for layer in self.layers:
                if shape is None:
                    break
                shape = layer.compute_output_shape(shape)
                shapes[id(layer)] = shape
        for layer in self.layers:
            shape = shapes.get(id(layer))
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
