"""Recurrent layers with Keras' arguments and weight layouts: SimpleRNN, LSTM, GRU.

Input (N, T, F) -> (N, U), or (N, T, U) with ``return_sequences``; with
``return_state`` also the final state(s). Each layer is one op over the whole
sequence (``pynn.functional.lstm`` ...): one GEMM for the input projection of
all steps, then the recurrence kernel, and backpropagation through time.
"""
import numpy as np

from .. import functional as F, initializers
from ..autograd import Tensor
from ..random import generator
from .base import Layer
from .rnn_cells import unit_forget_bias


class _RNN(Layer):
    gates = 1

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"{type(self).__name__}: units must be a positive integer, got {units!r}")
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{type(self).__name__}: {name} must be in [0, 1), got {rate}")
        self.units, self.activation, self.use_bias = units, activation, use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer, self.recurrent_regularizer = kernel_regularizer, recurrent_regularizer
        self.bias_regularizer = bias_regularizer
        self.dropout, self.recurrent_dropout = dropout, recurrent_dropout
        self.return_sequences, self.return_state, self.go_backwards = return_sequences, return_state, go_backwards
        self.stateful = stateful
        self.states = None          # stateful: the last states (N, U) each, plain arrays (no gradient)
        self._batch_size = None     # stateful: the batch size the states were made for

    def _bias_shape(self):
        return (self.gates * self.units,)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected input (batch, steps, features), "
                             f"got {input_shape}")
        self.input_dim = input_shape[-1]
        batch = input_shape[0] if input_shape[0] is not None else (self._input_shape or (None,))[0]
        if self.stateful and batch is not None:
            self._batch_size = int(batch)
        g = self.gates * self.units
        self.kernel = self.add_weight("kernel", (self.input_dim, g), self.kernel_initializer, self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, g), self.recurrent_initializer,
                                                self.recurrent_regularizer)
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_init(), self.bias_regularizer)
                     if self.use_bias else None)
        self.built = True

    def _bias_init(self):
        return self.bias_initializer

    def reset_states(self, states=None):
        """Stateful layers: set the carried states to zeros, or to ``states`` (a list of
        (batch, units) arrays: [h] or, for LSTM, [h, c]). A no-op before the first call
        when the batch size is not known yet."""
        if not self.stateful:
            raise ValueError(f"{type(self).__name__} {self.name!r}: reset_states() needs stateful=True")
        if states is None:
            self.states = None if self._batch_size is None else \
                [np.zeros((self._batch_size, self.units), self.dtype) for _ in range(self.n_states)]
            return
        states = [np.asarray(getattr(v, "data", v), self.dtype) for v in
                  (states if isinstance(states, (list, tuple)) else [states])]
        n = self._batch_size if self._batch_size is not None else states[0].shape[0]
        if len(states) != self.n_states or any(v.shape != (n, self.units) for v in states):
            raise ValueError(f"{type(self).__name__} {self.name!r}: reset_states expected {self.n_states} "
                             f"array(s) of shape {(n, self.units)}, got {[v.shape for v in states]}")
        self._batch_size, self.states = n, [v.copy() for v in states]

    def reset_state(self, states=None):
        """Keras 3's name for reset_states."""
        self.reset_states(states)

    def _stateful_begin(self, x):
        """Fix the batch size on first use and check every later batch against it."""
        if not self.stateful:
            return
        n = x.shape[0]
        if self._batch_size is None:
            self._batch_size = n
        elif n != self._batch_size:
            raise ValueError(f"{type(self).__name__} {self.name!r}: stateful=True carries states for batches of "
                             f"{self._batch_size} samples, got input of shape {tuple(x.shape)}; feed batches of "
                             f"exactly {self._batch_size} (fit/predict with batch_size={self._batch_size} and a "
                             "sample count divisible by it), or set batch_size on the Input")
        if self.states is None:
            self.reset_states()

    def _state(self, initial_state, index, x):
        if initial_state is None and self.stateful:
            return self.states[index].astype(x.dtype, copy=False)
        if initial_state is not None:
            s = initial_state[index]
            s = s if isinstance(s, Tensor) else Tensor(np.asarray(s, x.dtype))
            if s.shape != (x.shape[0], self.units):
                raise ValueError(f"{type(self).__name__} {self.name!r}: initial state {index} has shape {s.shape}, "
                                 f"expected {(x.shape[0], self.units)}")
            return s
        return np.zeros((x.shape[0], self.units), x.dtype)

    def _inputs(self, x, training):
        if x.ndim != 3 or x.shape[-1] != self.input_dim:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected input (batch, steps, {self.input_dim}), "
                             f"got shape {x.shape}")
        if x.shape[1] == 0:
            # No step to run: there is no last output or final state to return (Keras refuses too).
            raise ValueError(f"{type(self).__name__} {self.name!r}: the input has 0 time steps (shape {x.shape}); "
                             "a recurrent layer needs at least one")
        if training and self.dropout:
            # One mask per sample and feature, shared by every step (Keras' and Gal's variational dropout).
            x = F.dropout(x, self.dropout, noise_shape=(x.shape[0], 1, x.shape[2]))
        return x

    def _recurrent_mask(self, x, training):
        """Recurrent dropout as Keras' cells apply it: in training only, one inverted-dropout
        mask per gate (N, gates·U), drawn once per call and used at every step on h_{t−1}
        where it enters that gate's recurrent kernel. None otherwise."""
        if not (training and self.recurrent_dropout):
            return None
        keep = 1.0 - self.recurrent_dropout
        m = generator().random((x.shape[0], self.gates * self.units)) < keep
        return m.astype(x.dtype) / np.asarray(keep, x.dtype)

    def _bias(self):
        return self.bias if self.bias is not None else np.zeros(self._bias_shape(), self.dtype)

    def _outputs(self, hs, states, mask):
        if self.stateful:  # carried to the next call as values: no backpropagation across batches
            self.states = [np.array(v.data, self.dtype) for v in states]
        out = hs if self.return_sequences else states[0]   # states[0] is h_T
        if self.return_sequences and mask is not None:
            out._keras_mask = mask[:, ::-1] if self.go_backwards else mask
        return [out] + states if self.return_state else out

    def compute_output_shape(self, input_shape):
        n, t = input_shape[0], input_shape[1]
        out = (n, t, self.units) if self.return_sequences else (n, self.units)
        if self.return_state:
            return [out] + [(n, self.units)] * self.n_states
        return out

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias, "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout, "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards, "stateful": self.stateful,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


