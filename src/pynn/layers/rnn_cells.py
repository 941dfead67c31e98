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
    Weights [kernel, recurrent_kernel, bias] as Keras."""

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        z = F.matmul(inputs, self.kernel) + F.matmul(h, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        out = self._act(z)
        return out, [out]


class LSTMCell(_Cell):
    """LSTMCell(units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, ...):
    gates i, f, c, o as Keras; states [h, c]; weights [kernel, recurrent_kernel, bias]."""

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
    gates z, r, h as Keras; with reset_after the bias is (2, 3·units) (input, recurrent)."""

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


class RNN(Layer):
    """RNN(cell, return_sequences=False, return_state=False, go_backwards=False, unroll=False):
    runs ``cell`` over the steps of (N, T, D) inputs. ``layer(x, initial_state=[...])``
    starts from given states; a padding mask (Embedding(mask_zero=True), Masking)
    keeps the previous output and states on masked steps, as Keras. ``unroll`` is
    accepted for Keras' signature: pynn runs eagerly, so unrolled and looped
    execution are the same computation. ``stateful`` and stacked cells (a list)
    are not supported and raise."""

    supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            raise ValueError("RNN: a list of cells (StackedRNNCells) is not supported; stack RNN layers instead")
        if not hasattr(cell, "state_size"):
            raise ValueError(f"RNN: the cell {type(cell).__name__} needs a state_size attribute")
        if stateful:
            raise ValueError("RNN: stateful=True is not supported for generic cells; use layers.SimpleRNN/LSTM/GRU "
                             "(stateful=True) instead")
        self.cell, self.return_sequences, self.return_state = cell, return_sequences, return_state
        self.go_backwards, self.unroll = go_backwards, unroll

    def _state_sizes(self):
        s = self.cell.state_size
        return [int(v) for v in s] if isinstance(s, (list, tuple)) else [int(s)]

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"RNN {self.name!r}: expected input (batch, steps, features), got {input_shape}")
        if not self.cell.built:
            self.cell.build((input_shape[0], input_shape[-1]))
            self.cell.built = True
        self.built = True

    def call(self, x, training=False, initial_state=None, mask=None):
        n, t = x.shape[0], x.shape[1]
        mask = mask if mask is not None else x._keras_mask
        if mask is not None:
            mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
        sizes = self._state_sizes()
        if initial_state is None:
            states = [Tensor(np.zeros((n, s), x.dtype)) for s in sizes]
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != len(sizes):
                raise ValueError(f"RNN {self.name!r}: initial_state needs {len(sizes)} tensors, got {len(states)}")
            states = [s if isinstance(s, Tensor) else Tensor(s) for s in states]
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
                new_states = [F.where(keep, a, b) for a, b in zip(new_states, states)]
            outputs.append(out)
            prev, states = out, new_states
        if not outputs:
            raise ValueError(f"RNN {self.name!r}: the input has no time steps: {tuple(x.shape)}")
        result = F.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return [result] + states if self.return_state else result

    def compute_output_shape(self, input_shape):
        sizes = self._state_sizes()
        out_size = sizes[0]
        out = (input_shape[0], input_shape[1], out_size) if self.return_sequences else (input_shape[0], out_size)
        if self.return_state:
            return [out] + [(input_shape[0], s) for s in sizes]
        return out

    def get_config(self):
        from ..utils.registry import serialize_layer
        return {**super().get_config(), "cell": serialize_layer(self.cell), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards, "unroll": self.unroll}

    @classmethod
    def from_config(cls, config):
        from ..utils.registry import deserialize_layer
        config = dict(config)
        return cls(deserialize_layer(config.pop("cell")), **config)
