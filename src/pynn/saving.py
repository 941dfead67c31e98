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
import math
import os
import re
import tempfile
import warnings
import zipfile

import numpy as np

# register_serializable is public here too, as keras.saving.register_keras_serializable is.
from .utils.registry import deserialize_layer, register_serializable, serialize_layer  # noqa: F401

FORMAT = "pynn-model"
VERSION = 1

# ---------------------------------------------------------------- atomic write
def _tmp_prefix(filepath):
    return f".pynn-{os.path.basename(filepath)}."


def _remove_stale_temporaries(filepath):
    """Delete temporary files that an interrupted save to ``filepath`` left (kill -9 mid-save):
    ``.pynn-<name>.<pid>.*.tmp`` whose writing process no longer exists. Live writers' files stay."""
    directory = os.path.dirname(os.path.abspath(filepath))
    pattern = re.compile(re.escape(_tmp_prefix(filepath)) + r"(\d+)\..*\.tmp\Z")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        m = pattern.match(entry)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # that process is alive (maybe saving right now): leave its file
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue  # alive under another user, or not a pid: not ours to judge
        try:
            os.unlink(os.path.join(directory, entry))
        except OSError:
            pass


def atomic_write(filepath, write):
    """Call ``write(fileobj)`` on a temporary file next to ``filepath``, then rename it over.
    Temporaries that earlier interrupted saves to the same path left behind are removed first.

    Args:
        filepath: the file to (re)write.
        write: a function of one binary file object.

    Returns:
        None; ``filepath`` holds either its old content or the whole new one, never part.

    Example:
        >>> pynn.saving.atomic_write("notes.txt", lambda f: f.write(b"hello"))
        >>> open("notes.txt").read()
        'hello'
    """
    filepath = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(filepath))
    _remove_stale_temporaries(filepath)
    fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(filepath)}{os.getpid()}.", suffix=".tmp", dir=directory)
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
    """Write ``model`` in pynn's own format (what ``model.save`` does for a non-.keras name).

    Args:
        model: the model.
        filepath: the file to write (pynn's zip format).

    Returns:
        None.

    Example:
        >>> model = pynn.Sequential([pynn.Input((2,)), pynn.layers.Dense(1, kernel_initializer="ones")])
        >>> pynn.saving.save_model(model, "model.pynn")
        >>> print(pynn.saving.load_model("model.pynn").predict(np.ones((1, 2), np.float32), verbose=0))
        [[2.]]
    """
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


# ---------------------------------------------------------------- reading (hostile files)
_MAX_CONFIG_BYTES = 64 << 20  # model.json
_MAX_JSON_DEPTH = 256  # nesting of model.json: a nested model is a few levels per layer
_WEIGHT_DTYPES = (np.dtype("<f4"), np.dtype("<f8"))  # float layers only; nothing that truncates
_ITERATIONS_DTYPES = (np.dtype("<i8"), np.dtype("<i4"))


def _bad(filepath, what):
    return ValueError(f"load_model: {filepath!r}: {what}")


