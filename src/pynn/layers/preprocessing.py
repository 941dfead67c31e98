"""Preprocessing and normalisation layers with Keras' names, weights and defaults:
Normalization (with ``adapt``), CategoryEncoding, GroupNormalization."""
import numpy as np

from .. import functional as F
from ..autograd import Tensor
from .base import Layer

_EPSILON = 1e-7   # keras.backend.epsilon()


class Normalization(Layer):
    """Normalization(axis=-1, mean=None, variance=None, invert=False):
    ``(x - mean) / sqrt(variance)`` per position of ``axis`` (None: one mean and
    variance for everything). Either pass ``mean``/``variance`` or call
    ``layer.adapt(data)`` before training; weights as Keras: [mean, variance, count].

    Example::

        norm = layers.Normalization()
        norm.adapt(x_train)          # per-feature statistics
        model = pynn.Sequential([pynn.Input((d,)), norm, layers.Dense(1)])

    Example:
        >>> layer = pynn.layers.Normalization()
        >>> layer.adapt(np.array([[0.0], [2.0]], np.float32))
        >>> layer(np.array([[1.0], [3.0]], np.float32)).numpy()
        array([[0.],
               [2.]], dtype=float32)
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        self.axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: pass both mean and variance, or neither (then call adapt())")
        self.input_mean, self.input_variance, self.invert = mean, variance, invert

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"Normalization {self.name!r}: axis {self.axis} out of range for inputs of rank {ndim}")
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(f"Normalization {self.name!r}: axis {d} of {input_shape} must be known")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = tuple(input_shape[d] if d in self._keep_axis else 1 for d in range(ndim))
        self._build_shape = tuple(input_shape)
        shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="mean")
            self.adapt_variance = self.add_weight(shape=shape, initializer="ones", trainable=False, name="variance")
            # Keras 3 keeps this int32 slot in the weights list (and leaves it 0 after
            # adapt); it is here so get_weights/set_weights line up with Keras'.
            self.count = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False, name="count")
            self.adapted = False
        else:
            mean, var = np.asarray(self.input_mean, np.float32), np.asarray(self.input_variance, np.float32)
            expanded = [1] * ndim
            for i in range(1, mean.ndim + 1):
                expanded[self._keep_axis[-i]] = mean.shape[-i]
            self._fixed = (np.broadcast_to(mean.reshape(expanded), self._broadcast_shape),
                           np.broadcast_to(var.reshape(expanded), self._broadcast_shape))
            self.adapted = True
        self.built = True

    def adapt(self, data):
        """Compute the mean and variance of ``data`` (an array, or an iterable of
        batches such as a PyDataset) along every axis but ``axis``."""
        if isinstance(data, Tensor):
            data = data.data
        batches = [np.asarray(data)] if isinstance(data, np.ndarray) or not hasattr(data, "__iter__") else (
            np.asarray(b[0] if isinstance(b, tuple) else b) for b in data)
        n, total, total_sq, first = 0, 0.0, 0.0, True   # running sums in float64: one pass over batches
        for b in batches:
            if first:
                if not self.built:
                    self.build((None,) + b.shape[1:])
                elif self.input_mean is not None:
                    raise ValueError(f"Normalization {self.name!r}: adapt() on a layer given mean/variance")
                first = False
            b = b.astype(np.float64)
            for d in self._keep_axis:
                if b.shape[d] != self._build_shape[d]:
                    raise ValueError(f"Normalization {self.name!r}: built for {self._build_shape}, adapt() got "
                                     f"batches of shape {b.shape}")
            count = int(np.prod([b.shape[d] for d in self._reduce_axis])) if self._reduce_axis else 1
            n += count
            total = total + b.sum(axis=self._reduce_axis)
            total_sq = total_sq + (b * b).sum(axis=self._reduce_axis)
        if first:
            raise ValueError(f"Normalization {self.name!r}: adapt() received no data")
        mean = total / n
        var = np.maximum(total_sq / n - mean * mean, 0.0)
        self.adapt_mean.assign(mean.astype(np.float32).reshape(self.adapt_mean.shape))
        self.adapt_variance.assign(var.astype(np.float32).reshape(self.adapt_variance.shape))
        self.adapted = True

    def _mean_scale(self, dtype):
        """(mean, scale) in ``dtype``, broadcastable against the input: the fixed or adapted statistics,
        scale = max(sqrt(variance), epsilon). call() and the ONNX exporter both use it, so they agree."""
        if self.input_mean is not None:
            mean, var = self._fixed
        else:
            mean = self.adapt_mean.data.reshape(self._broadcast_shape)
            var = self.adapt_variance.data.reshape(self._broadcast_shape)
        return np.asarray(mean).astype(dtype), np.maximum(np.sqrt(var), _EPSILON).astype(dtype)

    def call(self, x):
        mean, scale = self._mean_scale(x.dtype)
        if self.invert:
            return x * scale + mean
        return (x - mean) * (1.0 / scale)

    def compute_output_shape(self, s):
        return s

    def get_config(self):
        to_list = (lambda v: None if v is None else np.asarray(v).tolist())
        return {**super().get_config(), "axis": list(self.axis), "mean": to_list(self.input_mean),
                "variance": to_list(self.input_variance), "invert": self.invert}


class CategoryEncoding(Layer):
    """CategoryEncoding(num_tokens, output_mode="multi_hot"): integer ids (N,) or
    (N, k) -> (N, num_tokens) float32 with "one_hot" (ids of shape (N,) or (N, 1)),
    "multi_hot" (1 where an id occurs) or "count" (how often). Not differentiable
    (its input is integers), as in Keras.

    Example:
        >>> pynn.layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")(np.array([0, 3])).numpy()
        array([[1., 0., 0., 0.],
               [0., 0., 0., 1.]], dtype=float32)
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if num_tokens is None or num_tokens < 1:
            raise ValueError(f"CategoryEncoding: num_tokens must be a positive int, got {num_tokens!r}")
        if output_mode not in ("one_hot", "multi_hot", "count"):
            raise ValueError(f"CategoryEncoding: unknown output_mode {output_mode!r}")
        if sparse:
            raise ValueError("CategoryEncoding: sparse outputs are not supported")
        self.num_tokens, self.output_mode = int(num_tokens), output_mode

    def call(self, x):
        ids = np.asarray(x.data)
        if ids.dtype.kind == "f":
            ids = ids.astype(np.int64)
        if ids.ndim == 1:
            ids = ids[:, None]
        if ids.ndim != 2:
            raise ValueError(f"CategoryEncoding {self.name!r}: expects ids of shape (N,) or (N, k), got {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_tokens):
            raise ValueError(f"CategoryEncoding {self.name!r}: ids must be in [0, {self.num_tokens}), got "
                             f"min {ids.min()}, max {ids.max()}")
        if self.output_mode == "one_hot" and ids.shape[1] != 1:
            raise ValueError(f"CategoryEncoding {self.name!r}: one_hot needs one id per sample, got shape {ids.shape}")
        out = np.zeros((ids.shape[0], self.num_tokens), np.float32)
        rows = np.repeat(np.arange(ids.shape[0]), ids.shape[1])
        np.add.at(out, (rows, ids.ravel()), 1.0)
        if self.output_mode != "count":
            out = np.minimum(out, 1.0)
        return Tensor(out)

    def compute_output_shape(self, s):
        return (s[0], self.num_tokens)

    def _output_dtype(self, input_dtype):
        return np.dtype(np.float32)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode}


