"""Inference plans: what ``predict_on_batch`` and ``predict`` run on the native backend.

The first inference call compiles the model's layer graph (Sequential or functional)
into a flat list of steps, one per layer call, each a closure over its layer's prepared
native call: Dense is one ``_C.gemm`` with the bias and activation in its epilogue,
writing into a buffer kept per input shape; Conv2D (Conv1D on height-1 views) one
``_C.conv2d`` with bias and activation fused (and a MaxPooling2D right after it in the same
call, ``_C.conv2d_max_pool2d``, so the conv output is never written whole); pooling, Flatten and Dropout one call or a
view; LayerNormalization the fused layer-norm kernel; LSTM/GRU/SimpleRNN (no state in or
out) a projection GEMM and the native time loop; a TransformerEncoder block a dozen bare
calls (packed QKV GEMM, the fused attention kernel, GEMMs with fused epilogues,
layer norms); MultiHeadAttention in a functional graph (no mask) the same attention
calls; Add/Multiply/Concatenate one NumPy call; BatchNormalization (inference, last
axis) its own arithmetic on the live moving statistics; a standalone Activation its
native kernel. A Dense/Conv2D with a linear activation followed by an ``Activation``
layer runs as one fused call. A plan whose steps are all prepared and form a chain runs,
per input shape, as a recorded program: a flat list of ``(fn, args)`` calls with their
buffers, replayed with no per-layer checks (run_array checked the input). Layers without
a prepared form run their ordinary ``__call__`` (under no_grad, ``training=False``), so
custom layers and subclasses keep their overrides. Nothing records autograd, and no per-
layer Python dispatch runs beyond the step call.

Staleness is the danger of any such cache, so a plan checks before every run that
 - the backend is still native,
 - the weights epoch (``pynn._weights_epoch``: moved by ``Variable.assign``, optimizer
   steps, ``trainable``, ``Sequential.add/pop``, fit) is the one it was built at,
 - every weight's ``.data`` array, and every layer attribute a step read (activation,
   kernel, strides, ...), is the same object it captured,
and is rebuilt otherwise. Steps hold the weight arrays themselves, not copies, so an
in-place update is seen at once; the one derived copy (packed GEMM panels, when _C
has them, and the attention projections packed together) is rebuilt with the plan, its
source arrays read-only meanwhile (``_weights_epoch.freeze``). A model the plan cannot serve (subclassed models,
overridden call/__call__, padding masks, non-float32 layers) runs the ordinary path.
"""
from __future__ import annotations

import operator
import threading

import numpy as np

from .. import _weights_epoch
from .. import backend as _backend
from ..autograd import Tensor, no_grad

_F32 = np.dtype(np.float32)
_MAX_SHAPES = 8      # buffer sets kept per thread (one per distinct input shape)


class _Fallback(Exception):
    """Raised by a step that meets something the plan does not serve (a padding mask,
    a dtype it was not prepared for): the batch then runs the ordinary path."""


def _activation(fn):
    """(native epilogue name, its alpha, callable applied after or None) for a layer's activation."""
    import sys
    from ..backend.native.nn import NATIVE_ACTIVATIONS
    from ..backend.numpy import activations as table
    names = sys.modules["pynn.functional.activation"]._NAME_OF
    name = names.get(id(fn))
    if name in NATIVE_ACTIVATIONS:
        return name, float(table.param_value(name, None) or 0.0), None
    if name == "softmax":
        from .. import _C
        return "linear", 0.0, lambda y: _C.softmax(np.ascontiguousarray(y))
    def on_tensor(y):
        return fn(Tensor(y)).data
    on_tensor.uses_tensor = True   # runs pynn ops on a Tensor: the plan keeps no_grad around it
    return "linear", 0.0, on_tensor


_ATTENTION_DEFAULTS = {"attention_mask": None, "use_causal_mask": False, "return_attention_scores": False}


def _default_attention_call(node):
    """True for a MultiHeadAttention node whose keywords are all the defaults (no mask, no
    scores): its layer call on the list of inputs alone computes the same."""
    from ..layers import MultiHeadAttention
    return type(node.layer) is MultiHeadAttention and isinstance(node.parents, (list, tuple)) and \
        all(k in _ATTENTION_DEFAULTS and v is _ATTENTION_DEFAULTS[k] for k, v in node.kwargs.items())


def _last_axis_only(axis):
    """True for a normalisation ``axis`` that names only the last axis (-1, [-1], (-1,))."""
    return axis == -1 or (isinstance(axis, (list, tuple)) and list(axis) == [-1])


def _exact(layer, cls):
    """True when ``layer`` is exactly ``cls`` with no per-instance call override: only
    then does a prepared step compute what its ``call`` would."""
    return type(layer) is cls and "call" not in layer.__dict__ and "__call__" not in layer.__dict__


