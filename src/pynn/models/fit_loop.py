"""``fit()``'s epoch loop for the common case, chosen once per ``fit`` call.

``Model.fit`` over in-memory arrays, with the built-in train step (no
``train_step`` override), no DataParallel and a model whose step methods are
the library's own, runs its epochs through a :class:`TrainPlan` instead of the
generic per-batch loop. The plan does the same arithmetic in the same order
(same weights and history, bit for bit: tests/test_fit_loop.py), and moves
out of the step what need not be in it:

* the trainable weights, the regularized ones, the optimizer's slot lists and
  the callbacks that have batch hooks are looked up once, not per step;
* a ``Sequential`` of built-in layers runs its layers' ``call`` directly (no
  per-layer ``Layer.__call__`` bookkeeping: the input checks, the build check,
  the call-loss clearing, none of which can change in a fit over arrays);
* one permutation per epoch, each batch gathered into buffers allocated once;
* the loss tracker (a ``Mean``) is summed with two float additions, and the
  logs dict is built only when something reads it: a batch-end callback, a
  progress bar about to redraw (it redraws at most every 50 ms), the epoch end.

Anything else (a custom ``train_step``, an overridden ``_train_step``,
iterables of batches, DataParallel) keeps the generic loop in ``model.py``.
This file runs as Python or compiled by Cython (fit_loop.pxd, CMakeLists.txt).
"""
import numpy as np

from .. import backend as _backend
from ..autograd.engine import Tensor, grad as autograd_grad
from ..callbacks import Callback, ProgbarLogger
from ..layers.base import Layer, _real
from ..metrics import Mean
from ..random import generator

# Model methods the plan stands in for: a subclass overriding any of them keeps the generic loop.
_STEP_METHODS = ("_train_step", "_forward", "_loss_value", "_update_metrics", "_update_compiled_metrics",
                 "_logs", "_reset_metrics", "__call__", "_call_eager")


def _hook_used(cb, hook):
    """True unless ``cb.<hook>`` is Callback's no-op (an instance attribute counts as used)."""
    method = getattr(cb, hook, None)
    return getattr(method, "__func__", None) is not getattr(Callback, hook)


def plan_for(model, base, xs, ys, sw, batch_size, shuffle, callbacks):
    """A :class:`TrainPlan` for this fit, or None when the generic loop must run.
    ``base``: the Model class (passed in: models/model.py imports this module)."""
    from ..optimizers.base import Optimizer   # lazily, as model.py: optimizers do not need models
    cls = type(model)
    for name in _STEP_METHODS:
        if getattr(cls, name) is not getattr(base, name) and not _sequential_method(cls, name):
            return None
    opt = model.optimizer
    if not isinstance(opt, Optimizer) or type(opt).apply_gradients is not Optimizer.apply_gradients:
        return None
    return TrainPlan(model, xs, ys, sw, batch_size, shuffle, callbacks)


def _sequential_method(cls, name):
    """Sequential's own __call__ (an input-shape check fit has done already) is allowed."""
    from .sequential import Sequential
    return name == "__call__" and cls.__call__ is Sequential.__call__


def _fast_layers(model):
    """The layers of a built Sequential whose ``call`` the plan may run directly, or None:
    built-in layers (pynn.layers) without sub-layers, activity regularizer or their own
    ``__call__``, so Layer.__call__ would only have checked, wrapped and cleared."""
    from .sequential import Sequential
    cls = type(model)
    if not model.built or cls.call is not Sequential.call or cls.__call__ is not Sequential.__call__:
        return None
    out = []
    for layer in model._layers:
        lcls = type(layer)
        if (not layer.built or lcls.__call__ is not Layer.__call__ or layer.activity_regularizer is not None
                or not lcls.__module__.startswith("pynn.layers.") or layer._flatten_layers()):
            return None
        out.append((layer, bool(layer._accepts_training)))
    return out


