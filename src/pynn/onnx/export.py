"""Export a pynn model to ONNX, one exporter function per layer class.

An exporter is ``fn(ctx, layer, inputs, **call_kwargs) -> name | [names]``: it
receives the ONNX value names of the layer call's inputs (always a list, one
entry per positional input), adds nodes and initializers through ``ctx``
(:class:`ExportContext`) and returns the name(s) of its output(s). Register one
for a custom layer with :func:`register_exporter`.

Layouts: pynn is channels-last (N, H, W, C); ONNX's Conv/Pool are channels-first,
so each convolution or pooling layer is wrapped in ``Transpose`` nodes and every
tensor between layers stays in pynn's layout (a Flatten/Dense after a Conv sees
the same element order as in pynn; ONNX Runtime cancels adjacent transposes).
Recurrent layers run ONNX's time-major LSTM/GRU/RNN ops (``layout=0``, the only
one ONNX Runtime's CPU kernels accept) between ``Transpose[1, 0, 2]`` nodes.

Layers that cannot be exported (:data:`UNSUPPORTED`) raise a ``ValueError``
naming the layer before anything is written.
"""
from __future__ import annotations

import os

import numpy as np

from ..layers import (GRU, LSTM, Activation, Add, AdditiveAttention, Attention, AveragePooling1D, AveragePooling2D,
                      BatchNormalization, Bidirectional, Concatenate, Conv1D, Conv2D, Dense, Dropout, Embedding,
                      Flatten, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D,
                      GlobalMaxPooling2D, Lambda, LayerNormalization, MaxPooling1D, MaxPooling2D, MultiHeadAttention,
                      Multiply, PositionEmbedding, Reshape, Rescaling, SimpleRNN, SinePositionEncoding,
                      TimeDistributed, TransformerEncoder)
from ..layers import (RNN, GRUCell, LSTMCell, SimpleRNNCell)
from ..layers import (ELU, Average, CategoryEncoding, Conv2DTranspose, Cropping1D, Cropping2D, DepthwiseConv2D, Dot,
                      GaussianNoise, GroupNormalization, Identity, LeakyReLU, Masking, Maximum, Minimum, Normalization,
                      Permute, PReLU, ReLU, RepeatVector, SeparableConv2D, Softmax, SpatialDropout1D, Subtract,
                      UnitNormalization, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D)
from ..layers.base import Layer
from ..layers.merging import _Merge
from ..models import Model, Sequential

MIN_OPSET = 17          # LayerNormalization
DEFAULT_OPSET = 17

# Layer classes of pynn.layers that are not exported, and why (also in README).
UNSUPPORTED = {
    "Lambda": "holds arbitrary Python code; write a custom layer and register_exporter() for it",
    "subclassed Model": "a Python call() has no graph to export; use Sequential or pynn.Model(inputs, outputs)",
    "mask_zero / masking": "a padding mask (Embedding(mask_zero=True) or Masking) reaching Attention, "
                           "AdditiveAttention or TransformerEncoder is refused (recurrent layers, Bidirectional, "
                           "MultiHeadAttention and the 1-D global poolings export it)",
    "stateful recurrent layers": "states carried between calls are not part of an inference graph",
    "explicit mask= arguments": "a mask passed by hand to a recurrent or attention call is refused (padding "
                                "masks from Embedding(mask_zero=True) are exported)",
    "unknown spatial sizes": "Conv/pooling with None height/width (or steps) are refused: 'same' padding is "
                             "computed exactly from the static size",
    "recurrent activation 'linear'": "ONNX's LSTM/GRU/RNN ops are given sigmoid/tanh/relu only",
    "RNN(custom cell), RNN(GRUCell(reset_after=False))": "a generic Python cell loop has no ONNX op; RNN over "
                                                          "SimpleRNNCell/LSTMCell/GRUCell(reset_after=True) exports",
    "SimpleRNNCell": "exported inside RNN(cell); a cell called on its own (one step) is not",
    "LSTMCell": "exported inside RNN(cell); a cell called on its own (one step) is not",
    "GRUCell": "exported inside RNN(cell); a cell called on its own (one step) is not",
    "StackedRNNCells": "RNN over stacked cells has no single ONNX recurrent op; stack RNN layers to export",
    "data_format='channels_first'": "the exporters write channels_last graphs; build the model channels_last",
    "Layer": "a custom layer subclass has no exporter until pynn.onnx.register_exporter(MyLayer, fn) gives it one",
}

_EXPORTERS: dict = {}


def register_exporter(layer_cls, fn=None):
    """Register ``fn(ctx, layer, inputs, **call_kwargs)`` as the ONNX exporter of ``layer_cls``
    (exact class). Usable as a decorator: ``@register_exporter(MyLayer)``.

    Args:
        layer_cls: a Layer subclass.
        fn: the exporter; it adds nodes with ``ctx.op(...)`` and returns the output name(s).

    Returns:
        fn (or a decorator when fn is omitted).

    Example:
        >>> class DocIdentity(pynn.layers.Layer):
        ...     def call(self, x):
        ...         return x
        >>> @pynn.onnx.register_exporter(DocIdentity)
        ... def export_identity(ctx, layer, inputs, **call_kwargs):
        ...     return ctx.op("Identity", [inputs[0]])
        >>> export_identity.__name__
        'export_identity'
    """
    if fn is None:
        return lambda f: register_exporter(layer_cls, f)
    if not (isinstance(layer_cls, type) and issubclass(layer_cls, Layer)):
        raise TypeError(f"register_exporter: expected a Layer subclass, got {layer_cls!r}")
    _EXPORTERS[layer_cls] = fn
    return fn


def _onnx():
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError('ONNX export needs the onnx package: pip install "pynn-cpu[onnx]"') from e
    return onnx


class ExportContext:
    """What an exporter builds with: ``op`` adds a node, ``const`` an initializer,
    ``shape(name)`` is a value's static shape (None for unknown dims, batch first),
    ``export_layer`` exports a sub-layer (wrappers, blocks)."""

    def __init__(self, opset):
        self.onnx = _onnx()
        self.opset = opset
        self.nodes, self.initializers = [], []
        self.shapes: dict = {}
        # value name -> name of its (N, T) bool padding mask (Embedding(mask_zero=True) and the
        # layers pynn propagates that mask through), as pynn's Tensor._keras_mask.
        self.masks: dict = {}
        self._used: dict = {}

    def fresh(self, base):
        base = "".join(c if c.isalnum() or c in "_./" else "_" for c in str(base)) or "v"
        n = self._used.get(base, 0)
        self._used[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def const(self, value, base="const", dtype=None):
        arr = np.asarray(value, dtype=dtype)
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        name = self.fresh(base)
        if not arr.flags.c_contiguous:   # (np.ascontiguousarray would turn a 0-d scalar into shape (1,))
            arr = arr.copy(order="C")
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def ints(self, values, base="ints"):
        return self.const(np.asarray(values, np.int64), base)

    def op(self, op_type, inputs, base=None, outputs=1, **attrs):
        """Add one node; returns its output name (or a list when ``outputs`` > 1)."""
        names = [self.fresh(f"{base or op_type}_out{i}" if outputs > 1 else (base or op_type))
                 for i in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, name=self.fresh(f"node_{op_type}"),
                                                     **attrs))
        return names[0] if outputs == 1 else names

    def shape(self, name):
        return self.shapes[name]

    # helpers whose form changed across opsets
    def reduce(self, op_type, x, axes, keepdims=0):
        if self.opset >= 18 or op_type == "ReduceSum":   # axes became an input (ReduceSum at 13)
            return self.op(op_type, [x, self.ints(axes, "axes")], keepdims=keepdims)
        return self.op(op_type, [x], axes=list(axes), keepdims=keepdims)

    def squeeze(self, x, axes):
        return self.op("Squeeze", [x, self.ints(axes, "axes")])

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")])

    def transpose(self, x, perm):
        return self.op("Transpose", [x], perm=list(perm))

    def reverse_time(self, x, axis=1):
        """x reversed along ``axis`` (Slice with step -1)."""
        return self.op("Slice", [x, self.ints([-1]), self.ints([np.iinfo(np.int64).min]), self.ints([axis]),
                                 self.ints([-1])], base="reverse")

    def export_layer(self, layer, inputs, **kwargs):
        """Export one layer call; records the output shapes and padding masks. ``inputs`` is a list of names."""
        fn = _find_exporter(layer)
        if any(n in self.masks for n in inputs) and isinstance(layer, _MASK_REFUSED):
            raise ValueError(f"ONNX export: layer {layer.name!r} ({type(layer).__name__}) receives the padding "
                             "mask of an Embedding(mask_zero=True); masking is not exported for this layer (see "
                             "pynn.onnx.UNSUPPORTED)")
        in_shapes = [self.shapes[n] for n in inputs]
        out = fn(self, layer, list(inputs), **kwargs)
        arg = in_shapes[0] if len(in_shapes) == 1 and not _takes_list(layer) else in_shapes
        # A Sequential knows its output shape; Model.compute_output_shape would run a probe.
        shapes = layer._output_shape if isinstance(layer, Sequential) else layer.compute_output_shape(arg)
        outs = out if isinstance(out, list) else [out]
        from ..layers.input_layer import is_shape_list
        shapes = shapes if is_shape_list(shapes) else [shapes]
        if len(shapes) < len(outs):   # e.g. MultiHeadAttention(return_attention_scores=True)
            shapes = list(shapes) + [None] * (len(outs) - len(shapes))
        for name, s in zip(outs, shapes):
            if s is not None:
                self.shapes[name] = tuple(s)
        # pynn's Layer.__call__ passes the mask on through supports_masking layers (same leading shape).
        mask = self.masks.get(inputs[0]) if inputs else None
        if mask is not None and getattr(layer, "supports_masking", False) and outs[0] not in self.masks:
            if len(self.shapes.get(outs[0], ())) >= 2:
                self.masks[outs[0]] = mask
        return out


