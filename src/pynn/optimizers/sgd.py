from .base import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Convention: torch.optim.SGD (dampening=0). With momentum mu:
    ``buf = mu*buf + g;  p -= lr * (g + mu*buf if nesterov else buf)``.
    Keras writes the same thing as ``v = mu*v - lr*g; p += v``; the two are
    identical for a constant learning rate and differ only when lr changes
    (torch scales the whole buffer by the new lr). ``weight_decay`` is coupled
    L2 as in torch (``g += wd*p``), not Keras' decoupled decay.

    Example:
        >>> opt = pynn.optimizers.SGD(learning_rate=0.01, momentum=0.9)
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer=opt, loss="mse")
        >>> history = model.fit(np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32), epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = self._check("momentum", momentum, lo=0.0)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True requires momentum > 0")
        self.weight_decay = None if weight_decay is None else self._check("weight_decay", weight_decay, lo=0.0)

    def _slot_specs(self):
        return [("momentum", 0.0)] if self.momentum else []

    def _update(self, k, params, grads, slots, lr, step):
        k.sgd_step(params, grads, slots.get("momentum", []), lr, self.momentum, self.nesterov,
                   self.weight_decay or 0.0)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}
