"""Keras 3 ``.keras`` archives, both ways: ``pynn.load_model("m.keras")`` and
``model.save("m.keras")`` (the extension selects this format).

A ``.keras`` file is a zip holding ``metadata.json``, ``config.json`` (the
``serialize_keras_object`` tree: ``module``, ``class_name``, ``config``,
``registered_name``, ``build_config``) and ``model.weights.h5``. Keras stores each
layer's variables under ``layers/<snake_case(class name)>[_<n>]/vars/<i>`` (a
counter per class, in ``model.layers`` order; never the layer's own name),
recurrent layers under ``.../cell/vars``, Bidirectional under
``forward_layer/cell`` and ``backward_layer/cell``, MultiHeadAttention under
``query_dense``/``key_dense``/``value_dense``/``output_dense``, TimeDistributed
under ``layer``. pynn keeps Keras' weight order and shapes, so the arrays move
unchanged.

Reading never executes code from the file: only the layer classes listed in
:data:`KERAS_LAYERS` are built, from plain JSON values; an archive naming any
other class (a Lambda, a custom layer) is refused with the list of those names.
Needs ``h5py`` (``pip install "pynn-cpu[keras]"``); Keras itself is not needed.

Carried both ways: initializers, regularizers and constraints pynn has (same class
names and settings as Keras; an initializer's seed is not), and a compiled model's
optimizer settings and state (``optimizer/vars``: iteration, learning rate, then the
slots in Keras' order, momentum buffers rescaled between torch's and Keras'
conventions). A regularizer or constraint pynn lacks is refused rather than dropped.
"""
from __future__ import annotations

import datetime
import inspect
import io
import json
import os
import re
import zipfile

import numpy as np

from . import layers as L
from .saving import _register_weights_format, register_loader, register_saver

# Keras class name -> pynn layer class: everything a .keras file may name.
KERAS_LAYERS = {
    "Dense": L.Dense, "Activation": L.Activation, "Dropout": L.Dropout, "Flatten": L.Flatten,
    "Reshape": L.Reshape, "Rescaling": L.Rescaling, "Add": L.Add, "Multiply": L.Multiply,
    "Concatenate": L.Concatenate, "Embedding": L.Embedding, "BatchNormalization": L.BatchNormalization,
    "LayerNormalization": L.LayerNormalization, "Conv1D": L.Conv1D, "Conv2D": L.Conv2D,
    "MaxPooling1D": L.MaxPooling1D, "AveragePooling1D": L.AveragePooling1D, "MaxPooling2D": L.MaxPooling2D,
    "AveragePooling2D": L.AveragePooling2D, "GlobalAveragePooling1D": L.GlobalAveragePooling1D,
    "GlobalMaxPooling1D": L.GlobalMaxPooling1D, "GlobalAveragePooling2D": L.GlobalAveragePooling2D,
    "GlobalMaxPooling2D": L.GlobalMaxPooling2D, "SimpleRNN": L.SimpleRNN, "LSTM": L.LSTM, "GRU": L.GRU,
    "Bidirectional": L.Bidirectional, "TimeDistributed": L.TimeDistributed,
    "MultiHeadAttention": L.MultiHeadAttention, "Attention": L.Attention, "AdditiveAttention": L.AdditiveAttention,
}
_MODELS = ("Sequential", "Functional", "Model")
_RECURRENT = (L.SimpleRNN, L.LSTM, L.GRU)

# Config keys that do not change inference or training math in pynn (or that pynn
# keeps at Keras' default), ignored on read.
_IGNORED = {"dtype", "trainable", "name", "seed", "unroll", "zero_output_for_mask",
            "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
            "quantization_config", "noise_shape", "sparse", "lora_rank", "lora_alpha", "input_length",
            "attention_axes", "use_cudnn", "synchronized", "renorm", "renorm_clipping",
            "renorm_momentum", "groups", "rms_scaling", "use_gate", "sliding_window", "flash_attention",
            "dropout_rate"}
# Keys that must hold a given value (anything else changes the math pynn computes).
# (data_format is read: pynn's conv, pooling and Flatten layers take channels_first too.)
_REQUIRED = {"synchronized": (False,), "renorm": (False,),
             "groups": (1,), "rms_scaling": (False,), "use_gate": (False,), "sliding_window": (None,),
             "noise_shape": (None,), "attention_axes": (None, [1], (1,), 1, -2, [-2]),
             "zero_output_for_mask": (False, True), "lora_rank": (None, 0), "quantization_config": (None,)}


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - only without the extra
        raise ImportError('.keras files need h5py: pip install "pynn-cpu[keras]"') from e
    return h5py


