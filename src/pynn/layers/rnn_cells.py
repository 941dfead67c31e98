"""Keras' generic recurrent API: ``RNN(cell)`` with ``SimpleRNNCell``,
``LSTMCell``, ``GRUCell`` or a custom cell (any layer with ``state_size`` and
``call(inputs, states) -> (output, new_states)``).

``RNN`` steps the cell in Python, one time step after another, recording the
graph of each step: it is the flexible path that runs any cell. The fused
layers ``layers.SimpleRNN``/``LSTM``/``GRU`` compute the same functions (same
weights, same order) with the native sequence kernels and are the fast path.
"""
import numpy as np

from .. import activations, functional as F, initializers
from ..autograd import Tensor
from .base import Layer



def unit_forget_bias(base, units):
    """Keras' unit_forget_bias: ``base``'s LSTM bias with the forget-gate slice [units, 2*units) set to
    one. Shared by LSTMCell and the fused LSTM layer so the two initialise identically."""
    def init(shape, dtype=np.float32):
        b = np.array(base(shape, dtype))  # a copy: never write into an initializer's own array
        b[units:2 * units] = 1.0
        return b
    return init

class _Cell(Layer):
    gates = 1

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{type(self).__name__}: units must be a positive integer, got {units!r}")
        self.units, self.activation, self.use_bias = int(units), activation, use_bias
        self._act = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer, self.recurrent_regularizer = kernel_regularizer, recurrent_regularizer
        self.bias_regularizer = bias_regularizer

    @property
    def state_size(self):
        return self.units

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        g = self.gates * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], g), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, g), initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer, name="recurrent_kernel")
        self.bias = (self.add_weight(shape=self._bias_shape(), initializer=self._bias_initializer(),
                                     regularizer=self.bias_regularizer, name="bias") if self.use_bias else None)
        self.built = True

    def _gate(self, z, k):
        return F.getitem(z, (slice(None), slice(k * self.units, (k + 1) * self.units)))

    def get_config(self):
        if not isinstance(self.activation, str):
            raise ValueError(f"{type(self).__name__} {self.name!r}: to save it, pass activations by name")
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias}