class Plan:
    """A compiled inference graph of one model; see the module docstring."""

    def __init__(self, model):
        from .. import _C
        self._C = _C
        self.model = model
        self.epoch = _weights_epoch.current()
        self.watch_objs, self.watch_names, self.watch_vals = [], [], []
        for w in model.weights:
            self._watch(w, "data")
        self.steps = []          # closures step(env, bufs)
        self.specs = []          # per step: (spec, in_slot, out_slot) or None (see _program)
        self.n_slots = 0
        self.buffered = set()    # slots whose arrays are reused buffers (copied before returning)
        self.prepared = []       # names of the layers that run a prepared step (tests, plan_summary)
        self._local = threading.local()
        self.fused = []
        self.records = False     # True once a step runs a layer's own __call__ (see run)
        if getattr(model, "_graph", None) is not None:
            self._compile_functional(model._graph)
            shapes = model._graph.input_shapes
        else:
            self._compile_sequential(model)
            shapes = [model._build_input_shape]
        # The one input shape the fast path (run_array) accepts without the model's own checks.
        self.input_shape = tuple(shapes[0]) if len(shapes) == 1 and shapes[0] is not None else None
        # Its non-batch dims when all are known: one tuple comparison checks an input.
        self.tail = None if self.input_shape is None or None in self.input_shape[1:] else self.input_shape[1:]
        # A chain (every step prepared, each reading the previous one's output) runs as a
        # per-input-shape program of bare _C calls (see _program); other plans run the steps.
        self.chain = len(self.input_slots) == 1 and len(self.output_slots) == 1 and not self.records and \
            len(self.specs) == len(self.steps) and all(sp is not None for sp in self.specs) and \
            [sp[1] for sp in self.specs] == self.input_slots + [sp[2] for sp in self.specs[:-1]] and \
            (not self.specs or self.specs[-1][2] == self.output_slots[0])

    # ------------------------------------------------------------ validity
    def _watch(self, obj, name):
        self.watch_objs.append(obj)
        self.watch_names.append(name)
        self.watch_vals.append(getattr(obj, name))

    def valid(self):
        if self.epoch != _weights_epoch.current() or _backend.name() != "native":
            return False
        return all(map(operator.is_, map(getattr, self.watch_objs, self.watch_names), self.watch_vals))

    def __deepcopy__(self, memo):   # a copied model compiles its own plan (closures hold these arrays)
        return None

    def __copy__(self):
        return None

    # ------------------------------------------------------------ compile
    def _slot(self):
        self.n_slots += 1
        return self.n_slots - 1

    def _compile_sequential(self, model):
        layers = list(model._layers)
        slot = self._slot()
        self.input_slots = [slot]
        i = 0
        while i < len(layers):
            layer = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            out = self._slot()
            if self._fusable_activation(layer, nxt):
                pool = self._fusable_pool(layer, nxt, layers[i + 2] if i + 2 < len(layers) else None)
                self._add_layer(layer, [slot], out, fuse=nxt, pool=pool)
                i += 3 if pool is not None else 2
            else:
                pool = self._fusable_pool(layer, None, nxt)
                self._add_layer(layer, [slot], out, pool=pool)
                i += 2 if pool is not None else 1
            slot = out
        self.output_slots = [slot]

    def _fusable_activation(self, layer, nxt):
        from ..functional.activation import linear
        from ..layers import Activation, Conv1D, Conv2D, Dense
        if nxt is None or not _exact(nxt, Activation) or \
                not (_exact(layer, Dense) or _exact(layer, Conv2D) or _exact(layer, Conv1D)):
            return False
        return layer.activation is linear and _activation(nxt.activation)[2] is None

    def _fusable_pool(self, layer, act, pool):
        """The MaxPooling2D right after a Conv2D (and the Activation fused into it) that runs
        inside the conv's call (``_C.conv2d_max_pool2d``: the conv output is never written
        whole), or None."""
        from ..layers import Conv2D, MaxPooling2D
        if pool is None or not _exact(layer, Conv2D) or not _exact(pool, MaxPooling2D) or \
                layer.dtype != _F32 or pool.dtype != _F32 or not hasattr(self._C, "conv2d_max_pool2d"):
            return None
        if any(getattr(x, "data_format", "channels_last") != "channels_last" for x in (layer, pool)):
            return None
        return pool if _activation((act or layer).activation)[2] is None else None

    def _compile_functional(self, graph):
        slots = {}
        self.input_slots = []
        for t in graph.inputs:
            slots[id(t)] = self._slot()
            self.input_slots.append(slots[id(t)])
        by_node = {}
        for t in graph.order:
            by_node.setdefault(id(t.node), (t.node, []))[1].append(t)
        for node, tensors in by_node.values():
            for t in tensors:
                slots[id(t)] = self._slot()
            ins = node.parents
            flat = isinstance(ins, (list, tuple))
            parent_list = list(ins) if flat else [ins]
            simple = (not node.kwargs or _default_attention_call(node)) and \
                all(id(p) in slots for p in parent_list) and all(t.index is None for t in tensors) and \
                len(tensors) == 1
            if simple:
                in_slots = [slots[id(p)] for p in parent_list]
                self._add_layer(node.layer, in_slots, slots[id(tensors[0])], as_list=flat)
            else:
                self._add_generic_node(node, slots, [(slots[id(t)], t.index) for t in tensors])
        self.output_slots = [slots[id(t)] for t in graph.outputs]

    def _add_layer(self, layer, in_slots, out, fuse=None, as_list=False, pool=None):
        from ..layers import (GRU, LSTM, Activation, Add, AveragePooling2D, BatchNormalization, Concatenate,
                              Conv1D, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling1D,
                              GlobalAveragePooling2D, LayerNormalization, MaxPooling2D, MultiHeadAttention,
                              Multiply, SimpleRNN, TransformerEncoder)
        # The prepared steps are channels_last (NHWC) calls: a layer given
        # data_format="channels_first" runs its own call (which transposes around them).
        channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
        if channels_last and hasattr(layer, "data_format"):
            self._watch(layer, "data_format")
        if as_list and _exact(layer, MultiHeadAttention) and layer.dtype == _F32 and layer.built and \
                len(in_slots) in (2, 3) and (len(in_slots) == 2 or in_slots[2] == in_slots[1]):
            return self._mha(layer, in_slots[:2], out)
        if as_list and len(in_slots) >= 2 and (_exact(layer, Add) or _exact(layer, Multiply) or
                                               _exact(layer, Concatenate)):
            return self._merge(layer, in_slots, out)
        if not as_list and len(in_slots) == 1 and channels_last:
            i = in_slots[0]
            if _exact(layer, Dense) and layer.dtype == _F32:
                return self._dense(layer, i, out, fuse)
            if (_exact(layer, Conv2D) or _exact(layer, Conv1D)) and layer.dtype == _F32:
                return self._conv2d(layer, i, out, fuse, pool)
            if (_exact(layer, MaxPooling2D) or _exact(layer, AveragePooling2D)) and layer.dtype == _F32:
                return self._pool2d(layer, i, out)
            if _exact(layer, GlobalAveragePooling2D) and not layer.keepdims:
                return self._simple(layer, i, out, self._C.global_avg_pool2d, [])
            if _exact(layer, Flatten):
                return self._flatten(layer, i, out)
            if _exact(layer, Dropout):
                return self._identity(layer, i, out)
            if _exact(layer, LayerNormalization) and layer.dtype == _F32 and layer.built and \
                    _last_axis_only(layer.axis):
                return self._layer_norm(layer, i, out)
            if _exact(layer, BatchNormalization) and layer.dtype == _F32 and layer.built and \
                    _last_axis_only(layer.axis):
                return self._batch_norm(layer, i, out)
            if _exact(layer, Activation) and not getattr(_activation(layer.activation)[2], "uses_tensor", False):
                return self._activation_layer(layer, i, out)
            if _exact(layer, GlobalAveragePooling1D) and not layer.keepdims:
                return self._mean_over_steps(layer, i, out)
            if _exact(layer, TransformerEncoder) and self._transformer_ok(layer):
                return self._transformer(layer, i, out)
            if (_exact(layer, LSTM) or _exact(layer, GRU) or _exact(layer, SimpleRNN)) and self._recurrent_ok(layer):
                return self._recurrent(layer, i, out)
        self._generic(layer, in_slots, out, as_list)

    # ------------------------------------------------------------ prepared steps
    def _dense(self, layer, i, out, fuse):
        act_owner = fuse if fuse is not None else layer
        act, alpha, after = _activation(act_owner.activation)
        self.records |= getattr(after, "uses_tensor", False)   # an activation applied after on a Tensor
        for name in ("kernel", "bias", "activation"):
            self._watch(layer, name)
        if fuse is not None:
            self._watch(fuse, "activation")
            self.fused.append((layer.name, fuse.name))
        bias = None if layer.bias is None else layer.bias.data
        units, k = layer.units, layer.input_dim
        # The kernel packed once into the GEMM's panel layout, by the layer's own cache
        # (Dense._inference_pack: keyed on the weights epoch, kernel frozen while held): a
        # 1-row product no longer repacks 784x256 floats per call.
        packed = layer._inference_pack()
        gemm = self._C.gemm_packed
        buffered = after is None   # an activation applied after allocates its own result
        if buffered:
            self.buffered.add(out)

        def step(env, bufs):
            x = env[i]
            if x.dtype is not _F32 and x.dtype != _F32:
                raise _Fallback
            if x.ndim != 2 or x.shape[1] != k:
                if x.ndim < 2 or x.shape[-1] != k:
                    raise _Fallback      # the layer's own call raises its error
                lead = x.shape[:-1]
                x = x.reshape(-1, k)
            else:
                lead = None
            c = bufs.get(out) if buffered else None
            if c is None and buffered:
                c = bufs[out] = np.empty((x.shape[0], units), np.float32)
            y = gemm(x, packed, bias, act, alpha, 1.0, 0.0, c)
            if after is not None:
                y = after(y)
            env[out] = y if lead is None else y.reshape(lead + (units,))

        def spec(x, last):
            if x.dtype != _F32 or x.ndim < 2 or x.shape[-1] != k:
                return None
            calls, lead = [], x.shape[:-1]
            if x.ndim != 2:
                calls.append((_reshape, ((-1, k),)))
            rows = int(np.prod(lead))
            # The model's last GEMM allocates its result (handed out as is); the others write
            # into this program's buffers (an activation applied after returns a new array).
            c = None if last and after is None else np.empty((rows, units), np.float32)
            calls.append((gemm, (packed, bias, act, alpha, 1.0, 0.0, c)))
            if after is not None:
                calls.append((after, ()))
            if x.ndim != 2:
                calls.append((_reshape, (lead + (units,),)))
            return calls, c is None or after is not None
        self._add(step, layer, spec, i, out)

    def _conv2d(self, layer, i, out, fuse, pool=None):
        act_owner = fuse if fuse is not None else layer
        act, alpha, after = _activation(act_owner.activation)
        self.records |= getattr(after, "uses_tensor", False)   # an activation applied after on a Tensor
        for name in ("kernel", "bias", "activation", "strides", "padding", "dilation_rate", "input_channels"):
            self._watch(layer, name)
        if fuse is not None:
            self._watch(fuse, "activation")
            self.fused.append((layer.name, fuse.name))
        kernel = layer.kernel.data
        bias = None if layer.bias is None else layer.bias.data
        strides, padding, dilation = tuple(layer.strides), layer.padding, tuple(layer.dilation_rate)
        channels, rank = layer.input_channels, layer.rank
        conv2d = self._C.conv2d
        pool_args = ()
        if pool is not None:   # Conv2D (+ Activation) + MaxPooling2D: one call, see _fusable_pool
            for name in ("pool_size", "strides", "padding", "data_format"):
                self._watch(pool, name)
            self.fused.append((layer.name, pool.name))
            fused_call = self._C.conv2d_max_pool2d
            pool_args = (tuple(pool.pool_size), tuple(pool.strides), pool.padding)

            def conv2d(x, *args):
                return fused_call(x, *args, *pool_args)
        if rank == 1:
            # Conv1D as F.conv1d runs it: the 2-D kernel on height-1 views (no copies).
            kernel = kernel.reshape((1,) + kernel.shape)
            strides, dilation = (1,) + strides, (1,) + dilation

            def conv(x, *args):
                n, t, c = x.shape
                y = conv2d(np.ascontiguousarray(x).reshape(n, 1, t, c), *args)
                return y.reshape(n, y.shape[2], y.shape[3])
        else:
            def conv(x, *args):   # the kernel takes C-contiguous input (a no-op when it is)
                return conv2d(np.ascontiguousarray(x), *args)

        def ok(x):
            return x.dtype == _F32 and x.ndim == rank + 2 and x.shape[-1] == channels

        def step(env, bufs):
            x = env[i]
            if not ok(x):
                raise _Fallback
            y = conv(x, kernel, bias, strides, padding, dilation, act, alpha)
            env[out] = y if after is None else after(y)

        def spec(x, last):
            if not ok(x):
                return None
            calls = [(conv, (kernel, bias, strides, padding, dilation, act, alpha))]
            return (calls if after is None else calls + [(after, ())]), True
        self._add(step, layer, spec, i, out)

    def _pool2d(self, layer, i, out):
        from ..layers import MaxPooling2D
        for name in ("pool_size", "strides", "padding"):
            self._watch(layer, name)
        fn = self._C.max_pool2d if type(layer) is MaxPooling2D else self._C.avg_pool2d
        return self._simple(layer, i, out, fn, [tuple(layer.pool_size), tuple(layer.strides), layer.padding])

    def _simple(self, layer, i, out, fn, args):
        ndim = 4

        def call(x, *a):   # the kernels take C-contiguous input (a no-op when it is)
            return fn(np.ascontiguousarray(x), *a)

        def step(env, bufs):
            x = env[i]
            if x.dtype != _F32 or x.ndim != ndim:
                raise _Fallback
            env[out] = call(x, *args)

        def spec(x, last):
            if x.dtype != _F32 or x.ndim != ndim:
                return None
            return [(call, tuple(args))], True
        self._add(step, layer, spec, i, out)

    def _flatten(self, layer, i, out):
        if i in self.buffered:
            self.buffered.add(out)

        def step(env, bufs):
            x = env[i]
            env[out] = x.reshape(x.shape[0], -1)

        def spec(x, last):
            return [(_reshape, ((x.shape[0], -1),))], None   # None: as fresh as its input
        self._add(step, layer, spec, i, out)

    def _identity(self, layer, i, out):
        if i in self.buffered:
            self.buffered.add(out)

        def step(env, bufs):
            env[out] = env[i]

        def spec(x, last):
            return [], None
        self._add(step, layer, spec, i, out)

    def _layer_norm(self, layer, i, out):
        for name in ("gamma", "beta", "epsilon", "axis"):
            self._watch(layer, name)
        gamma = None if layer.gamma is None else layer.gamma.data
        beta = None if layer.beta is None else layer.beta.data
        eps, ln = float(layer.epsilon), self._C.layer_norm_forward
        width = layer.param_shape[0]

        def norm(x):
            return ln(np.ascontiguousarray(x).reshape(-1, width), gamma, beta, eps)[0].reshape(x.shape)

        def step(env, bufs):
            x = env[i]
            if x.dtype != _F32 or x.ndim < 2 or x.shape[-1] != width:
                raise _Fallback
            env[out] = norm(x)

        def spec(x, last):
            if x.dtype != _F32 or x.ndim < 2 or x.shape[-1] != width:
                return None
            return [(norm, ())], True
        self._add(step, layer, spec, i, out)

    def _batch_norm(self, layer, i, out):
        """BatchNormalization at inference over the last axis: the layer's own arithmetic,
        in its order, on the live moving statistics (training updates them in place)."""
        for name in ("gamma", "beta", "moving_mean", "moving_variance", "epsilon", "axis", "trainable"):
            self._watch(layer, name)
        gamma = None if layer.gamma is None else layer.gamma.data
        beta = None if layer.beta is None else layer.beta.data
        mean, var, eps = layer.moving_mean.data, layer.moving_variance.data, layer.epsilon
        width = layer.param_shape[0]

        def norm(x):
            y = x - mean
            y *= (1.0 / np.sqrt(var + eps)).astype(x.dtype)
            if gamma is not None:
                y *= gamma
            if beta is not None:
                y += beta
            return y

        def ok(x):
            return x.dtype == _F32 and x.ndim >= 2 and x.shape[-1] == width

        self._add_call(norm, ok, layer, i, out)

    def _activation_layer(self, layer, i, out):
        """An Activation layer not fused into the layer before it: the activation's native
        kernel (or softmax's), as the fused epilogues compute it."""
        self._watch(layer, "activation")
        name, alpha, after = _activation(layer.activation)
        act = self._C.act_forward

        def apply(x):
            x = np.ascontiguousarray(x)
            return act(x, name, alpha) if after is None else after(x)

        def step(env, bufs):
            x = env[i]
            if x.dtype != _F32:
                raise _Fallback
            env[out] = apply(x)

        def spec(x, last):
            return ([(apply, ())], True) if x.dtype == _F32 else None
        self._add(step, layer, spec, i, out)

    def _mean_over_steps(self, layer, i, out):
        """GlobalAveragePooling1D without a mask (a mask makes the plan fall back): the mean over axis 1."""
        def mean(x):
            return x.mean(axis=1)

        def step(env, bufs):
            x = env[i]
            if x.dtype != _F32 or x.ndim != 3:
                raise _Fallback
            env[out] = mean(x)

        def spec(x, last):
            if x.dtype != _F32 or x.ndim != 3:
                return None
            return [(mean, ())], True
        self._add(step, layer, spec, i, out)

    def _transformer_ok(self, layer):
        """True when every sublayer of a TransformerEncoder is the stock class the prepared
        block reproduces (no subclass, no per-instance override, last-axis norms, activations
        with a native epilogue, the attention's output width the model width)."""
        from ..layers import Dense, LayerNormalization, MultiHeadAttention
        from ..layers.dropout import Dropout
        if not layer.built or layer.dtype != _F32:
            return False
        mha, parts = layer.attention, (layer.norm1, layer.norm2, layer.ff1, layer.ff2)
        if not _exact(mha, MultiHeadAttention) or mha.dtype != _F32:
            return False
        if mha.output_dim not in (None, mha.query_kernel.shape[0]):
            return False
        if not all(_exact(n, LayerNormalization) and _last_axis_only(n.axis) for n in parts[:2]):
            return False
        if not all(_exact(d, Dense) and _activation(d.activation)[2] is None for d in parts[2:]):
            return False
        return layer.drop is None or _exact(layer.drop, Dropout)

    def _merge(self, layer, in_slots, out):
        """Add/Multiply (inputs of one shape, combined left to right as the layer does) and
        Concatenate as one NumPy call on the arrays."""
        from ..layers import Concatenate
        if type(layer) is Concatenate:
            self._watch(layer, "axis")
            axis = layer.axis

            def combine(xs):
                if any(x.ndim != xs[0].ndim for x in xs):
                    raise _Fallback
                return np.concatenate(xs, axis=axis)
        else:
            op = np.add if type(layer).__name__ == "Add" else np.multiply

            def combine(xs):
                if any(x.shape != xs[0].shape for x in xs):
                    raise _Fallback        # the layer's own call raises (or broadcasts) as it does
                y = op(xs[0], xs[1])
                for x in xs[2:]:
                    op(y, x, out=y)
                return y

        def step(env, bufs):
            xs = [env[s] for s in in_slots]
            if any(type(x) is not np.ndarray or x.dtype != _F32 for x in xs):
                raise _Fallback
            env[out] = combine(xs)
        self.steps.append(step)
        self.specs.append(None)   # several inputs: never part of a chain program
        self.prepared.append(layer.name)

    def _watch_attention(self, mha):
        for name in ("query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
                     "output_kernel", "output_bias", "num_heads", "key_dim", "value_dim", "output_dim", "dtype"):
            self._watch(mha, name)

    def _mha(self, layer, in_slots, out):
        """MultiHeadAttention called with default keywords (no mask, no scores returned) on
        [query, value] or [query, value, key] with key the same tensor as value: self-attention
        (all one tensor) projects with one GEMM, cross-attention with two."""
        self._watch_attention(layer)
        mode = "self" if in_slots[0] == in_slots[1] else "cross"
        attend = _Attention(self._C, layer, mode)
        q_slot, v_slot = in_slots[0], in_slots[1]
        dq, dv = layer.query_kernel.shape[0], layer.value_kernel.shape[0]
        dk = layer.key_kernel.shape[0]

        def ok(q, v):
            return q.dtype == _F32 and v.dtype == _F32 and q.ndim == 3 and v.ndim == 3 and q.shape[-1] == dq \
                and v.shape[-1] == dv == dk and q.shape[0] == v.shape[0]

        def run(q, v, bufs):
            B, T, S = q.shape[0], q.shape[1], v.shape[1]
            q2 = np.ascontiguousarray(q).reshape(B * T, dq)
            v2 = q2 if mode == "self" else np.ascontiguousarray(v).reshape(B * S, dv)
            y = attend(bufs, B, T, q2, S, v2)
            return y.reshape(B, T, y.shape[1])

        def step(env, bufs):
            q, v = env[q_slot], env[v_slot]
            if not ok(q, v):
                raise _Fallback
            env[out] = run(q, v, {})   # fresh buffers each call: the result is no one else's
        self.steps.append(step)
        self.specs.append(None)   # two inputs: never part of a chain program
        self.prepared.append(layer.name)

    def _transformer(self, layer, i, out):
        """TransformerEncoder (no mask: a padding mask makes the plan fall back) as bare calls:
        one GEMM for the query/key/value projections (the key-dim scale folded into the query
        columns), the fused attention kernel for every head's scores, softmax and context,
        then the output projection, residual adds, the fused layer norm and the two
        feed-forward GEMMs with bias and activation in their epilogues."""
        from .. import _weights_epoch as epoch
        mha, n1, n2, ff1, ff2 = layer.attention, layer.norm1, layer.norm2, layer.ff1, layer.ff2
        for name in ("attention", "norm1", "norm2", "ff1", "ff2", "drop", "normalize_first"):
            self._watch(layer, name)
        self._watch_attention(mha)
        for n in (n1, n2):
            for name in ("gamma", "beta", "epsilon", "axis"):
                self._watch(n, name)
        for d in (ff1, ff2):
            for name in ("kernel", "bias", "activation"):
                self._watch(d, name)
        C = self._C
        d = mha.query_kernel.shape[0]
        attend = _Attention(C, mha, "self")
        ff1_packed, ff2_packed = ff1._inference_pack(), ff2._inference_pack()
        ff1_bias = None if ff1.bias is None else ff1.bias.data
        ff2_bias = None if ff2.bias is None else ff2.bias.data
        act1, alpha1, _ = _activation(ff1.activation)
        act2, alpha2, _ = _activation(ff2.activation)
        units = ff1.units
        norms = [(None if n.gamma is None else n.gamma.data, None if n.beta is None else n.beta.data,
                  float(n.epsilon)) for n in (n1, n2)]
        pre_norm = bool(layer.normalize_first)
        gemm, ln = C.gemm_packed, C.layer_norm_forward

        def block(x, bufs):
            B, T = x.shape[0], x.shape[1]
            rows = B * T
            if bufs is None:
                bufs = {}
            if "res" not in bufs:
                for name, w in (("res", d), ("ff", units), ("ff2", d)):
                    bufs[name] = np.empty((rows, w), np.float32)
            x2 = np.ascontiguousarray(x).reshape(rows, d)

            def attention(src):
                return attend(bufs, B, T, src)

            def norm(v, which):
                g, b, e = norms[which]
                return ln(v, g, b, e)[0]

            def feed_forward(src):
                f = gemm(src, ff1_packed, ff1_bias, act1, alpha1, 1.0, 0.0, bufs["ff"])
                return gemm(f, ff2_packed, ff2_bias, act2, alpha2, 1.0, 0.0, bufs["ff2"])
            res = bufs["res"]
            if pre_norm:
                y = np.add(x2, attention(norm(x2, 0)), out=res)
                y = y + feed_forward(norm(y, 1))
            else:
                y = norm(np.add(x2, attention(x2), out=res), 0)
                y = norm(np.add(y, feed_forward(y), out=res), 1)
            return y.reshape(B, T, d)

        def step(env, bufs):
            x = env[i]
            if x.dtype != _F32 or x.ndim != 3 or x.shape[-1] != d:
                raise _Fallback
            env[out] = block(x, None)

        def spec(x, last):
            if x.dtype != _F32 or x.ndim != 3 or x.shape[-1] != d:
                return None
            return [(block, ({},))], True
        self._add(step, layer, spec, i, out)

    def _recurrent_ok(self, layer):
        from ..backend.native.rnn import _NATIVE_ACTS
        acts = [layer.activation] + ([layer.recurrent_activation] if hasattr(layer, "recurrent_activation") else [])
        return layer.built and layer.dtype == _F32 and not layer.return_state and not layer.stateful and \
            all(isinstance(a, str) and a in _NATIVE_ACTS for a in acts)

    def _recurrent(self, layer, i, out):
        """LSTM, GRU or SimpleRNN without a mask, state in or out (those run the layer's
        call): the input projection as one GEMM with the (input) bias in its epilogue, then
        the native time loop; no autograd record, no (hs, c_T) concatenation."""
        from ..layers import GRU, LSTM
        names = ["kernel", "recurrent_kernel", "bias", "activation", "go_backwards", "return_sequences",
                 "return_state", "stateful", "units"]
        kind = "lstm" if type(layer) is LSTM else "gru" if type(layer) is GRU else "simple_rnn"
        if kind != "simple_rnn":
            names.append("recurrent_activation")
        for name in names:
            self._watch(layer, name)
        kernel, recurrent = layer.kernel.data, layer.recurrent_kernel.data
        units, features = layer.units, kernel.shape[0]
        bias = None if layer.bias is None else layer.bias.data
        act = layer.activation
        ract = getattr(layer, "recurrent_activation", None)
        backwards, sequences = bool(layer.go_backwards), bool(layer.return_sequences)
        C = self._C
        # Both kernels packed once per plan (rebuilt with it when the weights epoch moves;
        # the arrays read-only meanwhile) instead of inside every call: the recurrent kernel
        # in the time loop's own column order (RecurrentKernelPack), so a batch-1 call no
        # longer repacks (U, G·U) floats, and the input kernel.
        gates = {"lstm": 4, "gru": 3}.get(kind, 1)
        rec_packed = C.RecurrentKernelPack(recurrent, gates)
        # LSTM: the projection runs inside the time loop (lstm_forward_x, on the input kernel
        # packed in the loop's column order); GRU, SimpleRNN: one GEMM before it.
        in_packed = C.PackedMatrix(kernel)
        if kind == "lstm":
            from ..backend.native.rnn import PROJECT_IN_LOOP_MIN_BATCH as min_batch
            in_blocks = C.RecurrentKernelPack(kernel, 4)
        _weights_epoch.freeze(kernel)
        _weights_epoch.freeze(recurrent)
        gemm = C.gemm_packed
        if kind == "gru":   # bias (2, 3U): [input bias, recurrent bias]; zeros without use_bias, as _bias()
            in_bias, rec_bias = (None, np.zeros(3 * units, np.float32)) if bias is None else (bias[0], bias[1])
            loop = C.gru_forward

            def run(xw, h0):
                return loop(xw, h0, recurrent, rec_bias, None, act, ract, None, packed_recurrent=rec_packed)[0]
        elif kind == "lstm":
            loop = C.lstm_forward_x
            # The (N, T, 4U) gates serve only backward: not stored.

            def run_x(x, h0):
                return loop(x, kernel, bias, h0, h0, recurrent, None, act, ract, save_gates=False,
                            packed_kernel=in_blocks, packed_recurrent=rec_packed)[0]

            def run(xw, h0):   # small batches: one projection GEMM first (PROJECT_IN_LOOP_MIN_BATCH)
                return C.lstm_forward(xw, h0, h0, recurrent, None, act, ract, None, save_gates=False,
                                      xw_scratch=True, packed_recurrent=rec_packed)[0]
            in_bias = bias
        else:
            in_bias, loop = bias, C.simple_rnn_forward

            def run(xw, h0):
                return loop(xw, h0, recurrent, None, act, None, packed_recurrent=rec_packed)
        width = kernel.shape[1]

        def rnn(x):
            n, t = x.shape[0], x.shape[1]
            if backwards:
                x = x[:, ::-1]
            if kind == "lstm" and n >= min_batch:
                hs = run_x(np.ascontiguousarray(x), np.zeros((n, units), np.float32))
                return hs if sequences else hs[:, -1]
            xw = gemm(np.ascontiguousarray(x).reshape(n * t, features), in_packed, in_bias)
            hs = run(xw.reshape(n, t, width), np.zeros((n, units), np.float32))
            return hs if sequences else hs[:, -1]

        def ok(x):
            return x.dtype == _F32 and x.ndim == 3 and x.shape[-1] == features and x.shape[1] > 0

        self._add_call(rnn, ok, layer, i, out)

    def _add_call(self, fn, ok, layer, i, out):
        """A prepared step that is one call ``y = fn(x)`` returning a new array, for inputs
        ``ok(x)`` accepts (others fall back to the layer)."""
        def step(env, bufs):
            x = env[i]
            if not ok(x):
                raise _Fallback
            env[out] = fn(x)

        def spec(x, last):
            return ([(fn, ())], True) if ok(x) else None
        self._add(step, layer, spec, i, out)

    def _add(self, step, layer, spec, i, out):
        """A prepared step: ``step(env, bufs)`` runs it in a general plan; ``spec(x, last)``
        gives, for its actual input ``x``, ``([(fn, args), ...], fresh)``: the bare calls
        ``y = fn(y, *args)`` a program makes of it and whether their result is a new array
        (True), a reused buffer (False) or its input's own memory (None); None when it
        cannot take ``x`` (the steps then run and raise what they raise)."""
        self.steps.append(step)
        self.specs.append((spec, i, out))
        self.prepared.append(layer.name)

    # ------------------------------------------------------------ ordinary calls
    def _generic(self, layer, in_slots, out, as_list):
        """The layer's own ``__call__`` (whatever it or a subclass defines), on Tensors."""
        def step(env, bufs):
            if as_list:
                args = [_tensor(env[s]) for s in in_slots]
            else:
                args = _tensor(env[in_slots[0]])
            env[out] = _checked(layer(args, training=False))
        self.steps.append(step)
        self.specs.append(None)
        self.records = True

    def _add_generic_node(self, node, slots, outs):
        """A functional node with keyword arguments (masks, initial states) or several
        outputs: substituted exactly as ``FunctionalGraph.run`` does."""
        from ..layers.input_layer import substitute

        class _Env(dict):
            pass
        keys = {}

        def collect(v):
            if isinstance(v, (list, tuple)):
                for u in v:
                    collect(u)
            elif isinstance(v, dict):
                for u in v.values():
                    collect(u)
            elif id(v) in slots:
                keys[id(v)] = slots[id(v)]
        collect(node.parents)
        collect(node.kwargs)
        layer = node.layer

        def step(env, bufs):
            values = {k: _tensor(env[s]) for k, s in keys.items()}
            result = layer(substitute(node.parents, values), training=False, **substitute(node.kwargs, values))
            for slot, index in outs:
                env[slot] = _checked(result if index is None else result[index])
        self.steps.append(step)
        self.specs.append(None)
        self.records = True

    # ------------------------------------------------------------ run
    def _program(self, x):
        """Run a chain plan on ``x`` while recording it as a program for ``x.shape``:
        ``(calls, copy_out)``, the flat list of ``(fn, args)`` its specs give (buffers
        allocated here, owned by the program) and whether the result must be copied
        (it is a buffer the next call reuses). Returns (program or None, output)."""
        calls, fresh, y = [], False, x   # the input itself is not fresh: a chain of views of it copies
        last = len(self.specs) - 1
        for n, (spec, _, _) in enumerate(self.specs):
            got = spec(y, n == last)
            if got is None:
                return None, None
            step_calls, step_fresh = got
            for fn, args in step_calls:
                y = fn(y, *args)
            calls.extend(step_calls)
            if step_fresh is not None:
                fresh = step_fresh
        return (calls, not fresh), (y if fresh else y.copy())

    def run_one(self, x):
        """A chain plan's output for one checked float32 array ``x`` (see run_array): the
        program for ``x.shape`` (built on the first call at that shape, per thread, as its
        buffers are), one bare call per step and no per-layer checks."""
        try:
            progs = self._local.progs
        except AttributeError:
            progs = self._local.progs = {}
        prog = progs.get(x.shape)
        if prog is None:
            if len(progs) >= _MAX_SHAPES:
                progs.pop(next(iter(progs)))
            prog, y = self._program(x)
            if prog is None:
                progs[x.shape] = False
                return self.run([x])[0]
            progs[x.shape] = prog
            return y
        if prog is False:
            return self.run([x])[0]
        calls, copy_out = prog
        for fn, args in calls:
            x = fn(x, *args)
        return x.copy() if copy_out else x

    def run(self, xs):
        """The model's outputs (a list of fresh arrays) for the prepared inputs ``xs``."""
        try:
            cache = self._local.bufs
        except AttributeError:
            cache = self._local.bufs = {}
        key = xs[0].shape if len(xs) == 1 else tuple(x.shape for x in xs)
        bufs = cache.get(key)
        if bufs is None:
            if len(cache) >= _MAX_SHAPES:
                cache.pop(next(iter(cache)))
            bufs = cache[key] = {}
        env = [None] * self.n_slots
        for s, x in zip(self.input_slots, xs):
            env[s] = x
        if self.records:   # a layer's own __call__ runs: keep it from recording a graph
            with no_grad():
                for step in self.steps:
                    step(env, bufs)
        else:              # prepared steps call _C directly and never record
            for step in self.steps:
                step(env, bufs)
        outs = []
        for s in self.output_slots:
            v = env[s]
            if isinstance(v, Tensor):
                v = v.data
            elif s in self.buffered:
                v = v.copy()      # the buffer is reused by the next call: never hand it out
            outs.append(v)
        return outs