def keras_snake_case(name):
    """Keras' naming.to_snake_case (used for weight paths)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name, used):
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


# ================================================================== reading
def _class_names(spec, out):
    """Every layer/model class name in a model config: the top spec, the entries of
    ``layers`` lists and wrapped ``layer``/``backward_layer`` specs, at any depth."""
    if not isinstance(spec, dict):
        return
    name = str(spec.get("class_name"))
    module = str(spec.get("module") or "")
    # keras.ops calls recorded in a functional graph (x + y -> an "Add" op) are not layers:
    # only NotEqual (Embedding's padding mask) is understood.
    out.add(f"{name} (keras op)" if module.startswith("keras.src.ops") and name != "NotEqual" else name)
    cfg = spec.get("config")
    if not isinstance(cfg, dict):
        return
    for sub in cfg.get("layers") or []:
        _class_names(sub, out)
    for key in ("layer", "backward_layer"):
        if isinstance(cfg.get(key), dict):
            _class_names(cfg[key], out)


def _check_classes(config, filepath):
    names = set()
    _class_names(config, names)
    known = set(KERAS_LAYERS) | set(_MODELS) | {"InputLayer", "NotEqual"}
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"load_model: {filepath!r} uses Keras classes pynn cannot read: {unknown}. "
                         f"Supported: {sorted(known)}")


def _layer_from_keras(spec):
    cls_name = spec["class_name"]
    if cls_name in _MODELS:
        return _model_from_keras(spec)
    cls = KERAS_LAYERS[cls_name]
    cfg = dict(spec["config"])
    name = cfg.get("name")
    for key, allowed in _REQUIRED.items():
        if key in cfg and cfg[key] not in allowed:
            raise ValueError(f"load_model: Keras {cls_name} {name!r} has {key}={cfg[key]!r}, which pynn does not "
                             f"implement (supported: {list(allowed)})")
    accepted = set(inspect.signature(cls.__init__).parameters) | {"activity_regularizer"}   # Layer's own
    for key in list(cfg):
        if not key.endswith(_OBJECT_SUFFIXES):
            continue
        value = cfg.pop(key)
        if value is None:
            continue
        if key not in accepted:
            if key.endswith("_initializer"):
                continue   # pynn has no such setting (e.g. BatchNormalization's): the weights are loaded anyway
            raise ValueError(f"load_model: Keras {cls_name} {name!r} has {key}={value!r}, which the pynn layer "
                             "does not implement")
        obj = _object_from_keras(cls_name, name, key, value)
        if obj is not None:
            cfg[key] = obj
    trainable = cfg.get("trainable", True)
    kwargs = {k: v for k, v in cfg.items() if k not in _IGNORED}
    if cls_name in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        if kwargs.pop("keepdims", False):
            raise ValueError(f"load_model: Keras {cls_name} {name!r}: keepdims=True is not implemented in pynn")
    if cls_name in ("Bidirectional", "TimeDistributed"):
        inner = _layer_from_keras(kwargs.pop("layer"))
        if cls_name == "Bidirectional":
            back = kwargs.pop("backward_layer", None)
            layer = cls(inner, backward_layer=_layer_from_keras(back) if back else None, name=name, **kwargs)
        else:
            layer = cls(inner, name=name, **kwargs)
    else:
        if isinstance(kwargs.get("activation"), dict):
            raise ValueError(f"load_model: Keras {cls_name} {name!r}: activation {kwargs['activation']!r} is not a "
                             "built-in name")
        if cls_name == "MultiHeadAttention" and kwargs.get("output_shape") is not None:
            out = kwargs["output_shape"]
            kwargs["output_shape"] = out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out
        try:
            layer = cls(name=name, **kwargs)
        except TypeError as e:
            raise ValueError(f"load_model: Keras {cls_name} {name!r} has settings pynn does not read: {e}") from e
    layer.trainable = trainable
    return layer


_OBJECT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


def _object_from_keras(cls_name, name, key, spec):
    """A Keras initializer/regularizer/constraint spec as pynn's object of the same class and
    settings. An unknown regularizer or constraint is an error (it changes training); an
    initializer pynn lacks is left at pynn's default with a warning (the weights are loaded)."""
    import warnings
    from . import constraints, initializers, regularizers
    if isinstance(spec, str):
        spec = {"class_name": spec, "config": {}}
    if not isinstance(spec, dict):
        raise ValueError(f"load_model: Keras {cls_name} {name!r}: {key}={spec!r} is not a serialized object")
    cls, cfg = spec.get("class_name"), dict(spec.get("config") or {})
    if key.endswith("_initializer"):
        dropped = {k: cfg.pop(k) for k in ("seed", "input_axes", "output_axes") if k in cfg}
        try:
            if cls not in initializers._BY_NAME:
                raise ValueError(f"unknown initializer {cls!r}")
            obj = initializers.get({"class_name": cls, "config": cfg})
        except (TypeError, ValueError) as e:
            warnings.warn(f"load_model: Keras {cls_name} {name!r}: {key} {spec!r} has no pynn counterpart ({e}); "
                          "the layer keeps pynn's default (its weights come from the file)", stacklevel=4)
            return None
        if any(v is not None for v in dropped.values()):
            warnings.warn(f"load_model: Keras {cls_name} {name!r}: {key} settings {dropped} are not carried (pynn "
                          "initializers draw from pynn's own generator)", stacklevel=4)
        return obj
    mod = regularizers if key.endswith("_regularizer") else constraints
    if cls not in mod._CLASSES:
        raise ValueError(f"load_model: Keras {cls_name} {name!r} has {key} {cls!r}; pynn reads "
                         f"{sorted(mod._CLASSES)}")
    try:
        return mod.get({"class_name": cls, "config": cfg})
    except (TypeError, ValueError) as e:
        raise ValueError(f"load_model: Keras {cls_name} {name!r}: {key} {spec!r} ({e})") from e