# Layers that use a padding mask in a way this exporter does not spell out.
_MASK_REFUSED = (Attention, AdditiveAttention, TransformerEncoder)


def _takes_list(layer):
    return isinstance(layer, (_Merge, MultiHeadAttention, Attention)) or \
        (isinstance(layer, Model) and layer._graph is not None and len(layer._graph.inputs) > 1)


def _find_exporter(layer):
    cls = type(layer)
    if getattr(layer, "data_format", None) == "channels_first":   # the exporters write channels_last graphs
        raise ValueError(f"ONNX export: layer {layer.name!r} ({cls.__name__}) has data_format='channels_first', "
                         "which the exporter does not write; build the model channels_last to export it")
    if cls in _EXPORTERS:
        return _EXPORTERS[cls]
    if isinstance(layer, Sequential) and cls.call is Sequential.call:
        return _export_sequential
    if isinstance(layer, Model) and layer._graph is not None and cls.call is Model.call:
        return _export_functional
    if isinstance(layer, Lambda):
        raise ValueError(f"ONNX export: layer {layer.name!r} is a Lambda; its Python function cannot be exported "
                         "(write a custom layer and register an exporter with pynn.onnx.register_exporter)")
    if isinstance(layer, Model):
        raise ValueError(f"ONNX export: model {layer.name!r} ({cls.__name__}) is a subclassed model with a Python "
                         "call(); only Sequential and functional models (pynn.Model(inputs, outputs)) export")
    reason = UNSUPPORTED.get(cls.__name__)
    raise ValueError(f"ONNX export: layer {layer.name!r} of class {cls.__name__} has no ONNX exporter"
                     + (f" ({reason})" if reason else "; register one with pynn.onnx.register_exporter("
                        f"{cls.__name__}, fn)"))


# ------------------------------------------------------------------ activations
def _activation_name(layer, fn):
    from .. import activations
    name = getattr(layer, "activation_name", None) or activations.serialize(fn)
    return name




def _activation_param(name, alpha):
    """The float parameter of a parameterised activation (leaky_relu's slope, elu's alpha):
    ``alpha`` when the layer carries one, else the default pynn's activation table uses."""
    from ..backend.numpy.activations import param_value
    return float(param_value(name, alpha))


_ONE_OP = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax", "log_softmax": "LogSoftmax",
           "softplus": "Softplus", "softsign": "Softsign", "exponential": "Exp",
           "hard_silu": "HardSwish"}   # hard_silu: x * relu6(x + 3) / 6, ONNX's HardSwish exactly