class TrainPlan:
    """The per-step work of ``fit`` for one call, prepared once (see the module docstring)."""

    def __init__(self, model, xs, ys, sw, batch_size, shuffle, callbacks):
        self.model = model
        self.xs, self.ys, self.sw = xs, ys, sw
        self.n = len(xs[0])
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.steps = (self.n + batch_size - 1) // batch_size
        m = min(batch_size, self.n)
        # Gather buffers, reused by every shuffled batch (the generic loop allocates each batch).
        self.bufs = [np.empty((m,) + v.shape[1:], v.dtype) for v in xs] if self.shuffle else None
        self.ybufs = [np.empty((m,) + v.shape[1:], v.dtype) for v in ys] if self.shuffle else None
        self.swbuf = np.empty((m,) + sw.shape[1:], sw.dtype) if self.shuffle and sw is not None else None
        self.begin_cbs = [cb for cb in callbacks if _hook_used(cb, "on_train_batch_begin")]
        self.bar = None
        end_cbs = []
        for i, cb in enumerate(callbacks):
            if type(cb) is ProgbarLogger and i == len(callbacks) - 1:
                self.bar = cb   # fit's own (the last): called only when its bar would redraw
            elif _hook_used(cb, "on_train_batch_end"):
                end_cbs.append(cb)
        self.end_cbs = end_cbs
        self.refresh_each_step = bool(self.begin_cbs or end_cbs)
        self.optimizer = None
        self.layers = None       # (layer, accepts_training) when the Sequential fast forward applies
        self.weights = None      # prepared once the model is built (its weights exist then)
        self.regularized = None
        self.slot_names = None   # prepared after the optimizer's first (generic) update built it
        self.constrained = None
        self.fast_loss_tracker = type(model._loss_tracker) is Mean

    # ------------------------------------------------------------ preparation
    def _prepare_model(self):
        """(Re)read the weights and layers: at each epoch's start, and at each step when user
        callbacks with batch hooks run (they may freeze/unfreeze layers: the generic loop reads
        ``trainable_weights`` every step)."""
        model = self.model
        weights = model.trainable_weights
        old = self.weights
        if old is None or len(old) != len(weights) or any(a is not b for a, b in zip(old, weights)) \
                or model.optimizer is not self.optimizer:
            self.weights = weights
            self.optimizer = model.optimizer
            self.slot_names = None   # re-checked against the optimizer at the next update
        self.regularized = [w for w in self.weights if getattr(w, "regularizer", None) is not None]
        self.constrained = [w for w in self.weights if getattr(w, "constraint", None) is not None]
        self.layers = _fast_layers(model)
        if self.layers is not None:
            # The generic forward clears the add_loss() losses at each call; none of the
            # layers above adds any, so after this clear the list stays empty.
            model._clear_call_losses()

    def _prepare_optimizer(self):
        opt = self.model.optimizer
        # Built on exactly these variables in this order, each step's gathering of the slot
        # lists is the identity; otherwise apply_gradients' checks and gathering stay.
        if len(opt._index) != len(self.weights) or \
                any(opt._index.get(id(w)) != i for i, w in enumerate(self.weights)):
            return False
        self.slot_names = [name for name, _ in opt._slot_specs()]
        return True

    # ------------------------------------------------------------ one step
    def _forward(self, xb):
        layers = self.layers
        if layers is None:
            return self.model._forward(xb, training=True)
        x = Tensor(xb[0])
        for layer, accepts in layers:
            out = layer.call(x, training=True) if accepts else layer.call(x)
            mask = x._keras_mask   # Layer.__call__'s mask pass-through
            if mask is not None and layer.supports_masking and isinstance(out, Tensor) \
                    and out._keras_mask is None and out.shape[:mask.ndim] == mask.shape:
                out._keras_mask = mask
            x = out if isinstance(out, Tensor) else Tensor(_real(layer, out))
        return [x]

    def _loss(self, ys, y_preds, sw):
        # The fast forward's layers add no call losses (see _prepare_model): no walk for them.
        return self.model._loss_value(ys, y_preds, sw, self.regularized, call_losses=self.layers is None)

    def _apply(self, grads):
        opt = self.model.optimizer
        if self.slot_names is None:
            opt.apply_gradients(zip(grads, self.weights))   # builds the optimizer, checks the pairs
            if not self._prepare_optimizer():
                self.slot_names = False
            return
        if self.slot_names is False:
            opt.apply_gradients(zip(grads, self.weights))
            return
        # apply_gradients without the per-step checks and gathering (done once above).
        slots = {name: opt._slots[name] for name in self.slot_names}
        grads = opt._clip(grads)
        opt._update(_backend.current(), [w.data for w in self.weights], grads, slots, opt.learning_rate,
                    opt.iterations + 1)
        opt.iterations += 1
        for w in self.constrained:
            w.data[...] = w.constraint(w.data)

    def step(self, xb, yb, swb):
        """One training step on one batch: Model._train_step + _update_metrics, without the logs."""
        model = self.model
        if self.weights is None or self.refresh_each_step:
            if not model.built:   # the first call builds it: the generic step, once
                loss, y_preds = model._train_step(xb, yb, swb)
                self._metrics(loss, yb, y_preds, swb, len(xb[0]))
                return
            self._prepare_model()
        weights = self.weights
        y_preds = self._forward(xb)
        loss = self._loss(yb, y_preds, swb)
        if loss.requires_grad:
            grads = autograd_grad(loss, weights, copy=False)
        else:
            grads = [np.zeros_like(w.data) for w in weights]
        if weights:
            self._apply(grads)
        self._metrics(float(loss.data), yb, [p.data for p in y_preds], swb, len(xb[0]))

    def _metrics(self, loss, ys, y_preds, sw, n):
        model = self.model
        tracker = model._loss_tracker
        if self.fast_loss_tracker:   # Mean.update_state(loss, sample_weight=n), same float arithmetic
            w = float(n)
            tracker.total += loss * w
            tracker.count += w
        else:
            tracker.update_state(loss, sample_weight=n)
        for t, term in zip(model._output_loss_trackers, model._loss_terms):
            if t is not None:
                t.update_state(float(term.data), sample_weight=n)
        model._update_compiled_metrics(ys, y_preds, sw)

    # ------------------------------------------------------------ one epoch
    def run_epoch(self):
        """The epoch's batches; returns the last step's logs (what the generic loop returns)."""
        model = self.model
        if model.built:
            self._prepare_model()   # callbacks' epoch hooks may have changed what trains
        n, bs, steps = self.n, self.batch_size, self.steps
        xs, ys, sw = self.xs, self.ys, self.sw
        order = generator().permutation(n) if self.shuffle else None
        begin_cbs, end_cbs, bar = self.begin_cbs, self.end_cbs, self.bar
        logs = None
        for step in range(steps):
            for cb in begin_cbs:
                cb.on_train_batch_begin(step)
            start = step * bs
            stop = min(start + bs, n)
            if order is not None:
                idx = order[start:stop]
                m = stop - start
                xb = [np.take(v, idx, axis=0, out=b[:m], mode="clip") for v, b in zip(xs, self.bufs)]
                yb = [np.take(v, idx, axis=0, out=b[:m], mode="clip") for v, b in zip(ys, self.ybufs)]
                swb = None if sw is None else np.take(sw, idx, axis=0, out=self.swbuf[:m], mode="clip")
            else:
                xb = [v[start:stop] for v in xs]
                yb = [v[start:stop] for v in ys]
                swb = None if sw is None else sw[start:stop]
            self.step(xb, yb, swb)
            logs = None
            if end_cbs:
                logs = model._logs()
                for cb in end_cbs:
                    cb.on_train_batch_end(step, logs)
            if bar is not None and step + 1 < steps and bar.bar.due():
                if logs is None:
                    logs = model._logs()
                bar.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        return model._logs() if logs is None else logs
