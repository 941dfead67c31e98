"""``pynn.Model``: the training loop (compile / fit / evaluate / predict).

A Model is a Layer, so models nest. Subclass it and write ``call(self, x,
training=False)``; layers assigned as attributes are tracked for weights.
``Sequential`` (models/sequential.py) is the common special case.
"""
from __future__ import annotations

import itertools
import os

import warnings

import numpy as np

from .. import _parallel, _weights_epoch, losses as losses_mod, metrics as metrics_mod
from ..autograd import Tensor, no_grad
from ..autograd.engine import grad as autograd_grad
from ..callbacks import CallbackList, History, ProgbarLogger
from ..utils.data import PyDataset
from ..utils.progbar import Progbar
from ..layers.base import Layer, assign_weights, unique_weights
from ..random import generator
from . import fit_loop
from . import plan as _plan


def _batch_size(op, batch_size):
    """batch_size for evaluate/predict: None means 32; anything but a positive integer is an error
    (-1 used to give an empty result, 0 silently became 32)."""
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{op}: batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _steps(what, steps):
    """A ``steps``/``validation_steps`` argument: None or a positive int."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"{what}: steps must be None or a positive integer, got {steps!r}")
    return int(steps)


def _array(x):
    x = x.data if isinstance(x, Tensor) else np.asarray(x)
    if x.dtype.kind not in "biuf":  # complex would lose its imaginary part, object/str fail deep inside
        raise TypeError(f"model input: expected a real numeric array, got dtype {x.dtype}")
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype(np.float32)  # the model's dtype, as Keras casts inputs
    return x


def _flatten_logs(logs, out=None):
    """{name: number or nested dict} -> {name: float}; Keras flattens compile_metrics' dict."""
    out = {} if out is None else out
    for k, v in logs.items():
        if isinstance(v, dict):
            _flatten_logs(v, out)
        else:
            v = np.asarray(v.data if isinstance(v, Tensor) else v)
            out[k] = float(v) if v.size == 1 else v   # per-class arrays (F1Score(average=None)) stay arrays
    return out


class _CompileMetrics(list):
    """The compiled metrics of every output, as the one metric Keras 3 puts in
    ``model.metrics`` (name "compile_metrics"): a custom train_step calls
    ``update_state(y, y_pred, sample_weight)`` on it and ``result()`` returns the dict.
    It is also the plain list ``model.compiled_metrics``."""

    name = "compile_metrics"

    def __init__(self, model):
        super().__init__(m for ms in model._output_metrics for m in ms)
        self._model = model

    def update_state(self, y_true, y_pred, sample_weight=None):
        model = self._model
        y_true = model._from_dict(y_true, model.output_names, "output", "compile_metrics")
        y_pred = model._from_dict(y_pred, model.output_names, "output", "compile_metrics")
        ys = list(y_true) if isinstance(y_true, (list, tuple)) else [y_true]
        ps = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
        ys = [v.data if isinstance(v, Tensor) else np.asarray(v) for v in ys]
        ps = [v.data if isinstance(v, Tensor) else np.asarray(v) for v in ps]
        model._update_compiled_metrics(ys, ps, None if sample_weight is None else np.asarray(sample_weight))

    def result(self):
        return {m.name: m.result() for m in self}

    def reset_state(self):
        for m in self:
            m.reset_state()


def _is_batch_iterable(x):
    if isinstance(x, (np.ndarray, Tensor, list, tuple, dict)) or x is None:
        return False
    return hasattr(x, "__iter__")


def _class_sample_weight(ys, class_weight, what):
    """Keras' class_weight as per-sample weights: the weight of each sample's class (one-hot
    or integer targets; classes not listed weigh 1). Single-output models only, as Keras."""
    if len(ys) != 1:
        raise ValueError(f"{what}: class_weight is only supported for models with a single output (as Keras); "
                         f"this one has {len(ys)}: use sample_weight, or a loss per output with loss_weights")
    labels, n = ys[0], len(ys[0])
    labels = labels.argmax(-1) if labels.ndim > 1 and labels.shape[-1] > 1 else labels.reshape(n, -1)[:, 0]
    return np.array([class_weight.get(int(c), 1.0) for c in np.round(labels).astype(np.int64)], np.float32)


def _batch_source(source, steps_per_epoch, model=None, shuffle=False, class_weight=None):
    """Per-epoch batches from an iterable of (x, y[, sample_weight]) tuples (or of
    x alone); x and y may be dicts keyed by the model's input/output names.
    ``shuffle``: a PyDataset's batches are visited in a new random order each epoch
    (Keras' fit does so by default); ``class_weight`` turns into each batch's sample weights."""
    one_shot = iter(source) is source  # a generator: consumed across epochs, steps_per_epoch at a time

    def batches(epoch):
        if shuffle and isinstance(source, PyDataset):
            it = (source[int(i)] for i in generator().permutation(len(source)))
        else:
            it = source if one_shot else iter(source)
        # islice stops before reading batch steps_per_epoch + 1: a generator's next batch is
        # kept for the next epoch, not drawn and dropped.
        for batch in itertools.islice(it, steps_per_epoch):
            if isinstance(batch, tuple):
                xb, yb = batch[0], batch[1] if len(batch) > 1 else None
                swb = batch[2] if len(batch) > 2 else None
            else:
                xb, yb, swb = batch, None, None
            if model is not None:
                xb = model._from_dict(xb, model.input_names, "input", "fit")
                yb = model._from_dict(yb, model.output_names, "output", "fit")
            xb = [_array(v) for v in (xb if isinstance(xb, (list, tuple)) else [xb])]
            yb = [] if yb is None else [np.asarray(v) for v in (yb if isinstance(yb, (list, tuple)) else [yb])]
            swb = None if swb is None else np.asarray(swb, np.float32)
            if class_weight is not None and yb:
                cw = _class_sample_weight(yb, class_weight, "fit")
                swb = cw if swb is None else swb * cw
            yield xb, yb, swb
    return batches