class SimpleRNNCell(_Cell):
    """SimpleRNNCell(units, activation="tanh", use_bias=True, ...): ``h = act(x·W + h·U + b)``.
    Weights [kernel, recurrent_kernel, bias] as Keras.

    Example:
        >>> layer = pynn.layers.RNN(pynn.layers.SimpleRNNCell(4))
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 4)
    """

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        z = F.matmul(inputs, self.kernel) + F.matmul(h, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        out = self._act(z)
        return out, [out]


class LSTMCell(_Cell):
    """LSTMCell(units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, ...):
    gates i, f, c, o as Keras; states [h, c]; weights [kernel, recurrent_kernel, bias].

    Example:
        >>> layer = pynn.layers.RNN(pynn.layers.LSTMCell(4), return_sequences=True)
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 5, 4)
    """

    gates = 4

    def __init__(self, units, recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation, self.unit_forget_bias = recurrent_activation, unit_forget_bias
        self._ract = activations.get(recurrent_activation)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_initializer(self):
        return unit_forget_bias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def call(self, inputs, states, training=False):
        h, c = states
        z = F.matmul(inputs, self.kernel) + F.matmul(h, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        i, f = self._ract(self._gate(z, 0)), self._ract(self._gate(z, 1))
        c = f * c + i * self._act(self._gate(z, 2))
        h = self._ract(self._gate(z, 3)) * self._act(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_Cell):
    """GRUCell(units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, ...):
    gates z, r, h as Keras; with reset_after the bias is (2, 3·units) (input, recurrent).

    Example:
        >>> layer = pynn.layers.RNN(pynn.layers.GRUCell(4))
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 4)
    """

    gates = 3

    def __init__(self, units, recurrent_activation="sigmoid", reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation, self.reset_after = recurrent_activation, reset_after
        self._ract = activations.get(recurrent_activation)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        xz = F.matmul(inputs, self.kernel)
        if self.reset_after:
            hz = F.matmul(h, self.recurrent_kernel)
            if self.bias is not None:
                xz = xz + F.getitem(self.bias, 0)
                hz = hz + F.getitem(self.bias, 1)
            z = self._ract(self._gate(xz, 0) + self._gate(hz, 0))
            r = self._ract(self._gate(xz, 1) + self._gate(hz, 1))
            hh = self._act(self._gate(xz, 2) + r * self._gate(hz, 2))
        else:
            if self.bias is not None:
                xz = xz + self.bias
            u = self.units
            rk = self.recurrent_kernel
            hz = F.matmul(h, F.getitem(rk, (slice(None), slice(0, 2 * u))))
            z = self._ract(self._gate(xz, 0) + self._gate(hz, 0))
            r = self._ract(self._gate(xz, 1) + self._gate(hz, 1))
            hh = self._act(self._gate(xz, 2) + F.matmul(r * h, F.getitem(rk, (slice(None), slice(2 * u, 3 * u)))))
        h = z * h + (1.0 - z) * hh
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}


def _tree_map(fn, *trees):
    """``fn`` over the leaves of equally nested lists (states of stacked cells)."""
    if isinstance(trees[0], (list, tuple)):
        return [_tree_map(fn, *parts) for parts in zip(*trees)]
    return fn(*trees)


def _tree_flatten(tree):
    if isinstance(tree, (list, tuple)):
        return [leaf for part in tree for leaf in _tree_flatten(part)]
    return [tree]


def _tree_unflatten(structure, leaves):
    it = iter(leaves)
    return _tree_map(lambda _: next(it), structure)


class StackedRNNCells(Layer):
    """StackedRNNCells(cells): a list of RNN cells run as one cell, each feeding the next
    at every step (Keras' class; ``RNN([cell1, cell2])`` makes one). ``state_size``
    is the list of the cells' state sizes; the states are one list per cell ([h] or,
    for LSTMCell, [h, c]), as Keras 3 returns them with ``return_state=True``.

    Example:
        >>> import numpy as np, pynn
        >>> cells = [pynn.layers.SimpleRNNCell(4), pynn.layers.LSTMCell(3)]
        >>> rnn = pynn.layers.RNN(pynn.layers.StackedRNNCells(cells))
        >>> rnn(np.zeros((2, 5, 6), np.float32)).shape
        (2, 3)
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells:
            raise ValueError("StackedRNNCells: needs at least one cell")
        for cell in cells:
            if not hasattr(cell, "state_size") or not callable(getattr(cell, "call", None)):
                raise ValueError(f"StackedRNNCells: every cell needs a call method and a state_size; "
                                 f"got {type(cell).__name__}")
        self.cells = cells

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @staticmethod
    def _cell_output_size(cell):
        size = getattr(cell, "output_size", None)
        if size is not None:
            return int(size)
        s = cell.state_size
        return int(s[0]) if isinstance(s, (list, tuple)) else int(s)

    @property
    def output_size(self):
        return self._cell_output_size(self.cells[-1])

    def build(self, input_shape):
        for cell in self.cells:
            if not cell.built:
                cell.build(tuple(input_shape))
                cell.built = True
            input_shape = (input_shape[0], self._cell_output_size(cell))
        self.built = True

    def call(self, inputs, states, training=False):
        new_states = []
        for cell, state in zip(self.cells, states):
            state = list(state) if isinstance(state, (list, tuple)) else [state]
            inputs, state = cell(inputs, states=state, training=training)
            # each cell's states stay a list, even of one (what Keras 3's RNN returns for stacks)
            new_states.append(list(state) if isinstance(state, (list, tuple)) else [state])
        return inputs, new_states

    def get_config(self):
        from ..utils.registry import serialize_layer
        return {**super().get_config(), "cells": [serialize_layer(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config):
        from ..utils.registry import deserialize_layer
        config = dict(config)
        return cls([deserialize_layer(c) for c in config.pop("cells")], **config)


class RNN(Layer):
    """RNN(cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
    unroll=False): runs ``cell`` over the steps of (N, T, D) inputs. ``cell`` is one cell
    or a list of cells (stacked: wrapped in ``StackedRNNCells``, as Keras).
    ``layer(x, initial_state=[...])`` starts from given states; a padding mask
    (Embedding(mask_zero=True), Masking) keeps the previous output and states on
    masked steps, as Keras. ``stateful=True`` carries the last states of one batch
    into the next (values only: no backpropagation across batches) until
    ``reset_states()``; the batch size is then fixed by the first batch.
    ``unroll`` is accepted for Keras' signature: pynn runs eagerly, so unrolled and
    looped execution are the same computation.

    Example:
        >>> import numpy as np, pynn
        >>> rnn = pynn.layers.RNN(pynn.layers.LSTMCell(4), return_sequences=True)
        >>> rnn(np.zeros((2, 5, 3), np.float32)).shape
        (2, 5, 4)
    """

    supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not hasattr(cell, "state_size"):
            raise ValueError(f"RNN: the cell {type(cell).__name__} needs a state_size attribute")
        self.cell, self.return_sequences, self.return_state = cell, return_sequences, return_state
        self.go_backwards, self.unroll, self.stateful = go_backwards, unroll, bool(stateful)
        self.states = None          # stateful: the carried states (nested like state_size), plain arrays
        self._batch_size = None     # stateful: the batch size the states were made for

    def _state_structure(self):
        """state_size as a list (one entry per state; a nested list per stacked cell)."""
        s = self.cell.state_size
        if isinstance(self.cell, StackedRNNCells):   # one list of states per cell
            return [list(v) if isinstance(v, (list, tuple)) else [v] for v in s]
        return list(s) if isinstance(s, (list, tuple)) else [s]

    def _output_size(self):
        size = getattr(self.cell, "output_size", None)
        if size is not None:
            return int(size)
        first = self._state_structure()[0]
        return int(_tree_flatten(first)[0])

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"RNN {self.name!r}: expected input (batch, steps, features), got {input_shape}")
        if not self.cell.built:
            self.cell.build((input_shape[0], input_shape[-1]))
            self.cell.built = True
        batch = input_shape[0] if input_shape[0] is not None else (self._input_shape or (None,))[0]
        if self.stateful and batch is not None:
            self._batch_size = int(batch)
        self.built = True

    def reset_states(self, states=None):
        """Stateful RNN: set the carried states to zeros, or to ``states`` (nested like the
        cell's state_size, each (batch, size))."""
        if not self.stateful:
            raise ValueError(f"RNN {self.name!r}: reset_states() needs stateful=True")
        structure = self._state_structure()
        if states is None:
            self.states = None if self._batch_size is None else \
                _tree_map(lambda size: np.zeros((self._batch_size, int(size)), self.dtype), structure)
            return
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        leaves = [np.asarray(getattr(v, "data", v), self.dtype) for v in _tree_flatten(states)]
        sizes = [int(v) for v in _tree_flatten(structure)]
        n = self._batch_size if self._batch_size is not None else leaves[0].shape[0]
        if len(leaves) != len(sizes) or any(v.shape != (n, size) for v, size in zip(leaves, sizes)):
            raise ValueError(f"RNN {self.name!r}: reset_states expected arrays of shapes "
                             f"{[(n, size) for size in sizes]}, got {[v.shape for v in leaves]}")
        self._batch_size, self.states = n, _tree_unflatten(structure, [v.copy() for v in leaves])

    def reset_state(self, states=None):
        """Keras 3's name for reset_states."""
        self.reset_states(states)

    def _initial_states(self, x, initial_state):
        structure = self._state_structure()
        n = x.shape[0]
        if initial_state is None and self.stateful:
            if self._batch_size is None:
                self._batch_size = n
            elif n != self._batch_size:
                raise ValueError(f"RNN {self.name!r}: stateful=True carries states for batches of "
                                 f"{self._batch_size} samples, got input of shape {tuple(x.shape)}; feed batches "
                                 f"of exactly {self._batch_size} (or call reset_states with new states)")
            if self.states is None:
                self.reset_states()
            return _tree_map(lambda v: Tensor(v.astype(x.dtype, copy=True)), self.states)
        if initial_state is None:
            return _tree_map(lambda size: Tensor(np.zeros((n, int(size)), x.dtype)), structure)
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        leaves = _tree_flatten(states)
        sizes = [int(v) for v in _tree_flatten(structure)]
        if len(leaves) != len(sizes):
            raise ValueError(f"RNN {self.name!r}: initial_state needs {len(sizes)} tensors, got {len(leaves)}")
        leaves = [v if isinstance(v, Tensor) else Tensor(np.asarray(v, x.dtype)) for v in leaves]
        for v, size in zip(leaves, sizes):
            if tuple(v.shape) != (n, size):
                raise ValueError(f"RNN {self.name!r}: an initial state has shape {tuple(v.shape)}, "
                                 f"expected {(n, size)}")
        return _tree_unflatten(structure, leaves)

    def call(self, x, training=False, initial_state=None, mask=None):
        t = x.shape[1]
        mask = mask if mask is not None else x._keras_mask
        if mask is not None:
            mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
        states = self._initial_states(x, initial_state)
        steps = range(t - 1, -1, -1) if self.go_backwards else range(t)
        outputs, prev = [], None
        for step in steps:
            out, new_states = self.cell(F.getitem(x, (slice(None), step)), states=states, training=training)
            new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
            if mask is not None:
                keep = mask[:, step][:, None]
                if prev is None:
                    prev = Tensor(np.zeros(tuple(out.shape), out.dtype))
                out = F.where(keep, out, prev)
                new_states = _tree_map(lambda a, b: F.where(keep, a, b), new_states, states)
            outputs.append(out)
            prev, states = out, new_states
        if not outputs:
            raise ValueError(f"RNN {self.name!r}: the input has no time steps: {tuple(x.shape)}")
        if self.stateful:   # carried to the next call as values: no backpropagation across batches
            self.states = _tree_map(lambda v: np.array(v.data, self.dtype), states)
        result = F.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return [result] + list(states) if self.return_state else result

    def compute_output_shape(self, input_shape):
        n = input_shape[0]
        out_size = self._output_size()
        out = (n, input_shape[1], out_size) if self.return_sequences else (n, out_size)
        if self.return_state:
            structure = self._state_structure()
            if any(isinstance(s, (list, tuple)) for s in structure):
                raise ValueError(f"RNN {self.name!r}: return_state=True with stacked cells (one list of states "
                                 "per cell: nested states) is not supported in a functional model; call the "
                                 "layer eagerly, or stack RNN layers")
            return [out] + [(n, int(s)) for s in structure]
        return out

    def get_config(self):
        from ..utils.registry import serialize_layer
        return {**super().get_config(), "cell": serialize_layer(self.cell), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll}

    @classmethod
    def from_config(cls, config):
        from ..utils.registry import deserialize_layer
        config = dict(config)
        return cls(deserialize_layer(config.pop("cell")), **config)
