"""Neural-network ops: matmul, dense, activations, softmax and the fused
softmax/sigmoid cross-entropies. Forward and backward both call the active
backend's kernels (``pynn.backend.current()``), so the same graph runs on the
numpy reference or the native kernels."""
import numpy as np

from .. import backend
from ..autograd import Function
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


# Activations whose derivative can be read off the output y alone: Dense fuses
# these into the GEMM epilogue and keeps only y for backward.
_FUSABLE = {"linear": None, "relu": None, "sigmoid": None, "tanh": None}


def _derivative_from_output(activation, y, g):
    """act'(z)·g from the output y = act(z) alone, through the backend's
    activation-gradient kernel (one native pass instead of numpy temporaries).
    For relu, y > 0 exactly where z > 0, so y stands in for z."""
    if activation == "linear":
        return g
    return getattr(_B(), activation + "_grad")(y, y, g)


@register("dense")
class Dense(Function):
    """act(x @ kernel + bias) in one kernel call (GEMM with a fused epilogue).

    x (..., in), kernel (in, out), bias (out,) or None; activation one of
    linear/relu/sigmoid/tanh. Backward: dz = act'(z)·g, dx = dz @ kernelᵀ,
    dkernel = xᵀ @ dz, dbias = Σ dz.
    """

    def forward(self, x, kernel, bias=None, activation="linear"):
        if activation not in _FUSABLE:
            raise ValueError(f"dense: activation {activation!r} cannot be fused; use linear and apply it after")
        self.x, self.kernel, self.activation = x, kernel, activation
        self.y = _B().matmul(x, kernel, bias=bias, activation=None if activation == "linear" else activation)
        return self.y

    def backward(self, g):
        B = _B()
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            dz, db = B.act_bias_grad(self.y, g, self.activation)   # one pass for act' and Σ
        else:
            dz, db = _derivative_from_output(self.activation, self.y, g), None
        x2 = self.x.reshape(-1, self.x.shape[-1])
        dz2 = dz.reshape(-1, dz.shape[-1])
        dx = B.matmul(dz, self.kernel.T) if self.needs_input_grad[0] else None
        dk = B.matmul(x2.T, dz2) if self.needs_input_grad[1] else None
        return dx, dk, db


# ---------------------------------------------------------------- activations
@register("relu")
class ReLU(Function):
    def forward(self, x):
        self.x = x
        self.y = _B().relu(x)
        return self.y

    def backward(self, g):
        return _B().relu_grad(self.x, self.y, g)


@register("leaky_relu")
class LeakyReLU(Function):
    def forward(self, x, alpha=0.2):
        self.x, self.alpha = x, alpha
        self.y = _B().leaky_relu(x, alpha=alpha)
        return self.y

    def backward(self, g):
        return _B().leaky_relu_grad(self.x, self.y, g, alpha=self.alpha)


@register("sigmoid")
class Sigmoid(Function):
    def forward(self, x):
        self.x = x
        self.y = _B().sigmoid(x)
        return self.y

    def backward(self, g):
        return _B().sigmoid_grad(self.x, self.y, g)


@register("tanh")
class Tanh(Function):
    def forward(self, x):
        self.x = x
        self.y = _B().tanh(x)
        return self.y

    def backward(self, g):
        return _B().tanh_grad(self.x, self.y, g)


@register("gelu")
class GELU(Function):
    def forward(self, x):
        self.x = x
        self.y = _B().gelu(x)
        return self.y

    def backward(self, g):
        return _B().gelu_grad(self.x, self.y, g)


@register("elu")
class ELU(Function):
    def forward(self, x, alpha=1.0):
        self.x, self.alpha = x, alpha
        self.y = _B().elu(x, alpha=alpha)
        return self.y

    def backward(self, g):
        return _B().elu_grad(self.x, self.y, g, alpha=self.alpha)


@register("softmax")
class Softmax(Function):
    def forward(self, x, axis=-1):
        self.axis = axis
        self.y = _B().softmax(x, axis=axis)
        return self.y

    def backward(self, g):
        return _B().softmax_grad(self.y, g, axis=self.axis)


@register("log_softmax")
class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        self.axis = axis
        self.y = _B().log_softmax(x, axis=axis)
        return self.y

    def backward(self, g):
        return _B().log_softmax_grad(self.y, g, axis=self.axis)


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
        return np.expand_dims(g, -1) * self.dlogits, None


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


# ---------------------------------------------------------------- wrappers
def matmul(a, b): return MatMul.apply(a, b)


def dense(x, kernel, bias=None, activation="linear"):
    """act(x @ kernel + bias); x (..., in), kernel (in, out), bias (out,)."""
    if bias is None:
        return Dense.apply(x, kernel, activation=activation)
    return Dense.apply(x, kernel, bias, activation=activation)


def relu(x): return ReLU.apply(x)
def leaky_relu(x, alpha=0.2): return LeakyReLU.apply(x, alpha=alpha)
def tanh(x): return Tanh.apply(x)
def gelu(x): return GELU.apply(x)
def elu(x, alpha=1.0): return ELU.apply(x, alpha=alpha)


def sigmoid(x):
    out = Sigmoid.apply(x)
    out._keras_logits = x  # a BCE loss on this output may use the logits path
    return out


def softmax(x, axis=-1):
    out = Softmax.apply(x, axis=axis)
    if axis in (-1, np.ndim(x) - 1):
        out._keras_logits = x  # a CCE loss on this output may use the fused logits path
    return out


def log_softmax(x, axis=-1): return LogSoftmax.apply(x, axis=axis)
def linear(x): return x
def softmax_cross_entropy(logits, labels): return SoftmaxCrossEntropy.apply(logits, labels)
def sigmoid_binary_cross_entropy(logits, targets): return SigmoidBinaryCrossEntropy.apply(logits, targets)
