"""Activation functions by name: ``pynn.activations.get("relu")(x)``.

Each is a callable on Tensors (or arrays) returning a Tensor, with Keras names.
"""
from . import functional as F

_ACTIVATIONS = {
    "linear": F.linear,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "softmax": F.softmax,
    "log_softmax": F.log_softmax,
    "gelu": F.gelu,
    "elu": F.elu,
}

linear, relu, leaky_relu, sigmoid, tanh = F.linear, F.relu, F.leaky_relu, F.sigmoid, F.tanh
softmax, log_softmax, gelu, elu = F.softmax, F.log_softmax, F.gelu, F.elu


def get(identifier):
    """Name (or None for linear, or a callable) -> activation callable."""
    if identifier is None:
        return F.linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _ACTIVATIONS:
        return _ACTIVATIONS[identifier]
    raise ValueError(f"Unknown activation {identifier!r}; expected one of {sorted(_ACTIVATIONS)} or a callable")


def serialize(fn) -> str:
    for name, f in _ACTIVATIONS.items():
        if f is fn:
            return name
    return getattr(fn, "__name__", "custom")
