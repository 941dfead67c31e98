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
  progress bar about to redraw (it redraws at most every 50 ms), the epoch end;
* a Sequential of plain Dense layers (a Dropout before any of them allowed, the
  last one's activation free, no regularizer) records no graph at all: each
  layer's own forward and backward (functional.nn.dense_forward/dense_backward,
  on the native backend the same _C calls with buffers kept across steps), a
  softmax cross-entropy computed graph-free with the graph's arithmetic and its
  labels checked once per fit, sparse accuracy counted inline (:class:`_DenseStack`).
  Any other loss is differentiated by the engine from the logits;
* a Sequential of Conv2D / MaxPooling2D layers, a Flatten, then such a Dense stack records
  no graph either (:class:`_ConvStack`): each conv and pooling makes its op's backend calls,
  forward and backward, a ReLU conv and the max pooling after it in one native call that
  keeps the argmax instead of writing the conv output.

Anything else (a custom ``train_step``, an overridden ``_train_step``,
iterables of batches, DataParallel) keeps the generic loop in ``model.py``.
This file runs as Python or compiled by Cython (fit_loop.pxd, CMakeLists.txt).
"""
import weakref

import numpy as np

from .. import _alignment, backend as _backend
from ..autograd.engine import Tensor, grad as autograd_grad, is_grad_enabled
from ..functional.activation import fused_backward
from ..functional.nn import dense_backward, dense_forward, dropout_mask
from ..callbacks import Callback, ProgbarLogger
from ..layers.base import Layer, _real
from ..metrics import Mean, SparseCategoricalAccuracy
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
    if not _plain_step(model, base):
        return None
    return TrainPlan(model, xs, ys, sw, batch_size, shuffle, callbacks)


def _plain_step(model, base):
    """True when no step method is overridden (a Sequential's own ones aside) and the optimizer
    applies gradients the stock way: a prepared step then does what the generic one would."""
    from ..optimizers.base import Optimizer   # lazily, as model.py: optimizers do not need models
    cls = type(model)
    for name in _STEP_METHODS:
        if getattr(cls, name) is not getattr(base, name) and not _sequential_method(cls, name):
            return False
    opt = model.optimizer
    return isinstance(opt, Optimizer) and type(opt).apply_gradients is Optimizer.apply_gradients


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


class _DenseStack:
    """Forward and backward of a Sequential of Dense layers on arrays, no graph recorded.

    Each layer runs Dense's own forward and backward (functional.nn.dense_forward /
    dense_backward: the same kernels, in the same order, as the autograd op), a Dropout
    before a Dense its mask (functional.nn.dropout_mask, drawn in the same order); only the
    model's head (the last layer's unfused activation, e.g. softmax, then the compiled
    loss via Model._loss_value) is recorded, from a logits Tensor, and differentiated by
    the engine. The backward then walks the layers by hand."""

    __slots__ = ("specs", "head", "n_weights", "xent", "native", "C", "dk_bufs", "act_bufs", "need_dx",
                 "input_grad")

    def __init__(self, specs, head, weights, native, C=None):
        # (kernel, bias or None, fused activation, kernel slot, bias slot, Dropout on the input or None)
        self.specs = specs
        self.head = head            # the last layer's unfused activation (callable) or None
        self.n_weights = len(weights)
        self.xent = False           # True: the loss is a softmax cross-entropy run as _xent_head
        # The native backend's module when every array is float32 and every activation one its
        # GEMM epilogue and act_bias_backward take without a parameter: the layers' kernels are
        # then called as the backend's matmul/act_bias_grad call them (_C.gemm, _C.act_bias_backward),
        # writing into buffers kept across steps, without the wrappers' per-call checks.
        self.native, self.C = native, C
        # Gradient buffers placed apart from their kernels within the page, as the optimizer's
        # slots are (pynn._alignment: the fused update streams them side by side).
        # (allocated at the first native run: a stack train_on_batch builds and then finds the
        # same as the one it kept, _same_spec, is dropped without having allocated any)
        self.dk_bufs = None
        self.act_bufs = {}          # batch size -> (layer outputs, input gradients)
        # A _ConvStack in front of this one needs d loss / d (first Dense's input): with
        # need_dx the backward computes it (as Dense's op does when its input requires grad)
        # and leaves it in input_grad (None when the loss did not depend on the predictions).
        self.need_dx = False
        self.input_grad = None

    @staticmethod
    def build(model, layers, weights, regularized, x):
        """A stack for these layers, or None when they are not all plain Dense layers whose
        weights are exactly the trainable ones (then the generic step runs)."""
        from ..layers.dense import Dense
        # x float32 (fit casts inputs) into float64 layers promotes in the kernels as in the graph.
        first = next((layer for layer, _ in layers if type(layer) is Dense), None)
        dtype = None if first is None or not first.built else first.kernel.data.dtype
        if dtype is None or regularized or not is_grad_enabled() or x.ndim != 2 or x.dtype.kind != "f":
            # A regularizer's gradient reaches its weight in the engine's order (x*x: twice),
            # which a hand walk would not reproduce bit for bit: the generic step keeps those.
            return None
        return _DenseStack._of_layers(layers, weights, dtype, x.dtype)

    @staticmethod
    def _of_layers(layers, weights, dtype, x_dtype):
        """The stack of these (layer, accepts_training) pairs, or None (see build); ``dtype``
        the layers' weights' dtype, ``x_dtype`` the first Dense's input's."""
        from ..functional.activation import split
        from ..layers.dense import Dense
        from ..layers.dropout import Dropout
        specs, own, drop = [], [], None
        last = len(layers) - 1
        for i, (layer, _) in enumerate(layers):
            if type(layer) is Dropout and drop is None and i != last:
                drop = layer   # applied to the next Dense's input
                continue
            if type(layer) is not Dense or not layer.trainable:
                return None
            fused, after = split(layer.activation)
            if after is not None and i != last:
                return None
            k, b = layer.kernel, layer.bias
            if k.data.dtype != dtype or (b is not None and b.data.dtype != dtype):
                return None
            specs.append([k, b, fused, len(own), None if b is None else len(own) + 1, drop])
            own += [k] if b is None else [k, b]
            drop = None
        if len(own) != len(weights) or any(a is not b for a, b in zip(own, weights)):
            return None
        native = C = None
        if _backend.name() == "native" and dtype == np.float32 and x_dtype == np.float32:
            from ..backend.native import core, nn
            if all(sp[2] in nn.NATIVE_FROM_OUTPUT and core._NO_PARAM.get(sp[2]) == 0.0 for sp in specs):
                native, C = _backend.current(), core._C
        return _DenseStack([tuple(sp) for sp in specs], after, weights, native, C)

    def same_as(self, other):
        """True when ``other`` is a _DenseStack of the same layers, weights and settings (then
        either runs a step exactly as the other would: train_batch keeps one, with its buffers)."""
        return type(other) is _DenseStack and self.n_weights == other.n_weights and self.head is other.head \
            and self.native is other.native and self.need_dx == other.need_dx and _same_spec(self.specs, other.specs) \
            and (self.dk_bufs is None or all(buf.shape == sp[0].data.shape and buf.dtype == sp[0].data.dtype
                                             for buf, sp in zip(self.dk_bufs, other.specs)))

    def run(self, model, x, ys, sw, labels):
        """(loss value, gradients in trainable-weight order, predictions array) of one batch;
        ``labels``: the batch's prepared labels when ``xent`` (TrainPlan._prepare_xent), else None."""
        native = self.native is not None and _backend.current() is self.native
        C = self.C
        if native:
            if self.dk_bufs is None:
                self.dk_bufs = [_alignment.staggered_empty(k.data, 4) for k, *_ in self.specs]
            bufs = self.act_bufs.get(len(x))
            if bufs is None:
                bufs = self.act_bufs[len(x)] = (
                    [np.empty((len(x), k.data.shape[1]), np.float32) for k, *_ in self.specs],
                    [np.empty((len(x), k.data.shape[0]), np.float32) for k, *_ in self.specs])
        ins, outs, masks = [], [], []   # each Dense's input (after its Dropout) and output
        last = len(self.specs) - 1
        self.input_grad = None
        low = -1 if self.need_dx else 0   # the first layer whose input gradient is computed
        for i, (k, b, fused, _, _, drop) in enumerate(self.specs):
            mask = None
            if drop is not None and drop.rate != 0.0:   # Dropout.call: the identity at rate 0
                mask = dropout_mask(x, drop.rate, None, drop._rng)
                x = x * mask   # Dropout's forward
            masks.append(mask)
            ins.append(x)
            if native:
                # The last output is the prediction the metrics get: a new array, as the generic step's.
                x = C.gemm(x, k.data, c=bufs[0][i] if i < last else None, bias=None if b is None else b.data,
                           activation=fused)
            else:
                x = dense_forward(x, k.data, None if b is None else b.data, fused)
            outs.append(x)
        grads = [None] * self.n_weights
        if labels is not None:
            loss, g = _xent_head(model, x, labels, sw, C if native else None)
            y_pred = x if self.head is None else self.head(Tensor(x)).data   # no graph: x needs no grad
        else:
            logits = Tensor(x, requires_grad=True)
            y_pred = logits if self.head is None else self.head(logits)
            loss_t = model._loss_value(ys, [y_pred], sw, (), call_losses=False)
            y_pred, loss = y_pred.data, float(loss_t.data)
            if not loss_t.requires_grad:   # the loss does not depend on the predictions
                return loss, [np.zeros_like(w.data) for w in model.trainable_weights], y_pred
            g = autograd_grad(loss_t, [logits], copy=False)[0]
        if native and g.dtype == np.float32:   # dense_backward's calls, as the native backend makes them
            for i in range(len(self.specs) - 1, -1, -1):
                k, b, fused, ki, bi, _ = self.specs[i]
                if fused == "linear" and b is None:
                    dz = g
                else:
                    dz, db = C.act_bias_backward(outs[i], np.ascontiguousarray(g), fused)
                    if bi is not None:
                        grads[bi] = db
                grads[ki] = C.gemm(ins[i].T, dz, c=self.dk_bufs[i])
                if i > low:
                    g = C.gemm(dz, k.data.T, c=bufs[1][i])
                    if masks[i] is not None:
                        g = g * masks[i]   # Dropout's backward
            if low < 0:
                self.input_grad = g
            return loss, grads, y_pred
        for i in range(len(self.specs) - 1, -1, -1):
            k, b, fused, ki, bi, _ = self.specs[i]
            g, grads[ki], db = dense_backward(fused, ins[i], k.data, outs[i], g, i > low, True, b is not None)
            if bi is not None:
                grads[bi] = db
            if i > low and masks[i] is not None:
                g = g * masks[i]   # Dropout's backward
        if low < 0:
            self.input_grad = g
        return loss, grads, y_pred


