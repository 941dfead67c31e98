"""BatchNormalization and LayerNormalization with Keras weights and defaults."""
import numpy as np

from .. import _parallel, functional as F
from .base import Layer


def _axes(axis, ndim):
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axis)


def _composed(x, axes, gamma, beta, epsilon, bshape):
    """(y, mean, var) normalising x over ``axes`` from differentiable ops (the axes the fused
    kernels do not cover); gamma and beta reshaped to ``bshape``."""
    mean = F.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    var = F.mean(centered * centered, axis=axes, keepdims=True)
    y = centered / F.sqrt(var + epsilon)
    if gamma is not None:
        y = y * F.reshape(gamma, bshape)
    if beta is not None:
        y = y + F.reshape(beta, bshape)
    return y, mean, var


class BatchNormalization(Layer):
    """Normalises each feature (``axis``, default last: channels_last) over the batch.

    Weights as Keras: [gamma, beta, moving_mean, moving_variance]. In training it
    uses the batch's mean and (biased) variance and updates the moving
    statistics: ``moving = moving·momentum + batch·(1 − momentum)``; at inference,
    or when the layer is frozen (``trainable = False``, as Keras), it uses the
    moving statistics.

    ``synchronized=True`` (Keras's argument): under ``pynn.distribution.DataParallel``
    the batch statistics are those of the global batch (every rank's slice), at
    the cost of two small allreduces per layer and step; the default keeps
    per-rank statistics, as Keras and PyTorch do. On one process both are the same.

    Example:
        >>> layer = pynn.layers.BatchNormalization()
        >>> layer(np.ones((2, 8, 8, 3), np.float32)).shape
        (2, 8, 8, 3)
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.synchronized = bool(synchronized)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum}")
        self.axis, self.momentum, self.epsilon = axis, momentum, epsilon
        self.center, self.scale = center, scale

    def build(self, input_shape):
        ax = _axes(self.axis, len(input_shape))
        shape = tuple(input_shape[a] for a in ax)
        if any(d is None for d in shape):
            raise ValueError(f"BatchNormalization {self.name!r}: the normalised axis of input {input_shape} "
                             "must have a known size")
        self.param_shape = shape
        self.gamma = self.add_weight("gamma", shape, "ones") if self.scale else None
        self.beta = self.add_weight("beta", shape, "zeros") if self.center else None
        self.moving_mean = self.add_weight("moving_mean", shape, "zeros", trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape, "ones", trainable=False)
        self.built = True

    def _broadcast(self, ndim):
        ax = _axes(self.axis, ndim)
        return tuple(self.param_shape[ax.index(i)] if i in ax else 1 for i in range(ndim))

    def call(self, x, training=False):
        ax = _axes(self.axis, x.ndim)
        if training and self.trainable:
            strategy = _parallel.active() if self.synchronized else None
            if strategy is not None:
                y, mean, var = self._synchronized_training(x, ax, strategy)
            elif ax == (x.ndim - 1,):
                # channels_last: one fused kernel each way (native when available).
                stats = {}
                y = F.batch_norm(x, self.gamma, self.beta, self.epsilon, stats=stats)
                mean = stats["mean"]
                var = 1.0 / stats["inv_std"].astype(np.float64) ** 2 - self.epsilon
            else:
                y, mean, var = self._composed_training(x, ax)
            m = self.momentum
            self.moving_mean.data[...] = self.moving_mean.data * m + mean.reshape(self.param_shape) * (1 - m)
            self.moving_variance.data[...] = self.moving_variance.data * m + var.reshape(self.param_shape) * (1 - m)
            return y
        bshape = self._broadcast(x.ndim)
        mean = self.moving_mean.data.reshape(bshape)
        inv = (1.0 / np.sqrt(self.moving_variance.data + self.epsilon)).reshape(bshape).astype(x.dtype)
        y = (x - mean) * inv
        if self.gamma is not None:
            y = y * F.reshape(self.gamma, bshape)
        if self.beta is not None:
            y = y + F.reshape(self.beta, bshape)
        return y

    def _composed_training(self, x, ax):
        """Any other axis: the same math composed from differentiable ops."""
        reduce_axes = tuple(i for i in range(x.ndim) if i not in ax)
        y, mean, var = _composed(x, reduce_axes, self.gamma, self.beta, self.epsilon, self._broadcast(x.ndim))
        return y, mean.data, var.data

    def _synchronized_training(self, x, ax, strategy):
        """As _composed_training, with the mean and variance of the global batch."""
        reduce_axes = tuple(i for i in range(x.ndim) if i not in ax)
        bshape = self._broadcast(x.ndim)
        mean, var = strategy.batch_moments(x, reduce_axes)
        y = (x - mean) / F.sqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * F.reshape(self.gamma, bshape)
        if self.beta is not None:
            y = y + F.reshape(self.beta, bshape)
        return y, mean.data, var.data

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "synchronized": self.synchronized}


class LayerNormalization(Layer):
    """Normalises each sample over ``axis`` (default last); weights [gamma, beta].

    Example:
        >>> layer = pynn.layers.LayerNormalization()
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 5, 3)
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon, self.center, self.scale = axis, epsilon, center, scale

    def build(self, input_shape):
        ax = _axes(self.axis, len(input_shape))
        shape = tuple(input_shape[a] for a in ax)
        self.param_shape = shape
        self.gamma = self.add_weight("gamma", shape, "ones") if self.scale else None
        self.beta = self.add_weight("beta", shape, "zeros") if self.center else None
        self.built = True

    def call(self, x):
        ax = _axes(self.axis, x.ndim)
        if ax == (x.ndim - 1,):
            return F.layer_norm(x, self.gamma, self.beta, self.epsilon)
        bshape = tuple(x.shape[i] if i in ax else 1 for i in range(x.ndim))
        return _composed(x, ax, self.gamma, self.beta, self.epsilon, bshape)[0]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale}