_reshape = np.ndarray.reshape


class _Attention:
    """A MultiHeadAttention layer's inference as bare calls on (rows, features) arrays:
    the projections as packed GEMMs (one for query, key and value when they are one input,
    "self"; query, then key and value together, when key is value, "cross"), the 1/sqrt(key_dim)
    scale folded into the query columns, then the fused attention kernel (_C.attention: all
    heads' scores, softmax and context in one call on strided (B, T, heads, dim) views of the
    projections, no copies), and the output projection. The packed
    copies' source arrays are made read-only until the next weights change."""

    def __init__(self, C, mha, mode):
        from .. import _weights_epoch as epoch
        h, kd, vd = mha.num_heads, mha.key_dim, mha.value_dim
        self.h, self.kd, self.vd, self.mode = h, kd, vd, mode
        scale = np.float32(1.0 / np.sqrt(kd))

        def flat(kernel, bias, width, factor=None):
            k = kernel.data.reshape(kernel.shape[0], width)
            b = np.zeros(width, np.float32) if bias is None else bias.data.reshape(width)
            if factor is not None:
                k, b = k * factor, b * factor
            return k, b

        def packed(parts):
            return (C.PackedMatrix(np.concatenate([k for k, _ in parts], axis=1)),
                    np.ascontiguousarray(np.concatenate([b for _, b in parts]), np.float32))
        q = flat(mha.query_kernel, mha.query_bias, h * kd, scale)
        k = flat(mha.key_kernel, mha.key_bias, h * kd)
        v = flat(mha.value_kernel, mha.value_bias, h * vd)
        if mode == "self":
            self.qkv = packed([q, k, v])
        else:
            self.q, self.kv = packed([q]), packed([k, v])
        self.out_dim = mha.output_kernel.shape[-1]
        self.out = C.PackedMatrix(mha.output_kernel.data.reshape(h * vd, self.out_dim))
        self.out_bias = None if mha.output_bias is None else mha.output_bias.data
        for w in (mha.query_kernel, mha.query_bias, mha.key_kernel, mha.key_bias, mha.value_kernel,
                  mha.value_bias, mha.output_kernel):
            if w is not None:
                epoch.freeze(w.data)
        self.gemm, self.attention = C.gemm_packed, C.attention

    def __call__(self, bufs, B, T, query, S=None, value=None):
        """(B*T, out_dim) for ``query`` (B*T, Dq) and, in "cross" mode, ``value`` (B*S, Dv),
        writing into ``bufs`` (a dict this call fills on first use, kept per input shape)."""
        h, kd, vd, gemm = self.h, self.kd, self.vd, self.gemm
        if "att" not in bufs:
            if self.mode == "self":
                bufs["qkv"] = np.empty((B * T, h * (2 * kd + vd)), np.float32)
            else:
                bufs["q"] = np.empty((B * T, h * kd), np.float32)
                bufs["kv"] = np.empty((B * S, h * (kd + vd)), np.float32)
            bufs["att"] = np.empty((B * T, self.out_dim), np.float32)
        if self.mode == "self":
            qkv = gemm(query, self.qkv[0], self.qkv[1], "linear", 0.0, 1.0, 0.0, bufs["qkv"]).reshape(B, T, -1)
            qs, ks, k0, v0 = qkv, qkv, h * kd, 2 * h * kd
        else:
            qs = gemm(query, self.q[0], self.q[1], "linear", 0.0, 1.0, 0.0, bufs["q"]).reshape(B, T, -1)
            ks = gemm(value, self.kv[0], self.kv[1], "linear", 0.0, 1.0, 0.0, bufs["kv"]).reshape(B, S, -1)
            k0, v0 = 0, h * kd
        S = T if S is None else S
        q = qs[:, :, :h * kd].reshape(B, T, h, kd)
        k = ks[:, :, k0:k0 + h * kd].reshape(B, S, h, kd)
        v = ks[:, :, v0:v0 + h * vd].reshape(B, S, h, vd)
        # Every head in one fused call on strided views of the projections (the scale is in
        # the query columns); the weights are not kept.
        ctx = self.attention(q, k, v, 1.0, None, None, False)[0].reshape(B * T, h * vd)
        return gemm(ctx, self.out, self.out_bias, "linear", 0.0, 1.0, 0.0, bufs["att"])