def _optimizers():
    from .. import optimizers  # imported lazily: optimizers are independent of models
    return optimizers


class Model(Layer):
    """``pynn.Model(inputs, outputs)`` for a functional DAG of layers, or a base
    class: subclass it and write ``call(self, x, training=False)``.

    Example:
        >>> inputs = pynn.Input((4,))
        >>> outputs = pynn.layers.Dense(2, activation="softmax")(pynn.layers.Dense(8, activation="relu")(inputs))
        >>> model = pynn.Model(inputs, outputs)
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        >>> history = model.fit(np.ones((8, 4), np.float32), np.zeros(8), epochs=2, verbose=0)
        >>> model.predict(np.ones((3, 4), np.float32), verbose=0).shape
        (3, 2)
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self._loss_tracker, self._output_loss_trackers, self._losses = None, [], []
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
        return list(self._flatten_layers())

    @property
    def inputs(self):
        """The symbolic inputs (functional models, or Sequential built from an Input)."""
        if self._graph is not None:
            return list(self._graph.inputs)
        inp = getattr(self, "_input", None)
        if inp is None:
            raise AttributeError(f"Model {self.name!r} has no symbolic inputs: it is subclassed, or a Sequential "
                                 "without an Input")
        return [inp]

    @property
    def outputs(self):
        if self._graph is not None:
            return list(self._graph.outputs)
        from ..layers.input_layer import KerasTensor
        self.inputs   # raises for models without symbolic inputs
        return [KerasTensor(self._output_shape, self._layers[-1].dtype if self._layers else "float32",
                            self._layers[-1] if self._layers else None)]

    @property
    def input(self):
        ins = self.inputs
        return ins[0] if len(ins) == 1 else ins

    @property
    def output(self):
        outs = self.outputs
        return outs[0] if len(outs) == 1 else outs

    @property
    def input_shape(self):
        """Shape(s) of the input(s), batch dimension None (Keras)."""
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

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
        return unique_weights([self._own_weights()] + [layer.weights for layer in self.layers])

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        groups = [layer.trainable_weights for layer in self.layers]
        if self._weights:
            groups.insert(0, [w for w in self._weights if w.trainable])
        return unique_weights(groups)

    variables = weights
    trainable_variables = trainable_weights

    @property
    def non_trainable_variables(self):
        return self.non_trainable_weights

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = value

    # get_weights and count_params: Layer's, which read self.weights as defined here.
    def set_weights(self, weights):
        assign_weights(f"Model {self.name!r}", self.weights, weights)

    def __call__(self, inputs, training=False):
        from ..layers.input_layer import is_symbolic
        if is_symbolic(inputs):
            return super().__call__(inputs, training=training)  # a nested model in a functional graph
        if isinstance(inputs, dict):
            inputs = {k: t if isinstance(t, Tensor) else Tensor(t) for k, t in inputs.items()}
        elif isinstance(inputs, (list, tuple)):
            inputs = [t if isinstance(t, Tensor) else Tensor(t) for t in inputs]
        elif not isinstance(inputs, Tensor):
            inputs = Tensor(inputs)
        from ..layers.base import _enter_call, _exit_call
        _enter_call(self)
        try:
            return self._call_eager(inputs, training)
        finally:
            _exit_call()

    def _loss_children(self):
        return self.layers

    def _call_eager(self, inputs, training):
        if not self.built and self._graph is None:   # remembered for load_model (Keras' build_config)
            seq = list(inputs.values()) if isinstance(inputs, dict) else (
                inputs if isinstance(inputs, (list, tuple)) else [inputs])
            self._build_input_spec = [((None,) + tuple(t.shape[1:]), t.data.dtype.name) for t in seq]
        if not self.built and isinstance(inputs, dict):
            self.build({k: tuple(t.shape) for k, t in inputs.items()})
        elif not self.built:
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
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, jit_compile="auto"):
        """Set the optimizer (name or object), the loss and the metrics, Keras 3's way.

        Args:
            optimizer: name ("adam") or an Optimizer.
            loss: name, Loss or callable; for several outputs one for all, a list
                (one per output) or a dict keyed by output name.
            loss_weights: a list or dict of per-output factors of the total loss.
            metrics: list of names/Metrics (single output); for several outputs a
                list of lists or a dict keyed by output name. Not sample-weighted.
            weighted_metrics: same structure; these receive ``sample_weight``.
            run_eagerly: pynn always runs eagerly (there is no graph compiler), so
                True and False both give Keras' eager semantics.
            jit_compile: "auto" or False; pynn has no JIT compiler, so True raises.

        Example: ``model.compile("adam", loss={"cls": "sparse_categorical_crossentropy",
        "reg": "mse"}, loss_weights={"cls": 1.0, "reg": 0.5}, metrics={"cls": ["accuracy"]})``.
        A model whose ``train_step`` is overridden may compile without a loss.
        """
        if jit_compile is True:
            raise ValueError("compile: jit_compile=True is not supported: pynn has no JIT compiler "
                             "(its kernels are compiled ahead of time); use jit_compile='auto' or False")
        if jit_compile not in ("auto", False, None) or not isinstance(run_eagerly, bool):
            raise ValueError(f"compile: run_eagerly must be a bool and jit_compile 'auto'/False, got "
                             f"run_eagerly={run_eagerly!r}, jit_compile={jit_compile!r}")
        self.run_eagerly, self.jit_compile = run_eagerly, False
        self.optimizer = _optimizers().get(optimizer)
        self.loss = loss
        names = self.output_names
        n_out = len(names)

        def per_output(value, what, default):
            """value as a list with one entry per output (dict keyed by output name, list, or one for all)."""
            if isinstance(value, dict):
                unknown = sorted(set(value) - set(names))
                if unknown:
                    raise ValueError(f"compile: {what} has keys {unknown} that are not output names {names}")
                if what == "loss" and set(value) != set(names):
                    raise ValueError(f"compile: expected keys {names} in the loss dict, got {sorted(value)}")
                return [value.get(n, default) for n in names]
            if isinstance(value, (list, tuple)) and n_out > 1:
                if len(value) != n_out:
                    raise ValueError(f"compile: {len(value)} {what} given for a model with {n_out} outputs {names}")
                return list(value)
            return [value] * n_out

        self._losses = [None if item is None else losses_mod.get(item) for item in per_output(loss, "loss", None)]
        if loss is not None and all(item is None for item in self._losses):
            raise ValueError("compile: every output's loss is None")
        weights = per_output(loss_weights, "loss_weights", 1.0) if loss_weights is not None else [1.0] * n_out
        self._loss_weights = [1.0 if w is None else float(w) for w in weights]

        def metric_lists(spec, what):
            if spec is None:
                return [[] for _ in names]
            if isinstance(spec, dict):
                lists = per_output(spec, what, [])
            elif n_out > 1 and all(isinstance(m, (list, tuple)) or m is None for m in spec):
                lists = per_output(list(spec), what, [])
            elif n_out > 1:
                # A flat list for several outputs (Keras 3 rejects it; tf.keras applied
                # it to every output, which is what this does).
                lists = [list(spec) for _ in names]
            else:
                lists = [spec]
            return [[] if ms is None else (list(ms) if isinstance(ms, (list, tuple)) else [ms]) for ms in lists]

        self._metric_specs = metrics if metrics is not None else []
        self._weighted_metric_specs = weighted_metrics
        plain, weighted = metric_lists(metrics, "metrics"), metric_lists(weighted_metrics, "weighted_metrics")
        self._output_metrics, self._metric_weighted = [], []
        for i, name in enumerate(names):
            out_loss = self._losses[i]
            ms = [metrics_mod.get(m, out_loss) for m in plain[i]]
            taken = {m.name for m in ms}
            wms = [metrics_mod.get(m, out_loss) for m in weighted[i]]
            for m in wms:
                if m.name in taken:   # Keras: the weighted twin of a plain metric is "weighted_<name>"
                    m.name = f"weighted_{m.name}"
            if n_out > 1:
                for m in ms + wms:
                    m.name = f"{name}_{m.name}"
            self._output_metrics.append(ms + wms)
            self._metric_weighted.append([False] * len(ms) + [True] * len(wms))
        self.compiled_metrics = self._compile_metrics = _CompileMetrics(self)
        self._loss_tracker = metrics_mod.Mean("loss")
        self._output_loss_trackers = ([metrics_mod.Mean(f"{name}_loss") if self._losses[i] is not None else None
                                       for i, name in enumerate(names)] if n_out > 1 else [])

    @property
    def output_names(self):
        """Output names: dict keys or the producing layers' names (functional), else output_0..."""
        if self._graph is not None:
            return list(self._graph.output_names)
        return ["output_0"]

    @property
    def input_names(self):
        if self._graph is not None:
            return list(self._graph.input_names)
        return ["input_0"]

    @property
    def metrics_names(self):
        """The keys of fit's/evaluate's logs, in evaluate's list order."""
        if self.loss is None and getattr(self, "_loss_tracker", None) is None:
            return []
        return self._ordered_keys(self._logs())

    @property
    def metrics(self):
        """Keras 3: the loss tracker, the compiled metrics (one container), the
        per-output loss trackers, then Metric objects held as attributes. A custom
        train_step updates these; fit resets them at every epoch's start."""
        from ..metrics import Metric
        out = []
        if getattr(self, "_loss_tracker", None) is not None:
            out.append(self._loss_tracker)
            if len(self.compiled_metrics):
                out.append(self._compile_metrics)
            out += [t for t in self._output_loss_trackers if t is not None]
        seen = {id(m) for m in out}
        for v in vars(self).values():
            if isinstance(v, Metric) and id(v) not in seen and all(v is not m for m in self.compiled_metrics):
                seen.add(id(v))
                out.append(v)
        return out

    def _require_compiled(self, what):
        if self.optimizer is None and getattr(self, "_loss_tracker", None) is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer, loss) first")

    def _require_loss(self, what):
        if all(item is None for item in self._losses):
            raise ValueError(f"{what}: the model was compiled without a loss; pass compile(loss=...) or "
                             "override train_step/test_step")

    # ------------------------------------------------------------ data checks
    def _prepare_x(self, x, what):
        """x as a list of float32 (or integer) arrays, one per model input."""
        x = self._from_dict(x, self.input_names, "input", what)
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

    @staticmethod
    def _from_dict(value, names, kind, what):
        """A dict keyed by input/output names as the list in model order (Keras' dict data)."""
        if not isinstance(value, dict):
            return value
        missing, unknown = [n for n in names if n not in value], sorted(set(value) - set(names))
        if missing or unknown:
            raise ValueError(f"{what}: the {kind} dict has keys {sorted(value)}; the model's {kind} names are "
                             f"{names} (missing {missing}, unknown {unknown})")
        return [value[n] for n in names] if len(names) > 1 else value[names[0]]

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
        y = self._from_dict(y, self.output_names, "output", what)
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
            cw = _class_sample_weight(ys, class_weight, what)
            sample_weight = cw if sample_weight is None else sample_weight * cw
        return xs, ys, sample_weight

    # ------------------------------------------------------------ steps
    def _forward(self, xs, training):
        inputs = [Tensor(v) for v in xs]
        out = self(inputs[0] if len(inputs) == 1 else inputs, training=training)
        if isinstance(out, dict):   # dict outputs: in output_names order
            return [out[n] for n in self.output_names]
        return out if isinstance(out, (list, tuple)) else [out]

    def _loss_value(self, ys, y_preds, sample_weight, regularized=None, call_losses=True):
        """The compiled loss of one forward pass: the per-output losses (weighted), the
        weights' regularizers and the add_loss() terms. ``regularized``: the weights with a
        regularizer when the caller has them already (fit's prepared step), else read off
        ``trainable_weights``; ``call_losses=False`` when the forward pass adds none."""
        loss = None
        terms = self._loss_terms = []  # per-output (unweighted) values, for "<output>_loss" logs
        for out_loss, weight, y, y_pred in zip(self._losses, self._loss_weights, ys, y_preds):
            if out_loss is None:
                terms.append(None)
                continue
            term = out_loss(y, y_pred, sample_weight)
            terms.append(term)
            if weight != 1.0:
                term = term * weight
            loss = term if loss is None else loss + term
        if regularized is None:
            regularized = [w for w in self.trainable_weights if getattr(w, "regularizer", None) is not None]
        for w in regularized:
            loss = loss + w.regularizer(w)
        if call_losses:
            for extra in self._collect_call_losses():   # add_loss()/activity_regularizer of this forward pass
                loss = loss + extra
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
        for tracker, term in zip(self._output_loss_trackers, self._loss_terms):
            if tracker is not None:
                tracker.update_state(float(term.data), sample_weight=n)
        self._update_compiled_metrics(ys, y_preds, sample_weight)
        return self._logs()

    def _update_compiled_metrics(self, ys, y_preds, sample_weight):
        # Keras 3: sample weights reach weighted_metrics only.
        for ms, flags, y, y_pred in zip(self._output_metrics, self._metric_weighted, ys, y_preds):
            for m, weighted in zip(ms, flags):
                m.update_state(y, y_pred, sample_weight if weighted else None)

    def _logs(self):
        logs = {"loss": self._loss_tracker.result()}
        for t in self._output_loss_trackers:
            if t is not None:
                logs[t.name] = t.result()
        for m in self.compiled_metrics:
            logs[m.name] = m.result()
        return logs

    def _reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    # ------------------------------------------------------------ Keras 3 steps (overridable)
    def _overrides(self, method):
        """True when a subclass overrides ``method`` (train_step/test_step/predict_step).
        fit/evaluate/predict then call it on each batch; otherwise they run the
        fused default step directly (same result, no repacking)."""
        return getattr(type(self), method) is not getattr(Model, method)

    def _pack_data(self, xs, ys, sw):
        """One batch as Keras hands it to a step: x (or the list of inputs), then y
        and sample_weight when present (keras.utils.pack_x_y_sample_weight)."""
        x = xs[0] if len(xs) == 1 else list(xs)
        if not ys:
            return x
        y = ys[0] if len(ys) == 1 else list(ys)
        return (x, y) if sw is None else (x, y, sw)

    def _unpack_data(self, data, what):
        """(xs, ys, sample_weight) from what a step receives: x, (x,), (x, y) or (x, y, sw)."""
        if isinstance(data, tuple) and 1 <= len(data) <= 3:
            x, y, sw = (tuple(data) + (None, None))[:3]
        else:
            x, y, sw = data, None, None
        xs = self._prepare_x(x, what)
        if y is None:
            return xs, [], sw
        y = self._from_dict(y, self.output_names, "output", what)
        ys = [v.data if isinstance(v, Tensor) else np.asarray(v) for v in (y if isinstance(y, (list, tuple)) else [y])]
        return xs, ys, None if sw is None else np.asarray(sw, np.float32)

    def _run_step(self, step, xs, ys, sw):
        """Call an overridden step and turn what it returns into float logs
        (nested dicts, e.g. compile_metrics' results, are flattened as Keras does)."""
        out = step(self._pack_data(xs, ys, sw))
        if out is None:
            return {}
        if not isinstance(out, dict):
            raise TypeError(f"{type(self).__name__}.{step.__name__} must return a dict of logs, got "
                            f"{type(out).__name__}")
        return _flatten_logs(out)

    def train_step(self, data):
        """One training step on one batch: forward, loss, gradients, optimizer
        update, metrics; returns the logs. ``data`` is ``x``, ``(x, y)`` or
        ``(x, y, sample_weight)``. Override it for a custom step (GANs,
        self-supervision): ``fit`` then calls yours; inside use ``self(x,
        training=True)``, ``self.compute_loss(y=y, y_pred=y_pred)``, a
        ``pynn.GradientTape``, ``self.optimizer.apply(grads, self.trainable_variables)``
        and ``self.metrics``."""
        xs, ys, sw = self._unpack_data(data, "train_step")
        self._require_loss("train_step")
        loss, y_preds = self._train_step(xs, ys, sw)
        return self._update_metrics(loss, ys, y_preds, sw, len(xs[0]))

    def test_step(self, data):
        """One evaluation step (no gradients): loss and metrics; returns the logs."""
        xs, ys, sw = self._unpack_data(data, "test_step")
        self._require_loss("test_step")
        with no_grad():
            y_preds = self._forward(xs, training=False)
            loss = float(self._loss_value(ys, y_preds, sw).data)
        return self._update_metrics(loss, ys, [p.data for p in y_preds], sw, len(xs[0]))

    def predict_step(self, data):
        """One inference step: the model's output(s) for the batch's x."""
        x = data[0] if isinstance(data, tuple) else data
        with no_grad():
            outs = [o.data for o in self._forward(self._prepare_x(x, "predict_step"), training=False)]
        return outs[0] if len(outs) == 1 else outs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss of ``y_pred`` against ``y`` (weighted over outputs by
        ``loss_weights``) plus the weights' regularization penalties: a scalar
        Tensor to differentiate. ``x`` is accepted for Keras' signature."""
        if y_pred is None:
            raise ValueError("compute_loss: y_pred is required")
        self._require_loss("compute_loss")
        y = self._from_dict(y, self.output_names, "output", "compute_loss")
        y_pred = self._from_dict(y_pred, self.output_names, "output", "compute_loss")
        ys = [v.data if isinstance(v, Tensor) else np.asarray(v) for v in (y if isinstance(y, (list, tuple)) else [y])]
        y_preds = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
        if len(ys) != len(self._losses) or len(y_preds) != len(self._losses):
            raise ValueError(f"compute_loss: model {self.name!r} has {len(self._losses)} outputs, got "
                             f"{len(ys)} targets and {len(y_preds)} predictions")
        sw = None if sample_weight is None else np.asarray(sample_weight, np.float32)
        loss = self._loss_value(ys, y_preds, sw)
        n = len(ys[0])
        for tracker, term in zip(self._output_loss_trackers, self._loss_terms):
            if tracker is not None:
                tracker.update_state(float(term.data), sample_weight=n)
        return loss

    def zero_grad(self):
        """Clear every weight's ``.grad`` (for a torch-style step that calls ``loss.backward()``)."""
        for w in self.weights:
            w.grad = None

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch, as Keras 3: the metrics are reset first, an
        overridden ``train_step`` is what runs, and the result is the loss alone when
        nothing else is tracked, else ``[loss, *others]`` in evaluate's order (a dict
        with ``return_dict=True``)."""
        self._require_compiled("train_on_batch")
        if _parallel.active():
            raise NotImplementedError("train_on_batch under pynn.distribution.DataParallel: use fit(), which "
                                      "shards each global batch and averages the gradients across ranks")
        _weights_epoch.bump()
        self._reset_metrics()
        if self._overrides("train_step"):
            xs, ys, sw = (self._prepare_x(x, "train_on_batch"), [], None) if y is None else \
                self._prepare_xy(x, y, sample_weight, "train_on_batch", class_weight)
            return self._batch_result(self._run_step(self.train_step, xs, ys, sw), return_dict)
        self._require_loss("train_on_batch")
        xs, ys, sw = self._prepare_xy(x, y, sample_weight, "train_on_batch", class_weight)
        # The fused Dense/Conv stack gives the loss alone: taken only when the loss is all there is to report.
        loss = None if self._logs_beyond_loss() else fit_loop.train_batch(self, Model, xs, ys, sw)
        if loss is not None:
            self._loss_tracker.update_state(loss, sample_weight=len(xs[0]))
            return self._batch_result(self._logs(), return_dict)
        loss, y_preds = self._train_step(xs, ys, sw)
        return self._batch_result(self._update_metrics(loss, ys, y_preds, sw, len(xs[0])), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch without training, as Keras 3: metrics reset
        first, an overridden ``test_step`` runs, results as in ``train_on_batch``."""
        self._require_compiled("test_on_batch")
        self._reset_metrics()
        if self._overrides("test_step"):
            xs, ys, sw = (self._prepare_x(x, "test_on_batch"), [], None) if y is None else \
                self._prepare_xy(x, y, sample_weight, "test_on_batch")
            with no_grad():
                return self._batch_result(self._run_step(self.test_step, xs, ys, sw), return_dict)
        self._require_loss("test_on_batch")
        xs, ys, sw = self._prepare_xy(x, y, sample_weight, "test_on_batch")
        with no_grad():
            y_preds = self._forward(xs, training=False)
            loss = float(self._loss_value(ys, y_preds, sw).data)
            logs = self._update_metrics(loss, ys, [p.data for p in y_preds], sw, len(xs[0]))
        return self._batch_result(logs, return_dict)

    def _logs_beyond_loss(self):
        return len(self.compiled_metrics) > 0 or any(t is not None for t in self._output_loss_trackers)

    def _batch_result(self, logs, return_dict):
        if return_dict:
            return logs
        if len(logs) == 1:  # the loss alone: no ordering to work out (~10 us per train_on_batch)
            return next(iter(logs.values()))
        values = [logs[k] for k in self._ordered_keys(logs)]
        return values[0] if len(values) == 1 else values

    def _ordered_keys(self, logs):
        """Log values in the order Keras 3 lists them (Trainer._flatten_metrics_in_order):
        the loss, the per-output losses in output order, the compiled metrics in the order
        given when there is one output (several outputs: by name, because Keras' prefixed
        keys match none of its metric names and fall through to its sorted remainder), the
        metrics held as attributes, then any other key sorted."""
        from ..metrics import Metric
        names = []
        if getattr(self, "_loss_tracker", None) is not None:
            names.append("loss")
            names += [t.name for t in self._output_loss_trackers if t is not None]
            compiled = [m.name for m in self.compiled_metrics]
            names += compiled if len(self.output_names) <= 1 else sorted(compiled)
        names += [v.name for v in vars(self).values() if isinstance(v, Metric)]
        ordered = [k for k in dict.fromkeys(names) if k in logs]
        return ordered + sorted(k for k in logs if k not in ordered)

    def predict_on_batch(self, x):
        """Outputs for one batch (Keras' name): one forward pass, no graph recorded, no
        batching loop or progress bar; the fast path for serving single requests."""
        outs = _plan.run_array(self, x)   # a float32 array of the input's shape: straight to the plan
        if outs is not None:
            return outs[0] if len(outs) == 1 else outs
        xs = self._prepare_x(x, "predict_on_batch")
        outs = _plan.run(self, xs)   # the compiled inference plan (models/plan.py), None if it cannot serve
        if outs is None:
            with no_grad():
                outs = [o.data for o in self._forward(xs, training=False)]
        return outs[0] if len(outs) == 1 else outs

    # ------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs``; returns a History.

        ``x``/``y``: arrays, lists of arrays or dicts keyed by input/output name
        for several inputs/outputs, or ``x`` an iterable of ``(x, y)`` /
        ``(x, y, sample_weight)`` batches (re-iterated each epoch; a one-shot
        generator needs ``steps_per_epoch``). ``validation_freq``: validate every
        that many epochs (an int) or after the listed epochs (1-based, a list);
        ``validation_batch_size`` defaults to ``batch_size``. ``validation_data`` may be
        an iterable of batches too (a PyDataset, a generator), ``validation_steps`` batches
        of it per validation (all when None). With arrays, ``steps_per_epoch`` batches make
        an epoch and one pass over the data is carried across epochs, as Keras does: an
        epoch that finds the pass exhausted ends early with Keras' warning.
        """
        self._require_compiled("fit")
        _weights_epoch.bump()   # inference plans rebuild after training, whatever path the steps take
        if batch_size is None:
            batch_size = 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"fit: batch_size must be a positive integer, got {batch_size!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        if isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool):
            if validation_freq < 1:
                raise ValueError(f"fit: validation_freq must be >= 1, got {validation_freq}")
            validate_after = lambda epoch: (epoch + 1) % validation_freq == 0  # noqa: E731
        elif isinstance(validation_freq, (list, tuple, set, range)):
            wanted = {int(e) for e in validation_freq}
            validate_after = lambda epoch: epoch + 1 in wanted  # noqa: E731
        else:
            raise ValueError(f"fit: validation_freq must be an int or a list of epochs, got {validation_freq!r}")
        dp = _parallel.fit_session(self)  # DataParallel over several processes, else None

        if _is_batch_iterable(x):
            if y is not None:
                raise ValueError("fit: when x is an iterable of batches, y must be None (batches carry it)")
            if sample_weight is not None:
                raise ValueError("fit: sample_weight cannot be given with an iterable of batches (as Keras): "
                                 "yield (x, y, sample_weight) batches instead")
            batches_of = _batch_source(x, steps_per_epoch, self, shuffle=shuffle, class_weight=class_weight)
            steps = steps_per_epoch or (len(x) if hasattr(x, "__len__") else None)
            if steps is None:
                raise ValueError("fit: a generator of batches needs steps_per_epoch")
            if dp:
                batches_of, xs = dp.shard_batches(batches_of), None
        else:
            if y is None and self._overrides("train_step"):
                # A custom train_step may learn from x alone (autoencoders, VAEs): data is x.
                xs, ys, sw = self._prepare_x(x, "fit"), [], None
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
            steps = per_pass = (n + batch_size - 1) // batch_size

            def epoch_batches(epoch):
                order = (dp.permutation(n) if dp else generator().permutation(n)) if shuffle else None
                for step in range(per_pass):
                    idx = (order[step * batch_size:(step + 1) * batch_size] if shuffle
                           else slice(step * batch_size, (step + 1) * batch_size))
                    if dp:
                        idx = dp.local(idx, n)  # this rank's slice of the global batch
                    yield [v[idx] for v in xs], [v[idx] for v in ys], None if sw is None else sw[idx]

            if steps_per_epoch is None:
                batches_of = epoch_batches
            else:
                # Keras' epoch iterator over arrays: one pass over the data is carried across
                # epochs, steps_per_epoch batches at a time; an epoch that finds it exhausted
                # ends early (with Keras' warning) and the next starts a new pass.
                steps = _steps("fit", steps_per_epoch)
                carried = {"pass": None}

                def batches_of(epoch):
                    for done in range(steps):
                        if carried["pass"] is None:
                            carried["pass"] = epoch_batches(epoch)
                        batch = next(carried["pass"], None)
                        if batch is None:
                            carried["pass"] = None
                            if done == 0:   # the previous epoch ended exactly at the end of a pass
                                carried["pass"] = epoch_batches(epoch)
                                batch = next(carried["pass"], None)
                            if batch is None or done > 0:
                                warnings.warn("fit: your input ran out of data after "
                                              f"{done} of steps_per_epoch={steps} batches; this epoch ends "
                                              "early and the next one starts a new pass (as Keras)",
                                              UserWarning, stacklevel=3)
                                return
                        yield batch

        if dp:  # same loop on every rank, rank 0's weights, rank-0-only writers
            verbose, callbacks = dp.begin(self, xs, verbose, callbacks, steps=steps, epochs=epochs,
                                          initial_epoch=initial_epoch, shuffle=shuffle,
                                          validation=validation_data is not None)
        history = History()
        # History after the user's callbacks (as Keras): it records what they add
        # to the logs, e.g. ReduceLROnPlateau's learning_rate.
        cbs = list(callbacks or []) + [history]
        if verbose:
            cbs.append(ProgbarLogger(verbose=verbose))
        cblist = CallbackList(cbs, self, {"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        self.history = history
        custom_step = self._overrides("train_step")
        if not custom_step:
            self._require_loss("fit")
        cblist.on_train_begin()
        initial_epoch = max(initial_epoch, self.__dict__.pop("_resume_epoch", 0))   # BackupAndRestore
        # The common case's step, chosen once (models/fit_loop.py); None: the generic loop below.
        plan = None if custom_step or dp or _is_batch_iterable(x) or steps_per_epoch is not None else \
            fit_loop.plan_for(self, Model, xs, ys, sw, batch_size, shuffle, cbs)
        epoch_logs = None
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            cblist.on_epoch_begin(epoch)
            logs = {}
            for step, (xb, yb, swb) in enumerate(batches_of(epoch) if plan is None else ()):
                cblist.on_train_batch_begin(step)
                if custom_step:  # an overridden train_step: what fit calls, as in Keras
                    logs = self._run_step(self.train_step, xb, yb, swb)
                else:
                    loss, y_preds = self._train_step(xb, yb, swb)
                    logs = self._update_metrics(loss, yb, y_preds, swb, len(xb[0]))
                if dp:
                    logs = dp.logs(self, logs)
                cblist.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            if plan is not None:
                logs = plan.run_epoch()
            epoch_logs = dict(logs)
            if dp:
                epoch_logs = dp.end_epoch(self, epoch_logs)
            if validation_data is not None and validate_after(epoch):
                if _is_batch_iterable(validation_data):   # a PyDataset or a generator of batches
                    val = self.evaluate(validation_data, verbose=0, steps=validation_steps, return_dict=True,
                                        callbacks=cblist)
                else:
                    vx, vy = validation_data[0], validation_data[1]
                    vsw = validation_data[2] if len(validation_data) > 2 else None
                    val = self.evaluate(vx, vy, batch_size=validation_batch_size or batch_size, verbose=0,
                                        sample_weight=vsw, steps=validation_steps, return_dict=True,
                                        callbacks=cblist)   # on_test_* fire during validation, as in Keras
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            cblist.on_epoch_end(epoch, epoch_logs)
            if isinstance(x, PyDataset):
                x.on_epoch_end()
            if self.stop_training:
                break
        if dp:
            dp.end()
        cblist.on_train_end(epoch_logs)   # Keras: the last epoch's logs
        return history

    def evaluate(self, x=None, y=None, batch_size=32, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss (and metrics) over (x, y): a float, a list [loss, *metrics], or a dict.

        ``x``/``y`` as in ``fit`` (dicts keyed by names work). Prints one progress
        line unless ``verbose=0`` (Keras' default "auto" is 1). ``callbacks`` get
        on_test_begin/end and on_test_batch_begin/end, as in Keras. ``steps``: evaluate
        only that many batches (of arrays or of an iterable of batches)."""
        self._require_compiled("evaluate")
        custom_step = self._overrides("test_step")
        steps = _steps("evaluate", steps)
        if _is_batch_iterable(x):
            if sample_weight is not None:
                raise ValueError("evaluate: sample_weight cannot be given with an iterable of batches (as Keras): "
                                 "yield (x, y, sample_weight) batches instead")
            return self._evaluate_batches(x, y, verbose, return_dict, custom_step, callbacks, steps)
        if y is None and custom_step:
            xs, ys, sw = self._prepare_x(x, "evaluate"), [], None
        else:
            xs, ys, sw = self._prepare_xy(x, y, sample_weight, "evaluate")
        if not custom_step:
            self._require_loss("evaluate")
        self._reset_metrics()
        bs = _batch_size("evaluate", batch_size)
        if steps is not None:   # Keras: the first `steps` batches
            xs, ys = [v[:steps * bs] for v in xs], [v[:steps * bs] for v in ys]
            sw = None if sw is None else sw[:steps * bs]
        dist = _parallel.active()
        if dist:  # each rank evaluates its shard; the metric states are summed below
            xs, ys, sw, bs = dist.shard_arrays(xs, ys, sw, bs)
        steps = (len(xs[0]) + bs - 1) // bs
        # Under DataParallel the per-step values are this rank's: one global line is printed instead.
        bar = Progbar(steps, verbose=1 if verbose == "auto" else verbose) if verbose and not dist else None
        cbs = CallbackList.of(callbacks, self, {"verbose": verbose, "epochs": 1, "steps": steps})
        batches = (([v[sl] for v in xs], [v[sl] for v in ys], None if sw is None else sw[sl])
                   for sl in (slice(start, start + bs) for start in range(0, len(xs[0]), bs)))
        logs = self._evaluate_loop(batches, custom_step, bar, cbs)
        if dist:
            logs = dist.reduce_logs(self, logs if custom_step else self._logs())
            if verbose and _parallel.is_primary():
                print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        cbs.on_test_end(logs)
        return self._batch_result(logs, return_dict)

    def _evaluate_loop(self, batches, custom_step, bar, cbs):
        """evaluate's pass over (x, y, sample_weight) batches: the test step (or loss and
        metrics), the progress bar and the test hooks but on_test_end. Returns the last logs."""
        logs = {}
        cbs.on_test_begin()
        with no_grad():
            for step, (xb, yb, swb) in enumerate(batches):
                cbs.on_test_batch_begin(step)
                if custom_step:
                    logs = self._run_step(self.test_step, xb, yb, swb)
                else:
                    y_preds = self._forward(xb, training=False)
                    loss = float(self._loss_value(yb, y_preds, swb).data)
                    logs = self._update_metrics(loss, yb, [p.data for p in y_preds], swb, len(xb[0]))
                cbs.on_test_batch_end(step, logs)
                if bar is not None:
                    bar.update(step + 1, list(logs.items()))
        return logs

    def _evaluate_batches(self, source, y, verbose, return_dict, custom_step, callbacks=None, steps=None):
        """evaluate() over an iterable of (x, y[, sample_weight]) batches (a PyDataset, a generator)."""
        if y is not None:
            raise ValueError("evaluate: when x is an iterable of batches, y must be None (the batches carry it)")
        if not custom_step:
            self._require_loss("evaluate")
        self._reset_metrics()
        bar = Progbar(len(source), verbose=1 if verbose == "auto" else verbose) \
            if verbose and hasattr(source, "__len__") else None
        cbs = CallbackList.of(callbacks, self, {"verbose": verbose, "epochs": 1,
                                                "steps": len(source) if hasattr(source, "__len__") else None})
        logs = self._evaluate_loop(_batch_source(source, steps, self)(0), custom_step, bar, cbs)
        cbs.on_test_end(logs)
        return self._batch_result(logs, return_dict)

    def predict(self, x, batch_size=32, verbose="auto", callbacks=None):
        """Outputs for x (arrays, list or dict keyed by input name), computed in
        batches without recording a graph; a dict keyed by output name when the
        model was built with dict outputs. ``verbose=1`` shows a progress bar
        (Keras' default "auto" is 1 too). ``callbacks`` get on_predict_begin/end and
        on_predict_batch_begin/end (logs {"outputs": ...}), as in Keras."""
        if _is_batch_iterable(x):   # a PyDataset or generator of x (or (x, ...)) batches
            cbs = CallbackList.of(callbacks, self, {"verbose": verbose, "epochs": 1,
                                                    "steps": len(x) if hasattr(x, "__len__") else None})
            cbs.on_predict_begin()
            outs = []
            for step, (xb, _, _) in enumerate(_batch_source(x, None, self)(0)):
                cbs.on_predict_batch_begin(step)
                outs.append(self.predict(xb[0] if len(xb) == 1 else xb, batch_size=None, verbose=0))
                cbs.on_predict_batch_end(step, {"outputs": outs[-1]})
            cbs.on_predict_end()
            if not outs:
                raise ValueError("predict: the batch iterable yielded no batches")
            if isinstance(outs[0], dict):
                return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
            if isinstance(outs[0], list):
                return [np.concatenate(parts) for parts in zip(*outs)]
            return np.concatenate(outs)
        xs = self._prepare_x(x, "predict")
        if len(xs[0]) == 0:
            raise ValueError("predict: x has no samples")
        bs = _batch_size("predict", batch_size)
        dist = _parallel.active()
        if dist:  # each rank predicts its shard; the shards are gathered in order below
            lo, hi = dist.local_range(len(xs[0]))
            xs = [v[lo:hi] for v in xs]
        steps = (len(xs[0]) + bs - 1) // bs
        bar = Progbar(steps, verbose=1 if verbose == "auto" else verbose) \
            if verbose and _parallel.is_primary() else None
        custom_step = self._overrides("predict_step")
        outs = []
        cbs = CallbackList.of(callbacks, self, {"verbose": verbose, "epochs": 1, "steps": steps})
        cbs.on_predict_begin()
        with no_grad():
            for step, start in enumerate(range(0, len(xs[0]), bs)):
                cbs.on_predict_batch_begin(step)
                xb = [v[start:start + bs] for v in xs]
                if custom_step:
                    out = self.predict_step(self._pack_data(xb, [], None))
                    out = list(out) if isinstance(out, (list, tuple)) else [out]
                    outs.append([o.data if isinstance(o, Tensor) else np.asarray(o) for o in out])
                else:
                    out = _plan.run(self, xb)   # the compiled inference plan, None if it cannot serve
                    outs.append(out if out is not None else [o.data for o in self._forward(xb, training=False)])
                cbs.on_predict_batch_end(step, {"outputs": outs[-1][0] if len(outs[-1]) == 1 else outs[-1]})
                if bar is not None:
                    bar.update(step + 1)
        cbs.on_predict_end()
        merged = [np.concatenate(parts, axis=0) for parts in zip(*outs)]
        if dist:
            merged = dist.gather(merged, len(xs[0]))
        if self._graph is not None and self._graph.output_dict:
            return dict(zip(self.output_names, merged))
        return merged[0] if len(merged) == 1 else merged

    # ------------------------------------------------------------ saving
    def save(self, filepath):
        """Architecture, weights and optimizer state in one file (atomic write); a
        ".keras" name writes a Keras 3 archive instead (pynn.keras_file).
        Under DataParallel only rank 0 writes (every rank holds the same model)."""
        if not _parallel.is_primary():
            return
        from ..saving import saver_for   # ".keras": pynn.keras_file's saver, registered there
        saver_for(filepath)(self, filepath)

    def export(self, filepath, format="onnx", **kwargs):
        """Write an inference graph for deployment: ``format="onnx"`` (Keras 3's
        spelling) -> ``pynn.onnx.export(self, filepath, **kwargs)`` (needs the
        ``[onnx]`` extra)."""
        if format != "onnx":
            raise ValueError(f"export: format must be 'onnx', got {format!r}")
        from ..onnx import export
        return export(self, filepath, **kwargs)

    def save_weights(self, filepath):
        """Write every weight, atomically (a temporary file, then rename): a name ending in
        ``.weights.h5`` writes Keras 3's weights file (with a compiled model's optimizer
        state; ``keras.Model.load_weights`` reads it), any other name an .npz.
        Under DataParallel only rank 0 writes."""
        if not _parallel.is_primary():
            return
        from ..saving import _weights_format_for   # ".weights.h5": pynn.keras_file's, registered there
        fmt = _weights_format_for(filepath)
        if fmt is not None:
            if fmt[0] is None:
                raise ValueError(f"save_weights: {os.fspath(filepath)!r} names a format that holds a whole model; "
                                 "use model.save() for it, or a .weights.h5 / .npz name for the weights alone")
            return fmt[0](self, filepath)
        from ..saving import atomic_write
        arrays = {f"w{i:04d}": w.data for i, w in enumerate(self.weights)}
        atomic_write(filepath, lambda f: np.savez(f, **arrays))

    def load_weights(self, filepath):
        """Load weights saved by save_weights (.npz), or Keras 3's ``.weights.h5`` / ``.keras``
        files (written by Keras or pynn; with a compiled model also the optimizer state the
        file holds); shapes are checked before anything is set."""
        from ..saving import _weights_format_for
        fmt = _weights_format_for(filepath)
        if fmt is not None:
            return fmt[1](self, filepath)
        with np.load(os.fspath(filepath)) as data:
            arrays = [data[f"w{i:04d}"] for i in range(len(data.files))]
        self.set_weights(arrays)

    def get_config(self):
        if self._graph is None:
            raise NotImplementedError(
                f"{type(self).__name__}: a subclassed model's architecture is Python code; define get_config() "
                "and from_config() (and @pynn.register_serializable) to save it, or use save_weights()")
        from ..layers.input_layer import KerasTensor
        from ..utils.registry import serialize_layer
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
                "inputs": [{"shape": list(t.shape[1:]), "dtype": t.dtype.name, "name": n}
                           for t, n in zip(g.inputs, g.input_names)],
                "input_dict": g.input_dict, "output_dict": g.output_dict, "output_names": g.output_names,
                "layers": [serialize_layer(layer) for layer in g.layers], "nodes": nodes,
                "outputs": [ref[id(t)] for t in g.outputs], "single_output": g.single_output}

    def to_json(self, **kwargs):
        """The architecture as JSON (Keras' ``{"class_name", "config"}``); rebuild it
        with ``pynn.models.model_from_json``."""
        import json
        from ..utils.registry import serialize_layer
        return json.dumps(serialize_layer(self), **kwargs)

    @classmethod
    def from_config(cls, config):
        from ..layers.input_layer import Input
        from ..utils.registry import deserialize_layer
        if "nodes" not in config:   # a subclassed model's own get_config(): its constructor's arguments
            return cls(**config)
        layers = [deserialize_layer(spec) for spec in config["layers"]]
        inputs = [Input(tuple(spec["shape"]), dtype=spec["dtype"], name=spec.get("name")) for spec in config["inputs"]]
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
        if config.get("input_dict"):
            inputs = {spec["name"]: t for spec, t in zip(config["inputs"], inputs)}
        elif len(inputs) == 1:
            inputs = inputs[0]
        if config.get("output_dict"):
            outputs = dict(zip(config["output_names"], outputs))
        elif config["single_output"]:
            outputs = outputs[0]
        return cls(inputs, outputs, name=config["name"])

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
                         f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"))
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
