"""Wrappers: Bidirectional (a recurrent layer both ways) and TimeDistributed."""
import copy

from .. import functional as F
from ..utils.registry import deserialize_layer, serialize_layer
from .base import Layer


class Bidirectional(Layer):
    """Runs ``layer`` forwards and a copy of it backwards; merges with "concat"
    (default), "sum", "mul", "ave" or None (a list). Weights: forward's, then backward's.

    Example:
        >>> layer = pynn.layers.Bidirectional(pynn.layers.LSTM(4))
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 8)
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(f"Bidirectional: unknown merge_mode {merge_mode!r}")
        self.forward_layer = layer
        if backward_layer is None:
            backward_layer = copy.deepcopy(layer)
            backward_layer.name = f"backward_{layer.name}"
            backward_layer.go_backwards = not layer.go_backwards
            backward_layer._weights = []
            backward_layer.built = False
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode

    def build(self, input_shape):
        for layer in (self.forward_layer, self.backward_layer):
            layer.build(input_shape)
            layer.built = True
        self._weights = self.forward_layer._weights + self.backward_layer._weights
        self.built = True

    def call(self, x, training=False, initial_state=None):
        fwd_init = bwd_init = None
        if initial_state is not None:
            n = self.forward_layer.n_states
            if len(initial_state) != 2 * n:
                raise ValueError(f"Bidirectional {self.name!r}: initial_state needs {2 * n} tensors (the forward "
                                 f"layer's {n} states, then the backward layer's), got {len(initial_state)}")
            fwd_init, bwd_init = list(initial_state[:n]), list(initial_state[n:])
        fwd = self.forward_layer(x, training=training, initial_state=fwd_init)
        bwd = self.backward_layer(x, training=training, initial_state=bwd_init)
        states = []
        if self.forward_layer.return_state:
            # Keras order: output(s), then the forward layer's states, then the backward layer's.
            states = list(fwd[1:]) + list(bwd[1:])
            fwd, bwd = fwd[0], bwd[0]
        if self.backward_layer.return_sequences:
            bwd = F.getitem(bwd, (slice(None), slice(None, None, -1)))  # back to forward time order
        if self.merge_mode == "concat":
            out = F.concatenate([fwd, bwd], axis=-1)
        elif self.merge_mode == "sum":
            out = fwd + bwd
        elif self.merge_mode == "mul":
            out = fwd * bwd
        elif self.merge_mode == "ave":
            out = (fwd + bwd) * 0.5
        else:
            return [fwd, bwd] + states
        out._keras_mask = fwd._keras_mask
        return [out] + states if states else out

    def get_config(self):
        return {**super().get_config(), "layer": serialize_layer(self.forward_layer),
                "backward_layer": serialize_layer(self.backward_layer), "merge_mode": self.merge_mode}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = deserialize_layer(config.pop("layer"))
        backward = deserialize_layer(config.pop("backward_layer"))
        return cls(layer, backward_layer=backward, **config)

    def reset_states(self, states=None):
        """Stateful wrapped layers: zero both directions' states (or set them: forward's, then backward's)."""
        n = self.forward_layer.n_states
        self.forward_layer.reset_states(None if states is None else states[:n])
        self.backward_layer.reset_states(None if states is None else states[n:])

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.forward_layer.return_state:
            shape, states = shape[0], list(shape[1:]) * 2
        if self.merge_mode == "concat":
            out = [tuple(shape[:-1]) + (2 * shape[-1],)]
        else:
            out = [shape] if self.merge_mode else [shape, shape]
        out += states
        return out[0] if len(out) == 1 else out


class TimeDistributed(Layer):
    """Applies ``layer`` to every step: (N, T, ...) -> (N, T, ...) via the (N·T, ...) view.

    Example:
        >>> layer = pynn.layers.TimeDistributed(pynn.layers.Dense(4))
        >>> layer(np.ones((2, 5, 3), np.float32)).shape
        (2, 5, 4)
    """

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        self.layer.build((None,) + tuple(input_shape[2:]))
        self.layer.built = True
        self._weights = self.layer._weights
        self.built = True

    def call(self, x, training=False):
        n, t = x.shape[0], x.shape[1]
        flat = F.reshape(x, (n * t,) + tuple(x.shape[2:]))
        y = self.layer(flat, training=training)
        return F.reshape(y, (n, t) + tuple(y.shape[1:]))

    def get_config(self):
        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(deserialize_layer(config.pop("layer")), **config)

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])