def apply_activation(ctx, name, x, owner="layer", alpha=None):
    """x -> activation(x) for a pynn activation name (every Keras 3 name pynn accepts);
    ``alpha`` is the parameter of leaky_relu/elu when it differs from the default."""
    # aliases (swish, hard_swish) and SELU's constants: one home, the activation table
    from ..backend.numpy.activations import _SELU_ALPHA, _SELU_SCALE, ALIASES
    name = ALIASES.get(name, name)

    def c(v):
        return ctx.const(np.float32(v))
    if name in (None, "linear"):
        return x
    if name in _ONE_OP:   # activations that are one attribute-free ONNX op (softmaxes: over the last axis)
        op = _ONE_OP[name]
        return ctx.op(op, [x], axis=-1) if op in ("Softmax", "LogSoftmax") else ctx.op(op, [x])
    if name == "elu":
        return ctx.op("Elu", [x], alpha=_activation_param(name, alpha))
    if name == "leaky_relu":
        return ctx.op("LeakyRelu", [x], alpha=_activation_param(name, alpha))
    if name == "selu":
        return ctx.op("Selu", [x], alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    if name == "relu6":
        return ctx.op("Clip", [x, c(0.0), c(6.0)])
    if name == "hard_sigmoid":   # Keras 3: relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1)
        return ctx.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
    if name == "silu":
        return ctx.op("Mul", [x, ctx.op("Sigmoid", [x])])
    if name == "mish":           # x * tanh(softplus(x)); ONNX's Mish op needs opset 18
        return ctx.op("Mul", [x, ctx.op("Tanh", [ctx.op("Softplus", [x])])])
    if name == "gelu":   # pynn's exact erf form: 0.5 x (1 + erf(x / sqrt 2))
        e = ctx.op("Erf", [ctx.op("Mul", [x, c(1 / np.sqrt(2))])])
        return ctx.op("Mul", [ctx.op("Mul", [x, c(0.5)]), ctx.op("Add", [e, c(1.0)])])
    if name in ("gelu_tanh", "gelu_approximate"):   # x * sigmoid(2 k (x + 0.044715 x^3)), k = sqrt(2/pi)
        cube = ctx.op("Mul", [ctx.op("Mul", [x, x]), x])
        u = ctx.op("Add", [x, ctx.op("Mul", [cube, c(0.044715)])])
        return ctx.op("Mul", [x, ctx.op("Sigmoid", [ctx.op("Mul", [u, c(2 * np.sqrt(2 / np.pi))])])])
    raise ValueError(f"ONNX export: {owner}: activation {name!r} has no ONNX form (a custom callable?)")


# ------------------------------------------------------------------ core layers
def _dense(ctx, kernel, bias, x, rank):
    k = ctx.const(kernel, "kernel")
    if rank == 2:
        inputs = [x, k] + ([ctx.const(bias, "bias")] if bias is not None else [])
        return ctx.op("Gemm", inputs)
    y = ctx.op("MatMul", [x, k])
    return ctx.op("Add", [y, ctx.const(bias, "bias")]) if bias is not None else y


def export_dense(ctx, layer, inputs):
    x = inputs[0]
    y = _dense(ctx, layer.kernel.data, None if layer.bias is None else layer.bias.data, x, len(ctx.shape(x)))
    return apply_activation(ctx, _activation_name(layer, layer.activation), y, f"Dense {layer.name!r}")


def export_activation(ctx, layer, inputs):
    return apply_activation(ctx, _activation_name(layer, layer.activation), inputs[0], f"Activation {layer.name!r}")


def export_identity(ctx, layer, inputs, **_):
    return ctx.op("Identity", [inputs[0]])


def export_flatten(ctx, layer, inputs):
    return ctx.op("Flatten", [inputs[0]], axis=1)


def export_reshape(ctx, layer, inputs):
    # 0 copies the batch dimension from the input (allowzero=0, the default).
    return ctx.op("Reshape", [inputs[0], ctx.ints((0,) + layer.target_shape, "shape")])


def export_rescaling(ctx, layer, inputs):
    y = ctx.op("Mul", [inputs[0], ctx.const(np.float32(layer.scale), "scale")])
    return ctx.op("Add", [y, ctx.const(np.float32(layer.offset), "offset")]) if layer.offset else y


def _merge(op_type):
    def export(ctx, layer, inputs):
        out = inputs[0]
        for other in inputs[1:]:
            out = ctx.op(op_type, [out, other])
        return out
    return export


def export_concatenate(ctx, layer, inputs):
    rank = len(ctx.shape(inputs[0]))
    return ctx.op("Concat", inputs, axis=layer.axis % rank)


def export_embedding(ctx, layer, inputs):
    ids = inputs[0]
    ids = ctx.op("Cast", [ids], to=ctx.onnx.TensorProto.INT64)
    out = ctx.op("Gather", [ctx.const(layer.embeddings.data, "embeddings"), ids], axis=0)
    if layer.mask_zero:
        ctx.masks[out] = ctx.op("Not", [ctx.op("Equal", [ids, ctx.ints(0, "zero")])], base="padding_mask")
    return out


def export_batch_norm(ctx, layer, inputs):
    # Inference BatchNormalization folded into y = x * scale + shift (any axis), statistics in float64.
    x = inputs[0]
    rank = len(ctx.shape(x))
    bshape = layer._broadcast(rank)
    inv = 1.0 / np.sqrt(layer.moving_variance.data.astype(np.float64) + layer.epsilon)
    gamma = layer.gamma.data.astype(np.float64) if layer.gamma is not None else 1.0
    beta = layer.beta.data.astype(np.float64) if layer.beta is not None else 0.0
    scale = (inv * gamma).reshape(bshape)
    shift = (beta - layer.moving_mean.data.astype(np.float64) * inv * gamma).reshape(bshape)
    y = ctx.op("Mul", [x, ctx.const(scale.astype(np.float32), "bn_scale")])
    return ctx.op("Add", [y, ctx.const(shift.astype(np.float32), "bn_shift")])


def _layer_norm_axes(layer, rank):
    from ..layers.normalization import _axes
    return sorted(_axes(layer.axis, rank))


def export_layer_norm(ctx, layer, inputs):
    x = inputs[0]
    rank = len(ctx.shape(x))
    ax = _layer_norm_axes(layer, rank)
    if ax != list(range(ax[0], rank)):
        raise ValueError(f"ONNX export: LayerNormalization {layer.name!r}: axis {layer.axis} is not a run of "
                         "trailing axes, which ONNX's LayerNormalization needs")
    pshape = tuple(layer.param_shape)
    gamma = layer.gamma.data if layer.gamma is not None else np.ones(pshape, np.float32)
    beta = layer.beta.data if layer.beta is not None else np.zeros(pshape, np.float32)
    return ctx.op("LayerNormalization", [x, ctx.const(gamma, "ln_gamma"), ctx.const(beta, "ln_beta")],
                  axis=int(ax[0]), epsilon=float(layer.epsilon))


# ------------------------------------------------------------------ convolution and pooling
def _conv_channels_last(ctx, layer, x, rank, **conv_attributes):
    """Conv1D/Conv2D's shared tail: ONNX Conv is channels-first, so transpose x (N, *spatial, C) and the
    Keras kernel (*k, Cin, Cout) -> (Cout, Cin, *k), convolve (with the bias), transpose back, activate."""
    spatial = tuple(range(1, rank + 1))
    w = ctx.const(layer.kernel.data.transpose((rank + 1, rank) + tuple(range(rank))), "kernel")
    conv_in = [ctx.transpose(x, (0, rank + 1) + spatial), w] + ([ctx.const(layer.bias.data, "bias")]
                                                              if layer.use_bias else [])
    y = ctx.transpose(ctx.op("Conv", conv_in, **conv_attributes), (0,) + tuple(range(2, rank + 2)) + (1,))
    return apply_activation(ctx, _activation_name(layer, layer.activation), y, f"Conv{rank}D {layer.name!r}")


def _onnx_pads(ctx, x, layer, kernel, strides, dilations):
    """ONNX ``pads`` [begins..., ends...] for a channels-last ``x`` with 1 or 2 spatial axes, computed by
    the same TensorFlow rules pynn pads with (shapes.window_geometry); the spatial sizes must be known."""
    from ..shapes import window_geometry
    owner = f"{type(layer).__name__} {layer.name!r}"
    shape = ctx.shape(x)
    if any(d is None for d in shape[1:-1]):
        raise ValueError(f"ONNX export: {owner}: needs known spatial sizes (steps, or height and width) to "
                         f"compute the padding exactly as pynn does; input shape {shape}")
    geometry = [window_geometry(owner, size, k, st, d, layer.padding, (1,) + tuple(shape[1:]))
                for size, k, st, d in zip(shape[1:-1], kernel, strides, dilations)]
    return [g[1] for g in geometry] + [g[2] for g in geometry]


def export_conv(ctx, layer, inputs):
    """Conv1D/Conv2D (kernel_size, strides, dilation_rate are tuples of the layer's rank, as Keras)."""
    x = inputs[0]
    pads = _onnx_pads(ctx, x, layer, layer.kernel_size, layer.strides, layer.dilation_rate)
    return _conv_channels_last(ctx, layer, x, len(layer.kernel_size), kernel_shape=list(layer.kernel_size),
                               strides=list(layer.strides), dilations=list(layer.dilation_rate), pads=pads)


def _pool_op(layer):
    return "MaxPool" if isinstance(layer, (MaxPooling2D, MaxPooling1D)) else "AveragePool"


def export_pool(ctx, layer, inputs):
    """Max/AveragePooling1D/2D: ONNX MaxPool/AveragePool on the channels-first transpose."""
    x = inputs[0]
    rank = len(layer.pool_size)
    pads = _onnx_pads(ctx, x, layer, layer.pool_size, layer.strides, (1,) * rank)
    attrs = dict(kernel_shape=list(layer.pool_size), strides=list(layer.strides), pads=pads)
    if _pool_op(layer) == "AveragePool":
        attrs["count_include_pad"] = 0   # "same" averages the real cells only, as Keras
    y = ctx.op(_pool_op(layer), [ctx.transpose(x, (0, rank + 1) + tuple(range(1, rank + 1)))], **attrs)
    return ctx.transpose(y, (0,) + tuple(range(2, rank + 2)) + (1,))


def export_global_pool2d(ctx, layer, inputs):
    op = "ReduceMean" if isinstance(layer, GlobalAveragePooling2D) else "ReduceMax"
    return ctx.reduce(op, inputs[0], [1, 2], keepdims=int(layer.keepdims))


def export_global_pool1d(ctx, layer, inputs):
    x = inputs[0]
    mask = ctx.masks.get(x)
    if mask is None:
        op = "ReduceMean" if isinstance(layer, GlobalAveragePooling1D) else "ReduceMax"
        return ctx.reduce(op, x, [1], keepdims=0)
    keep = ctx.unsqueeze(mask, [2])                                               # (N, T, 1)
    if isinstance(layer, GlobalAveragePooling1D):   # padded steps left out of the mean, as pynn/Keras
        w = ctx.op("Cast", [keep], to=ctx.onnx.TensorProto.FLOAT)
        total = ctx.reduce("ReduceSum", ctx.op("Mul", [x, w]), [1])
        count = ctx.op("Max", [ctx.reduce("ReduceSum", w, [1]), ctx.const(np.float32(1.0), "one")])
        return ctx.op("Div", [total, count])
    lowest = ctx.const(np.float32(np.finfo(np.float32).min), "lowest")
    return ctx.reduce("ReduceMax", ctx.op("Where", [keep, x, lowest]), [1], keepdims=0)


# ------------------------------------------------------------------ recurrent
_RNN_ACT = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}


def _rnn_act(layer, name):
    if name not in _RNN_ACT:
        raise ValueError(f"ONNX export: {type(layer).__name__} {layer.name!r}: activation {name!r} has no ONNX "
                         f"recurrent form; supported {sorted(_RNN_ACT)}")
    return _RNN_ACT[name]


