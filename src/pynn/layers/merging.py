"""Layers that merge several inputs: Add, Multiply, Concatenate."""
from .. import functional as F
from .base import Layer


class _Merge(Layer):
    def _check(self, shapes):
        if not isinstance(shapes, list) or len(shapes) < 2:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expects a list of at least 2 inputs, "
                             f"got {shapes}")

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True


class Add(_Merge):
    """Elementwise sum of its inputs (a ResNet skip connection).

    Example:
        >>> pynn.layers.Add()([np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)]).numpy()[0]
        array([2., 2., 2.], dtype=float32)
    """

    def call(self, inputs):
        self._check([tuple(t.shape) for t in inputs])
        out = inputs[0]
        for t in inputs[1:]:
            if t.shape[1:] != out.shape[1:]:
                raise ValueError(f"Add {self.name!r}: inputs have shapes {[tuple(i.shape) for i in inputs]}")
            out = out + t
        return out

    def compute_output_shape(self, input_shape):
        return input_shape[0]


class Multiply(_Merge):
    """Elementwise product of its inputs (same shapes, or broadcastable).

    Example:
        >>> pynn.layers.Multiply()([np.full((1, 2), 3.0, np.float32), np.full((1, 2), 2.0, np.float32)]).numpy()
        array([[6., 6.]], dtype=float32)
    """
    def call(self, inputs):
        out = inputs[0]
        for t in inputs[1:]:
            if t.shape[1:] != out.shape[1:]:
                raise ValueError(f"Multiply {self.name!r}: inputs have shapes {[tuple(i.shape) for i in inputs]}")
            out = out * t
        return out

    def compute_output_shape(self, input_shape):
        return input_shape[0]


class Concatenate(_Merge):
    """Concatenate(axis=-1): joins its inputs along ``axis``.

    Example:
        >>> pynn.layers.Concatenate()([np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)]).shape
        (2, 7)
    """
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return F.concatenate(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape):
        out = list(input_shape[0])
        ax = self.axis % len(out)
        sizes = [s[ax] for s in input_shape]
        out[ax] = None if any(s is None for s in sizes) else sum(sizes)
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
