from .base import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton), optional momentum and centering.

    Convention: torch.optim.RMSprop (with alpha = rho). ``s = rho*s + (1-rho)*g^2``;
    centered: ``a = rho*a + (1-rho)*g``, denom = ``sqrt(s - a^2) + epsilon``, else
    ``sqrt(s) + epsilon`` — epsilon OUTSIDE the sqrt (Keras 3 puts it inside:
    ``sqrt(s + eps)``). With momentum: ``buf = momentum*buf + g/denom;
    p -= lr*buf`` (Keras accumulates ``lr*g/denom``; same for constant lr).

    Example:
        >>> opt = pynn.optimizers.RMSprop(learning_rate=1e-3)
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer=opt, loss="mse")
        >>> history = model.fit(np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32), epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = self._check("rho", rho, lo=0.0, hi=1.0, hi_open=True)
        self.momentum = self._check("momentum", momentum, lo=0.0)
        self.epsilon = self._check("epsilon", epsilon, lo=0.0)
        self.centered = bool(centered)

    def _slot_specs(self):
        specs = [("velocity", 0.0)]
        if self.momentum:
            specs.append(("momentum", 0.0))
        if self.centered:
            specs.append(("average_gradient", 0.0))
        return specs

    def _update(self, k, params, grads, slots, lr, step):
        k.rmsprop_step(params, grads, slots["velocity"], slots.get("momentum", []),
                       slots.get("average_gradient", []), lr, self.rho, self.momentum, self.epsilon,
                       self.centered)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}
