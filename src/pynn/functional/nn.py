"""Neural-network ops: matmul, dense and the fused softmax/sigmoid
cross-entropies (activations: ``activation.py``). Forward and backward both call the active
backend's kernels (``pynn.backend.current()``), so the same graph runs on the
numpy reference or the native kernels."""
import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from ..random import generator
from .activation import check_fusable, fused_backward, split
from .registry import register, unbroadcast


def _B():
    return backend.current()


# ---------------------------------------------------------------- linear algebra
@register("matmul")
class MatMul(Function):
    """a @ b with NumPy semantics (1-D operands, broadcast batch dims)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return _B().matmul(a, b)

    def backward(self, g):
        a, b, B = self.a, self.b, _B()
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1 and b.ndim == 1:
            g2 = np.reshape(g, (1, 1))  # vector·vector: g is 0-d, the product of a row and a column
        elif a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        elif b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        # Transposes are views: the native GEMM reads them through strides, no copy.
        if self.needs_input_grad[0]:
            ga = B.matmul(g2, np.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = B.matmul(np.swapaxes(a2, -1, -2), g2)
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


def dense_forward(x, kernel, bias, activation):
    """act(x @ kernel + bias) on arrays: Dense's forward, also run by fit's prepared
    step for a stack of Dense layers (models/fit_loop.py), so both share one formula."""
    return _B().matmul(x, kernel, bias=bias, activation=None if activation == "linear" else activation)


def dense_backward(activation, x, kernel, y, g, need_x, need_kernel, need_bias):
    """(dx, dkernel, dbias) of :func:`dense_forward` given its output ``y`` and the output
    gradient ``g`` (None where not needed): Dense's backward, shared as dense_forward."""
    B = _B()
    dz, db = fused_backward(activation, y, g, need_bias)
    dx = B.matmul(dz, kernel.T) if need_x else None
    dk = B.matmul(x.reshape(-1, x.shape[-1]).T, dz.reshape(-1, dz.shape[-1])) if need_kernel else None
    return dx, dk, db


@register("dense")
class Dense(Function):
    """act(x @ kernel + bias) in one kernel call (GEMM with a fused epilogue).

    x (..., in), kernel (in, out), bias (out,) or None; activation "linear" or one
    whose derivative its output determines (``from_output`` in the activation
    table). Backward: dz = act'(y)·g read off the
    output, dx = dz @ kernelᵀ, dkernel = xᵀ @ dz, dbias = Σ dz.
    """

    def forward(self, x, kernel, bias=None, activation="linear"):
        check_fusable("dense", activation)
        self.x, self.kernel, self.activation = x, kernel, activation
        self.y = dense_forward(x, kernel, bias, activation)
        return self.y

    def backward(self, g):
        need = self.needs_input_grad
        return dense_backward(self.activation, self.x, self.kernel, self.y, g, need[0], need[1],
                              len(need) > 2 and need[2])


# ---------------------------------------------------------------- fused losses
@register("softmax_cross_entropy")
class SoftmaxCrossEntropy(Function):
    """Per-sample −Σ t·log softmax(logits) over the last axis, loss and gradient
    in one pass. labels: integer ids (sparse) or probabilities (dense)."""

    def forward(self, logits, labels):
        labels = np.asarray(labels)
        if labels.dtype.kind == "f":  # dense targets compute in the logits' dtype
            labels = labels.astype(logits.dtype, copy=False)
        loss, self.dlogits = _B().softmax_cross_entropy(logits, labels)
        return loss

    def backward(self, g):
        return g[..., None] * self.dlogits, None   # (indexing, not np.expand_dims: a C call)


@register("sigmoid_binary_cross_entropy")
class SigmoidBinaryCrossEntropy(Function):
    """Elementwise BCE from logits, stable form: max(x,0) − x·t + log(1 + e^(−|x|))."""

    def forward(self, logits, targets):
        x, t = logits, np.asarray(targets, dtype=logits.dtype)
        self.x, self.t = x, t
        return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))

    def backward(self, g):
        grad_x = g * (_B().sigmoid(self.x) - self.t) if self.needs_input_grad[0] else None
        grad_t = -g * self.x if self.needs_input_grad[1] else None
        return grad_x, grad_t


# ---------------------------------------------------------------- dropout
@register("dropout")
class Dropout(Function):
    """x · mask with a fixed mask (broadcast against x); backward g · mask."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return g * self.mask, None


def dropout(x, rate, noise_shape=None, rng=None):
    """Inverted dropout: each entry zeroed with probability ``rate``, the rest scaled by
    1/(1 − rate), so the expectation is x. ``noise_shape``: the mask's shape, broadcast
    against x (Keras; (N, 1, C) drops a channel at every step). ``rng``: a numpy Generator,
    default pynn's (``pynn.set_seed``)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    return Dropout.apply(x, dropout_mask(data, rate, noise_shape, rng))


def dropout_mask(data, rate, noise_shape=None, rng=None):
    """The mask :func:`dropout` multiplies array ``data`` by (0 or 1/(1 − rate), drawn from
    ``rng`` or pynn's generator); fit's Dense-stack step draws its masks with it too."""
    keep = 1.0 - rate
    shape = data.shape if noise_shape is None else tuple(noise_shape)
    return ((rng or generator()).random(shape) < keep).astype(data.dtype) / np.asarray(keep, data.dtype)


# ---------------------------------------------------------------- wrappers
def matmul(a, b): return MatMul.apply(a, b)


def dense(x, kernel, bias=None, activation=None):
    """act(x @ kernel + bias); x (..., in), kernel (in, out), bias (out,) or None.

    ``activation``: None, a name or a callable. One whose gradient its output
    determines runs in the GEMM's epilogue; any other is applied after it.
    """
    fused, after = split(activation)
    y = Dense.apply(x, kernel, activation=fused) if bias is None else Dense.apply(x, kernel, bias, activation=fused)
    return y if after is None else after(y)


def softmax_cross_entropy(logits, labels): return SoftmaxCrossEntropy.apply(logits, labels)
def sigmoid_binary_cross_entropy(logits, targets): return SigmoidBinaryCrossEntropy.apply(logits, targets)
