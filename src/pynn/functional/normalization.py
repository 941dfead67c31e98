"""Batch and layer normalisation as single differentiable ops (one kernel each
way instead of a dozen elementwise ops)."""
from .. import backend
from ..autograd import Function
from .registry import register


class _Norm(Function):
    kernel = grad_kernel = None

    def forward(self, x, gamma=None, beta=None, epsilon=1e-3, stats=None):
        self.x, self.gamma = x, gamma
        y, self.mean, self.inv_std = getattr(backend.current(), self.kernel)(x, gamma, beta, epsilon)
        if stats is not None:  # the caller wants the batch statistics (moving averages)
            stats["mean"], stats["inv_std"] = self.mean, self.inv_std
        return y

    def backward(self, g):
        dx, dgamma, dbeta = getattr(backend.current(), self.grad_kernel)(self.x, g, self.mean, self.inv_std,
                                                                         self.gamma)
        need = self.needs_input_grad
        return (dx if need[0] else None,
                dgamma.astype(g.dtype, copy=False) if need[1] else None,
                dbeta.astype(g.dtype, copy=False) if need[2] else None)


@register("batch_norm")
class BatchNorm(_Norm):
    """Training-mode batch norm over every axis but the last (channels_last)."""
    kernel, grad_kernel = "batch_norm", "batch_norm_grad"


@register("layer_norm")
class LayerNorm(_Norm):
    """Layer norm over the last axis."""
    kernel, grad_kernel = "layer_norm", "layer_norm_grad"


def batch_norm(x, gamma=None, beta=None, epsilon=1e-3, stats=None):
    """Normalise x (..., C) per channel with the batch's mean and biased variance.
    Pass a dict as ``stats`` to receive that ``mean`` and ``inv_std`` (C,)."""
    return BatchNorm.apply(x, gamma, beta, epsilon=epsilon, stats=stats)


def layer_norm(x, gamma=None, beta=None, epsilon=1e-3):
    """Normalise each sample of x (..., C) over its last axis; then γ·x̂ + β."""
    return LayerNorm.apply(x, gamma, beta, epsilon=epsilon)
