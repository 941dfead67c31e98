"""Analytic gradients vs central finite differences (use float64 inputs)."""
import numpy as np

from ..autograd import Tensor


def numerical_grad(f, arrays, index, cotangent, eps=1e-6):
    """d <f(arrays), cotangent> / d arrays[index] by central differences."""
    x = arrays[index]
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)  # a view: x is contiguous (gradcheck copies its inputs)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(np.asarray(f(*arrays).data, np.float64) * cotangent)
        flat[i] = old - eps
        minus = np.sum(np.asarray(f(*arrays).data, np.float64) * cotangent)
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(f, inputs, wrt=None, eps=1e-6, rtol=1e-5, atol=1e-7, seed=0):
    """Check every gradient of ``f(*Tensors) -> Tensor`` against finite differences.

    ``inputs``: arrays (float64 for a meaningful check). ``wrt``: indices of the
    inputs to differentiate (default: all floating ones). A random cotangent is
    used, so a non-scalar output is checked in all directions at once. Raises
    AssertionError naming the input and the worst element on failure.
    """
    arrays = [np.array(a, copy=True) for a in inputs]
    if wrt is None:
        wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    tensors = [Tensor(a, requires_grad=(i in wrt)) for i, a in enumerate(arrays)]
    out = f(*tensors)
    rng = np.random.default_rng(seed)
    cotangent = rng.standard_normal(out.shape).astype(out.dtype)
    out.backward(cotangent)
    for i in wrt:
        analytic = tensors[i].grad if tensors[i].grad is not None else np.zeros_like(arrays[i])
        numeric = numerical_grad(lambda *xs: f(*[Tensor(x) for x in xs]), arrays, i, cotangent, eps)
        if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
            err = np.abs(analytic - numeric)
            j = np.unravel_index(np.argmax(err), err.shape) if err.ndim else ()
            raise AssertionError(f"gradcheck: input {i} (shape {arrays[i].shape}): analytic {analytic[j]} vs "
                                 f"numeric {numeric[j]} at {j}, max abs error {err.max():.3g}")
    return True