def _object_to_keras(layer, key, value):
    """pynn's initializer/regularizer/constraint (object or name) as a Keras 3 spec, or
    None (warned) for a custom initializer Keras could not rebuild."""
    import warnings
    from . import constraints, initializers, regularizers
    if key.endswith("_initializer"):
        obj = initializers.get(value)
        if not isinstance(obj, initializers.Initializer) or initializers._BY_NAME.get(type(obj).__name__) \
                is not type(obj):
            warnings.warn(f"save: layer {layer.name!r}: {key} {value!r} is not a Keras initializer; Keras will use "
                          "its default (the weights are saved)", stacklevel=4)
            return None
        cfg = obj.get_config()
        if type(obj).__name__ not in ("Zeros", "Ones", "Constant"):   # Keras' random ones take a seed
            cfg = {**cfg, "seed": None}
        return {"module": "keras.initializers", "class_name": type(obj).__name__, "config": cfg,
                "registered_name": None}
    mod = regularizers if key.endswith("_regularizer") else constraints
    obj = mod.get(value)
    if mod._CLASSES.get(type(obj).__name__) is not type(obj):
        raise ValueError(f"save: layer {layer.name!r} has a custom {key} {value!r}; .keras files carry "
                         f"{sorted(mod._CLASSES)}")
    return {"module": f"keras.{mod.__name__.rsplit('.', 1)[-1]}", "class_name": type(obj).__name__,
            "config": obj.get_config(), "registered_name": None}


def _build_shape(spec):
    bc = spec.get("build_config") or {}
    if "input_shape" in bc:
        return bc["input_shape"]
    if "shapes_dict" in bc:   # MultiHeadAttention
        d = bc["shapes_dict"]
        shapes = [d["query_shape"], d["value_shape"]] + ([d["key_shape"]] if d.get("key_shape") else [])
        return shapes
    return None


class _PaddingMask:
    """Keras' NotEqual(ids, 0) mask in a functional config: valid where pynn propagates the
    same mask itself, i.e. when the masked tensor comes (through mask-keeping layers) from
    an Embedding(mask_zero=True) of those ids."""

    def __init__(self, ids):
        self.ids = ids

    def reaches(self, tensor):
        t = tensor[0] if isinstance(tensor, (list, tuple)) else tensor
        while getattr(t, "layer", None) is not None:
            layer = t.layer
            if isinstance(layer, L.Embedding):
                return layer.mask_zero and t.parents is self.ids
            if not (layer.supports_masking or isinstance(layer, (*_RECURRENT, L.Bidirectional))):
                return False
            t = t.parents[0] if isinstance(t.parents, list) else t.parents
        return False


def _model_from_keras(spec):
    from .layers.input_layer import Input
    from .models import Model, Sequential
    cfg = spec["config"]
    if spec["class_name"] == "Sequential":
        model = Sequential(name=cfg.get("name"))
        for sub in cfg["layers"]:
            if sub["class_name"] == "InputLayer":
                c = sub["config"]
                shape = c.get("batch_shape") or c.get("batch_input_shape")
                model.add(Input(tuple(shape[1:]), dtype=c.get("dtype", "float32"), name=c.get("name")))
                continue
            layer = _layer_from_keras(sub)
            if not model.built and not model.layers and _build_shape(sub) is not None:
                shape = _build_shape(sub)
                model.add(Input(tuple(shape[1:])))
            model.add(layer)
        if not model.built and cfg.get("build_input_shape"):
            model.build(tuple(cfg["build_input_shape"]))
        return model
    # Functional: replay every layer's inbound nodes, in the file's order.
    created, calls = {}, {}

    def resolve(v):
        if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
            lname, node_i, tensor_i = v["config"]["keras_history"]
            outs = calls[lname][node_i]
            return outs[tensor_i] if isinstance(outs, list) else outs
        if isinstance(v, list):
            return [resolve(x) for x in v]
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        return v
    for sub in cfg["layers"]:
        lname = sub.get("name") or sub["config"]["name"]
        if sub["class_name"] == "InputLayer":
            c = sub["config"]
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            calls[lname] = [Input(tuple(shape[1:]), dtype=c.get("dtype", "float32"), name=lname)]
            continue
        if sub["class_name"] == "NotEqual":
            # Keras 3 records Embedding(mask_zero=True)'s padding mask as NotEqual(ids, 0); pynn's
            # Embedding attaches that same mask to its output, so the op becomes a marker.
            args = resolve(sub["inbound_nodes"][0]["args"])
            if len(sub["inbound_nodes"]) != 1 or len(args) != 2 or args[1] != 0:
                raise ValueError(f"load_model: Keras op {lname!r} (NotEqual) is not an Embedding padding mask")
            calls[lname] = [_PaddingMask(args[0])]
            continue
        layer = _layer_from_keras(sub)
        created[lname] = layer
        calls[lname] = []
        for node in sub.get("inbound_nodes", []):
            args = resolve(node.get("args", []))
            kwargs = {k: v for k, v in resolve(node.get("kwargs", {})).items()
                      if not (k in ("mask", "training") and v is None) and k != "training"}
            mask = kwargs.pop("mask", None)
            if mask is not None and not (isinstance(mask, _PaddingMask) and mask.reaches(args[0])):
                raise ValueError(f"load_model: Keras layer {lname!r} is called with an explicit mask that is not "
                                 "the padding mask of an Embedding(mask_zero=True) upstream; not supported")
            out = layer(*args, **kwargs)
            calls[lname].append(out)

    def pick(ref):
        lname, node_i, tensor_i = ref
        outs = calls[lname][node_i]
        return outs[tensor_i] if isinstance(outs, list) else outs
    ins, outs = cfg["input_layers"], cfg["output_layers"]
    single_in = len(ins) == 3 and isinstance(ins[0], str)
    single_out = len(outs) == 3 and isinstance(outs[0], str)
    inputs = pick(ins) if single_in else [pick(r) for r in ins]
    outputs = pick(outs) if single_out else [pick(r) for r in outs]
    if not single_in and len(inputs) == 1:
        inputs = inputs[0]
    if not single_out and len(outputs) == 1:
        outputs = outputs[0]
    return Model(inputs, outputs, name=cfg.get("name"))


