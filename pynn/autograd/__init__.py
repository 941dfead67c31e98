from .engine import Function, Tensor, enable_grad, is_grad_enabled, no_grad

__all__ = ["Function", "Tensor", "enable_grad", "is_grad_enabled", "no_grad"]