def _json_depth(value):
    """Deepest nesting of lists/dicts, iteratively (a recursive walk would itself overflow)."""
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            depth = max(depth, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return depth


def _read_config(z, filepath):
    try:
        info = z.getinfo("model.json")
    except KeyError:
        raise _bad(filepath, "no model.json in the archive") from None
    if info.file_size > _MAX_CONFIG_BYTES:
        raise _bad(filepath, f"model.json is {info.file_size} bytes uncompressed (limit {_MAX_CONFIG_BYTES})")
    try:
        config = json.loads(z.read(info))
    except RecursionError:
        raise _bad(filepath, f"model.json nests deeper than {_MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _bad(filepath, f"model.json is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise _bad(filepath, f"model.json must hold an object, got {type(config).__name__}")
    if _json_depth(config) > _MAX_JSON_DEPTH:
        raise _bad(filepath, f"model.json nests deeper than {_MAX_JSON_DEPTH} levels")
    return config


def _entries(z, prefix):
    return sorted(n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/"))


def _read_npy(z, name, dtypes, shape, filepath):
    """One .npy entry, checked before its data is read: a dtype from ``dtypes``, exactly
    ``shape``, and an uncompressed size equal to header + shape's bytes (so a small entry
    that inflates to gigabytes, or a header declaring a huge dtype, is refused unread)."""
    info = z.getinfo(name)
    with z.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                got_shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                got_shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as e:
            raise _bad(filepath, f"{name} is not a valid .npy entry ({e})") from None
        if dtype not in dtypes:
            raise _bad(filepath, f"{name} has dtype {dtype.str!r}; expected one of {[d.str for d in dtypes]}")
        if tuple(got_shape) != tuple(shape):
            raise _bad(filepath, f"{name} has shape {tuple(got_shape)}, the model expects {tuple(shape)}")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != f.tell() + nbytes:
            raise _bad(filepath, f"{name} holds {info.file_size - f.tell()} data bytes; shape {tuple(shape)} "
                                 f"of {dtype.str} needs {nbytes}")
        buf = bytearray(nbytes)
        if f.readinto(buf) != nbytes:
            raise _bad(filepath, f"{name} is truncated")
    return np.frombuffer(buf, dtype).reshape(shape, order="F" if fortran else "C")


def _read_optimizer_state(z, optimizer, filepath):
    names = _entries(z, "optimizer/")
    expected = optimizer.get_state()  # [iterations, *slots]: gives every entry's shape and dtype
    if not names:
        warnings.warn(f"load_model: {filepath!r} has no optimizer state; {type(optimizer).__name__} starts "
                      "from scratch (iterations 0, zero slots)", RuntimeWarning, stacklevel=3)
        return None
    iterations = _read_npy(z, names[0], _ITERATIONS_DTYPES, (), filepath)
    if len(names) == 1 and len(expected) > 1 and int(iterations) == 0:
        return None  # a never-stepped optimizer saved before it had slots: fresh slots are its state
    if len(names) != len(expected):
        raise _bad(filepath, f"{len(names)} optimizer arrays, {type(optimizer).__name__} on this model has "
                             f"{len(expected)}")
    state = [iterations]
    state += [_read_npy(z, n, _WEIGHT_DTYPES, e.shape, filepath) for n, e in zip(names[1:], expected[1:])]
    return state


# Other file formats' loaders and savers, by (lower-case) extension. A format module registers itself
# here so neither saving nor models imports it: pynn.keras_file imports models, which import saving.
_LOADERS = {}
_SAVERS = {}


def register_loader(extension, loader):
    """Make ``load_model`` hand files ending in ``extension`` to ``loader(filepath, compile=...)``.

    Args:
        extension: the file name ending, e.g. ".keras".
        loader: ``loader(filepath, compile=True)`` returning a Model.

    Returns:
        None.

    Example:
        >>> def load_architecture(filepath, compile=True):
        ...     with open(filepath) as f:
        ...         return pynn.models.model_from_json(f.read())
        >>> pynn.saving.register_loader(".arch.json", load_architecture)
        >>> model = pynn.Sequential([pynn.Input((3,)), pynn.layers.Dense(2)])
        >>> with open("model.arch.json", "w") as f:
        ...     _ = f.write(model.to_json())
        >>> type(pynn.load_model("model.arch.json")).__name__
        'Sequential'
    """
    _LOADERS[extension.lower()] = loader


def register_saver(extension, saver):
    """Make ``Model.save`` hand files ending in ``extension`` to ``saver(model, filepath)``.

    Args:
        extension: the file name ending, e.g. ".keras".
        saver: ``saver(model, filepath)``.

    Returns:
        None.

    Example:
        >>> def save_architecture(model, filepath):
        ...     with open(filepath, "w") as f:
        ...         f.write(model.to_json())
        >>> pynn.saving.register_saver(".arch.json", save_architecture)
        >>> model = pynn.Sequential([pynn.Input((3,)), pynn.layers.Dense(2)])
        >>> model.save("model.arch.json")
        >>> open("model.arch.json").read().startswith("{")
        True
    """
    _SAVERS[extension.lower()] = saver


# Weights-only formats for Model.save_weights/load_weights, by (lower-case) file-name ending:
# (save(model, filepath), load(model, filepath)); pynn.keras_file registers ".weights.h5" and
# (load only) ".keras". Any other name is pynn's .npz.
_WEIGHT_FORMATS = {}


def _register_weights_format(extension, save, load):
    _WEIGHT_FORMATS[extension.lower()] = (save, load)


def _weights_format_for(filepath):
    """(save, load) registered for ``filepath``'s ending, or None (pynn's .npz)."""
    name = os.fspath(filepath).lower()
    return next((io for extension, io in _WEIGHT_FORMATS.items() if name.endswith(extension)), None)


def saver_for(filepath):
    """The registered saver for ``filepath``'s extension, else ``save_model`` (pynn's own format).

    Args:
        filepath: the file name to be written.

    Returns:
        A function ``saver(model, filepath)``.

    Example:
        >>> pynn.saving.saver_for("model.pynn") is pynn.saving.save_model
        True
        >>> pynn.saving.saver_for("model.keras").__module__
        'pynn.keras_file'
    """
    name = os.fspath(filepath).lower()
    return next((saver for extension, saver in _SAVERS.items() if name.endswith(extension)), save_model)


def load_model(filepath, compile=True):
    """Rebuild a model saved with ``model.save``: architecture, weights, and
    (with ``compile``) loss, metrics and optimizer state, so training continues
    exactly where it stopped. A malformed or hostile file is a ValueError naming
    the problem; no entry is read before its size is checked against the shape
    the model expects.

    Args:
        filepath: a file written by ``model.save`` (a ``.keras`` name reads a Keras 3 archive).
        compile: also restore loss, metrics and optimizer state.

    Returns:
        The Model.

    Example:
        >>> model = pynn.Sequential([pynn.Input((2,)), pynn.layers.Dense(1, kernel_initializer="ones")])
        >>> model.save("model.pynn")
        >>> restored = pynn.load_model("model.pynn")
        >>> print(restored.predict(np.ones((1, 2), np.float32), verbose=0))
        [[2.]]
    """
    filepath = os.fspath(filepath)
    for extension, loader in _LOADERS.items():   # e.g. ".keras": pynn.keras_file registers itself
        if filepath.lower().endswith(extension):
            return loader(filepath, compile=compile)
    try:
        with zipfile.ZipFile(filepath) as z:
            config = _read_config(z, filepath)
            if config.get("format") != FORMAT:
                raise _bad(filepath, "not a pynn model file (model.json has no 'format': 'pynn-model')")
            version = config.get("version")
            if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
                newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
                raise _bad(filepath, f"format version {version!r} is not one this pynn reads (1..{VERSION})"
                                     + ("; a newer pynn wrote it: upgrade pynn to load it" if newer else ""))
            return _build(z, config, filepath, compile)
    except zipfile.BadZipFile as e:
        raise _bad(filepath, f"not a readable pynn model file ({e})") from e
    except RecursionError:
        raise _bad(filepath, "model.json nests too deeply") from None
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        # Anything the checks above did not name: still a clear error about the file, never a crash.
        raise _bad(filepath, f"malformed model.json ({type(e).__name__}: {e})") from e


def _build(z, config, filepath, compile):
    from . import losses, optimizers
    if "model" not in config:
        raise _bad(filepath, "model.json has no 'model' entry")
    model = deserialize_layer(config["model"])
    if not model.built and config.get("build"):
        _rebuild(model, config["build"])
    variables = model.weights
    names = _entries(z, "weights/")
    if len(names) != len(variables):
        raise _bad(filepath, f"{len(names)} weight arrays, the model in model.json has {len(variables)}")
    # float variables take float32/float64 entries; a non-float variable (Normalization's
    # sample count) takes exactly its own dtype: nothing is ever truncated
    weights = [_read_npy(z, n, _WEIGHT_DTYPES if v.data.dtype.kind == "f" else (v.data.dtype.newbyteorder("<"),),
                         v.shape, filepath) for n, v in zip(names, variables)]
    model.set_weights(weights)  # checks every shape first, names the weight
    spec = config.get("compile")
    if compile and spec is not None:
        if not isinstance(spec, dict) or "optimizer" not in spec:
            raise _bad(filepath, "model.json's 'compile' must be an object with an 'optimizer'")
        loss, loss_weights, metrics, weighted_metrics = _deserialize_compile_spec(spec)
        model.compile(optimizer=optimizers.get(spec["optimizer"]), loss=loss, loss_weights=loss_weights,
                      metrics=metrics, weighted_metrics=weighted_metrics)
        if hasattr(model.optimizer, "set_state"):
            model.optimizer.build(model.trainable_weights)
            state = _read_optimizer_state(z, model.optimizer, filepath)
            if state is not None:
                model.optimizer.set_state(state)
    return model


def register_keras_serializable(package="Custom", name=None):
    """Keras' decorator: ``@pynn.saving.register_keras_serializable(package="my_pkg")``
    makes a custom Layer/Model loadable by ``load_model`` (registered under its
    class name, or ``name``; Keras' ``"package>name"`` key is accepted too).

    Args:
        package: the prefix of Keras' "package>name" key.
        name: the registered name (default the class name).

    Returns:
        A class decorator (returning the class unchanged).

    Example:
        >>> @pynn.saving.register_keras_serializable(package="docs")
        ... class DocDouble(pynn.layers.Layer):
        ...     def call(self, x):
        ...         return x * 2
        >>> layer = pynn.saving.deserialize_layer({"class_name": "docs>DocDouble", "config": {}})
        >>> print(layer(np.ones((1, 2), np.float32)).numpy())
        [[2. 2.]]
    """
    def deco(cls):
        key = name or cls.__name__
        register_serializable(cls, name=key)
        register_serializable(cls, name=f"{package}>{key}")
        return cls
    return deco