def _keras_groups(layer, prefix):
    """[(h5 path, [variables])] for one layer, in Keras' layout."""
    from .models import Model
    if isinstance(layer, Model):
        out, used = [], {}
        for sub in layer.layers:
            out += _keras_groups(sub, f"{prefix}/layers/{_unique(keras_snake_case(_keras_class(sub)), used)}")
        return out
    if isinstance(layer, _RECURRENT):
        return [(f"{prefix}/cell", layer.weights)]
    if isinstance(layer, L.Bidirectional):
        return [(f"{prefix}/forward_layer/cell", layer.forward_layer.weights),
                (f"{prefix}/backward_layer/cell", layer.backward_layer.weights)]
    if isinstance(layer, L.TimeDistributed):
        return _keras_groups(layer.layer, f"{prefix}/layer")
    if isinstance(layer, L.MultiHeadAttention):
        return [(f"{prefix}/query_dense", [w for w in (layer.query_kernel, layer.query_bias) if w is not None]),
                (f"{prefix}/key_dense", [w for w in (layer.key_kernel, layer.key_bias) if w is not None]),
                (f"{prefix}/value_dense", [w for w in (layer.value_kernel, layer.value_bias) if w is not None]),
                (f"{prefix}/output_dense", [w for w in (layer.output_kernel, layer.output_bias) if w is not None])]
    return [(prefix, layer.weights)]


def _model_groups(model):
    return [(p.lstrip("/"), ws) for p, ws in _keras_groups(model, "")]


# Keras optimizer settings that must keep their defaults (pynn has no counterpart).
_OPT_DEFAULTS = {"use_ema": False, "ema_momentum": None, "ema_overwrite_frequency": None, "loss_scale_factor": None,
                 "gradient_accumulation_steps": None, "amsgrad": False, "name": None}


def _compile_from_keras(model, cc, filepath):
    """model.compile from Keras' compile_config; anything pynn cannot honour is an error
    (load with compile=False to skip it)."""
    from . import losses, optimizers

    def refuse(what):
        raise ValueError(f"load_model: {filepath!r}: the Keras compile settings use {what}, which pynn cannot "
                         "reproduce; pass compile=False to load the model uncompiled")
    for key in ("loss_weights", "weighted_metrics"):
        if cc.get(key):
            refuse(f"{key}={cc[key]!r}")
    opt = cc.get("optimizer")
    if isinstance(opt, dict):
        cls = opt.get("class_name", "")
        if cls.lower() not in optimizers._BY_NAME:
            refuse(f"optimizer {cls!r}")
        cfg = {}
        for k, v in opt.get("config", {}).items():
            if k in _OPT_DEFAULTS:
                if k == "amsgrad" and v:
                    cfg[k] = v
                elif k not in ("name", "ema_momentum") and v not in (None, False):
                    refuse(f"optimizer {k}={v!r}")
            elif isinstance(v, dict):
                refuse(f"optimizer {k}={v!r} (a schedule or object)")
            elif v is not None:
                cfg[k] = v
        try:
            opt = optimizers.get({"class_name": cls, "config": cfg})
        except (TypeError, ValueError) as e:
            refuse(f"optimizer settings {cfg} ({e})")
    elif opt is not None and not isinstance(opt, str):
        refuse(f"optimizer {opt!r}")
    loss = cc.get("loss")

    def one_loss(item):
        if isinstance(item, str) or item is None:
            return item
        if isinstance(item, dict) and item.get("class_name") in losses._BY_NAME:
            cfg = {k: v for k, v in item.get("config", {}).items() if k not in ("name",)}
            if cfg.pop("reduction", "sum_over_batch_size") != "sum_over_batch_size" or cfg.pop("ignore_class", None):
                refuse(f"loss {item!r}")
            try:
                return losses._BY_NAME[item["class_name"]](**cfg)
            except TypeError as e:
                refuse(f"loss {item!r} ({e})")
        refuse(f"loss {item!r}")
    loss = [one_loss(x) for x in loss] if isinstance(loss, list) else one_loss(loss)
    metrics = cc.get("metrics") or []
    if isinstance(metrics, dict) or any(not isinstance(m, str) for m in metrics):
        refuse(f"metrics {metrics!r}")
    if loss is None:
        return
    model.compile(optimizer=opt if opt is not None else "rmsprop", loss=loss, metrics=list(metrics))


