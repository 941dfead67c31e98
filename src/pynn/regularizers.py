"""Weight regularizers (Keras API): ``reg(x)`` is the penalty added to the loss.

On an np.ndarray the result is a Python float; on a pynn Tensor it is a scalar
Tensor built from ``x.abs()``, ``x * x``, ``.sum()`` and scalar ``*`` only, so
autograd differentiates it.
"""
from __future__ import annotations

import numpy as np

from .utils import identifiers as _identifiers

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize", "deserialize"]


def _check(cls, name, value):
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{cls}: {name} must be a finite number >= 0, got {value}")
    return value


class Regularizer(_identifiers.Configurable):
    def __call__(self, x):
        return 0.0


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)``. Keras defaults: l1=0.0, l2=0.0."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _check(type(self).__name__, "l1", l1)
        self.l2 = _check(type(self).__name__, "l2", l2)

    def __call__(self, x):
        if isinstance(x, np.ndarray) or np.isscalar(x):
            x = np.asarray(x, dtype=np.float64)
            return float(self.l1 * np.abs(x).sum() + self.l2 * np.square(x).sum())
        out = None
        if self.l1:
            out = x.abs().sum() * self.l1
        if self.l2:
            t = (x * x).sum() * self.l2
            out = t if out is None else out + t
        if out is None:
            out = x.abs().sum() * 0.0
        return out

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|x|)``, default l1=0.01."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1, l2=0.0)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(x**2)``, default l2=0.01 (no 1/2 factor, as Keras)."""

    def __init__(self, l2=0.01):
        super().__init__(l1=0.0, l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l1=0.01):
    """Keras' ``l1`` shortcut: l1 · Σ|w|.

    Args:
        l1: the factor (default 0.01).

    Returns:
        An L1 regularizer: ``reg(w)`` is the penalty added to the loss.

    Example:
        >>> reg = pynn.regularizers.l1(0.1)
        >>> print(round(float(reg(np.array([1.0, -2.0], np.float32))), 4))
        0.3
    """
    return L1(l1)


def l2(l2=0.01):
    """Keras' ``l2`` shortcut: l2 · Σw².

    Args:
        l2: the factor (default 0.01).

    Returns:
        An L2 regularizer: ``reg(w)`` is the penalty added to the loss.

    Example:
        >>> reg = pynn.regularizers.l2(0.1)
        >>> print(round(float(reg(np.array([1.0, -2.0], np.float32))), 4))
        0.5
    """
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    """Keras' ``l1_l2`` shortcut: l1 · Σ|w| + l2 · Σw².

    Args:
        l1: the L1 factor (default 0.01).
        l2: the L2 factor (default 0.01).

    Returns:
        An L1L2 regularizer.

    Example:
        >>> reg = pynn.regularizers.l1_l2(l1=0.1, l2=0.1)
        >>> print(round(float(reg(np.array([1.0, -2.0], np.float32))), 4))
        0.8
    """
    return L1L2(l1=l1, l2=l2)


_BY_NAME = {"l1": L1, "l2": L2, "l1l2": L1L2, "l1_l2": lambda: L1L2(0.01, 0.01)}
_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}


serialize = _identifiers.serialize


def deserialize(config):
    """A regularizer from ``serialize``'s dict.

    Args:
        config: a {"class_name": "L1" | "L2" | "L1L2", "config": {...}} dict.

    Returns:
        The regularizer. Raises ValueError for an unknown class name.

    Example:
        >>> reg = pynn.regularizers.deserialize({"class_name": "L1", "config": {"l1": 0.2}})
        >>> type(reg).__name__, reg.get_config()
        ('L1', {'l1': 0.2})
    """
    return _identifiers.deserialize("regularizers", "regularizer", _CLASSES, config)


def get(identifier):
    """A regularizer from None, a name ("l1", "l2", "l1_l2"), a config dict, or a callable.

    Args:
        identifier: None, a name, a config dict, or a regularizer/callable.

    Returns:
        The regularizer (None for None).

    Example:
        >>> pynn.regularizers.get("l2").get_config()
        {'l2': 0.01}
        >>> pynn.regularizers.get(None) is None
        True
    """
    return _identifiers.get("regularizers", "regularizer", _BY_NAME, "l1, l2, l1_l2", _CLASSES, identifier)
