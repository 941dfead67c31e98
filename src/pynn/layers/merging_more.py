"""More merge layers (Subtract, Average, Maximum, Minimum, Dot) and Keras'
function forms: ``layers.add([a, b])``, ``layers.concatenate([a, b], axis=-1)``..."""
import operator

from .. import functional as F
from .merging import Add, Concatenate, Multiply, _Merge


def _fold(inputs, op):
    """op(...op(op(inputs[0], inputs[1]), inputs[2])...): the left fold Average, Maximum, Minimum share."""
    out = inputs[0]
    for t in inputs[1:]:
        out = op(out, t)
    return out


class _Elementwise(_Merge):
    def call(self, inputs):
        self._check([tuple(t.shape) for t in inputs])
        for t in inputs[1:]:
            if t.shape[1:] != inputs[0].shape[1:]:
                raise ValueError(f"{type(self).__name__} {self.name!r}: inputs have shapes "
                                 f"{[tuple(i.shape) for i in inputs]}")
        return self._merge(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


class Subtract(_Elementwise):
    """``inputs[0] - inputs[1]`` (exactly two inputs, as Keras).

    Example:
        >>> pynn.layers.Subtract()([np.ones((1, 2), np.float32), np.ones((1, 2), np.float32)]).numpy()
        array([[0., 0.]], dtype=float32)
    """

    def _merge(self, inputs):
        if len(inputs) != 2:
            raise ValueError(f"Subtract {self.name!r}: expects exactly 2 inputs, got {len(inputs)}")
        return inputs[0] - inputs[1]


class Average(_Elementwise):
    """Elementwise mean of the inputs.

    Example:
        >>> pynn.layers.Average()([np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32)]).numpy()
        array([[0.5, 0.5]], dtype=float32)
    """

    def _merge(self, inputs):
        return _fold(inputs, operator.add) * (1.0 / len(inputs))


class Maximum(_Elementwise):
    """Elementwise maximum of the inputs.

    Example:
        >>> pynn.layers.Maximum()([np.zeros((1, 2), np.float32), np.array([[-1.0, 1.0]], np.float32)]).numpy()
        array([[0., 1.]], dtype=float32)
    """

    def _merge(self, inputs):
        return _fold(inputs, F.maximum)


class Minimum(_Elementwise):
    """Elementwise minimum of the inputs.

    Example:
        >>> pynn.layers.Minimum()([np.zeros((1, 2), np.float32), np.array([[-1.0, 1.0]], np.float32)]).numpy()
        array([[-1.,  0.]], dtype=float32)
    """

    def _merge(self, inputs):
        return _fold(inputs, F.minimum)


class Dot(_Merge):
    """Dot(axes, normalize=False): the batched dot product of two inputs along
    ``axes`` (an int for both, or a pair), as Keras' ``batch_dot``. Supports 2-D
    inputs (N, D)·(N, D) -> (N, 1) and 3-D inputs contracting one of axes 1/2
    (e.g. axes=(2, 2): (N, T, D)·(N, S, D) -> (N, T, S)). ``normalize``: L2-normalise
    along the axes first (cosine similarity).

    Example:
        >>> pynn.layers.Dot(axes=1)([np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)]).numpy()
        array([[3.],
               [3.]], dtype=float32)
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = list(axes) if isinstance(axes, (list, tuple)) else [axes, axes]
        if len(self.axes) != 2:
            raise ValueError(f"Dot: axes must be an int or a pair, got {axes!r}")
        self.normalize = normalize

    def _resolved(self, shapes):
        if len(shapes) != 2:
            raise ValueError(f"Dot {self.name!r}: expects exactly 2 inputs, got {len(shapes)}")
        (sa, sb), out = shapes, []
        if len(sa) != len(sb) or len(sa) not in (2, 3):
            raise ValueError(f"Dot {self.name!r}: supports two inputs of rank 2 or 3 each, got {sa} and {sb}")
        axes = [a % len(s) for a, s in zip(self.axes, shapes)]
        if 0 in axes:
            raise ValueError(f"Dot {self.name!r}: cannot contract the batch axis")
        if sa[axes[0]] is not None and sb[axes[1]] is not None and sa[axes[0]] != sb[axes[1]]:
            raise ValueError(f"Dot {self.name!r}: dimension {axes[0]} of {sa} != dimension {axes[1]} of {sb}")
        return axes

    def build(self, input_shape):
        self._resolved(input_shape)
        self.built = True

    def call(self, inputs):
        a, b = inputs
        ax, bx = self._resolved([tuple(a.shape), tuple(b.shape)])
        if self.normalize:
            a = a / F.sqrt(F.maximum(F.sum(a * a, axis=ax, keepdims=True), 1e-12))
            b = b / F.sqrt(F.maximum(F.sum(b * b, axis=bx, keepdims=True), 1e-12))
        if a.ndim == 2:
            return F.sum(a * b, axis=1, keepdims=True)
        # 3-D: bring the contracted axis of a last and of b to the middle, then one batched matmul.
        if ax == 1:
            a = F.transpose(a, (0, 2, 1))
        if bx == 2:
            b = F.transpose(b, (0, 2, 1))
        return F.matmul(a, b)

    def compute_output_shape(self, input_shape):
        ax, bx = self._resolved(input_shape)
        sa, sb = input_shape
        if len(sa) == 2:
            return (sa[0], 1)
        return (sa[0], sa[3 - ax], sb[3 - bx])

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


# What each merge function's docstring example prints for a = [[1, 1]], b = [[2, 2]].
_MERGE_EXAMPLE_OUTPUT = {"Add": "[[3. 3.]]", "Subtract": "[[-1. -1.]]", "Multiply": "[[2. 2.]]",
                         "Average": "[[1.5 1.5]]", "Maximum": "[[2. 2.]]", "Minimum": "[[1. 1.]]"}


def _functional_form(cls):
    """Keras' lower-case function for a merge layer: ``layers.add([a, b])`` is ``Add(**kwargs)([a, b])``."""
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = merge.__qualname__ = cls.__name__.lower()
    output = _MERGE_EXAMPLE_OUTPUT.get(cls.__name__, "<add its output to _MERGE_EXAMPLE_OUTPUT>")
    merge.__doc__ = (f"Functional form of ``{cls.__name__}``: ``layers.{merge.__name__}([a, b], **layer_kwargs)``.\n\n"
                     "    Args:\n"
                     "        inputs: a list of Tensors (or symbolic Keras tensors) of one shape.\n"
                     f"        **kwargs: keyword arguments of ``{cls.__name__}`` (name, dtype ...).\n\n"
                     "    Returns:\n"
                     f"        The output of a new ``{cls.__name__}`` layer called on inputs.\n\n"
                     "    Example:\n"
                     "        >>> a, b = np.ones((1, 2), np.float32), np.full((1, 2), 2.0, np.float32)\n"
                     f"        >>> print(pynn.layers.{merge.__name__}([a, b]).numpy())\n"
                     f"        {output}\n    ")
    return merge


add, subtract, multiply = _functional_form(Add), _functional_form(Subtract), _functional_form(Multiply)
average, maximum, minimum = _functional_form(Average), _functional_form(Maximum), _functional_form(Minimum)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of ``Concatenate``: ``layers.concatenate([a, b], axis=-1)``.

    Args:
        inputs: a list of Tensors (or symbolic Keras tensors).
        axis: the axis joined along (default -1).
        **kwargs: keyword arguments of ``Concatenate``.

    Returns:
        The inputs joined along axis.

    Example:
        >>> a, b = np.ones((1, 2), np.float32), np.zeros((1, 3), np.float32)
        >>> print(pynn.layers.concatenate([a, b]).numpy())
        [[1. 1. 0. 0. 0.]]
    """
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional form of ``Dot``: the dot product of two inputs along ``axes``.

    Args:
        inputs: a list of two Tensors (or symbolic Keras tensors).
        axes: the axis (or pair of axes) contracted (default -1).
        normalize: L2-normalise both inputs first (cosine similarity).
        **kwargs: keyword arguments of ``Dot``.

    Returns:
        The dot products, shape (batch, 1) for 2-D inputs.

    Example:
        >>> a, b = np.array([[1.0, 2.0]], np.float32), np.array([[3.0, 4.0]], np.float32)
        >>> print(pynn.layers.dot([a, b], axes=1).numpy())
        [[11.]]
    """
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


