"""Optimizer update rules, the reference (spec) implementation.

Every kernel is MULTI-TENSOR: it takes lists of arrays (params, grads, state
slots) and updates params and state IN PLACE. Scalar coefficients (bias
corrections) are computed once per call in double precision. The formulas
follow torch.optim (see pynn/optimizers/__init__.py for the Keras mapping).
Works for float32 and float64 params; arithmetic stays in the params' dtype.
"""
import math

import numpy as np

__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "adadelta_step"]


def sgd_step(params, grads, bufs, lr, momentum, nesterov, weight_decay):
    """buf = momentum*buf + g;  p -= lr * (g + momentum*buf if nesterov else buf).

    g includes coupled weight decay (g + weight_decay*p). With momentum == 0,
    bufs may be an empty list (no state) and p -= lr*g.
    """
    for i, (p, g) in enumerate(zip(params, grads)):
        g = np.asarray(g, dtype=p.dtype)
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            b = bufs[i]
            b *= momentum
            b += g
            upd = g + momentum * b if nesterov else b
        else:
            upd = g
        p -= lr * upd


def adam_step(params, grads, m, v, vmax, lr, beta_1, beta_2, epsilon, step,
              weight_decay, decoupled, amsgrad):
    """Adam / AdamW (torch.optim formulation, epsilon outside the corrected sqrt).

    decoupled (AdamW): p *= 1 - lr*wd;  coupled (Adam+L2): g += wd*p.
    m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  vmax = max(vmax, v) if amsgrad
    p -= lr/(1-b1^t) * m / (sqrt(v or vmax)/sqrt(1-b2^t) + eps)
    """
    bc1 = 1.0 - beta_1 ** step
    bc2 = 1.0 - beta_2 ** step
    step_size = lr / bc1
    inv_sqrt_bc2 = 1.0 / math.sqrt(bc2)
    for i, (p, g) in enumerate(zip(params, grads)):
        g = np.asarray(g, dtype=p.dtype)
        if weight_decay:
            if decoupled:
                p *= 1.0 - lr * weight_decay
            else:
                g = g + weight_decay * p
        mi, vi = m[i], v[i]
        mi *= beta_1
        mi += (1.0 - beta_1) * g
        vi *= beta_2
        vi += (1.0 - beta_2) * (g * g)
        if amsgrad:
            np.maximum(vmax[i], vi, out=vmax[i])
            vi = vmax[i]
        denom = np.sqrt(vi) * inv_sqrt_bc2 + epsilon
        p -= step_size * (mi / denom)


def rmsprop_step(params, grads, sq, mom, gavg, lr, rho, momentum, epsilon, centered):
    """RMSprop (torch.optim formulation, epsilon outside the sqrt).

    sq = rho*sq + (1-rho)*g^2;  centered: gavg = rho*gavg + (1-rho)*g,
    denom = sqrt(sq - gavg^2) + eps, else sqrt(sq) + eps.
    momentum > 0: mom = momentum*mom + g/denom; p -= lr*mom.  Else p -= lr*g/denom.
    mom / gavg may be empty lists when unused.
    """
    for i, (p, g) in enumerate(zip(params, grads)):
        g = np.asarray(g, dtype=p.dtype)
        s = sq[i]
        s *= rho
        s += (1.0 - rho) * (g * g)
        if centered:
            a = gavg[i]
            a *= rho
            a += (1.0 - rho) * g
            denom = np.sqrt(s - a * a) + epsilon
        else:
            denom = np.sqrt(s) + epsilon
        if momentum:
            b = mom[i]
            b *= momentum
            b += g / denom
            p -= lr * b
        else:
            p -= lr * (g / denom)


def adagrad_step(params, grads, acc, lr, epsilon):
    """Adagrad (torch.optim formulation): acc += g^2;  p -= lr * g / (sqrt(acc) + eps)."""
    for i, (p, g) in enumerate(zip(params, grads)):
        g = np.asarray(g, dtype=p.dtype)
        a = acc[i]
        a += g * g
        p -= lr * (g / (np.sqrt(a) + epsilon))


def adadelta_step(params, grads, sq, acc_delta, lr, rho, epsilon):
    """Adadelta (identical in Keras and torch):
    sq = rho*sq + (1-rho)*g^2;  d = sqrt(acc_delta+eps)/sqrt(sq+eps) * g
    acc_delta = rho*acc_delta + (1-rho)*d^2;  p -= lr*d
    """
    for i, (p, g) in enumerate(zip(params, grads)):
        g = np.asarray(g, dtype=p.dtype)
        s, u = sq[i], acc_delta[i]
        s *= rho
        s += (1.0 - rho) * (g * g)
        d = np.sqrt(u + epsilon) / np.sqrt(s + epsilon) * g
        u *= rho
        u += (1.0 - rho) * (d * d)
        p -= lr * d
