"""Native batch/layer normalisation: pynn._C kernels on the (rows, C) view."""
import numpy as np

from pynn import _C

from ..numpy import norm as _ref

__all__ = ["batch_norm", "batch_norm_grad", "layer_norm", "layer_norm_grad"]


def _f32(*arrays):
    return all(a is None or a.dtype == np.float32 for a in arrays)


def _rows(x):
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _vec(v):
    return None if v is None else np.ascontiguousarray(v)


def batch_norm(x, gamma=None, beta=None, epsilon=1e-3):
    if not _f32(x, gamma, beta):
        return _ref.batch_norm(x, gamma, beta, epsilon)
    y, mean, inv_std = _C.batch_norm_forward(_rows(x), _vec(gamma), _vec(beta), float(epsilon))
    return y.reshape(x.shape), mean, inv_std


def batch_norm_grad(x, dy, mean, inv_std, gamma=None):
    if not _f32(x, dy, mean, inv_std, gamma):
        return _ref.batch_norm_grad(x, dy, mean, inv_std, gamma)
    dx, dgamma, dbeta = _C.batch_norm_backward(_rows(x), _rows(dy), _vec(mean), _vec(inv_std), _vec(gamma))
    return dx.reshape(x.shape), dgamma, dbeta


def layer_norm(x, gamma=None, beta=None, epsilon=1e-3):
    if not _f32(x, gamma, beta):
        return _ref.layer_norm(x, gamma, beta, epsilon)
    y, mean, inv_std = _C.layer_norm_forward(_rows(x), _vec(gamma), _vec(beta), float(epsilon))
    return y.reshape(x.shape), mean, inv_std


def layer_norm_grad(x, dy, mean, inv_std, gamma=None):
    if not _f32(x, dy, mean, inv_std, gamma):
        return _ref.layer_norm_grad(x, dy, mean, inv_std, gamma)
    dx, dgamma, dbeta = _C.layer_norm_backward(_rows(x), _rows(dy), _vec(mean), _vec(inv_std), _vec(gamma))
    return dx.reshape(x.shape), dgamma, dbeta
