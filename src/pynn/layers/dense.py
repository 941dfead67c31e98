"""``layers.Dense``: a fully connected layer, ``activation(x @ kernel + bias)``."""
import numpy as np

from .. import _alignment, _weights_epoch, activations, backend as _backend, functional as F, initializers
from ..autograd import Tensor, is_grad_enabled
from ..functional.activation import split as _split_activation
from .base import Layer


class _PackCache:
    """Dense's kernel packed for inference and the key it is valid for. Copies (deepcopy,
    pickling) start empty: the pack is a derived native object, rebuilt on first use."""

    __slots__ = ("key", "packed")

    def __init__(self):
        self.key, self.packed = None, None

    def __deepcopy__(self, memo):
        return _PackCache()

    def __reduce__(self):
        return (_PackCache, ())


class KernelLayer(Layer):
    """``activation(op(x, kernel) + bias)``: the settings, weights and config that Dense
    and the convolutions share, with Keras's argument names."""

    def _kernel_settings(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, kernel_constraint, bias_constraint):
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint

    def _add_kernel_and_bias(self, kernel_shape, units):
        self.kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer, self.kernel_regularizer,
                                      self.kernel_constraint)
        # Rows on 64-byte boundaries (Variable.assign, set_weights and the optimizers write in place,
        # so they stay there): the native GEMM then reads a row-major kernel in place instead of
        # packing it on every forward call (csrc/gemm/gemm.cpp: b_in_place). At a page start,
        # so the optimizer's slots and the gradient buffers can be placed apart from it
        # within the page (pynn._alignment: 4K aliasing).
        self.kernel.data = _alignment.aligned_copy(self.kernel.data)
        self.bias = (self.add_weight("bias", (units,), self.bias_initializer, self.bias_regularizer,
                                     self.bias_constraint) if self.use_bias else None)
        self.built = True

    def _kernel_config(self):
        return {"activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


class Dense(KernelLayer):
    """Dense(units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
    bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
    kernel_constraint=None, bias_constraint=None).

    Input (..., in) -> output (..., units). Weights as Keras: [kernel (in, units), bias (units,)].

    Example:
        >>> layer = pynn.layers.Dense(4, activation="relu")
        >>> layer(np.ones((2, 3), np.float32)).shape
        (2, 4)
    """

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:  # True is an int
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = units
        self._kernel_settings(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                              bias_regularizer, kernel_constraint, bias_constraint)
        self.input_dim = None

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r}: expected an input of shape (batch, ..., features), "
                             f"got {input_shape}")
        self.input_dim = input_shape[-1]
        self._add_kernel_and_bias((self.input_dim, self.units), self.units)

    def call(self, x):
        if x.ndim < 2 or x.shape[-1] != self.input_dim:
            raise ValueError(f"Dense {self.name!r}: expected input with last dimension {self.input_dim}, "
                             f"got shape {x.shape}")
        if (not is_grad_enabled() and _backend.name() == "native" and self.kernel.data.dtype == np.float32
                and getattr(x, "dtype", None) == np.float32):
            return self._packed_call(x)
        # F.dense fuses the activation into the GEMM when its output gives its gradient.
        return F.dense(x, self.kernel, self.bias, activation=self.activation)

    # Inference (no graph recorded: predict, predict_on_batch, evaluate) multiplies by the
    # kernel packed once into the GEMM's panel layout (backend pack_weight / packed_matmul)
    # instead of repacking it inside every call: batch-1 requests are GEMV-sized, where the
    # packing cost as much as the product. The pack is keyed on the weights epoch
    # (pynn._weights_epoch: moved by Variable.assign, optimizer steps, set/load_weights)
    # and the kernel array is frozen (read-only) while the pack holds a copy of it, so a
    # direct in-place write raises instead of leaving the pack stale. Training keeps the ordinary GEMM: a step
    # uses the kernel once forward and once (transposed) backward, nothing to amortise.
    def _inference_pack(self):
        """The kernel packed by the active backend, rebuilt when any weight changed since."""
        cache = self.__dict__.get("_pack_cache")
        if cache is None:
            cache = self.__dict__["_pack_cache"] = _PackCache()   # not a tracked attribute
        data = self.kernel.data
        key = (_weights_epoch.current(), _backend.name(), id(data), data.__array_interface__["data"][0],
               data.shape)
        if cache.key != key:
            cache.packed, cache.key = None, None     # never leave a stale pack if packing fails
            cache.packed = _backend.current().pack_weight(data)
            _weights_epoch.freeze(data)
            cache.key = key
        return cache.packed

    def _packed_call(self, x):
        fused, after = _split_activation(self.activation)
        xd = x.data if isinstance(x, Tensor) else np.asarray(x)
        bias = None if self.bias is None else self.bias.data
        y = Tensor(_backend.current().packed_matmul(xd, self._inference_pack(), bias,
                                                    None if fused == "linear" else fused))
        return y if after is None else after(y)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, **self._kernel_config()}
