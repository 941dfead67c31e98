"""The layer-class registry behind saving: class name <-> class, below every layer.

pynn's own Layer and Model subclasses register themselves (``Layer.__init_subclass__``);
custom ones with ``@pynn.register_serializable``. Saving, the models and the
wrapper layers (Bidirectional, TimeDistributed) read it here, so none of them
imports another to find a class by name.
"""
_BUILTIN: dict = {}
_CUSTOM: dict = {}


def register_builtin(cls):
    """Called for each of pynn's own layer classes as it is defined."""
    if not cls.__name__.startswith("_"):
        _BUILTIN[cls.__name__] = cls


def register_serializable(cls=None, *, name=None):
    """Class decorator: make a custom Layer (or Model) loadable by ``load_model``."""
    def deco(c):
        _CUSTOM[name or c.__name__] = c
        return c
    return deco(cls) if cls is not None else deco


def lookup(class_name):
    """The class saved as ``class_name`` (a custom registration wins over pynn's own)."""
    if not isinstance(class_name, str):
        raise ValueError(f"load_model: a layer's class_name must be a string, got {class_name!r}")
    cls = _CUSTOM.get(class_name) or _BUILTIN.get(class_name)
    if cls is None:
        raise ValueError(f"load_model: unknown layer class {class_name!r}; known classes: "
                         f"{', '.join(sorted(set(_BUILTIN) | set(_CUSTOM)))}. "
                         "Register custom layers with @pynn.register_serializable")
    return cls


def serialize_layer(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(spec):
    if not isinstance(spec, dict) or "class_name" not in spec or not isinstance(spec.get("config"), dict):
        text = repr(spec)
        raise ValueError(f"load_model: a layer entry must be an object with 'class_name' and a 'config' object, "
                         f"got {text if len(text) <= 120 else text[:120] + '...'}")
    return lookup(spec["class_name"]).from_config(dict(spec["config"]))