class _ConvStack:
    """Forward and backward of a Sequential of Conv2D and MaxPooling2D layers, a Flatten,
    then a :class:`_DenseStack` (Dense, Dropout), on arrays, no graph recorded.

    Each conv and pool makes the backend calls its autograd op makes (functional.conv:
    Conv2D.forward/backward, MaxPool2D.forward/backward), in the same order, with the same
    arguments: the conv with its activation fused, the pooling keeping its argmax; on the way
    back the pooling applies the ReLU mask of a relu conv before it and that conv takes its
    bias gradient off the pooled (dy, y), exactly where the ops hand them over. So the loss,
    the gradients and the weights after the update are the generic step's bit for bit
    (tests/test_train_on_batch_conv.py), on either backend. The Dense tail, the loss head and
    its metrics are the _DenseStack's, with the gradient of its input asked for."""

    __slots__ = ("front", "flat_shape", "tail", "n_front", "first_weighted", "native", "C")

    def __init__(self, front, flat_shape, tail, n_front, first_weighted, native, C):
        # ("conv", kernel, bias or None, fused activation, strides, padding, dilation, kernel slot,
        # bias slot, output shape, fuses the next pooling) or ("pool", pool_size, strides, padding),
        # in layer order.
        self.front = front
        self.flat_shape = flat_shape          # the Flatten's input shape, batch axis aside
        self.tail = tail
        self.n_front = n_front                # how many trainable weights the front holds
        self.first_weighted = first_weighted  # the first front layer with weights: nothing below it needs a gradient
        # The native backend's module and pynn._C when the weights are float32: a ReLU conv then
        # a max pooling run as one call, _C.conv2d_max_pool2d_argmax (the conv output, which the
        # backward never reads once the pooling took relu' over, is not written; pooled values
        # and argmax are the two calls' bit for bit: tests/test_conv_max_pool_argmax_fused.py).
        self.native, self.C = native, C

    # The interface TrainPlan and train_batch read off a _DenseStack.
    @property
    def specs(self):
        return self.tail.specs

    @property
    def head(self):
        return self.tail.head

    @property
    def xent(self):
        return self.tail.xent

    @xent.setter
    def xent(self, value):
        self.tail.xent = value

    @staticmethod
    def build(model, layers, weights, regularized, x):
        """A stack for these layers, or None when they are not exactly Conv2D / MaxPooling2D
        layers (channels_last, trainable, an activation fused in the op), one Flatten and a
        Dense tail _DenseStack takes, whose weights are exactly the trainable ones, for this
        input (then the generic step runs, and raises whatever the layers raise)."""
        from ..functional.activation import split
        from ..layers.conv import Conv2D
        from ..layers.flatten import Flatten
        from ..layers.pooling import MaxPooling2D
        from ..shapes import pair
        if regularized or not is_grad_enabled() or x.ndim != 4 or x.dtype.kind != "f":
            return None
        # The first conv's weights' dtype, every weight's; x (fit casts inputs to float32) may
        # differ: the kernels promote as in the graph (float32 x into float64 layers).
        dtype = None
        front, own, shape = [], [], tuple(x.shape[1:])
        first_weighted = None
        for i, (layer, _) in enumerate(layers):
            lcls = type(layer)
            if "call" in layer.__dict__ or "build" in layer.__dict__:   # a call patched on the instance
                return None
            if lcls is Flatten:
                if layer.data_format != "channels_last" or not front:
                    return None
                if dtype is None:   # no conv: nothing before the Flatten to train
                    return None
                tail = _DenseStack._of_layers(layers[i + 1:], weights[len(own):], dtype,
                                              np.result_type(x.dtype, dtype)) if i + 1 < len(layers) else None
                if tail is None or len(weights) < len(own) or any(a is not b for a, b in zip(own, weights)) \
                        or tail.specs[0][0].data.shape[0] != int(np.prod(shape)):
                    return None
                tail.need_dx = True
                native = C = None
                if _backend.name() == "native" and dtype == np.float32:
                    from ..backend.native import core
                    if hasattr(core._C, "conv2d_max_pool2d_argmax"):
                        native, C = _backend.current(), core._C
                for j in range(len(front) - 1):   # a ReLU conv whose output only a max pooling reads
                    if front[j][0] == "conv" and front[j][3] == "relu" and front[j + 1][0] == "pool":
                        front[j] = front[j][:10] + (True,)
                return _ConvStack([tuple(sp) for sp in front], shape, tail, len(own), first_weighted, native, C)
            if (lcls is not Conv2D and lcls is not MaxPooling2D) or layer.data_format != "channels_last":
                return None
            try:   # the layer's own shape check: an input it refuses goes the generic way
                out = tuple(layer.compute_output_shape((None,) + shape))[1:]
            except ValueError:
                return None
            if lcls is Conv2D:
                fused, after = split(layer.activation)
                k, b = layer.kernel, layer.bias
                if dtype is None:
                    dtype = k.data.dtype
                if after is not None or not layer.trainable or shape[-1] != layer.input_channels \
                        or k.data.dtype != dtype or (b is not None and b.data.dtype != dtype):
                    return None
                if first_weighted is None:
                    first_weighted = len(front)
                front.append(("conv", k, b, fused, pair(layer.strides, "strides"), layer.padding,
                              pair(layer.dilation_rate, "dilation_rate"), len(own),
                              None if b is None else len(own) + 1, out, False))
                own += [k] if b is None else [k, b]
            else:
                if layer.pool_size[0] * layer.pool_size[1] > 256:   # MaxPool2D keeps no argmax then
                    return None
                front.append(("pool", tuple(layer.pool_size), tuple(layer.strides), layer.padding))
            if any(d is None for d in out):
                return None
            shape = out
        return None   # no Flatten and Dense tail

    def same_as(self, other):
        """As _DenseStack.same_as."""
        return type(other) is _ConvStack and self.n_front == other.n_front and self.native is other.native \
            and self.first_weighted == other.first_weighted and self.flat_shape == other.flat_shape \
            and _same_spec(self.front, other.front) and self.tail.same_as(other.tail)

    def run(self, model, x, ys, sw, labels):
        """(loss value, gradients in trainable-weight order, predictions array) of one batch,
        as _DenseStack.run."""
        B = _backend.current()
        front = self.front
        C = self.C if B is self.native and x.dtype == np.float32 else None
        saved = []   # per front layer: what its backward reads
        i, n_front = 0, len(front)
        while i < n_front:
            spec = front[i]
            if spec[0] == "conv":
                _, k, b, fused, strides, padding, dilation, _, _, out, fuses = spec
                if C is not None and fuses:   # conv + relu + max pool in one call, the argmax kept
                    _, pool, pstrides, ppadding = front[i + 1]
                    x = np.ascontiguousarray(x)
                    y, idx = C.conv2d_max_pool2d_argmax(x, k.data, None if b is None else b.data, strides, padding,
                                                        dilation, "relu", 0.0, pool, pstrides, ppadding)
                    saved.append((x, None))   # the conv's y: only its relu' is read, by the pooling
                    saved.append(((len(x),) + out, x.dtype, idx, y))
                    x = y
                    i += 2
                    continue
                y = B.conv2d(x, k.data, None if b is None else b.data, strides, padding, dilation,
                             None if fused == "linear" else fused)
                saved.append((x, y))
            else:
                _, pool, strides, padding = spec
                y, idx = B.max_pool2d_argmax(x, pool, strides, padding)
                saved.append((x.shape, x.dtype, idx, y))
            x = y
            i += 1
        n = len(x)
        loss, tail_grads, y_pred = self.tail.run(model, x.reshape(n, -1), ys, sw, labels)
        g = self.tail.input_grad
        if g is None:   # the loss does not depend on the predictions: the tail gave every weight a zero
            return loss, tail_grads, y_pred
        grads = [None] * self.n_front + tail_grads
        g = g.reshape(x.shape)   # Flatten's backward (Reshape)
        masked = None            # (dx, the pooling's dy, its y) when a pooling applied relu'
        for i in range(len(front) - 1, self.first_weighted - 1, -1):
            spec = front[i]
            if spec[0] == "pool":
                _, pool, strides, padding = spec
                x_shape, x_dtype, idx, y = saved[i]
                g = g.astype(np.result_type(x_dtype, g), copy=False)
                if i > 0 and front[i - 1][0] == "conv" and front[i - 1][3] == "relu":
                    dx = B.max_pool2d_backward_argmax(idx, g, x_shape, pool, strides, padding, relu_y=y)
                    masked = (g, y)
                else:
                    dx = B.max_pool2d_backward_argmax(idx, g, x_shape, pool, strides, padding)
                g = dx
                continue
            _, k, b, fused, strides, padding, dilation, ki, bi, _, _ = spec
            xin, y = saved[i]
            if masked is not None:
                dz, db = g, (B.max_pool2d_relu_bias_grad(*masked) if b is not None else None)
                masked = None
            else:
                dz, db = fused_backward(fused, y, g, b is not None)
            if i > self.first_weighted:
                g = B.conv2d_backward_input(dz, k.data, xin.shape, strides, padding, dilation)
            grads[ki] = B.conv2d_backward_kernel(xin, dz, k.data.shape, strides, padding, dilation)
            if bi is not None:
                grads[bi] = db
        return loss, grads, y_pred