def _compile_to_keras(model):
    """Keras' compile_config for a compiled pynn model (None when not compiled)."""
    if model.loss is None:
        return None
    from . import losses

    def one_loss(item):
        if isinstance(item, str):
            return item
        if isinstance(item, losses.Loss) and type(item).__name__ in losses._BY_NAME:
            return {"module": "keras.losses", "class_name": type(item).__name__,
                    "config": {**item.get_config(), "reduction": "sum_over_batch_size"}, "registered_name": None}
        raise ValueError(f"save: the loss {item!r} has no Keras counterpart; pass it by name or as a pynn loss")
    loss = model.loss
    opt_cfg = {k: v for k, v in model.optimizer.get_config().items() if v is not None}
    if isinstance(opt_cfg.get("learning_rate"), dict):
        raise ValueError("save: learning-rate schedules are not written to .keras compile settings")
    metrics = [m for m in model._metric_specs]
    if any(not isinstance(m, str) for m in metrics):
        raise ValueError(f"save: metrics {metrics!r}: only metric names are written to .keras files")
    return {"optimizer": {"module": "keras.optimizers", "class_name": type(model.optimizer).__name__,
                          "config": opt_cfg, "registered_name": None},
            "loss": [one_loss(x) for x in loss] if isinstance(loss, (list, tuple)) else one_loss(loss),
            "loss_weights": None, "metrics": metrics, "weighted_metrics": None, "run_eagerly": False,
            "steps_per_execution": 1, "jit_compile": False}


def _keras_slot_layout(opt):
    """Keras 3's optimizer variables after ``iteration`` and ``learning_rate``, as groups of
    (pynn slot name, factor keras_value = factor * pynn_value): each group runs over the
    trainable variables in order, its names interleaved per variable (Keras 3.15's
    add_optimizer_variables), or None for an optimizer without a known layout.

    The factors: pynn's momentum buffers follow torch.optim, Keras' carry the learning rate
    (SGD ``m = mu*m - lr*g``, RMSprop ``m = mu*m + lr*g/denom``); for a constant learning
    rate they are the same state, scaled."""
    from . import optimizers as O
    lr = float(opt.learning_rate)
    if isinstance(opt, O.Adam):   # and AdamW
        return [[("m", 1.0), ("v", 1.0)]] + ([[("vhat", 1.0)]] if opt.amsgrad else [])
    if isinstance(opt, O.RMSprop):
        return ([[("velocity", 1.0)]] + ([[("momentum", lr)]] if opt.momentum else [])
                + ([[("average_gradient", 1.0)]] if opt.centered else []))
    if isinstance(opt, O.SGD):
        return [[("momentum", -lr)]] if opt.momentum else []
    if isinstance(opt, O.Adagrad):
        return [[("accumulator", 1.0)]]
    if isinstance(opt, O.Adadelta):
        return [[("accumulated_grad", 1.0), ("accumulated_delta_var", 1.0)]]
    return None


def _optimizer_state_to_keras(model):
    """[iteration, learning_rate, slots...] as Keras 3 lays out ``optimizer/vars`` for
    ``model.trainable_weights``, or None (with a warning) when that cannot be written."""
    import warnings
    opt = model.optimizer
    layout = _keras_slot_layout(opt)
    variables = model.trainable_weights
    if layout is None:
        warnings.warn(f"save: the state of optimizer {type(opt).__name__} is not written to .keras files",
                      stacklevel=3)
        return None
    if opt.built and {id(v) for v in opt._variables} != {id(v) for v in variables}:
        warnings.warn("save: the optimizer was built on other variables than the model's trainable weights "
                      "(a layer's trainable flag changed after training?); its state is not written",
                      stacklevel=3)
        return None
    out = [np.array(opt.iterations, np.int64), np.array(float(opt.learning_rate), np.float32)]
    specs = dict(opt._slot_specs())
    for group in layout:
        for v in variables:
            for name, factor in group:
                if opt.built:
                    slot = opt._slots[name][opt._index[id(v)]]
                else:   # never stepped: the slot's initial value, as a freshly built optimizer holds
                    slot = np.full(v.shape, specs[name], np.float32)
                out.append(np.asarray(slot * factor if factor != 1.0 else slot, np.float32))
    return out


