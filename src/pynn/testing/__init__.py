from .gradcheck import gradcheck, numerical_grad

__all__ = ["gradcheck", "numerical_grad"]
