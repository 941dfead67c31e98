"""``data_format="channels_first"`` for layers written for channels_last.

pynn's kernels are channels_last (NHWC), its native layout. A layer given
``data_format="channels_first"`` takes (N, C, *spatial) inputs: the ``ChannelsFirst``
mixin transposes them to (N, *spatial, C), runs the channels_last layer, and
transposes a same-rank result back (global pooling without keepdims and Flatten
return what they compute on the channels_last view, as Keras does). Weights keep
Keras' shapes, which do not depend on the data format. The transposes are
differentiable ops, so training works the same way; they cost one copy each way.
"""
import inspect

from .. import config, functional as F


def normalize_data_format(value, name):
    """``value`` checked, or Keras' default (``pynn.config.image_data_format()``) for None."""
    if value is None:
        return config.image_data_format()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"{name}: data_format must be 'channels_last' or 'channels_first', got {value!r}")
    return value


def _to_last_perm(ndim):
    return (0,) + tuple(range(2, ndim)) + (1,)


def _to_first_perm(ndim):
    return (0, ndim - 1) + tuple(range(1, ndim - 1))


def shape_to_last(shape):
    s = tuple(shape)
    return (s[0],) + s[2:] + (s[1],) if len(s) >= 3 else s


def shape_to_first(shape):
    s = tuple(shape)
    return (s[0], s[-1]) + s[1:-1] if len(s) >= 3 else s


class ChannelsFirst:
    """Mixin placed first in a channels_last layer's bases: honours ``self.data_format``.

    The layer's own ``__init__`` sets ``self.data_format`` with ``normalize_data_format``.
    """

    data_format = "channels_last"
    _cf_building = False

    @property
    def _channels_first(self):
        return self.data_format == "channels_first"

    def build(self, input_shape):
        if not self._channels_first or self._cf_building or len(input_shape) < 3:
            return super().build(input_shape)
        # the channels_last build may call compute_output_shape on the converted shape
        self._cf_building = True
        try:
            return super().build(shape_to_last(input_shape))
        finally:
            self._cf_building = False

    def compute_output_shape(self, input_shape):
        if not self._channels_first or self._cf_building or len(input_shape) < 3:
            return super().compute_output_shape(input_shape)
        out = tuple(super().compute_output_shape(shape_to_last(input_shape)))
        return shape_to_first(out) if len(out) == len(input_shape) else out

    def call(self, inputs, training=False, **kwargs):
        inner = super().call
        if "training" in inspect.signature(inner).parameters:
            kwargs["training"] = training
        if not self._channels_first or inputs.ndim < 3:
            return inner(inputs, **kwargs)
        ndim = inputs.ndim
        x = F.transpose(inputs, _to_last_perm(ndim))
        x._keras_mask = inputs._keras_mask        # a mask is (N, steps): the same in both layouts
        y = inner(x, **kwargs)
        if y.ndim != ndim:
            return y
        out = F.transpose(y, _to_first_perm(ndim))
        out._keras_mask = y._keras_mask
        return out

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}