def _tensor(v):
    return v if isinstance(v, Tensor) else Tensor(v)


def _checked(out):
    """A generic step's output as the next steps take it: masks are not carried by the plan."""
    if isinstance(out, Tensor):
        if out._keras_mask is not None:
            raise _Fallback
        return out.data
    if isinstance(out, (list, tuple)):
        return [_checked(o) for o in out]
    return out


def supports(model):
    """True when ``model``'s inference can run as a plan: a Sequential or a functional
    Model whose class overrides none of the methods the plan replaces, native backend."""
    from .model import Model
    from .sequential import Sequential
    if _backend.name() != "native":
        return False
    cls = type(model)
    for name in ("call", "__call__", "_forward", "predict_step"):
        if name in model.__dict__:
            return False
    if isinstance(model, Sequential):
        base = Sequential
    elif getattr(model, "_graph", None) is not None:
        base = Model
    else:
        return False
    for name in ("call", "__call__", "_forward", "predict_step", "_call_eager"):
        if getattr(cls, name) is not getattr(base, name):
            return False
    for layer in model.layers:
        if layer.dtype != _F32 or getattr(layer, "mask_zero", False) or getattr(layer, "stateful", False):
            return False
        if type(layer).__name__ == "Masking":
            return False
    return model.built


def run_array(model, x):
    """The fast path of predict_on_batch: a single float32 ndarray of exactly the model's
    input shape, a valid plan already built; None otherwise (the caller then takes the
    checked path through ``Model._prepare_x`` and :func:`run`)."""
    plan = model.__dict__.get("_inference_plan")
    if not plan or type(x) is not np.ndarray or (x.dtype is not _F32 and x.dtype != _F32):
        return None
    shape = x.shape
    if plan.tail is not None:
        if shape[1:] != plan.tail or not shape or not shape[0]:
            return None
    else:
        expected = plan.input_shape
        if expected is None or x.ndim != len(expected) or not shape[0] or \
                any(e is not None and e != s for e, s in zip(expected[1:], shape[1:])):
            return None
    if not plan.valid():
        return None
    try:
        if plan.chain:
            return [plan.run_one(x)]
        return plan.run([x])
    except _Fallback:
        model.__dict__["_inference_plan"] = False
        model.__dict__["_inference_plan_epoch"] = _weights_epoch.current()
        return None


def run(model, xs):
    """``model``'s outputs for ``xs`` through its plan, or None when the ordinary path must run."""
    plan = model.__dict__.get("_inference_plan")
    if plan is False:                      # known unsupported at this epoch
        if model.__dict__.get("_inference_plan_epoch") == _weights_epoch.current():
            return None
        plan = None
    if plan is None or not plan.valid():
        if not supports(model):
            model.__dict__["_inference_plan"] = False
            model.__dict__["_inference_plan_epoch"] = _weights_epoch.current()
            return None
        plan = model.__dict__["_inference_plan"] = Plan(model)
    try:
        if plan.chain and len(xs) == 1 and type(xs[0]) is np.ndarray and xs[0].dtype == _F32:
            return [plan.run_one(xs[0])]
        return plan.run(xs)
    except _Fallback:   # e.g. a padding mask appeared: this model runs the ordinary path from now on
        model.__dict__["_inference_plan"] = False
        model.__dict__["_inference_plan_epoch"] = _weights_epoch.current()
        return None