def _same_spec(a, b):
    """Two stacks' layer specs hold the same objects (weights, Dropout layers: by identity) and
    the same settings (strings, numbers, shapes, flags: by value)."""
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is tuple or ta is list:
        return len(a) == len(b) and all(_same_spec(u, v) for u, v in zip(a, b))
    return ta in (str, int, bool, float) and a == b


# train_on_batch's last stack per model (weakly: the model's lifetime): the next call's freshly
# built stack is checked against it (_same_spec) and, when equal, the kept one runs, with the
# buffers it allocated, instead of new ones (with their page faults) at every call.
_BATCH_STACKS = weakref.WeakKeyDictionary()


_INV_N = {}


def _xent_head(model, logits, labels, sw, C):
    """(loss value, d loss / d logits) of the compiled softmax cross-entropy with Keras'
    "sum_over_batch_size" reduction, without a graph: the SoftmaxCrossEntropy op's kernel,
    then the arithmetic the recorded graph does (Loss.__call__: values * sw, sum, / n;
    its backward: 1 / n spread over the batch, times sw, times the kernel's gradient),
    in the same dtypes and order, so the result is the generic step's bit for bit
    (tests/test_fit_loop.py). ``C``: pynn._C when the stack calls the native kernels
    directly (2-D float32 logits, contiguous labels: what the backend's wrapper passes on)."""
    if C is None:
        values, d = _backend.current().softmax_cross_entropy(logits, labels)
    elif labels.ndim == 1:
        values, d = C.softmax_xent_sparse(logits, labels)
    else:
        values, d = C.softmax_xent_dense(logits, labels)
    n = max(values.size, 1)
    key = (n, values.dtype)
    g = _INV_N.get(key)
    if g is None:   # Div's backward of the mean: a 1 of the loss's dtype over n, one per batch size
        g = _INV_N[key] = np.ones((), values.dtype) / n
    if sw is not None:
        sw = np.asarray(sw, dtype=values.dtype)
        values = values * sw
        g = np.full(values.shape, g, values.dtype) * sw
        g = g[..., None]
    d *= g
    loss = np.divide(values.sum(), n)   # Sum's forward (np.sum: the same add.reduce), then Div's
    # Model._loss_value's per-output terms (read for multi-output logs): the list kept, its
    # item replaced, without Layer.__setattr__'s tracking walk each step.
    terms = model.__dict__.get("_loss_terms")
    if type(terms) is list and len(terms) == 1:
        terms[0] = Tensor(loss)
    else:
        model._loss_terms = [Tensor(loss)]
    return float(loss), d