class SimpleRNN(_RNN):
    """h_t = activation(x_t·kernel + h_{t−1}·recurrent_kernel + bias). Weights [kernel, recurrent_kernel, bias].

    Example:
        >>> layer = pynn.layers.SimpleRNN(4)
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 4)
    """

    n_states = 1

    def call(self, x, training=False, initial_state=None, mask=None):
        mask = mask if mask is not None else x._keras_mask
        x = self._inputs(x, training)
        self._stateful_begin(x)
        hs = F.simple_rnn(x, self.kernel, self.recurrent_kernel, self._bias(), self._state(initial_state, 0, x),
                          mask=mask, go_backwards=self.go_backwards, activation=self.activation,
                          recurrent_mask=self._recurrent_mask(x, training))
        return self._outputs(hs, [hs[:, -1]], mask)


class LSTM(_RNN):
    """Keras LSTM: kernel (F, 4U), recurrent_kernel (U, 4U), bias (4U,), gates in the
    order i, f, c, o; ``unit_forget_bias`` starts the forget gate's bias at 1.
    States: [h, c].

    Example:
        >>> layer = pynn.layers.LSTM(4)
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 4)
    """

    gates, n_states = 4, 2

    # Keras' full signature, spelled out so help(LSTM) and IDEs show every argument.
    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 dropout=0.0, recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, **kwargs)
        self.recurrent_activation, self.unit_forget_bias = recurrent_activation, unit_forget_bias

    def _bias_init(self):
        return unit_forget_bias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def call(self, x, training=False, initial_state=None, mask=None):
        mask = mask if mask is not None else x._keras_mask
        x = self._inputs(x, training)
        self._stateful_begin(x)
        steps = x.shape[1]
        # Without return_sequences only h_T and c_T leave the op (F.lstm's last_only).
        last_only = not self.return_sequences
        packed = F.lstm(x, self.kernel, self.recurrent_kernel, self._bias(), self._state(initial_state, 0, x),
                        self._state(initial_state, 1, x), mask=mask, go_backwards=self.go_backwards,
                        activation=self.activation, recurrent_activation=self.recurrent_activation,
                        recurrent_mask=self._recurrent_mask(x, training), last_only=last_only)
        if last_only:
            return self._outputs(None, [packed[:, 0], packed[:, 1]], mask)
        hs, c_last = packed[:, :steps], packed[:, steps]
        return self._outputs(hs, [hs[:, -1], c_last], mask)

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Keras GRU (reset_after=True, its default): kernel (F, 3U), recurrent_kernel
    (U, 3U), bias (2, 3U) = [input bias, recurrent bias], gates z, r, h.

    Example:
        >>> layer = pynn.layers.GRU(4, return_sequences=True)
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 5, 4)
    """

    gates, n_states = 3, 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, reset_after=True, **kwargs):
        if not reset_after:
            raise NotImplementedError("GRU: only reset_after=True (the Keras default, and cuDNN's/PyTorch's form) "
                                      "is implemented; layers.RNN(layers.GRUCell(units, reset_after=False)) "
                                      "runs the other form")
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, **kwargs)
        self.recurrent_activation, self.reset_after = recurrent_activation, reset_after

    def _bias_shape(self):
        return (2, 3 * self.units)

    def call(self, x, training=False, initial_state=None, mask=None):
        mask = mask if mask is not None else x._keras_mask
        x = self._inputs(x, training)
        self._stateful_begin(x)
        hs = F.gru(x, self.kernel, self.recurrent_kernel, self._bias(), self._state(initial_state, 0, x),
                   mask=mask, go_backwards=self.go_backwards, activation=self.activation,
                   recurrent_activation=self.recurrent_activation, recurrent_mask=self._recurrent_mask(x, training))
        return self._outputs(hs, [hs[:, -1]], mask)

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}