def _reorder_lstm(w, u):
    """Keras gate blocks i, f, c, o -> ONNX i, o, f, c along the last axis."""
    i, f, c, o = (w[..., k * u:(k + 1) * u] for k in range(4))
    return np.concatenate([i, o, f, c], axis=-1)


def _bias_array(layer):
    """The recurrent layer's bias as an array: a Variable's data, or the zeros ``_bias()`` gives
    without use_bias (an ndarray already: its own ``.data`` is a memoryview, not the values)."""
    bias = layer._bias()
    return bias if isinstance(bias, np.ndarray) else np.asarray(bias.data)


def export_recurrent(ctx, layer, inputs, initial_state=None, mask=None, training=False):
    if getattr(layer, "stateful", False):
        raise ValueError(f"ONNX export: {type(layer).__name__} {layer.name!r} is stateful; carried states are "
                         "not part of an inference graph")
    if mask is not None:
        raise ValueError(f"ONNX export: {type(layer).__name__} {layer.name!r}: an explicit mask is not exportable")
    x = inputs[0]
    if x in ctx.masks:
        return _export_masked_recurrent(ctx, layer, x, ctx.masks[x], initial_state)
    u = layer.units
    kernel, rec = layer.kernel.data, layer.recurrent_kernel.data
    bias = _bias_array(layer)
    attrs = dict(hidden_size=u, direction="reverse" if layer.go_backwards else "forward", layout=0)
    if isinstance(layer, LSTM):
        op = "LSTM"
        w, r = _reorder_lstm(kernel, u).T, _reorder_lstm(rec, u).T
        b = np.concatenate([_reorder_lstm(bias, u), np.zeros(4 * u, np.float32)])
        act = _rnn_act(layer, layer.activation)
        attrs["activations"] = [_rnn_act(layer, layer.recurrent_activation), act, act]
    elif isinstance(layer, GRU):
        op = "GRU"
        w, r = kernel.T, rec.T
        b = np.concatenate([bias[0], bias[1]])
        attrs["activations"] = [_rnn_act(layer, layer.recurrent_activation), _rnn_act(layer, layer.activation)]
        attrs["linear_before_reset"] = 1   # Keras reset_after=True
    else:
        op = "RNN"
        w, r = kernel.T, rec.T
        b = np.concatenate([bias, np.zeros(u, np.float32)])
        attrs["activations"] = [_rnn_act(layer, layer.activation)]
    n_states = 2 if op == "LSTM" else 1
    args = [ctx.transpose(x, (1, 0, 2)), ctx.const(w[None], "W"), ctx.const(r[None], "R"), ctx.const(b[None], "B"),
            ""]
    if initial_state is not None:
        if len(initial_state) != n_states:
            raise ValueError(f"ONNX export: {type(layer).__name__} {layer.name!r}: expected {n_states} initial "
                             f"states, got {len(initial_state)}")
        args += [ctx.unsqueeze(s, [0]) for s in initial_state]
    outs = ctx.op(op, args, outputs=1 + n_states, **attrs)
    y_h = ctx.squeeze(outs[1], [0])
    states = [y_h] + ([ctx.squeeze(outs[2], [0])] if op == "LSTM" else [])
    if layer.return_sequences:
        seq = ctx.transpose(ctx.squeeze(outs[0], [1]), (1, 0, 2))     # (N, T, U), original time order
        out = ctx.reverse_time(seq) if layer.go_backwards else seq     # pynn/Keras: processing order
    else:
        out = y_h
    return [out] + states if layer.return_state else out


def _export_masked_recurrent(ctx, layer, x, mask, initial_state):
    """The recurrence unrolled over the (static) steps, as pynn computes it under a padding
    mask: at a masked step a sample keeps its previous state (and repeats its output).
    ONNX's LSTM/GRU/RNN ops only know right-padding through sequence_lens, so this path
    spells the cell out with MatMul and elementwise ops."""
    steps = ctx.shape(x)[1]
    if steps is None:
        raise ValueError(f"ONNX export: {type(layer).__name__} {layer.name!r}: a masked recurrent layer needs a "
                         "known number of steps")
    u = layer.units
    name = f"{type(layer).__name__} {layer.name!r}"
    if layer.go_backwards:
        x, mask = ctx.reverse_time(x), ctx.reverse_time(mask)
    bias = _bias_array(layer)
    is_gru, is_lstm = isinstance(layer, GRU), isinstance(layer, LSTM)
    xw = ctx.op("MatMul", [x, ctx.const(layer.kernel.data, "kernel")])
    xw = ctx.op("Add", [xw, ctx.const(bias[0] if is_gru else bias, "bias")])                # (N, T, G·U)
    r_kernel = ctx.const(layer.recurrent_kernel.data, "recurrent_kernel")
    rec_bias = ctx.const(bias[1], "recurrent_bias") if is_gru else None
    n_states = 2 if is_lstm else 1
    if initial_state is not None:
        states = list(initial_state)
    else:
        zeros_shape = ctx.op("Concat", [ctx.op("Shape", [x], end=1), ctx.ints([u])], axis=0)
        zero = ctx.op("ConstantOfShape", [zeros_shape],
                      value=ctx.onnx.numpy_helper.from_array(np.zeros(1, np.float32)))
        states = [zero] * n_states
    h = states[0]
    c = states[1] if is_lstm else None
    act = getattr(layer, "activation", "tanh")
    ract = getattr(layer, "recurrent_activation", "sigmoid")
    split = ctx.ints([u] * layer.gates, "split") if layer.gates > 1 else None
    outputs = []
    for t in range(steps):
        xt = ctx.op("Gather", [xw, ctx.ints(t, "step")], axis=1)                           # (N, G·U)
        keep = ctx.unsqueeze(ctx.op("Gather", [mask, ctx.ints(t, "step")], axis=1), [1])  # (N, 1)
        hr = ctx.op("MatMul", [h, r_kernel])
        if is_lstm:
            zi, zf, zc, zo = ctx.op("Split", [ctx.op("Add", [xt, hr]), split], axis=1, outputs=4)
            i, f, o = (apply_activation(ctx, ract, z, name) for z in (zi, zf, zo))
            g = apply_activation(ctx, act, zc, name)
            c_new = ctx.op("Add", [ctx.op("Mul", [f, c]), ctx.op("Mul", [i, g])])
            h_new = ctx.op("Mul", [o, apply_activation(ctx, act, c_new, name)])
            c = ctx.op("Where", [keep, c_new, c])
        elif is_gru:
            xz, xr, xh = ctx.op("Split", [xt, split], axis=1, outputs=3)
            rz, rr, rh = ctx.op("Split", [ctx.op("Add", [hr, rec_bias]), split], axis=1, outputs=3)
            z = apply_activation(ctx, ract, ctx.op("Add", [xz, rz]), name)
            r = apply_activation(ctx, ract, ctx.op("Add", [xr, rr]), name)
            hh = apply_activation(ctx, act, ctx.op("Add", [xh, ctx.op("Mul", [r, rh])]), name)
            one_minus_z = ctx.op("Sub", [ctx.const(np.float32(1.0), "one"), z])
            h_new = ctx.op("Add", [ctx.op("Mul", [z, h]), ctx.op("Mul", [one_minus_z, hh])])
        else:
            h_new = apply_activation(ctx, act, ctx.op("Add", [xt, hr]), name)
        h = ctx.op("Where", [keep, h_new, h])
        outputs.append(h)
    states = [h] + ([c] if is_lstm else [])
    if layer.return_sequences:
        out = ctx.op("Concat", [ctx.unsqueeze(v, [1]) for v in outputs], axis=1)          # processing order
        ctx.shapes[out] = (None, steps, u)
        ctx.masks[out] = mask          # already reversed for go_backwards, as pynn's mask[:, ::-1]
    else:
        out = h
    return [out] + states if layer.return_state else out


