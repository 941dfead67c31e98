"""Activation functions by name: ``pynn.activations.get("relu")(x)``.

Each is a callable on Tensors (or arrays) returning a Tensor, with Keras 3's
names (and its aliases ``swish`` and ``hard_swish``): every elementwise
activation of the table in ``pynn.backend.numpy.activations``, plus softmax and
log_softmax. ``gelu(x, approximate=True)`` is GELU's tanh form.
"""
from . import functional as F
from .functional.activation import ALIASES

_ACTIVATIONS = {**F.ACTIVATIONS, "softmax": F.softmax, "log_softmax": F.log_softmax}

globals().update(_ACTIVATIONS)
globals().update({alias: _ACTIVATIONS[name] for alias, name in ALIASES.items()})

__all__ = sorted(_ACTIVATIONS) + sorted(ALIASES) + ["get", "serialize"]


def get(identifier):
    """Name (or None for linear, or a callable) -> activation callable.

    Args:
        identifier: an activation name (Keras' names and aliases), None, or a callable.

    Returns:
        The activation function. Raises ValueError for an unknown name.

    Example:
        >>> relu = pynn.activations.get("relu")
        >>> print(np.asarray(relu(np.array([-1.0, 2.0], np.float32))))
        [0. 2.]
        >>> pynn.activations.get("swish") is pynn.activations.silu
        True
    """
    if identifier is None:
        return F.linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str):
        name = ALIASES.get(identifier, identifier)
        if name in _ACTIVATIONS:
            return _ACTIVATIONS[name]
    raise ValueError(f"Unknown activation {identifier!r}; expected one of "
                     f"{sorted(_ACTIVATIONS) + sorted(ALIASES)} or a callable")


def serialize(fn) -> str:
    """The name ``get`` maps back to ``fn`` (an alias is saved under its Keras name).

    Args:
        fn: an activation function.

    Returns:
        Its name (a str), or the function's ``__name__`` for a custom one.

    Example:
        >>> pynn.activations.serialize(pynn.activations.swish)
        'silu'
    """
    for name, f in _ACTIVATIONS.items():
        if f is fn:
            return name
    return getattr(fn, "__name__", "custom")
