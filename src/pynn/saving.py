"""Whole-model files: ``model.save(path)`` / ``pynn.load_model(path)``.

The file is a zip holding ``model.json`` (architecture and compile settings),
``weights/NNNN.npy`` (every weight, in ``model.weights`` order) and
``optimizer/NNNN.npy`` (the optimizer's state). It is written to a temporary
file in the same directory and renamed over the target, so a crash mid-save
leaves the previous file intact. Loading builds a fresh model and checks every
shape before setting anything: a bad file raises, it never half-loads.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np

# register_serializable is public here too, as keras.saving.register_keras_serializable is.
from .utils.registry import deserialize_layer, register_serializable, serialize_layer  # noqa: F401

FORMAT = "pynn-model"
VERSION = 1

# ---------------------------------------------------------------- atomic write
def atomic_write(filepath, write):
    """Call ``write(fileobj)`` on a temporary file next to ``filepath``, then rename it over."""
    filepath = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(prefix=".pynn-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _serialize_compile(model):
    if model.optimizer is None:
        return None
    from . import losses
    loss = model.loss

    def one(item):
        if item is None or isinstance(item, str):
            return item
        if isinstance(item, losses.Loss) and type(item).__name__ in losses._BY_NAME:
            return {"class_name": type(item).__name__, "config": item.get_config()}
        raise ValueError(f"save: cannot serialize the loss {item!r}; pass it by name or as a pynn loss")

    def metric(m):
        if isinstance(m, dict):
            return {"per_output": {k: metric(v) for k, v in m.items()}}
        if isinstance(m, (list, tuple)):
            return [metric(v) for v in m]
        return m if m is None or isinstance(m, str) else m.name
    if isinstance(loss, dict):
        loss_spec = {"per_output": {k: one(v) for k, v in loss.items()}}
    elif isinstance(loss, (list, tuple)):
        loss_spec = [one(item) for item in loss]
    else:
        loss_spec = one(loss)
    opt = model.optimizer
    weights = getattr(model, "_loss_weights", None)
    return {
        "loss": loss_spec,
        "loss_weights": None if weights is None or all(w == 1.0 for w in weights) else weights,
        "metrics": metric(model._metric_specs),
        "weighted_metrics": metric(getattr(model, "_weighted_metric_specs", None)),
        "optimizer": {"class_name": type(opt).__name__, "config": opt.get_config()},
    }


def _deserialize_compile_spec(spec):
    """(loss, loss_weights, metrics, weighted_metrics) from _serialize_compile's output."""
    from . import losses

    def one(item):
        if item is None or isinstance(item, str):
            return item
        return losses._BY_NAME[item["class_name"]](**item["config"])

    def metric(m):
        if isinstance(m, dict):
            return {k: metric(v) for k, v in m["per_output"].items()}
        if isinstance(m, list):
            return [metric(v) for v in m]
        return m
    loss = spec["loss"]
    if isinstance(loss, dict) and "per_output" in loss:
        loss = {k: one(v) for k, v in loss["per_output"].items()}
    elif isinstance(loss, list):
        loss = [one(item) for item in loss]
    else:
        loss = one(loss)
    return loss, spec.get("loss_weights"), metric(spec.get("metrics")), metric(spec.get("weighted_metrics"))


def _build_spec(model):
    """A subclassed model's weights exist only after its first call: record the
    input shapes/dtypes of that call so loading can rebuild them (Keras' build_config)."""
    spec = getattr(model, "_build_input_spec", None)
    if spec is None or model._graph is not None or hasattr(model, "_layers"):
        return None
    return [{"shape": list(shape[1:]), "dtype": dtype} for shape, dtype in spec]


def _rebuild(model, spec):
    from .autograd import no_grad
    arrays = [np.zeros((1,) + tuple(1 if d is None else d for d in s["shape"]), dtype=s["dtype"]) for s in spec]
    with no_grad():
        model(arrays[0] if len(arrays) == 1 else arrays, training=False)


def save_model(model, filepath):
    config = {"format": FORMAT, "version": VERSION, "model": serialize_layer(model),
              "compile": _serialize_compile(model), "build": _build_spec(model)}
    weights = [w.data for w in model.weights]
    opt_state = []
    # An optimizer that never stepped has no slots yet: nothing to save (loading
    # then builds fresh ones, which is what it would have had).
    if model.optimizer is not None and hasattr(model.optimizer, "get_state") and model.optimizer.built:
        opt_state = model.optimizer.get_state()

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("model.json", json.dumps(config, indent=1))
            for i, w in enumerate(weights):
                z.writestr(f"weights/{i:04d}.npy", _npy_bytes(w))
            for i, s in enumerate(opt_state):
                z.writestr(f"optimizer/{i:04d}.npy", _npy_bytes(s))
    atomic_write(filepath, write)


def _read(z, prefix):
    names = sorted(n for n in z.namelist() if n.startswith(prefix))
    return [np.load(io.BytesIO(z.read(n)), allow_pickle=False) for n in names]


def load_model(filepath, compile=True):
    """Rebuild a model saved with ``model.save``: architecture, weights, and
    (with ``compile``) loss, metrics and optimizer state, so training continues
    exactly where it stopped."""
    from . import optimizers
    filepath = os.fspath(filepath)
    if filepath.lower().endswith(".keras"):   # a Keras 3 archive (pynn.keras_file)
        from .keras_file import load_keras
        return load_keras(filepath, compile=compile)
    try:
        with zipfile.ZipFile(filepath) as z:
            config = json.loads(z.read("model.json"))
            weights = _read(z, "weights/")
            opt_state = _read(z, "optimizer/")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, ValueError) as e:
        raise ValueError(f"load_model: {filepath!r} is not a readable pynn model file ({e})") from e
    if config.get("format") != FORMAT:
        raise ValueError(f"load_model: {filepath!r} is not a pynn model file")
    model = deserialize_layer(config["model"])
    if not model.built and config.get("build"):
        _rebuild(model, config["build"])
    model.set_weights(weights)  # checks every shape first, names the weight
    spec = config.get("compile")
    if compile and spec is not None:
        loss, loss_weights, metrics, weighted_metrics = _deserialize_compile_spec(spec)
        model.compile(optimizer=optimizers.get(spec["optimizer"]), loss=loss, loss_weights=loss_weights,
                      metrics=metrics, weighted_metrics=weighted_metrics)
        if len(opt_state) == 1 and int(opt_state[0]) == 0 and model.optimizer._slot_specs():
            opt_state = []   # written by an older version for a never-stepped optimizer: fresh slots
        if opt_state:
            model.optimizer.build(model.trainable_weights)
            model.optimizer.set_state(opt_state)
    return model


def register_keras_serializable(package="Custom", name=None):
    """Keras' decorator: ``@pynn.saving.register_keras_serializable(package="my_pkg")``
    makes a custom Layer/Model loadable by ``load_model`` (registered under its
    class name, or ``name``; Keras' ``"package>name"`` key is accepted too)."""
    def deco(cls):
        key = name or cls.__name__
        register_serializable(cls, name=key)
        register_serializable(cls, name=f"{package}>{key}")
        return cls
    return deco