def export_rnn(ctx, layer, inputs, initial_state=None, mask=None, training=False):
    """RNN(cell) over a built-in cell is the SimpleRNN/LSTM/GRU layer of the same weights and
    options (same gate order, same masking rule: a masked step keeps the states and repeats
    the previous output); that layer's exporter writes it."""
    cell = layer.cell
    if layer.stateful:
        raise ValueError(f"ONNX export: RNN {layer.name!r} is stateful; carried states are not part of an "
                         "inference graph (see pynn.onnx.UNSUPPORTED)")
    common = dict(units=cell.units, activation=cell.activation, use_bias=cell.use_bias,
                  return_sequences=layer.return_sequences, return_state=layer.return_state,
                  go_backwards=layer.go_backwards, name=layer.name)
    if type(cell) is SimpleRNNCell:
        twin = SimpleRNN(**common)
    elif type(cell) is LSTMCell:
        twin = LSTM(recurrent_activation=cell.recurrent_activation, **common)
    elif type(cell) is GRUCell and cell.reset_after:
        twin = GRU(recurrent_activation=cell.recurrent_activation, **common)
    else:
        raise ValueError(f"ONNX export: RNN {layer.name!r}: its cell {type(cell).__name__}"
                         + (" (reset_after=False)" if isinstance(cell, GRUCell) else "")
                         + " has no ONNX recurrent form (see pynn.onnx.UNSUPPORTED)")
    twin.build(ctx.shape(inputs[0]))
    twin.set_weights(cell.get_weights())
    return export_recurrent(ctx, twin, inputs, initial_state=initial_state, mask=mask)


def export_bidirectional(ctx, layer, inputs, initial_state=None, training=False):
    fl, bl = layer.forward_layer, layer.backward_layer
    n = fl.n_states
    fi = bi = None
    if initial_state is not None:
        fi, bi = list(initial_state[:n]), list(initial_state[n:])
    x = inputs[0]
    fwd = export_recurrent(ctx, fl, [x], initial_state=fi)
    bwd = export_recurrent(ctx, bl, [x], initial_state=bi)
    states = []
    if fl.return_state:
        states = list(fwd[1:]) + list(bwd[1:])
        fwd, bwd = fwd[0], bwd[0]
    if bl.return_sequences:
        bwd = ctx.reverse_time(bwd)    # back to forward time order
    mode = layer.merge_mode
    seq_mask = ctx.masks.get(fwd)
    if mode == "concat":
        out = ctx.op("Concat", [fwd, bwd], axis=-1)
    elif mode == "sum":
        out = ctx.op("Add", [fwd, bwd])
    elif mode == "mul":
        out = ctx.op("Mul", [fwd, bwd])
    elif mode == "ave":
        out = ctx.op("Mul", [ctx.op("Add", [fwd, bwd]), ctx.const(np.float32(0.5))])
    else:
        return [fwd, bwd] + states
    if seq_mask is not None:
        ctx.masks[out] = seq_mask
    return [out] + states if states else out


def export_time_distributed(ctx, layer, inputs, training=False):
    x = inputs[0]
    shape = ctx.shape(x)
    flat = ctx.op("Reshape", [x, ctx.ints((-1,) + tuple(shape[2:]), "shape")])
    ctx.shapes[flat] = (None,) + tuple(shape[2:])
    y = ctx.export_layer(layer.layer, [flat])
    lead = ctx.op("Shape", [x], end=2)
    rest = ctx.op("Shape", [y], start=1)
    return ctx.op("Reshape", [y, ctx.op("Concat", [lead, rest], axis=0)])


# ------------------------------------------------------------------ attention and transformer
def _static_causal(t, s):
    return np.tril(np.ones((t, s), bool), k=s - t)


def export_multi_head_attention(ctx, layer, inputs, attention_mask=None, use_causal_mask=False,
                                return_attention_scores=False, training=False):
    query, value = inputs[0], inputs[1]
    key = inputs[2] if len(inputs) > 2 else value
    h, kd, vd = layer.num_heads, layer.key_dim, layer.value_dim
    t, s = ctx.shape(query)[1], ctx.shape(value)[1]

    def project(x, kernel, bias, dim):
        k = kernel.data.reshape(kernel.shape[0], h * dim)
        y = ctx.op("MatMul", [x, ctx.const(k, "mha_kernel")])
        if bias is not None:
            y = ctx.op("Add", [y, ctx.const(bias.data.reshape(h * dim), "mha_bias")])
        y = ctx.op("Reshape", [y, ctx.ints([0, 0, h, dim], "shape")])
        return ctx.transpose(y, (0, 2, 1, 3))                                      # (B, H, T, dim)
    q = project(query, layer.query_kernel, layer.query_bias, kd)
    k = project(key, layer.key_kernel, layer.key_bias, kd)
    v = project(value, layer.value_kernel, layer.value_bias, vd)
    q = ctx.op("Mul", [q, ctx.const(np.float32(1.0 / np.sqrt(kd)), "mha_scale")])
    scores = ctx.op("MatMul", [q, ctx.transpose(k, (0, 1, 3, 2))])                  # (B, H, T, S)
    mask = None
    if value in ctx.masks:   # padding mask of the values: (B, S) -> (B, 1, 1, S)
        mask = ctx.unsqueeze(ctx.masks[value], [1, 2])
    if attention_mask is not None:
        am = attention_mask
        am = ctx.unsqueeze(ctx.op("Cast", [am], to=ctx.onnx.TensorProto.BOOL), [1])
        mask = am if mask is None else ctx.op("And", [mask, am])
    if use_causal_mask:
        if t is None or s is None:
            raise ValueError(f"ONNX export: MultiHeadAttention {layer.name!r}: a causal mask needs known "
                             "sequence lengths")
        tri = ctx.const(_static_causal(t, s), "causal_mask")
        mask = tri if mask is None else ctx.op("And", [mask, tri])
    if mask is not None:
        scores = ctx.op("Where", [mask, scores, ctx.const(np.float32(-1e9), "neg")])
    weights = ctx.op("Softmax", [scores], axis=-1)
    out = ctx.op("MatMul", [weights, v])                                            # (B, H, T, vd)
    out = ctx.op("Reshape", [ctx.transpose(out, (0, 2, 1, 3)), ctx.ints([0, 0, h * vd], "shape")])
    w_o = layer.output_kernel.data.reshape(h * vd, -1)
    out = ctx.op("MatMul", [out, ctx.const(w_o, "mha_out_kernel")])
    if layer.output_bias is not None:
        out = ctx.op("Add", [out, ctx.const(layer.output_bias.data, "mha_out_bias")])
    return [out, weights] if return_attention_scores else out


def export_attention(ctx, layer, inputs, mask=None, use_causal_mask=False, return_attention_scores=False,
                     training=False):
    """Attention (dot or concat scores) and AdditiveAttention: scores, mask, softmax, weighted values."""
    if mask is not None:
        raise ValueError(f"ONNX export: {type(layer).__name__} {layer.name!r}: an explicit mask is not exportable")
    q, v = inputs[0], inputs[1]
    k = inputs[2] if len(inputs) > 2 else v
    t, s = ctx.shape(q)[1], ctx.shape(v)[1]
    additive = isinstance(layer, AdditiveAttention)
    if not additive and layer.score_mode == "dot":
        scores = ctx.op("MatMul", [q, ctx.transpose(k, (0, 2, 1))])
        if layer.scale is not None:
            scores = ctx.op("Mul", [scores, ctx.const(layer.scale.data, "attn_scale")])
    else:
        inner = ctx.op("Add", [ctx.unsqueeze(q, [2]), ctx.unsqueeze(k, [1])])        # (B, T, S, D)
        if additive:
            th = ctx.op("Tanh", [inner])
            if layer.scale is not None:
                th = ctx.op("Mul", [th, ctx.const(layer.scale.data, "attn_scale")])
            scores = ctx.reduce("ReduceSum", th, [-1])
        else:
            if layer.scale is not None:
                inner = ctx.op("Mul", [inner, ctx.const(layer.scale.data, "attn_scale")])
            scores = ctx.reduce("ReduceSum", ctx.op("Tanh", [inner]), [-1])
            scores = ctx.op("Mul", [scores, ctx.const(layer.concat_score_weight.data, "concat_score_weight")])
    if use_causal_mask:
        if t is None or s is None:
            raise ValueError(f"ONNX export: {type(layer).__name__} {layer.name!r}: a causal mask needs known "
                             "sequence lengths")
        scores = ctx.op("Where", [ctx.const(_static_causal(t, s), "causal_mask"), scores,
                                  ctx.const(np.float32(-1e9), "neg")])
    weights = ctx.op("Softmax", [scores], axis=-1)
    out = ctx.op("MatMul", [weights, v])
    return [out, weights] if return_attention_scores else out


