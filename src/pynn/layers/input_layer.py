"""Symbolic tensors: ``pynn.Input(shape)`` and what layers return when called on one.

A ``KerasTensor`` carries a shape (batch dimension ``None``), a dtype and the
layer call that produced it, so ``pynn.Model(inputs, outputs)`` can replay the
graph on real data. Calling a layer on one builds the layer's weights from the
shape and returns a new symbolic tensor; no computation happens.
"""
import math

import numpy as np

from .naming import unique_name


class KerasTensor:
    def __init__(self, shape, dtype="float32", layer=None, parents=(), name=None, node=None, index=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.layer = layer          # the layer whose call produced this tensor (None for an Input)
        self.parents = parents      # the KerasTensor(s) that call received: one, or a list
        self.name = name
        # The call itself (shared by all outputs of a multi-output call such as
        # LSTM(return_state=True)) and which of its outputs this is (None: the only one).
        self.node = node
        self.index = index

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        origin = f" from {self.layer.name!r}" if self.layer is not None else ""
        return f"<KerasTensor shape={self.shape} dtype={self.dtype.name}{origin}>"


class Input(KerasTensor):
    """A model input: ``shape`` excludes the batch dimension.

    ``layers.Input((28, 28, 1))``, ``pynn.Input((T,), dtype="int64")`` for token
    ids. First in a ``Sequential`` it builds every layer at once; in the
    functional API it starts the graph: ``pynn.Model(inputs, outputs)``.

    Example:
        >>> inputs = pynn.layers.Input((8,))
        >>> inputs.shape
        (None, 8)
        >>> pynn.Model(inputs, pynn.layers.Dense(2)(inputs)).output_shape
        (None, 2)
    """

    def __init__(self, shape, dtype="float32", name=None, batch_size=None):
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(shape)
        for d in shape:
            if d is not None and (isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0):
                raise ValueError(f"Input: every dimension must be a non-negative integer or None, got shape {shape}")
        known = [int(d) for d in shape if d is not None]
        if math.prod(known) >= 2**63:  # sizes are 64-bit everywhere below; this one would wrap
            raise ValueError(f"Input: shape {shape} has {math.prod(known)} elements per sample, "
                             "more than a 64-bit size can count")
        if name is None:  # Keras 3's default: input_layer, input_layer_1, ... (fit/predict dicts use names)
            name = unique_name("input_layer")
        super().__init__((batch_size,) + shape, dtype, name=name)


class Node:
    """One recorded layer call: the layer, its positional input(s) and its keyword
    arguments (e.g. ``initial_state=[h, c]``, ``use_causal_mask=True``), which may
    hold symbolic tensors too. Replayed once however many of its outputs are used."""

    def __init__(self, layer, parents, kwargs):
        self.layer, self.parents, self.kwargs = layer, parents, kwargs

    def dependencies(self):
        """Every symbolic tensor the call reads: positional inputs, then keyword ones."""
        deps = list(self.parents) if isinstance(self.parents, list) else [self.parents]
        for v in self.kwargs.values():
            deps += symbolic_leaves(v)
        return deps


def symbolic_leaves(value):
    """The KerasTensors inside ``value`` (a tensor, or nested lists/tuples of them)."""
    if isinstance(value, KerasTensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in symbolic_leaves(v)]
    return []


def substitute(value, env):
    """``value`` (a tensor, or lists/tuples/dicts of them and plain values) with
    every KerasTensor replaced by ``env[id(tensor)]``."""
    if isinstance(value, KerasTensor):
        return env[id(value)]
    if isinstance(value, (list, tuple)):
        return type(value)(substitute(v, env) for v in value)
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    return value


def is_shape_list(shape):
    """True for a list of output shapes (a multi-output layer), False for one shape."""
    return isinstance(shape, list) and len(shape) > 0 and all(isinstance(s, (tuple, list)) for s in shape)


def is_symbolic(x) -> bool:
    if isinstance(x, KerasTensor):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(t, KerasTensor) for t in x)