def _xent_labels(model, head, y, n_classes, dtype):
    """All of fit's labels prepared once for :func:`_xent_head` (int64 class ids, or one-hot
    rows in the logits' dtype), or None when the loss is not a softmax cross-entropy on
    these logits or a label is one the generic loss rejects (it then raises, per batch)."""
    from ..functional.activation import softmax
    from ..losses import CategoricalCrossentropy, SparseCategoricalCrossentropy
    loss = model._losses[0]
    cls = type(loss)
    if cls not in (SparseCategoricalCrossentropy, CategoricalCrossentropy) or loss.reduction != "sum_over_batch_size" \
            or model._loss_weights[0] != 1.0 or set(loss.kwargs) - {"label_smoothing"} != {"from_logits"} \
            or loss.kwargs.get("label_smoothing", 0.0):   # the fused kernel takes the targets as given
        return None
    # Logits, or a softmax over them whose output the loss trades for its logits (losses._logits).
    if not (head is None if loss.kwargs["from_logits"] else head is softmax):
        return None
    y = y.data if isinstance(y, Tensor) else np.asarray(y)
    if cls is CategoricalCrossentropy:
        return np.ascontiguousarray(y, dtype) if y.ndim == 2 and y.shape[1] == n_classes else None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
        return None
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        return None
    return y


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
        # Targets go to the compiled metrics: a user's metric may keep the arrays it is given
        # (the generic loop hands it new ones each batch), so only built-in ones get buffers.
        builtin = all(type(mt).__module__ == "pynn.metrics" for ms in model._output_metrics for mt in ms)
        self.ybufs = [np.empty((m,) + v.shape[1:], v.dtype) for v in ys] if self.shuffle and builtin else None
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
        self.stack = None        # a _DenseStack when the model is a plain stack of Dense layers
        self.labels = None       # with stack.xent: fit's labels prepared for it (_xent_labels)
        self.lbuf = None
        self.label_cache = {}
        self.fused_metrics = None  # the compiled metrics, accuracy computed inline (_metrics)
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
        old, self.stack = self.stack, None   # self.labels stay: they depend on the loss and the data only
        if self.layers is not None and len(model._losses) == 1 and len(self.xs) == 1 and len(self.ys) == 1:
            stack = _DenseStack.build(model, self.layers, self.weights, self.regularized, self.xs[0]) \
                or _ConvStack.build(model, self.layers, self.weights, self.regularized, self.xs[0])
            # The same stack as before (each epoch, or each step under batch-hook callbacks):
            # the kept one runs on, with its buffers.
            self.stack = old if stack is not None and old is not None and old.same_as(stack) else stack
        if self.stack is not None:
            self._prepare_xent()
        if self.layers is not None:
            # The generic forward clears the add_loss() losses at each call; none of the
            # layers above adds any, so after this clear the list stays empty.
            model._clear_call_losses()

    def _prepare_xent(self):
        """Labels for the stack's graph-free softmax cross-entropy, once per fit (cached on
        what they depend on), and which accuracy metrics can count hits on them directly."""
        stack, model = self.stack, self.model
        k = stack.specs[-1][0].data
        key = (id(stack.head), k.shape[1], k.dtype.str)
        if key not in self.label_cache:
            self.label_cache[key] = _xent_labels(model, stack.head, self.ys[0], k.shape[1], k.dtype)
        self.labels = labels = self.label_cache[key]
        stack.xent = labels is not None
        if labels is not None and self.shuffle:
            m = min(self.batch_size, self.n)
            if self.lbuf is None or self.lbuf.dtype != labels.dtype or self.lbuf.shape[1:] != labels.shape[1:]:
                self.lbuf = np.empty((m,) + labels.shape[1:], labels.dtype)
        # SparseCategoricalAccuracy without sample weights: labels == argmax(y_pred), counted
        # as Metric.update_state counts a boolean array; any other metric updates itself.
        sparse = labels is not None and labels.ndim == 1
        self.fused_metrics = [(mt, weighted, sparse and type(mt) is SparseCategoricalAccuracy)
                              for mt, weighted in zip(model._output_metrics[0], model._metric_weighted[0])]

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

    def step(self, xb, yb, swb, lb=None, lsrc=None):
        """One training step on one batch: Model._train_step + _update_metrics, without the logs.
        ``lb``: the batch gathered from ``lsrc``, the ``self.labels`` of that moment."""
        model = self.model
        if self.weights is None or self.refresh_each_step:
            if not model.built:   # the first call builds it: the generic step, once
                loss, y_preds = model._train_step(xb, yb, swb)
                self._metrics(loss, yb, y_preds, swb, len(xb[0]))
                return
            self._prepare_model()
        weights = self.weights
        stack = self.stack
        if stack is not None:
            if not stack.xent or lsrc is not self.labels:   # (re)prepared in this step: not gathered
                lb = None
            loss, grads, y_pred = stack.run(model, xb[0], yb, swb, lb)
            self._apply(grads)
            if lb is not None:
                self._track_loss(loss, len(xb[0]))
                self._stack_metrics(yb[0], y_pred, swb, lb)
            else:
                self._metrics(loss, yb, [y_pred], swb, len(xb[0]))
            return
        y_preds = self._forward(xb)
        loss = self._loss(yb, y_preds, swb)
        if loss.requires_grad:
            grads = autograd_grad(loss, weights, copy=False)
        else:
            grads = [np.zeros_like(w.data) for w in weights]
        if weights:
            self._apply(grads)
        self._metrics(float(loss.data), yb, [p.data for p in y_preds], swb, len(xb[0]))

    def _track_loss(self, loss, n):
        tracker = self.model._loss_tracker
        if self.fast_loss_tracker:   # Mean.update_state(loss, sample_weight=n), same float arithmetic
            w = float(n)
            tracker.total += loss * w
            tracker.count += w
        else:
            tracker.update_state(loss, sample_weight=n)

    def _stack_metrics(self, y, y_pred, sw, labels):
        """The one output's compiled metrics (Model._update_compiled_metrics), a sparse
        accuracy counted on the prepared labels (the same bool array, the same sums)."""
        hits = None
        for mt, weighted, fused in self.fused_metrics:
            if fused and (sw is None or not weighted):
                if hits is None:
                    hits = float((labels == y_pred.argmax(-1)).sum())   # np.count_nonzero's count
                mt.total += hits
                mt.count += labels.size
            else:
                mt.update_state(y, y_pred, sw if weighted else None)

    def _metrics(self, loss, ys, y_preds, sw, n):
        model = self.model
        self._track_loss(loss, n)
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
            lsrc = self.labels
            if order is not None:
                idx = order[start:stop]
                m = stop - start
                # ndarray.take (np.take without its dispatch layer): rows idx into the buffers.
                xb = [v.take(idx, 0, b[:m], "clip") for v, b in zip(xs, self.bufs)]
                yb = ([v.take(idx, 0) for v in ys] if self.ybufs is None else
                      [v.take(idx, 0, b[:m], "clip") for v, b in zip(ys, self.ybufs)])
                swb = None if sw is None else sw.take(idx, 0, self.swbuf[:m], "clip")
                lb = None if lsrc is None else lsrc.take(idx, 0, self.lbuf[:m], "clip")
            else:
                xb = [v[start:stop] for v in xs]
                yb = [v[start:stop] for v in ys]
                swb = None if sw is None else sw[start:stop]
                lb = None if lsrc is None else lsrc[start:stop]
            self.step(xb, yb, swb, lb, lsrc)
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