class GroupNormalization(Layer):
    """GroupNormalization(groups=32, axis=-1, epsilon=1e-3, center=True, scale=True):
    normalise each sample over groups of ``channels/groups`` channels (and all
    other non-batch axes), then scale and shift per channel. Weights [gamma, beta].

    Example:
        >>> layer = pynn.layers.GroupNormalization(groups=3)
        >>> layer(np.ones((2, 4, 4, 6), np.float32)).shape
        (2, 4, 4, 6)
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.groups, self.axis, self.epsilon = int(groups), axis, float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer

    def build(self, input_shape):
        if self.axis not in (-1, len(input_shape) - 1):
            raise ValueError(f"GroupNormalization {self.name!r}: only the channels-last axis (-1) is supported, "
                             f"got axis={self.axis}")
        c = input_shape[-1]
        if c is None or c % self.groups:
            raise ValueError(f"GroupNormalization {self.name!r}: {c} channels are not divisible into "
                             f"{self.groups} groups")
        self.gamma = self.add_weight(shape=(c,), initializer=self.gamma_initializer, name="gamma") \
            if self.scale else None
        self.beta = self.add_weight(shape=(c,), initializer=self.beta_initializer, name="beta") \
            if self.center else None
        self.built = True

    def call(self, x):
        shape = tuple(x.shape)
        c, g = shape[-1], self.groups
        grouped = F.reshape(x, shape[:-1] + (g, c // g))
        axes = tuple(range(1, len(shape) - 1)) + (len(shape),)   # everything but batch and group
        mean = F.mean(grouped, axis=axes, keepdims=True)
        centred = grouped - mean
        var = F.mean(centred * centred, axis=axes, keepdims=True)
        y = F.reshape(centred / F.sqrt(var + self.epsilon), shape)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def compute_output_shape(self, s):
        return s

    def get_config(self):
        for v in (self.beta_initializer, self.gamma_initializer):
            if not isinstance(v, str):
                raise ValueError(f"GroupNormalization {self.name!r}: to save it, pass initializers by name")
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer}
