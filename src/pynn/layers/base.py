"""The Layer base class (Keras-shaped): settings in ``__init__``, weights
created in ``build(input_shape)`` by ``add_weight``, computation in ``call``
using only ``pynn.functional``."""
from __future__ import annotations

import inspect
import re
from collections import defaultdict

import numpy as np

from .. import initializers
from ..autograd import Tensor

_name_counts = defaultdict(int)

# Float dtypes a layer's weights and computation can have (float32 native, float64 for the
# numpy backend's gradient checks).
_LAYER_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def unique_name(base: str) -> str:
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def snake_case(name: str) -> str:
    """Keras' default layer names: GRU -> gru, SimpleRNN -> simple_rnn, Conv2D -> conv2d."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Variable(Tensor):
    """A trainable weight: a Tensor with a name, a trainable flag and optional
    regularizer/constraint. The optimizer updates ``data`` in place."""

    __slots__ = ("trainable", "regularizer", "constraint")

    def __init__(self, value, name=None, trainable=True, regularizer=None, constraint=None):
        super().__init__(np.ascontiguousarray(value), requires_grad=trainable, name=name)
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint

    def assign(self, value):
        value = np.asarray(value, dtype=self.data.dtype)
        if value.shape != self.data.shape:
            raise ValueError(f"Variable {self.name!r}: expected shape {self.data.shape}, got {value.shape}")
        self.data[...] = value


def unique_weights(groups):
    """Concatenate weight lists, keeping the first occurrence of each (shared layers)."""
    seen, out = set(), []
    for group in groups:
        for w in group:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
    return out


def assign_weights(owner, variables, values):
    """Set every variable from ``values`` after checking all the shapes: never half-set."""
    values = list(values)
    if len(values) != len(variables):
        raise ValueError(f"{owner}: set_weights expected {len(variables)} arrays "
                         f"{[w.shape for w in variables]}, got {len(values)}")
    for w, value in zip(variables, values):
        kind = np.asarray(value).dtype.kind
        if kind not in "biuf":  # complex would be cast with only a ComplexWarning: its imaginary part lost
            raise TypeError(f"{owner}: weight {w.name!r} must be a real array, got dtype {np.asarray(value).dtype}")
        if np.shape(value) != w.shape:
            raise ValueError(f"{owner}: weight {w.name!r} has shape {w.shape}, got an array of shape {np.shape(value)}")
    for w, value in zip(variables, values):
        w.assign(value)


def _real(layer, x):
    """A layer's array input: complex (and object/str) arrays are a TypeError naming the layer."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{layer.name}: expected a real numeric input, got dtype {x.dtype}")
    return x


def _shape_tuple(shape):
    return tuple(None if d is None else int(d) for d in shape)


class Layer:
    """Base class of all layers; subclass and override ``build``, ``call`` and
    ``compute_output_shape`` (and ``get_config`` for saving)."""

    # Layers that keep the (batch, steps) structure pass a padding mask through.
    supports_masking = False

    def __init__(self, trainable=True, name=None, dtype="float32", input_shape=None, batch_size=None,
                 batch_input_shape=None, **kwargs):
        if batch_input_shape is not None:  # Keras' (batch, ...) form of input_shape + batch_size
            batch_size, input_shape = batch_input_shape[0], tuple(batch_input_shape[1:])
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword arguments {sorted(kwargs)}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = trainable
        self.dtype = np.dtype(dtype)
        if self.dtype not in _LAYER_DTYPES:  # an int8/bool/object layer would silently truncate its weights
            raise ValueError(f"{type(self).__name__}: dtype must be one of {sorted(d.name for d in _LAYER_DTYPES)}, "
                             f"got {self.dtype.name!r}")
        self.built = False
        self._weights: list[Variable] = []
        self._input_shape = _shape_tuple((batch_size,) + tuple(input_shape)) if input_shape is not None else None
        self._accepts_training = "training" in inspect.signature(self.call).parameters

    # ------------------------------------------------------------ weights
    def add_weight(self, name, shape, initializer="glorot_uniform", regularizer=None, constraint=None,
                   trainable=True, dtype=None) -> Variable:
        value = initializers.get(initializer)(tuple(shape), dtype=dtype or self.dtype)
        v = Variable(value, name=f"{self.name}/{name}", trainable=trainable,
                     regularizer=regularizer, constraint=constraint)
        v.requires_grad = trainable and self._trainable
        self._weights.append(v)
        return v

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freezing a layer stops its weights from receiving gradients (transfer learning)."""
        self._trainable = bool(value)
        for w in self._weights:
            w.requires_grad = self._trainable and w.trainable

    @property
    def weights(self):
        return list(self._weights)

    @property
    def trainable_weights(self):
        return [w for w in self._weights if w.trainable] if self._trainable else []

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self):
        """Copies of the weights, in Keras order (e.g. Dense: [kernel, bias])."""
        return [w.data.copy() for w in self._weights]

    def set_weights(self, weights):
        assign_weights(f"Layer {self.name!r}", self._weights, weights)

    def count_params(self):
        return int(sum(w.size for w in self._weights))

    # ------------------------------------------------------------ calling
    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def __call__(self, inputs, training=False, **kwargs):
        from .input_layer import KerasTensor, Node, is_shape_list, is_symbolic
        if is_symbolic(inputs):
            # Functional API: build from the shape, record the call (with its keyword
            # arguments, which may hold symbolic tensors too), compute nothing.
            shapes = [t.shape for t in inputs] if isinstance(inputs, (list, tuple)) else inputs.shape
            if not self.built:
                self.build(shapes)
                self.built = True
            dtype = self._output_dtype((inputs[0] if isinstance(inputs, (list, tuple)) else inputs).dtype)
            parents = list(inputs) if isinstance(inputs, (list, tuple)) else inputs
            node = Node(self, parents, kwargs)
            out_shape = self.compute_output_shape(shapes)
            if is_shape_list(out_shape):   # e.g. LSTM(return_state=True): [output, h, c]
                return [KerasTensor(s, dtype, self, parents, node=node, index=i) for i, s in enumerate(out_shape)]
            return KerasTensor(out_shape, dtype, self, parents, node=node)
        if isinstance(inputs, (list, tuple)):
            inputs = [t if isinstance(t, Tensor) else Tensor(_real(self, t)) for t in inputs]
            shapes = [_shape_tuple(t.shape) for t in inputs]
        else:
            if not isinstance(inputs, Tensor):
                inputs = Tensor(_real(self, inputs))
            shapes = _shape_tuple(inputs.shape)
        if not self.built:
            self.build(shapes)
            self.built = True
        out = self.call(inputs, training=training, **kwargs) if self._accepts_training else self.call(inputs, **kwargs)
        mask = getattr(inputs, "_keras_mask", None)
        if mask is not None and self.supports_masking and isinstance(out, Tensor) and out._keras_mask is None \
                and out.shape[:mask.ndim] == mask.shape:
            out._keras_mask = mask
        return out

    def _output_dtype(self, input_dtype):
        return self.dtype

    # ------------------------------------------------------------ config
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self._input_shape is not None:
            config["input_shape"] = list(self._input_shape[1:])
            if self._input_shape[0] is not None:
                config["batch_size"] = self._input_shape[0]
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