def export_transformer_encoder(ctx, layer, inputs, attention_mask=None, use_causal_mask=False, training=False):
    x = inputs[0]

    def mha(h):
        extra = [attention_mask] if attention_mask is not None else []
        del extra  # the mask is passed by keyword below
        return ctx.export_layer(layer.attention, [h, h], attention_mask=attention_mask,
                                use_causal_mask=use_causal_mask)

    def ff(h):
        return ctx.export_layer(layer.ff2, [ctx.export_layer(layer.ff1, [h])])
    if layer.normalize_first:
        n1 = ctx.export_layer(layer.norm1, [x])
        x = ctx.op("Add", [x, mha(n1)])
        ctx.shapes[x] = ctx.shape(inputs[0])
        return ctx.op("Add", [x, ff(ctx.export_layer(layer.norm2, [x]))])
    a = ctx.op("Add", [x, mha(x)])
    ctx.shapes[a] = ctx.shape(x)
    x1 = ctx.export_layer(layer.norm1, [a])
    b = ctx.op("Add", [x1, ff(x1)])
    ctx.shapes[b] = ctx.shape(x)
    return ctx.export_layer(layer.norm2, [b])


def _broadcast_batch(ctx, x, table):
    """(T, d) table -> (B, T, d), B taken from x at run time."""
    t, d = table.shape
    batch = ctx.op("Shape", [x], end=1)
    target = ctx.op("Concat", [batch, ctx.ints([t, d])], axis=0)
    return ctx.op("Expand", [ctx.const(table[None], "positions"), target])


def export_position_embedding(ctx, layer, inputs):
    x = inputs[0]
    t = ctx.shape(x)[1]
    if t is None:
        raise ValueError(f"ONNX export: PositionEmbedding {layer.name!r}: needs a known sequence length")
    return _broadcast_batch(ctx, x, layer.position_embeddings.data[:t])


