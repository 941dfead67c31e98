"""``layers.Input(shape)``: declares a model's input shape and dtype."""
import numpy as np


class Input:
    """The input of a model: ``shape`` excludes the batch dimension.

    ``layers.Input((28, 28, 1))`` or ``layers.Input((T,), dtype="int64")`` for
    token ids. As the first element of a ``Sequential`` it builds every layer
    at construction, so ``summary()`` works before any data is seen.
    """

    def __init__(self, shape, dtype="float32", name=None, batch_size=None):
        if isinstance(shape, int):
            shape = (shape,)
        self.shape = (batch_size,) + tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.name = name or "input"

    def __repr__(self):
        return f"<Input shape={self.shape} dtype={self.dtype.name}>"
