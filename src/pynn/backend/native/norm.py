"""Native batch/layer normalisation: pynn._C kernels on the (rows, C) view."""
import numpy as np

from pynn import _C

from ..numpy import norm as _ref

__all__ = ["batch_norm", "batch_norm_grad", "layer_norm", "layer_norm_grad", "add_layer_norm",
           "layer_norm_grad_with_sum"]


def _f32(*arrays):
    return all(a is None or a.dtype == np.float32 for a in arrays)


def _rows(x):
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _vec(v):
    return None if v is None else np.ascontiguousarray(v)


def _forward(native, reference, x, gamma, beta, epsilon):
    if not _f32(x, gamma, beta):
        return reference(x, gamma, beta, epsilon)
    y, mean, inv_std = native(_rows(x), _vec(gamma), _vec(beta), float(epsilon))
    return y.reshape(x.shape), mean, inv_std


def _backward(native, reference, x, dy, mean, inv_std, gamma):
    if not _f32(x, dy, mean, inv_std, gamma):
        return reference(x, dy, mean, inv_std, gamma)
    dx, dgamma, dbeta = native(_rows(x), _rows(dy), _vec(mean), _vec(inv_std), _vec(gamma))
    return dx.reshape(x.shape), dgamma, dbeta


def batch_norm(x, gamma=None, beta=None, epsilon=1e-3):
    _ref._check_rows("batch_norm", x)
    return _forward(_C.batch_norm_forward, _ref.batch_norm, x, gamma, beta, epsilon)


def batch_norm_grad(x, dy, mean, inv_std, gamma=None):
    return _backward(_C.batch_norm_backward, _ref.batch_norm_grad, x, dy, mean, inv_std, gamma)


def layer_norm(x, gamma=None, beta=None, epsilon=1e-3):
    return _forward(_C.layer_norm_forward, _ref.layer_norm, x, gamma, beta, epsilon)


def layer_norm_grad(x, dy, mean, inv_std, gamma=None):
    return _backward(_C.layer_norm_backward, _ref.layer_norm_grad, x, dy, mean, inv_std, gamma)


def add_layer_norm(x, res, gamma=None, beta=None, epsilon=1e-3):
    if not _f32(x, res, gamma, beta) or x.shape != res.shape:
        return _ref.add_layer_norm(x, res, gamma, beta, epsilon)
    y, s, mean, inv_std = _C.add_layer_norm_forward(_rows(x), _rows(res), _vec(gamma), _vec(beta), float(epsilon))
    return y.reshape(x.shape), s.reshape(x.shape), mean, inv_std


def layer_norm_grad_with_sum(x, dy, mean, inv_std, gamma=None):
    if not _f32(x, dy, mean, inv_std, gamma):
        return _ref.layer_norm_grad_with_sum(x, dy, mean, inv_std, gamma)
    dx, dgamma, dbeta, dx_sum = _C.layer_norm_backward_with_sum(_rows(x), _rows(dy), _vec(mean), _vec(inv_std),
                                                                _vec(gamma))
    return dx.reshape(x.shape), dgamma, dbeta, dx_sum
