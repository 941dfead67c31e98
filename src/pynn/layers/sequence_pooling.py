"""Pooling over the steps of a sequence (B, T, C) -> (B, C), mask-aware as Keras:
padded steps are left out of the average and the max."""
import numpy as np

from .. import functional as F
from .base import Layer


class GlobalAveragePooling1D(Layer):
    def call(self, x):
        mask = x._keras_mask
        if mask is None:
            return F.mean(x, axis=1)
        w = np.asarray(mask, x.dtype)[..., None]                 # (B, T, 1)
        count = np.maximum(w.sum(axis=1), 1.0)                   # (B, 1)
        return F.sum(x * w, axis=1) / count

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


class GlobalMaxPooling1D(Layer):
    def call(self, x):
        mask = x._keras_mask
        if mask is not None:
            x = F.where(np.asarray(mask, bool)[..., None], x, np.asarray(np.finfo(x.dtype).min, x.dtype))
        return F.max(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
