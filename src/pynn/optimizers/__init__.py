"""Optimizers (Keras API, torch.optim update rules, fused native kernels).

``opt.apply_gradients(zip(grads, variables))`` updates each variable's ``.data``
in place with one multi-tensor kernel call of the active backend, after
clipping (clipnorm / clipvalue / global_clipnorm) and before constraints.

Conventions — where Keras and torch.optim differ, pynn follows torch's update
rule and Keras' argument names and defaults:

| optimizer | rule follows | differences from Keras | torch equivalent of pynn defaults |
|-----------|--------------|------------------------|-----------------------------------|
| SGD       | torch        | buf = mu*buf + g, p -= lr*buf (Keras v = mu*v - lr*g; equal for constant lr); weight_decay coupled L2 (Keras: decoupled) | SGD(lr, momentum, nesterov=, weight_decay=) |
| Adam      | torch        | eps added to sqrt(v)/sqrt(1-b2^t) (Keras: to sqrt(v)); weight_decay coupled L2 | Adam(lr, betas=(b1,b2), eps=1e-7, amsgrad=) |
| AdamW     | torch = Keras| eps as Adam; decay p *= 1 - lr*wd | AdamW(lr, betas, eps=1e-7, weight_decay=0.004) |
| RMSprop   | torch        | eps outside the sqrt (Keras: sqrt(v + eps)); momentum buffer holds g/denom | RMSprop(lr, alpha=rho, eps=1e-7, momentum=, centered=) |
| Adagrad   | torch        | eps outside the sqrt (Keras: sqrt(acc + eps)); accumulator starts at 0.1 (Keras) | Adagrad(lr, eps=1e-7, initial_accumulator_value=0.1) |
| Adadelta  | both (same)  | none | Adadelta(lr, rho=0.95, eps=1e-7) |
"""
from .base import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .rmsprop import RMSprop
from .adagrad import Adagrad
from .adadelta import Adadelta
from . import schedules

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "schedules", "get",
           "serialize", "deserialize"]

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
            "adadelta": Adadelta}


def serialize(optimizer):
    """An optimizer's class name and config (what saved models hold).

    Args:
        optimizer: an Optimizer.

    Returns:
        {"class_name": its class name, "config": optimizer.get_config()}.

    Example:
        >>> spec = pynn.optimizers.serialize(pynn.optimizers.SGD(learning_rate=0.1))
        >>> spec["class_name"], spec["config"]["learning_rate"]
        ('SGD', 0.1)
    """
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    """An optimizer from ``serialize``'s dict.

    Args:
        config: a {"class_name": ..., "config": {...}} dict (class name in any case).

    Returns:
        A new Optimizer. Raises ValueError for an unknown class name.

    Example:
        >>> pynn.optimizers.deserialize({"class_name": "Adam", "config": {"learning_rate": 0.01}})
        Adam(learning_rate=0.01)
    """
    name = str(config.get("class_name", "")).lower()
    if name not in _BY_NAME:
        raise ValueError(f"optimizers.deserialize: unknown optimizer {config.get('class_name')!r}; "
                         f"known: {sorted(_BY_NAME)}")
    return _BY_NAME[name].from_config(config.get("config", {}))


def get(identifier):
    """An Optimizer from a name ("adam"), a {"class_name", "config"} dict, or an instance.

    Args:
        identifier: a name, a config dict, or an Optimizer (returned as is).

    Returns:
        An Optimizer. Raises ValueError otherwise.

    Example:
        >>> pynn.optimizers.get("adam")
        Adam(learning_rate=0.001)
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"optimizers.get: unknown optimizer {identifier!r}; known: {sorted(_BY_NAME)}")
        return cls()
    raise ValueError(f"optimizers.get: could not interpret optimizer identifier {identifier!r}")
