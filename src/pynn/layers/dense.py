"""``layers.Dense``: a fully connected layer, ``activation(x @ kernel + bias)``."""
import numpy as np

from .. import activations, functional as F, initializers
from .base import Layer

# Activations the GEMM applies in its epilogue while the tile is in cache
# (their derivative is a function of the output alone, so backward needs no z).
_FUSED = {"linear", "relu", "sigmoid", "tanh", None}


class Dense(Layer):
    """Dense(units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
    bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
    kernel_constraint=None, bias_constraint=None).

    Input (..., in) -> output (..., units). Weights as Keras: [kernel (in, units), bias (units,)].
    """

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:  # True is an int
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = units
        self.activation_name = activation if isinstance(activation, str) or activation is None else None
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self.input_dim = None

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r}: expected an input of shape (batch, ..., features), "
                             f"got {input_shape}")
        self.input_dim = input_shape[-1]
        self.kernel = self.add_weight("kernel", (self.input_dim, self.units), self.kernel_initializer,
                                      self.kernel_regularizer, self.kernel_constraint)
        self.bias = (self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer,
                                     self.bias_constraint) if self.use_bias else None)
        self.built = True

    def call(self, x):
        if x.ndim < 2 or x.shape[-1] != self.input_dim:
            raise ValueError(f"Dense {self.name!r}: expected input with last dimension {self.input_dim}, "
                             f"got shape {x.shape}")
        if self.activation_name in _FUSED:
            return F.dense(x, self.kernel, self.bias, activation=self.activation_name or "linear")
        return self.activation(F.dense(x, self.kernel, self.bias))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}
