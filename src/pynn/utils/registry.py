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
    """Class decorator: make a custom Layer (or Model) loadable by ``load_model``.

    Args:
        cls: the class (when used as ``@register_serializable`` without parentheses).
        name: the name saved files use for it (default the class name).

    Returns:
        The class unchanged, or a decorator when called with ``name`` only.

    Example:
        >>> @pynn.register_serializable
        ... class DocScale(pynn.layers.Layer):
        ...     def __init__(self, factor=2.0, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.factor = factor
        ...     def call(self, x):
        ...         return x * self.factor
        ...     def get_config(self):
        ...         return {**super().get_config(), "factor": self.factor}
        >>> layer = pynn.saving.deserialize_layer({"class_name": "DocScale", "config": {"factor": 3.0}})
        >>> print(layer(np.ones((1, 2), np.float32)).numpy())
        [[3. 3.]]
    """
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
    """A layer's class name and config, as saved files hold it.

    Args:
        layer: a Layer or Model.

    Returns:
        {"class_name": ..., "config": layer.get_config()}, which ``deserialize_layer`` reads back.

    Example:
        >>> spec = pynn.saving.serialize_layer(pynn.layers.Dense(2, name="d"))
        >>> spec["class_name"], spec["config"]["units"]
        ('Dense', 2)
    """
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(spec):
    """The layer a ``serialize_layer`` dict describes, from its registered class.

    Args:
        spec: a {"class_name": ..., "config": {...}} dict (``serialize_layer``'s output).

    Returns:
        A new layer (unbuilt, fresh weights). Raises ValueError for a malformed spec
        or an unknown class.

    Example:
        >>> layer = pynn.saving.deserialize_layer({"class_name": "Dense", "config": {"units": 4}})
        >>> type(layer).__name__, layer.units
        ('Dense', 4)
    """
    if not isinstance(spec, dict) or "class_name" not in spec or not isinstance(spec.get("config"), dict):
        text = repr(spec)
        raise ValueError(f"load_model: a layer entry must be an object with 'class_name' and a 'config' object, "
                         f"got {text if len(text) <= 120 else text[:120] + '...'}")
    return lookup(spec["class_name"]).from_config(dict(spec["config"]))
