"""Weight constraints (Keras API): ``c(w) -> w'`` on an np.ndarray.

The optimizer applies ``var.constraint`` after each update, in place
(``var.data[...] = c(var.data)``).
"""
from __future__ import annotations

import numpy as np

from .utils import identifiers as _identifiers

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "get", "serialize", "deserialize"]

EPSILON = 1e-7  # Keras backend.epsilon()


class Constraint(_identifiers.Configurable):
    def __call__(self, w):
        return w


class MaxNorm(Constraint):
    """Rescale so the L2 norm along ``axis`` (incoming weights; axis=0 for a
    Dense kernel (in, out), [0, 1, 2] for a Conv2D kernel) is at most max_value:
    ``w * clip(n, 0, max_value) / (eps + n)``."""

    def __init__(self, max_value=2, axis=0):
        if max_value < 0:
            raise ValueError(f"MaxNorm: max_value must be >= 0, got {max_value}")
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w):
        w = np.asarray(w)
        norms = np.sqrt(np.sum(np.square(w), axis=_axis(self.axis), keepdims=True))
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Zero out negative weights."""

    def __call__(self, w):
        w = np.asarray(w)
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """``w / (eps + ||w||)`` along ``axis``."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = np.asarray(w)
        norms = np.sqrt(np.sum(np.square(w), axis=_axis(self.axis), keepdims=True))
        return (w / (EPSILON + norms)).astype(w.dtype, copy=False)

    def get_config(self):
        return {"axis": self.axis}


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


_BY_NAME = {"max_norm": MaxNorm, "maxnorm": MaxNorm, "non_neg": NonNeg, "nonneg": NonNeg,
            "unit_norm": UnitNorm, "unitnorm": UnitNorm}
_CLASSES = {"MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm}


serialize = _identifiers.serialize


def deserialize(config):
    """A constraint from ``serialize``'s dict.

    Args:
        config: a {"class_name": "MaxNorm" | "NonNeg" | "UnitNorm" ..., "config": {...}} dict.

    Returns:
        The constraint. Raises ValueError for an unknown class name.

    Example:
        >>> c = pynn.constraints.deserialize({"class_name": "MaxNorm", "config": {"max_value": 1.0}})
        >>> type(c).__name__
        'MaxNorm'
    """
    return _identifiers.deserialize("constraints", "constraint", _CLASSES, config)


def get(identifier):
    """A constraint from None, a name, a config dict or a callable.

    Args:
        identifier: None, a name ("max_norm", "non_neg", "unit_norm"), a config dict, or a callable.

    Returns:
        The constraint (None for None): ``c(w)`` is w projected onto the constraint.

    Example:
        >>> c = pynn.constraints.get("non_neg")
        >>> print(np.asarray(c(np.array([-1.0, 2.0], np.float32))) + 0.0)   # + 0.0: -0. prints as 0.
        [0. 2.]
    """
    return _identifiers.get("constraints", "constraint", _BY_NAME, "max_norm, non_neg, unit_norm", _CLASSES,
                            identifier)
