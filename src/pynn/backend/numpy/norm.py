"""Batch and layer normalisation on channels_last data, as in the textbook.

x̂ = (x − μ) / √(σ² + ε), y = γ·x̂ + β. Batch norm takes μ, σ² per channel over
every other axis (the biased variance, as Keras and PyTorch in training); layer
norm per sample over the last axis. Each forward returns (y, mean, inv_std) so
the backward needs no recomputation.
"""
import numpy as np

__all__ = ["batch_norm", "batch_norm_grad", "layer_norm", "layer_norm_grad", "add_layer_norm",
           "layer_norm_grad_with_sum"]


def _rows(x):
    return x.reshape(-1, x.shape[-1])


def _check_rows(op, x):
    """Batch statistics of no samples do not exist (a plain mean gives NaN): that would feed the moving
    averages a made-up value, so it is an error here as in the native kernel (csrc/norm/bind_norm.cpp)."""
    if x.ndim >= 1 and x.size == 0 and x.shape[-1] > 0:
        raise ValueError(f"{op}: no samples to compute batch statistics over, input shape {x.shape}")


def _normalize(x, axis, gamma, beta, epsilon):
    """(y, mean, inv_std) normalising the (rows, C) view of x along ``axis`` (0: each
    channel over the rows; 1: each row over its channels), then y = γ·x̂ + β."""
    x2 = _rows(x)
    mean = x2.mean(axis=axis, keepdims=True)
    var = ((x2 - mean) ** 2).mean(axis=axis, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + epsilon)
    y = (x2 - mean) * inv_std
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return (y.reshape(x.shape).astype(x.dtype, copy=False), mean.reshape(-1).astype(x.dtype),
            inv_std.reshape(-1).astype(x.dtype))


def batch_norm(x, gamma=None, beta=None, epsilon=1e-3):
    """Training-mode batch norm over all axes but the last. Returns (y, mean (C,), inv_std (C,))."""
    _check_rows("batch_norm", x)
    return _normalize(x, 0, gamma, beta, epsilon)


def batch_norm_grad(x, dy, mean, inv_std, gamma=None):
    """Returns (dx, dgamma, dbeta): with x̂ the normalised input and R the row count,
    dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·inv_std/R · (R·dy − dβ − x̂·dγ)."""
    x2, dy2 = _rows(x), _rows(dy)
    rows = x2.shape[0]
    x_hat = (x2 - mean) * inv_std
    dbeta = dy2.sum(axis=0)
    dgamma = (dy2 * x_hat).sum(axis=0)
    scale = inv_std if gamma is None else gamma * inv_std
    dx = scale / rows * (rows * dy2 - dbeta - x_hat * dgamma)
    return dx.reshape(x.shape).astype(x.dtype, copy=False), dgamma, dbeta


def layer_norm(x, gamma=None, beta=None, epsilon=1e-3):
    """Layer norm over the last axis. Returns (y, mean (rows,), inv_std (rows,))."""
    return _normalize(x, 1, gamma, beta, epsilon)


def layer_norm_grad(x, dy, mean, inv_std, gamma=None):
    """Returns (dx, dgamma, dbeta); with g = γ·dy per row of C values:
    dx = inv_std/C · (C·g − Σg − x̂·Σ g·x̂)."""
    x2, dy2 = _rows(x), _rows(dy)
    c = x2.shape[1]
    x_hat = (x2 - mean[:, None]) * inv_std[:, None]
    dbeta = dy2.sum(axis=0)
    dgamma = (dy2 * x_hat).sum(axis=0)
    g = dy2 if gamma is None else dy2 * gamma
    dx = inv_std[:, None] / c * (c * g - g.sum(axis=1, keepdims=True) - x_hat * (g * x_hat).sum(axis=1, keepdims=True))
    return dx.reshape(x.shape).astype(x.dtype, copy=False), dgamma, dbeta


def add_layer_norm(x, res, gamma=None, beta=None, epsilon=1e-3):
    """Layer norm of s = x + res (the post-norm residual). Returns (y, s, mean, inv_std):
    s is the backward's input."""
    if x.shape != res.shape:
        raise ValueError(f"add_layer_norm: x has shape {x.shape} but res has shape {res.shape}")
    s = x + res
    y, mean, inv_std = layer_norm(s, gamma, beta, epsilon)
    return y, s, mean, inv_std


def layer_norm_grad_with_sum(x, dy, mean, inv_std, gamma=None):
    """:func:`layer_norm_grad` plus Σ dx over the rows (the bias gradient of the layer whose
    output x is): returns (dx, dgamma, dbeta, dx_sum)."""
    dx, dgamma, dbeta = layer_norm_grad(x, dy, mean, inv_std, gamma)
    return dx, dgamma, dbeta, _rows(dx).sum(axis=0)