def _optimizer_state_from_keras(model, group, filepath):
    """Set the compiled optimizer's state from a file's ``optimizer/vars`` (Keras' layout);
    shapes are checked before anything is set."""
    import warnings
    opt = model.optimizer
    layout = _keras_slot_layout(opt)
    arrays = [np.asarray(group[str(i)]) for i in range(len(group))]
    if len(arrays) < 2:
        return
    iterations = int(arrays[0])
    if layout is None:
        warnings.warn(f"load_model: {filepath!r}: the state of optimizer {type(opt).__name__} is not read "
                      "(no known Keras layout); it starts fresh", stacklevel=3)
        return
    variables = model.trainable_weights
    expected = 2 + sum(len(g) for g in layout) * len(variables)
    if iterations == 0 and len(arrays) == 2:
        return    # Keras saved an optimizer that never stepped
    if len(arrays) != expected:
        raise ValueError(f"load_model: {filepath!r}: optimizer/vars holds {len(arrays)} arrays; a "
                         f"{type(opt).__name__} with these options on {len(variables)} trainable weights has "
                         f"{expected}; pass compile=False to load without the optimizer")
    file_lr = float(arrays[1])
    pending, k = {}, 2
    for g in layout:
        for v in variables:
            for name, factor in g:
                arr = arrays[k]
                k += 1
                if arr.shape != v.shape:
                    raise ValueError(f"load_model: {filepath!r}: optimizer slot {name} for {v.name!r} has shape "
                                     f"{arr.shape}, the weight has {v.shape}")
                if factor != 1.0:   # the file's momentum carries the learning rate it was trained with
                    if file_lr == 0.0:
                        raise ValueError(f"load_model: {filepath!r}: the optimizer's learning_rate is 0, so its "
                                         "momentum cannot be converted; pass compile=False")
                    arr = arr * (np.sign(factor) / file_lr)
                pending.setdefault(name, []).append(np.asarray(arr, np.float32))
    if not opt.built:
        opt.build(variables)
    for name, values in pending.items():
        for v, arr in zip(variables, values):
            opt._slots[name][opt._index[id(v)]][...] = arr
    opt.iterations = iterations


def _read_model_vars(model, f, filepath, what):
    """Set every model weight from an open h5 file in Keras' layout (``layers/<name>/vars/<i>``);
    every shape is checked before anything is set."""
    pending = []
    for path, variables in _model_groups(model):
        group = f.get(f"{path}/vars")
        if group is None:
            if variables:
                raise ValueError(f"{what}: {filepath!r} has no weights at {path}/vars for "
                                 f"{[v.name for v in variables]}")
            continue
        if len(group) != len(variables):
            raise ValueError(f"{what}: {filepath!r}: {path}/vars holds {len(group)} arrays, the pynn layer "
                             f"has {len(variables)} weights ({[v.name for v in variables]})")
        for i, v in enumerate(variables):
            arr = np.asarray(group[str(i)])
            if arr.ndim == 0 and v.shape == (1,):   # pynn keeps Keras' scalar weights as (1,)
                arr = arr.reshape(1)
            if arr.shape != v.shape:
                raise ValueError(f"{what}: {filepath!r}: {path}/vars/{i} has shape {arr.shape}, pynn weight "
                                 f"{v.name!r} has shape {v.shape}")
            pending.append((v, arr))
    for v, arr in pending:   # every shape checked before anything is set
        v.assign(arr)


def load_keras(filepath, compile=True):
    """Build a pynn model from a Keras 3 ``.keras`` archive and load its weights; with
    ``compile`` also its loss, metrics and optimizer settings (not the optimizer's state)."""
    h5py = _h5py()
    filepath = os.fspath(filepath)
    try:
        with zipfile.ZipFile(filepath) as z:
            config = json.loads(z.read("config.json"))
            weights_bytes = z.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"load_model: {filepath!r} is not a readable Keras 3 .keras archive ({e})") from e
    _check_classes(config, filepath)
    if config.get("class_name") not in _MODELS:
        raise ValueError(f"load_model: {filepath!r} holds a {config.get('class_name')!r}, not a Sequential or "
                         "functional model")
    model = _layer_from_keras(config)
    with h5py.File(io.BytesIO(weights_bytes), "r") as f:
        _read_model_vars(model, f, filepath, "load_model")
    if compile and config.get("compile_config"):
        _compile_from_keras(model, config["compile_config"], filepath)
        if model.optimizer is not None:
            with h5py.File(io.BytesIO(weights_bytes), "r") as f:
                group = f.get("optimizer/vars")
                if group is not None:
                    _optimizer_state_from_keras(model, group, filepath)
    return model


