from .base import Optimizer


class Adadelta(Optimizer):
    """Adadelta (Zeiler). Keras and torch.optim agree on the rule:
    ``s = rho*s + (1-rho)*g^2; d = sqrt(u + eps)/sqrt(s + eps) * g;
    u = rho*u + (1-rho)*d^2; p -= lr*d``. Defaults are Keras' (lr 0.001,
    epsilon 1e-7); torch's are lr=1.0, eps=1e-6.

    Example:
        >>> opt = pynn.optimizers.Adadelta(learning_rate=1.0)
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer=opt, loss="mse")
        >>> history = model.fit(np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32), epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = self._check("rho", rho, lo=0.0, hi=1.0, hi_open=True)
        self.epsilon = self._check("epsilon", epsilon, lo=0.0)

    def _slot_specs(self):
        return [("accumulated_grad", 0.0), ("accumulated_delta_var", 0.0)]

    def _update(self, k, params, grads, slots, lr, step):
        k.adadelta_step(params, grads, slots["accumulated_grad"], slots["accumulated_delta_var"], lr, self.rho,
                        self.epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
