"""Resolving Keras-style identifiers (None, a name, a {"class_name", "config"} dict,
or a callable) for the small object families: regularizers, constraints."""


class Configurable:
    """The base of the small object families: a config of the constructor's arguments."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def serialize(obj):
    """A regularizer's or constraint's class name and config (``regularizers.serialize``, ``constraints.serialize``).

    Args:
        obj: an object with ``get_config`` (a regularizer or constraint).

    Returns:
        {"class_name": its class name, "config": its config}.

    Example:
        >>> pynn.regularizers.serialize(pynn.regularizers.l2(0.5))
        {'class_name': 'L2', 'config': {'l2': 0.5}}
    """
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(module, kind, classes, config):
    name = config.get("class_name")
    if name not in classes:
        raise ValueError(f"{module}.deserialize: unknown {kind} {name!r}; known: {sorted(classes)}")
    return classes[name].from_config(config.get("config", {}))


def get(module, kind, by_name, known, classes, identifier):
    """None -> None; dict -> deserialize; name -> by_name[name.lower()](); callable -> itself."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(module, kind, classes, identifier)
    if isinstance(identifier, str):
        make = by_name.get(identifier.lower())
        if make is None:
            raise ValueError(f"{module}.get: unknown {kind} {identifier!r}; known: {known}")
        return make()
    if callable(identifier):
        return identifier
    raise ValueError(f"{module}.get: could not interpret {kind} identifier {identifier!r}")
