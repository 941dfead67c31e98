"""NumPy-style functions on the active backend: ndarrays in, ndarrays out.

The drop-in face of pynn: a hand-written NumPy model can replace ``a @ b`` with
``pynn.ops.matmul(a, b)`` and its activations with ``pynn.ops.relu`` ... and get
the native kernels. No autograd here (see ``pynn.functional`` for that); the
gradient kernels are exposed too (``relu_grad(x, y, dy)``, ``softmax_cross_entropy``
returns the loss and its gradient).
"""
from . import backend


def matmul(a, b):
    """``a @ b`` with NumPy semantics (1-D operands, broadcast batch dims)."""
    return backend.current().matmul(a, b)


def dense(x, w, b=None, activation=None):
    """``activation(x @ w + b)`` in one fused kernel (activation: relu, sigmoid, tanh, gelu, ...)."""
    return backend.current().matmul(x, w, bias=b, activation=activation)


def relu(x): return backend.current().relu(x)
def leaky_relu(x, alpha=0.2): return backend.current().leaky_relu(x, alpha=alpha)
def sigmoid(x): return backend.current().sigmoid(x)
def tanh(x): return backend.current().tanh(x)
def gelu(x): return backend.current().gelu(x)
def elu(x, alpha=1.0): return backend.current().elu(x, alpha=alpha)
def softmax(x, axis=-1): return backend.current().softmax(x, axis=axis)
def log_softmax(x, axis=-1): return backend.current().log_softmax(x, axis=axis)
def bias_add(x, b): return backend.current().bias_add(x, b)


def softmax_cross_entropy(logits, labels):
    """Per-sample loss and d loss / d logits, fused: ``(loss, dlogits)``."""
    return backend.current().softmax_cross_entropy(logits, labels)


def ctc_loss(log_probs, labels, input_lengths, label_lengths, blank=0, reduction="mean", zero_infinity=False):
    """CTC loss of log_probs (N, T, C) against padded labels (N, S); see pynn.functional.ctc_loss."""
    from .functional import ctc_loss as f
    from .autograd import no_grad
    with no_grad():
        return f(log_probs, labels, input_lengths, label_lengths, blank, reduction, zero_infinity).data


def __getattr__(name):
    # Every other kernel of the active backend (gradients, optimizer steps, ...).
    if name in backend.KERNELS:
        return _raw_kernel(name)
    raise AttributeError(f"pynn.ops has no {name!r}")


def _raw_kernel(name):
    """A raw kernel called directly: its callers are layers that pass consistent shapes, so
    some kernels index before they check. Called from here with arrays that do not fit
    together, an IndexError from deep inside becomes a ValueError naming the kernel and
    the shapes it was given."""
    def kernel(*args, **kwargs):
        try:
            return getattr(backend.current(), name)(*args, **kwargs)
        except IndexError as e:
            shapes = [getattr(a, "shape", type(a).__name__) for a in args]
            raise ValueError(f"{name}: arguments of shapes {shapes} do not fit together ({e})") from e
    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = getattr(backend.current(), name).__doc__
    return kernel


def conv2d(x, w, b=None, strides=1, padding="valid", dilation_rate=1):
    """NHWC convolution: x (N, H, W, C_in), w (kh, kw, C_in, C_out), b (C_out,) -> (N, OH, OW, C_out).
    ``padding``: "valid" | "same" (TensorFlow rules)."""
    from .functional.conv import _pair
    return backend.current().conv2d(x, w, b, _pair(strides), padding, _pair(dilation_rate))


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling of an NHWC array; ``strides`` defaults to ``pool_size``."""
    from .functional.conv import _pair
    return backend.current().max_pool2d(x, _pair(pool_size), None if strides is None else _pair(strides), padding)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling of an NHWC array; "same" padding averages over the real cells only."""
    from .functional.conv import _pair
    return backend.current().avg_pool2d(x, _pair(pool_size), None if strides is None else _pair(strides), padding)
