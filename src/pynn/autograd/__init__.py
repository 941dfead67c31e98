from .engine import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad
from .tape import GradientTape

__all__ = ["GradientTape", "Function", "grad", "Tensor", "enable_grad", "is_grad_enabled", "no_grad"]