# ================================================================== writing
def _keras_class(layer):
    from .models import Sequential
    if isinstance(layer, Sequential):
        return "Sequential"
    from .models import Model
    if isinstance(layer, Model):
        return "Functional"
    for name, cls in KERAS_LAYERS.items():
        if type(layer) is cls:
            return name
    raise ValueError(f"save: layer {layer.name!r} of class {type(layer).__name__} has no Keras 3 counterpart that "
                     f"pynn writes; .keras files support {sorted(KERAS_LAYERS)}")


_PYNN_ONLY = {"input_shape", "batch_size", "kernel_initializer", "bias_initializer", "recurrent_initializer",
              "embeddings_initializer"}


def _dtype_policy():
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


def _layer_spec(layer, input_shape):
    cls = _keras_class(layer)
    if cls in ("Sequential", "Functional"):
        return _model_spec(layer)
    cfg = {k: v for k, v in layer.get_config().items() if k not in _PYNN_ONLY}
    # Initializers, regularizers and constraints: Keras' own specs, read off the layer.
    keys = [k for k in inspect.signature(type(layer).__init__).parameters if k.endswith(_OBJECT_SUFFIXES)]
    for key in keys + ["activity_regularizer"]:
        value = getattr(layer, key, None)
        cfg.pop(key, None)
        spec = None if value is None else _object_to_keras(layer, key, value)
        if spec is not None or not key.endswith("_initializer"):
            cfg[key] = spec
    cfg["dtype"] = _dtype_policy()
    if cls in ("Bidirectional", "TimeDistributed"):
        inner_shape = input_shape if cls == "Bidirectional" else [None] + list(input_shape[2:])
        cfg["layer"] = _layer_spec(layer.forward_layer if cls == "Bidirectional" else layer.layer, inner_shape)
        if cls == "Bidirectional":
            cfg["backward_layer"] = _layer_spec(layer.backward_layer, input_shape)
    if cls in ("LSTM", "GRU", "SimpleRNN") and getattr(layer, "stateful", False):
        raise ValueError(f"save: {cls} {layer.name!r} is stateful; not written to .keras files")
    if cls == "MultiHeadAttention" and cfg.get("output_shape") is None:
        cfg["output_shape"] = None
    spec = {"module": "keras.layers", "class_name": cls, "config": cfg, "registered_name": None}
    if input_shape is not None:
        if cls == "MultiHeadAttention":
            shapes = input_shape if isinstance(input_shape[0], (list, tuple)) else [input_shape, input_shape]
            d = {"query_shape": list(shapes[0]), "value_shape": list(shapes[1])}
            if len(shapes) > 2:
                d["key_shape"] = list(shapes[2])
            spec["build_config"] = {"shapes_dict": d}
        else:
            spec["build_config"] = {"input_shape": _jsonable(input_shape)}
    return spec


def _jsonable(shape):
    if isinstance(shape, (list, tuple)):
        return [_jsonable(s) for s in shape]
    return None if shape is None else int(shape)


def _input_spec(name, shape, dtype):
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": _jsonable(shape), "dtype": np.dtype(dtype).name, "sparse": False,
                       "name": name}, "registered_name": None}


def _model_spec(model):
    from .models import Sequential
    if isinstance(model, Sequential):
        shape = model._build_input_shape
        if shape is None:
            raise ValueError(f"save: Sequential {model.name!r} is not built; add an Input first")
        dtype = model._input.dtype if model._input is not None else np.float32
        specs = [_input_spec(f"{model.name}_input", shape, dtype)]
        s = shape
        for layer in model.layers:
            specs.append(_layer_spec(layer, s))
            s = layer.compute_output_shape(s)
        return {"module": "keras", "class_name": "Sequential",
                "config": {"name": model.name, "trainable": model.trainable, "dtype": _dtype_policy(),
                           "layers": specs, "build_input_shape": _jsonable(shape)},
                "registered_name": None, "build_config": {"input_shape": _jsonable(shape)}}
    graph = model._graph
    if graph is None:
        raise ValueError(f"save: model {model.name!r} is a subclassed model; only Sequential and functional models "
                         "are written to .keras files")
    # Each tensor -> (layer name, node index, tensor index) as keras_history.
    history, names, layer_specs, node_count = {}, {}, {}, {}
    used = set()
    specs = []
    for i, t in enumerate(graph.inputs):
        name = t.name if t.name and t.name not in used and t.name != "input" else f"input_layer_{i}"
        used.add(name)
        names[id(t)] = name
        history[id(t)] = [name, 0, 0]
        specs.append({**_input_spec(name, t.shape, t.dtype), "name": name, "inbound_nodes": []})

    def ref(t):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": _jsonable(t.shape), "dtype": t.dtype.name, "keras_history": history[id(t)]}}

    def encode(v):
        from .layers.input_layer import KerasTensor
        if isinstance(v, KerasTensor):
            return ref(v)
        if isinstance(v, (list, tuple)):
            return [encode(x) for x in v]
        if isinstance(v, dict):
            return {k: encode(x) for k, x in v.items()}
        return v
    seen_nodes = {}
    for t in graph.order:
        node, layer = t.node, t.layer
        if id(node) not in seen_nodes:
            if id(layer) not in layer_specs:
                shapes = ([p.shape for p in node.parents] if isinstance(node.parents, list) else node.parents.shape)
                spec = _layer_spec(layer, shapes)
                spec["name"] = layer.name
                spec["inbound_nodes"] = []
                layer_specs[id(layer)] = spec
                specs.append(spec)
                node_count[id(layer)] = 0
            spec = layer_specs[id(layer)]
            if isinstance(layer, L.MultiHeadAttention):   # called as (query, value[, key])
                args = [encode(p) for p in node.parents]
            else:
                args = [encode(node.parents)]
            spec["inbound_nodes"].append({"args": args, "kwargs": encode(dict(node.kwargs))})
            seen_nodes[id(node)] = node_count[id(layer)]
            node_count[id(layer)] += 1
        history[id(t)] = [layer.name, seen_nodes[id(node)], 0 if t.index is None else t.index]

    def refs(ts, single):
        r = [history[id(t)] for t in ts]
        return r[0] if single and len(r) == 1 else r
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": model.name, "trainable": model.trainable, "layers": specs,
                       "input_layers": refs(graph.inputs, len(graph.inputs) == 1),
                       "output_layers": refs(graph.outputs, graph.single_output)},
            "registered_name": "Functional", "build_config": {"input_shape": None}}