def export_sine_position_encoding(ctx, layer, inputs):
    x = inputs[0]
    t, d = ctx.shape(x)[1], ctx.shape(x)[-1]
    if t is None:
        raise ValueError(f"ONNX export: SinePositionEncoding {layer.name!r}: needs a known sequence length")
    pos = np.arange(t)[:, None]
    rates = 1.0 / np.power(layer.max_wavelength, (2 * (np.arange(d) // 2)) / d)
    angles = pos * rates[None, :]
    pe = np.where(np.arange(d) % 2 == 0, np.sin(angles), np.cos(angles)).astype(np.float32)
    return _broadcast_batch(ctx, x, pe)


# ------------------------------------------------------------------ activation, merge, shape and conv layers
def export_relu(ctx, layer, inputs):
    """ReLU(max_value, negative_slope, threshold) node for node as ReLU.call computes it."""
    x = inputs[0]
    ns, t, mv = layer.negative_slope, layer.threshold, layer.max_value
    if mv is None and t == 0.0:
        return ctx.op("LeakyRelu", [x], alpha=ns) if ns else ctx.op("Relu", [x])
    tc = ctx.const(np.float32(t), "threshold")
    if t != 0.0:   # x where x > threshold, else 0
        y = ctx.op("Where", [ctx.op("Greater", [x, tc]), x, ctx.const(np.float32(0.0), "zero")])
    else:
        y = ctx.op("Relu", [x])
    if mv is not None:
        y = ctx.op("Clip", [y, ctx.const(np.float32(0.0), "zero"), ctx.const(np.float32(mv), "max_value")])
    if ns:
        negative = ctx.op("Relu", [ctx.op("Sub", [tc, x])])
        y = ctx.op("Sub", [y, ctx.op("Mul", [negative, ctx.const(np.float32(ns), "negative_slope")])])
    return y


def export_leaky_relu(ctx, layer, inputs):
    return ctx.op("LeakyRelu", [inputs[0]], alpha=layer.negative_slope)


def export_elu(ctx, layer, inputs):
    return ctx.op("Elu", [inputs[0]], alpha=layer.alpha)


def export_softmax(ctx, layer, inputs, mask=None):
    x = inputs[0]
    rank = len(ctx.shape(x))
    if mask is not None:   # masked-out positions get -1e9 added, as Softmax.call
        keep = ctx.op("Cast", [mask], to=ctx.onnx.TensorProto.BOOL)
        x = ctx.op("Add", [x, ctx.op("Where", [keep, ctx.const(np.float32(0.0), "zero"),
                                                ctx.const(np.float32(-1e9), "neg")])])
    if isinstance(layer.axis, (list, tuple)):
        axes = sorted(a % rank for a in layer.axis)
        e = ctx.op("Exp", [ctx.op("Sub", [x, ctx.reduce("ReduceMax", x, axes, keepdims=1)])])
        return ctx.op("Div", [e, ctx.reduce("ReduceSum", e, axes, keepdims=1)])
    return ctx.op("Softmax", [x], axis=int(layer.axis) % rank)


def export_prelu(ctx, layer, inputs):
    # relu(x) - alpha relu(-x) is ONNX's PRelu; alpha (input_shape[1:], 1 on shared axes) broadcasts from the right.
    return ctx.op("PRelu", [inputs[0], ctx.const(layer.alpha.data, "prelu_alpha")])


def export_subtract(ctx, layer, inputs):
    return ctx.op("Sub", [inputs[0], inputs[1]])


def export_average(ctx, layer, inputs):
    total = _merge("Add")(ctx, layer, inputs)
    return ctx.op("Mul", [total, ctx.const(np.float32(1.0 / len(inputs)), "inv_count")])


def export_permute(ctx, layer, inputs):
    return ctx.transpose(inputs[0], (0,) + tuple(layer.dims))


def export_repeat_vector(ctx, layer, inputs):
    return ctx.op("Expand", [ctx.unsqueeze(inputs[0], [1]), ctx.ints([1, layer.n, 1], "repeat_shape")])


def export_zero_padding(ctx, layer, inputs):
    x = inputs[0]
    rank = len(ctx.shape(x))
    spatial = [layer.padding] if isinstance(layer, ZeroPadding1D) else list(layer.padding)
    begin, end = [0] * rank, [0] * rank
    for i, (a, b) in enumerate(spatial):
        begin[1 + i], end[1 + i] = a, b
    return ctx.op("Pad", [x, ctx.ints(begin + end, "pads")], mode="constant")


def export_cropping(ctx, layer, inputs):
    spatial = [layer.cropping] if isinstance(layer, Cropping1D) else list(layer.cropping)
    big = np.iinfo(np.int64).max
    starts = [a for a, _ in spatial]
    ends = [-b if b else big for _, b in spatial]
    axes = list(range(1, 1 + len(spatial)))
    return ctx.op("Slice", [inputs[0], ctx.ints(starts, "starts"), ctx.ints(ends, "ends"), ctx.ints(axes, "axes")])


def export_unit_normalization(ctx, layer, inputs):
    x = inputs[0]
    rank = len(ctx.shape(x))
    axes = layer.axis if isinstance(layer.axis, tuple) else (layer.axis,)
    sq = ctx.reduce("ReduceSum", ctx.op("Mul", [x, x]), sorted(a % rank for a in axes), keepdims=1)
    return ctx.op("Div", [x, ctx.op("Sqrt", [ctx.op("Max", [sq, ctx.const(np.float32(1e-12), "eps")])])])


def export_normalization(ctx, layer, inputs):
    """(x - mean) * (1 / scale), or x * scale + mean with invert; the same float32 constants as call()."""
    mean, scale = layer._mean_scale(np.float32)
    x = inputs[0]
    if layer.invert:
        return ctx.op("Add", [ctx.op("Mul", [x, ctx.const(scale, "norm_scale")]), ctx.const(mean, "norm_mean")])
    return ctx.op("Mul", [ctx.op("Sub", [x, ctx.const(mean, "norm_mean")]),
                          ctx.const((1.0 / scale).astype(np.float32), "norm_inv_scale")])


def export_dot(ctx, layer, inputs):
    """Dot(axes, normalize) as Dot.call: L2-normalised along the axes if asked, then a sum of
    products (rank 2) or one batched MatMul with the contracted axes brought last/middle (rank 3)."""
    a, b = inputs
    ax, bx = layer._resolved([ctx.shape(a), ctx.shape(b)])

    def l2(v, axis):
        sq = ctx.reduce("ReduceSum", ctx.op("Mul", [v, v]), [axis], keepdims=1)
        return ctx.op("Div", [v, ctx.op("Sqrt", [ctx.op("Max", [sq, ctx.const(np.float32(1e-12), "eps")])])])
    if layer.normalize:
        a, b = l2(a, ax), l2(b, bx)
    if len(ctx.shape(inputs[0])) == 2:
        return ctx.reduce("ReduceSum", ctx.op("Mul", [a, b]), [1], keepdims=1)
    if ax == 1:
        a = ctx.transpose(a, (0, 2, 1))
    if bx == 2:
        b = ctx.transpose(b, (0, 2, 1))
    return ctx.op("MatMul", [a, b])


def export_group_norm(ctx, layer, inputs):
    """GroupNormalization (channels last): (..., C) -> (..., G, C/G), moments over every axis but
    batch and group, as GroupNormalization.call, then the per-channel gamma/beta."""
    x = inputs[0]
    rank = len(ctx.shape(x))
    c, g = ctx.shape(x)[-1], layer.groups
    grouped = ctx.op("Reshape", [x, ctx.ints([0] * (rank - 1) + [g, c // g], "shape")])   # 0: copy that dim
    axes = list(range(1, rank - 1)) + [rank]
    centred = ctx.op("Sub", [grouped, ctx.reduce("ReduceMean", grouped, axes, keepdims=1)])
    var = ctx.reduce("ReduceMean", ctx.op("Mul", [centred, centred]), axes, keepdims=1)
    y = ctx.op("Div", [centred, ctx.op("Sqrt", [ctx.op("Add", [var, ctx.const(np.float32(layer.epsilon), "eps")])])])
    y = ctx.op("Reshape", [y, ctx.ints([0] * (rank - 1) + [c], "shape")])
    if layer.gamma is not None:
        y = ctx.op("Mul", [y, ctx.const(layer.gamma.data, "gn_gamma")])
    if layer.beta is not None:
        y = ctx.op("Add", [y, ctx.const(layer.beta.data, "gn_beta")])
    return y


def export_category_encoding(ctx, layer, inputs):
    """ids (N,) or (N, k) -> (N, num_tokens): OneHot, summed over the k ids ("count"), capped at 1
    otherwise. pynn's range check on the ids is not in the graph (ONNX's OneHot gives an
    out-of-range id an all-zero row)."""
    ids = ctx.op("Cast", [inputs[0]], to=ctx.onnx.TensorProto.INT64)
    if len(ctx.shape(inputs[0])) == 1:
        ids = ctx.unsqueeze(ids, [1])
    hot = ctx.op("OneHot", [ids, ctx.ints([layer.num_tokens], "depth"),
                            ctx.const(np.asarray([0.0, 1.0], np.float32), "one_hot_values")], axis=-1)
    counts = ctx.reduce("ReduceSum", hot, [1], keepdims=0)
    if layer.output_mode == "count":
        return counts
    return ctx.op("Min", [counts, ctx.const(np.float32(1.0), "one")])


def export_masking(ctx, layer, inputs):
    """Steps whose features all equal mask_value are zeroed; their (N, T) mask goes to the
    layers that read it, as an Embedding(mask_zero=True) padding mask does."""
    x = inputs[0]
    rank = len(ctx.shape(x))
    differs = ctx.op("Cast", [ctx.op("Not", [ctx.op("Equal", [x, ctx.const(np.float32(layer.mask_value),
                                                                             "mask_value")])])],
                     to=ctx.onnx.TensorProto.FLOAT)
    keep = ctx.reduce("ReduceMax", differs, list(range(2, rank)), keepdims=0)          # (N, T), 1 = any differs
    out = ctx.op("Mul", [x, ctx.unsqueeze(keep, list(range(2, rank)))])
    ctx.masks[out] = ctx.op("Cast", [keep], to=ctx.onnx.TensorProto.BOOL, base="padding_mask")
    return out


def _nhwc_pads(ctx, layer, what):
    from ..shapes import conv_geometry
    shape = ctx.shape(what)
    if shape[1] is None or shape[2] is None:
        raise ValueError(f"ONNX export: {type(layer).__name__} {layer.name!r}: needs known height and width to "
                         f"compute the padding exactly as pynn does; input shape {shape}")
    _, (pt, pb), (pl, pr) = conv_geometry(f"{type(layer).__name__} {layer.name!r}", (1,) + tuple(shape[1:]),
                                          *layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate)
    return [pt, pl, pb, pr]


def _depthwise_conv(ctx, layer, x_nchw, pads, bias):
    """ONNX Conv with group=C: output channel c*m + j reads input channel c only, as pynn's block diagonal."""
    kh, kw, c, m = layer.depthwise_kernel.shape
    w = layer.depthwise_kernel.data.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]   # (C*m, 1, kh, kw)
    conv_in = [x_nchw, ctx.const(w, "depthwise_kernel")] + ([ctx.const(bias, "bias")] if bias is not None else [])
    return ctx.op("Conv", conv_in, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
                  dilations=list(layer.dilation_rate), pads=pads, group=int(c))


def export_depthwise_conv2d(ctx, layer, inputs):
    x = inputs[0]
    pads = _nhwc_pads(ctx, layer, x)
    bias = layer.bias.data if layer.bias is not None else None
    y = ctx.transpose(_depthwise_conv(ctx, layer, ctx.transpose(x, (0, 3, 1, 2)), pads, bias), (0, 2, 3, 1))
    return apply_activation(ctx, _activation_name(layer, layer.activation), y,
                            f"{type(layer).__name__} {layer.name!r}")


def export_separable_conv2d(ctx, layer, inputs):
    x = inputs[0]
    pads = _nhwc_pads(ctx, layer, x)
    y = _depthwise_conv(ctx, layer, ctx.transpose(x, (0, 3, 1, 2)), pads, None)
    pw = ctx.const(layer.pointwise_kernel.data.transpose(3, 2, 0, 1), "pointwise_kernel")
    y = ctx.op("Conv", [y, pw] + ([ctx.const(layer.bias.data, "bias")] if layer.bias is not None else []),
               kernel_shape=[1, 1])
    y = ctx.transpose(y, (0, 2, 3, 1))
    return apply_activation(ctx, _activation_name(layer, layer.activation), y, f"SeparableConv2D {layer.name!r}")


def export_conv2d_transpose(ctx, layer, inputs):
    """ONNX ConvTranspose: its full output is pynn's ((H-1)s + k); "same" keeps H*s of it, dropping
    (k-s)//2 at the start (pads), or, when k < s, appends s-k bias-only rows (output_padding)."""
    x = inputs[0]
    begin, end, extra = [0, 0], [0, 0], [0, 0]
    if layer.padding == "same":
        for i, (k, s) in enumerate(zip(layer.kernel_size, layer.strides)):
            if k >= s:
                begin[i] = (k - s) // 2
                end[i] = k - s - begin[i]
            else:
                extra[i] = s - k
    w = ctx.const(layer.kernel.data.transpose(3, 2, 0, 1), "kernel")      # (C_in, filters, kh, kw)
    conv_in = [ctx.transpose(x, (0, 3, 1, 2)), w] + ([ctx.const(layer.bias.data, "bias")] if layer.use_bias else [])
    y = ctx.op("ConvTranspose", conv_in, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
               pads=begin + end, output_padding=extra if any(extra) else None)
    y = ctx.transpose(y, (0, 2, 3, 1))
    return apply_activation(ctx, _activation_name(layer, layer.activation), y, f"Conv2DTranspose {layer.name!r}")


def export_upsampling(ctx, layer, inputs):
    """Nearest-neighbour Resize by integer scales along the spatial axes (each value repeated)."""
    size = [layer.size] if isinstance(layer, UpSampling1D) else list(layer.size)
    scales = np.asarray([1.0] + [float(v) for v in size] + [1.0], np.float32)
    return ctx.op("Resize", [inputs[0], "", ctx.const(scales, "scales")], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


# ------------------------------------------------------------------ models
def _export_sequential(ctx, model, inputs, training=False):
    x = inputs[0]
    for layer in model.layers:
        x = ctx.export_layer(layer, [x])
    return x


def _export_functional(ctx, model, inputs, training=False):
    from ..layers.input_layer import substitute
    graph = model._graph
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"ONNX export: model {model.name!r} expects {len(graph.inputs)} inputs, got {len(inputs)}")
    env = {id(k): v for k, v in zip(graph.inputs, inputs)}
    results = {}
    for t in graph.order:
        node = t.node
        if id(node) not in results:
            args = substitute(node.parents, env)
            args = list(args) if isinstance(args, (list, tuple)) else [args]
            kwargs = substitute(node.kwargs, env)
            kwargs.pop("training", None)
            results[id(node)] = ctx.export_layer(node.layer, args, **kwargs)
        out = results[id(node)]
        env[id(t)] = out if t.index is None else out[t.index]
        if t.shape is not None and env[id(t)] not in ctx.shapes:
            ctx.shapes[env[id(t)]] = tuple(t.shape)
    outs = [env[id(t)] for t in graph.outputs]
    return outs[0] if graph.single_output else outs


for _cls, _fn in [
    (Dense, export_dense), (Activation, export_activation), (Dropout, export_identity), (Flatten, export_flatten),
    (Reshape, export_reshape), (Rescaling, export_rescaling), (Add, _merge("Add")), (Multiply, _merge("Mul")),
    (Concatenate, export_concatenate), (Embedding, export_embedding), (BatchNormalization, export_batch_norm),
    (LayerNormalization, export_layer_norm), (Conv2D, export_conv), (Conv1D, export_conv),
    (MaxPooling2D, export_pool), (AveragePooling2D, export_pool), (MaxPooling1D, export_pool),
    (AveragePooling1D, export_pool), (GlobalAveragePooling2D, export_global_pool2d),
    (GlobalMaxPooling2D, export_global_pool2d), (GlobalAveragePooling1D, export_global_pool1d),
    (GlobalMaxPooling1D, export_global_pool1d), (SimpleRNN, export_recurrent), (LSTM, export_recurrent),
    (GRU, export_recurrent), (Bidirectional, export_bidirectional), (TimeDistributed, export_time_distributed),
    (MultiHeadAttention, export_multi_head_attention), (Attention, export_attention),
    (AdditiveAttention, export_attention), (TransformerEncoder, export_transformer_encoder),
    (PositionEmbedding, export_position_embedding), (SinePositionEncoding, export_sine_position_encoding),
    (Sequential, _export_sequential), (Model, _export_functional),
    (ReLU, export_relu), (LeakyReLU, export_leaky_relu), (ELU, export_elu), (Softmax, export_softmax),
    (PReLU, export_prelu), (Identity, export_identity), (GaussianNoise, export_identity),
    (SpatialDropout1D, export_identity), (Subtract, export_subtract), (Average, export_average),
    (Maximum, _merge("Max")), (Minimum, _merge("Min")), (Permute, export_permute),
    (RepeatVector, export_repeat_vector), (ZeroPadding1D, export_zero_padding), (ZeroPadding2D, export_zero_padding),
    (Cropping1D, export_cropping), (Cropping2D, export_cropping), (UnitNormalization, export_unit_normalization),
    (Normalization, export_normalization), (DepthwiseConv2D, export_depthwise_conv2d),
    (SeparableConv2D, export_separable_conv2d), (Conv2DTranspose, export_conv2d_transpose),
    (UpSampling1D, export_upsampling), (UpSampling2D, export_upsampling), (Dot, export_dot),
    (GroupNormalization, export_group_norm), (CategoryEncoding, export_category_encoding),
    (Masking, export_masking), (RNN, export_rnn),
]:
    register_exporter(_cls, _fn)


# ------------------------------------------------------------------ entry points
def _model_inputs(model):
    """[(name, shape, dtype)] of the model's graph inputs."""
    if isinstance(model, Sequential):
        shape = model._build_input_shape
        if shape is None:
            raise ValueError(f"ONNX export: Sequential {model.name!r} is not built; start it with an Input or "
                             "call it on data first")
        dtype = model._input.dtype if model._input is not None else np.dtype(np.float32)
        name = model._input.name if model._input is not None else "input"
        return [(name, tuple(shape), dtype)]
    if model._graph is None:
        _find_exporter(model)   # raises the subclassed-model error
    return [(t.name or f"input_{i}", tuple(t.shape), t.dtype) for i, t in enumerate(model._graph.inputs)]


def to_onnx(model, opset=DEFAULT_OPSET, batch_dim="batch"):
    """The ``onnx.ModelProto`` of ``model`` (inference mode). Raises ValueError naming
    the first layer that cannot be exported.

    Needs the ``onnx`` package (``pip install "pynn-cpu[onnx]"``).

    Args:
        model: a Sequential or functional Model (or a subclassed one with an exporter).
        opset: the ONNX opset version.
        batch_dim: the name of the dynamic batch dimension.

    Returns:
        An ``onnx.ModelProto``.

    Example:
        >>> model = pynn.Sequential([pynn.Input((3,)), pynn.layers.Dense(2)])
        >>> model.output_shape
        (None, 2)
        >>> proto = pynn.onnx.to_onnx(model)  # doctest: +SKIP
        >>> proto.graph.input[0].name  # doctest: +SKIP
        'input_layer'
    """
    onnx = _onnx()
    if not isinstance(model, Model):
        raise TypeError(f"ONNX export: expected a pynn Model, got {type(model).__name__}")
    max_opset = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= max_opset:
        raise ValueError(f"ONNX export: opset must be an integer in [{MIN_OPSET}, {max_opset}] (LayerNormalization "
                         f"needs {MIN_OPSET}), got {opset!r}")
    ctx = ExportContext(opset)
    graph_inputs, names = [], []
    for i, (name, shape, dtype) in enumerate(_model_inputs(model)):
        name = ctx.fresh(name if name and name != "input" else f"input_{i}")
        names.append(name)
        ctx.shapes[name] = shape
        dims = [batch_dim if j == 0 and d is None else (f"{name}_dim{j}" if d is None else int(d))
                for j, d in enumerate(shape)]
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        graph_inputs.append(onnx.helper.make_tensor_value_info(name, elem, dims))
    outs = _find_exporter(model)(ctx, model, names)
    outs = outs if isinstance(outs, list) else [outs]
    graph_outputs = []
    for i, name in enumerate(outs):
        final = ctx.op("Identity", [name], base=f"output_{i}" if len(outs) > 1 else "output")
        shape = ctx.shapes.get(name)
        dims = None if shape is None else [batch_dim if j == 0 else (f"output_{i}_dim{j}" if d is None else int(d))
                                           for j, d in enumerate(shape)]
        graph_outputs.append(onnx.helper.make_tensor_value_info(final, onnx.TensorProto.FLOAT, dims))
    graph = onnx.helper.make_graph(ctx.nodes, model.name, graph_inputs, graph_outputs, ctx.initializers)
    opset_imports = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opset_imports, producer_name="pynn")
    # make_model stamps the newest IR version; the minimum for the opset lets older runtimes load the file.
    proto.ir_version = onnx.helper.find_min_ir_version_for(opset_imports)
    return proto


def export(model, path, opset=DEFAULT_OPSET, check=True):
    """Write ``model`` as an ONNX file at ``path`` (inference graph, dynamic batch
    dimension named "batch"). ``check`` runs ``onnx.checker.check_model(full_check=True)``
    before writing. Returns the path.

    Needs the ``onnx`` package (``pip install "pynn-cpu[onnx]"``).

    Args:
        model: the model, as for ``to_onnx``.
        path: the .onnx file to write.
        opset: the ONNX opset version.
        check: run the ONNX checker first.

    Returns:
        path (a str).

    Example:
        >>> model = pynn.Sequential([pynn.Input((3,)), pynn.layers.Dense(2)])
        >>> model.output_shape
        (None, 2)
        >>> pynn.onnx.export(model, "model.onnx")  # doctest: +SKIP
        'model.onnx'
    """
    proto = to_onnx(model, opset=opset)
    onnx = _onnx()
    if check:
        onnx.checker.check_model(proto, full_check=True)
    from ..saving import atomic_write
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return os.fspath(path)