def train_batch(model, base, xs, ys, sw):
    """``train_on_batch``'s step through a :class:`_DenseStack` (the loss value), or None when
    the model is not one the plan runs that way (the caller then takes the generic step).
    Same arithmetic in the same order as ``Model._train_step`` (tests/test_fit_loop.py); the
    stack is rebuilt each call, so freezing a layer or changing the optimizer between calls
    is seen at once, as in the generic step (the previous call's stack, with its buffers,
    runs instead when it is the same: _BATCH_STACKS). A Sequential of Dense layers runs as a
    :class:`_DenseStack`, one of Conv2D / MaxPooling2D layers, a Flatten and Dense layers as a
    :class:`_ConvStack`. ``base``: the Model class."""
    if len(xs) != 1 or len(ys) != 1 or len(model._losses) != 1 or not model.built:
        return None
    if not _plain_step(model, base):
        return None
    opt = model.optimizer
    layers = _fast_layers(model)
    if layers is None:
        return None
    weights = model.trainable_weights
    regularized = [w for w in weights if getattr(w, "regularizer", None) is not None]
    x = xs[0]
    stack = _DenseStack.build(model, layers, weights, regularized, x) \
        or _ConvStack.build(model, layers, weights, regularized, x)
    if stack is None:
        return None
    try:
        kept = _BATCH_STACKS.get(model)
        if kept is not None and kept.same_as(stack):
            stack = kept
        else:
            _BATCH_STACKS[model] = stack
    except TypeError:   # a model that cannot be weakly referenced or hashed: a new stack each call
        pass
    k = stack.specs[-1][0].data
    labels = _xent_labels(model, stack.head, ys[0], k.shape[1], k.dtype)
    stack.xent = labels is not None
    model._clear_call_losses()
    loss, grads, _ = stack.run(model, x, ys, sw, labels)
    opt.apply_gradients(zip(grads, weights))
    return loss
