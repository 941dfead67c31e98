"""``pynn.Sequential``: a plain stack of layers, each feeding the next."""
from .. import _weights_epoch
from ..layers.base import Layer
from ..layers.input_layer import Input
from ..utils.registry import deserialize_layer, serialize_layer
from .model import Model


class Sequential(Model):
    """Sequential([Input(shape), layer, layer, ...]) or Sequential() then .add(layer).

    With an Input first, every layer is built (weights created) immediately;
    otherwise at the first call, from the data's shape.

    Example:
        >>> model = pynn.Sequential([pynn.layers.Input((4,)), pynn.layers.Dense(8, activation="relu"),
        ...                          pynn.layers.Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> history = model.fit(np.ones((8, 4), np.float32), np.zeros((8, 1), np.float32), epochs=2, verbose=0)
        >>> model.output_shape, model.count_params()
        ((None, 1), 49)
    """

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self._layers = []
        self._input = None
        self._build_input_shape = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        _weights_epoch.bump()   # the layer list changes: inference plans rebuild
        if isinstance(layer, Input):
            if self._layers or self._input is not None:
                raise ValueError("Sequential: an Input must come first")
            self._input = layer
            self.build(layer.shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer, got {type(layer).__name__}")
        if layer._input_shape is not None and not self._layers and self._input is None:
            self._input = Input(layer._input_shape[1:], batch_size=layer._input_shape[0])
            self._layers.append(layer)
            self.build(self._input.shape)
            return
        self._layers.append(layer)
        if self.built:
            self._build_layer(layer, self._output_shape)

    @property
    def layers(self):
        return list(self._layers)

    def pop(self):
        """Remove and return the last layer (Keras' ``Sequential.pop``); the model's
        output shape becomes the new last layer's."""
        if not self._layers:
            raise IndexError(f"Sequential {self.name!r}.pop: there are no layers to remove")
        layer = self._layers.pop()
        _weights_epoch.bump()
        if self.built:
            self.build(self._build_input_shape if self._input is None else self._input.shape)
        return layer

    def _build_layer(self, layer, shape):
        if not layer.built:
            layer.build(shape)
            layer.built = True
        self._output_shape = tuple(layer.compute_output_shape(shape))

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if self._input is None:
            input_shape = (None,) + input_shape[1:]
        self._build_input_shape = input_shape
        self._output_shape = input_shape
        for layer in self._layers:
            self._build_layer(layer, self._output_shape)
        self.built = True

    def call(self, x, training=False):
        for layer in self._layers:
            x = layer(x, training=training)
        return x

    def __call__(self, inputs, training=False):
        if self.built:
            self._check_input_shape(getattr(inputs, "shape", ()), f"Sequential {self.name!r}")
        return super().__call__(inputs, training=training)

    def get_config(self):
        return {"name": self.name, "layers": [serialize_layer(layer) for layer in self._layers],
                "input_shape": list(self._build_input_shape[1:]) if self._build_input_shape else None,
                "input_dtype": self._input.dtype.name if self._input is not None else "float32"}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config["name"])
        if config.get("input_shape") is not None:
            model.add(Input(tuple(config["input_shape"]), dtype=config.get("input_dtype", "float32")))
        for spec in config["layers"]:
            model.add(deserialize_layer(spec))
        return model
