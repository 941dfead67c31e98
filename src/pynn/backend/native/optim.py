"""Native optimizer steps: thin wrappers over the fused multi-tensor kernels
in ``pynn._C`` (csrc/optim/). One C++ call per step for all tensors.

float32 only: if any parameter is not a writeable C-contiguous float32 array
(e.g. float64 in gradient-check tests, or a strided view) the whole call is
routed to the numpy reference kernel, explicitly.
Gradients of another dtype or layout are converted to C-contiguous float32
(a copy only when needed); parameters and state are validated by the binding
and updated in place.
"""
import numpy as np

from pynn import _C
from .. import numpy as _ref

__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "adadelta_step"]


_f32 = np.dtype(np.float32)


def _native_ok(params):
    for p in params:
        if not (isinstance(p, np.ndarray) and p.dtype == _f32 and p.flags.c_contiguous and p.flags.writeable):
            return False
    return True


def _g32(grads):
    # np.require, not np.ascontiguousarray: the latter turns a 0-d gradient (a scalar weight such as
    # Attention's scale) into shape (1,), which the kernel then rightly rejects against a () param.
    # Gradients already float32 and C-contiguous (nearly all) skip np.require's Python-level checks.
    return [g if type(g) is np.ndarray and g.dtype == _f32 and g.flags.c_contiguous
            else np.require(g, dtype=np.float32, requirements="C") for g in grads]


def sgd_step(params, grads, bufs, lr, momentum, nesterov, weight_decay):
    if not _native_ok(params):
        return _ref.sgd_step(params, grads, bufs, lr, momentum, nesterov, weight_decay)
    _C.sgd_step(list(params), _g32(grads), list(bufs), float(lr), float(momentum), bool(nesterov),
                float(weight_decay or 0.0))


def adam_step(params, grads, m, v, vmax, lr, beta_1, beta_2, epsilon, step, weight_decay, decoupled, amsgrad):
    if not _native_ok(params):
        return _ref.adam_step(params, grads, m, v, vmax, lr, beta_1, beta_2, epsilon, step, weight_decay,
                              decoupled, amsgrad)
    _C.adam_step(list(params), _g32(grads), list(m), list(v), list(vmax), float(lr), float(beta_1),
                 float(beta_2), float(epsilon), int(step), float(weight_decay or 0.0), bool(decoupled),
                 bool(amsgrad))


def rmsprop_step(params, grads, sq, mom, gavg, lr, rho, momentum, epsilon, centered):
    if not _native_ok(params):
        return _ref.rmsprop_step(params, grads, sq, mom, gavg, lr, rho, momentum, epsilon, centered)
    _C.rmsprop_step(list(params), _g32(grads), list(sq), list(mom), list(gavg), float(lr), float(rho),
                    float(momentum), float(epsilon), bool(centered))


def adagrad_step(params, grads, acc, lr, epsilon):
    if not _native_ok(params):
        return _ref.adagrad_step(params, grads, acc, lr, epsilon)
    _C.adagrad_step(list(params), _g32(grads), list(acc), float(lr), float(epsilon))


def adadelta_step(params, grads, sq, acc_delta, lr, rho, epsilon):
    if not _native_ok(params):
        return _ref.adadelta_step(params, grads, sq, acc_delta, lr, rho, epsilon)
    _C.adadelta_step(list(params), _g32(grads), list(sq), list(acc_delta), float(lr), float(rho),
                     float(epsilon))
