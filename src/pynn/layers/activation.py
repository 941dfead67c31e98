"""``layers.Activation``: applies an activation by name."""
from .. import activations
from .base import Layer


class Activation(Layer):
    """Activation("relu"): applies an activation by name (or a callable) elementwise.

    Example:
        >>> layer = pynn.layers.Activation("relu")
        >>> layer(np.ones((2, 3), np.float32)).shape
        (2, 3)
    """

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, x):
        return self.activation(x)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}
