"""Activation layers with parameters (Keras names and defaults): ReLU, LeakyReLU,
ELU, Softmax, PReLU."""
import numpy as np

from .. import constraints as constraints_mod, functional as F, initializers, regularizers as regularizers_mod
from .base import Layer


class _Elementwise(Layer):
    supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape


class ReLU(_Elementwise):
    """ReLU(max_value=None, negative_slope=0.0, threshold=0.0), Keras' formula:
    ``x`` for ``threshold < x``, clipped to ``max_value``; ``negative_slope *
    (x - threshold)`` below the threshold.

    Example: ``layers.ReLU(max_value=6.0)`` is ReLU6.

    Example:
        >>> pynn.layers.ReLU(max_value=1.0)(np.array([[-1.0, 0.5, 2.0]], np.float32)).numpy()
        array([[0. , 0.5, 1. ]], dtype=float32)
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"ReLU: max_value must be >= 0, got {max_value}")
        if negative_slope < 0:
            raise ValueError(f"ReLU: negative_slope must be >= 0, got {negative_slope}")
        self.max_value, self.negative_slope, self.threshold = max_value, float(negative_slope), float(threshold)

    def call(self, x):
        if self.max_value is None and self.threshold == 0.0:
            return F.leaky_relu(x, alpha=self.negative_slope) if self.negative_slope else F.relu(x)
        negative = F.relu(self.threshold - x) if self.negative_slope else None
        if self.threshold != 0.0:
            y = x * (x.data > self.threshold).astype(x.dtype)
        else:
            y = F.relu(x)
        if self.max_value is not None:
            y = F.clip(y, 0.0, float(self.max_value))
        if negative is not None:
            y = y - negative * self.negative_slope
        return y

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """LeakyReLU(negative_slope=0.3): ``x`` if ``x > 0`` else ``negative_slope * x`` (Keras' default slope).

    Example:
        >>> pynn.layers.LeakyReLU(negative_slope=0.1)(np.array([[-1.0, 2.0]], np.float32)).numpy()
        array([[-0.1,  2. ]], dtype=float32)
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        if negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be >= 0, got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def call(self, x):
        return F.leaky_relu(x, alpha=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """ELU(alpha=1.0): ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``.

    Example:
        >>> pynn.layers.ELU()(np.array([[-1.0, 2.0]], np.float32)).numpy().round(3)
        array([[-0.632,  2.   ]], dtype=float32)
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, x):
        return F.elu(x, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_Elementwise):
    """Softmax(axis=-1); ``layer(x, mask)`` gives masked-out positions zero
    probability (a boolean mask broadcastable to x, True = keep).

    Example:
        >>> pynn.layers.Softmax()(np.zeros((1, 4), np.float32)).numpy()
        array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x, mask=None):
        if mask is not None:
            keep = np.asarray(mask.data if hasattr(mask, "data") else mask).astype(bool)
            x = x + np.where(keep, 0.0, -1e9).astype(x.dtype)   # Keras adds a large negative
        if isinstance(self.axis, (list, tuple)):
            e = F.exp(x - np.max(x.data, axis=tuple(self.axis), keepdims=True))
            return e / F.sum(e, axis=tuple(self.axis), keepdims=True)
        return F.softmax(x, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class PReLU(_Elementwise):
    """PReLU(alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
    shared_axes=None): ``relu(x) - alpha * relu(-x)`` with a learnt ``alpha`` of
    shape ``input_shape[1:]`` (size 1 along ``shared_axes``), as Keras.

    Example:
        >>> pynn.layers.PReLU(alpha_initializer="zeros")(np.array([[-1.0, 2.0]], np.float32)).numpy()
        array([[0., 2.]], dtype=float32)
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = alpha_initializer
        self.alpha_regularizer = regularizers_mod.get(alpha_regularizer)
        self.alpha_constraint = constraints_mod.get(alpha_constraint)
        if shared_axes is not None and not isinstance(shared_axes, (list, tuple)):
            shared_axes = [shared_axes]
        self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            if not 1 <= a < len(input_shape):
                raise ValueError(f"PReLU {self.name!r}: shared axis {a} is not a feature axis of {input_shape}")
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"PReLU {self.name!r}: unknown dimension in {input_shape}; share it with shared_axes")
        self.alpha = self.add_weight(shape=tuple(shape), initializer=initializers.get(self.alpha_initializer),
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint,
                                     name="alpha")
        self.built = True

    def call(self, x):
        return F.relu(x) - self.alpha * F.relu(-x)

    def get_config(self):
        if not isinstance(self.alpha_initializer, str) or self.alpha_regularizer or self.alpha_constraint:
            raise ValueError(f"PReLU {self.name!r}: to save it, pass alpha_initializer by name and no "
                             "regularizer/constraint objects")
        return {**super().get_config(), "alpha_initializer": self.alpha_initializer, "shared_axes": self.shared_axes}
