"""Symbolic tensors: ``pynn.Input(shape)`` and what layers return when called on one.

A ``KerasTensor`` carries a shape (batch dimension ``None``), a dtype and the
layer call that produced it, so ``pynn.Model(inputs, outputs)`` can replay the
graph on real data. Calling a layer on one builds the layer's weights from the
shape and returns a new symbolic tensor; no computation happens.
"""
import numpy as np


class KerasTensor:
    def __init__(self, shape, dtype="float32", layer=None, parents=(), name=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.layer = layer          # the layer whose call produced this tensor (None for an Input)
        self.parents = parents      # the KerasTensor(s) that call received: one, or a list
        self.name = name

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
    """

    def __init__(self, shape, dtype="float32", name=None, batch_size=None):
        if isinstance(shape, int):
            shape = (shape,)
        super().__init__((batch_size,) + tuple(shape), dtype, name=name or "input")


def is_symbolic(x) -> bool:
    if isinstance(x, KerasTensor):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(t, KerasTensor) for t in x)
