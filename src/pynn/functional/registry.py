"""One table of differentiable ops (the derivatives.yaml idea, without codegen).

``@register`` puts each :class:`~pynn.autograd.Function` into ``OP_REGISTRY``
under its name, so every forward/backward pair sits in one reviewable place
that tests can iterate.
"""
import numpy as np

OP_REGISTRY = {}


def register(name):
    def deco(cls):
        if name in OP_REGISTRY:
            raise RuntimeError(f"op {name!r} registered twice")
        cls.op_name = name
        OP_REGISTRY[name] = cls
        return cls
    return deco


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