def _write_model_vars(model, f):
    """Write every model weight (and a compiled model's optimizer state) into an open h5
    file in Keras 3's layout: the ``model.weights.h5`` of a .keras archive, or a
    ``.weights.h5`` file of ``save_weights``."""
    groups = _model_groups(model)
    f.create_group("vars")
    for path, variables in groups:
        g = f.require_group(f"{path}/vars")
        scalars = path.rsplit("/", 1)[-1].startswith("attention")   # Keras' Attention scale: shape ()
        for i, v in enumerate(variables):
            data = np.asarray(v.data)
            g.create_dataset(str(i), data=data.reshape(()) if scalars and data.shape == (1,) else data)
    state = _optimizer_state_to_keras(model) if model.optimizer is not None and model.loss is not None \
        else None
    if state is not None:   # Keras loads it into the optimizer it compiles from compile_config
        g = f.require_group("optimizer/vars")
        for i, arr in enumerate(state):
            g.create_dataset(str(i), data=arr)


def save_keras(model, filepath):
    """Write ``model`` as a Keras 3 ``.keras`` archive (config, metadata, weights)."""
    h5py = _h5py()
    from .saving import atomic_write
    spec = _model_spec(model)
    spec["compile_config"] = _compile_to_keras(model)
    groups = _model_groups(model)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        _write_model_vars(model, f)
    weights = buf.getvalue()
    metadata = {"keras_version": "3.0.0", "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "producer": "pynn"}

    def write(fobj):
        with zipfile.ZipFile(fobj, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("metadata.json", json.dumps(metadata))
            z.writestr("config.json", json.dumps(spec))
            z.writestr("model.weights.h5", weights)
    atomic_write(filepath, write)


def save_weights_h5(model, filepath):
    """``model.save_weights("x.weights.h5")``: Keras 3's weights file (the weights and a
    compiled model's optimizer state), readable by ``keras.Model.load_weights``."""
    h5py = _h5py()
    from .saving import atomic_write
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        _write_model_vars(model, f)
    data = buf.getvalue()
    atomic_write(os.fspath(filepath), lambda fobj: fobj.write(data))


def load_weights_h5(model, filepath):
    """``model.load_weights`` of a Keras 3 ``.weights.h5`` file or ``.keras`` archive: every
    weight (shapes checked before anything is set) and, when the model is compiled and the
    file holds one, the optimizer's state."""
    h5py = _h5py()
    filepath = os.fspath(filepath)
    if filepath.lower().endswith(".keras"):
        try:
            with zipfile.ZipFile(filepath) as z:
                data = z.read("model.weights.h5")
        except (zipfile.BadZipFile, KeyError) as e:
            raise ValueError(f"load_weights: {filepath!r} is not a readable Keras 3 .keras archive ({e})") from e
    else:
        with open(filepath, "rb") as fobj:
            data = fobj.read()
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except OSError as e:
        raise ValueError(f"load_weights: {filepath!r} is not an HDF5 weights file ({e})") from e
    with f:
        _read_model_vars(model, f, filepath, "load_weights")
        group = f.get("optimizer/vars")
        if group is not None and getattr(model, "optimizer", None) is not None:
            _optimizer_state_from_keras(model, group, filepath)


def is_keras_path(filepath):
    return isinstance(filepath, (str, os.PathLike)) and os.fspath(filepath).lower().endswith(".keras")


register_loader(".keras", load_keras)   # pynn.saving.load_model dispatches .keras files here
register_saver(".keras", save_keras)     # and Model.save
_register_weights_format(".weights.h5", save_weights_h5, load_weights_h5)   # Model.save_weights/load_weights
_register_weights_format(".keras", None, load_weights_h5)   # load_weights reads an archive's weights (as Keras)
