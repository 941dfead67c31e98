from .base import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.).

    Convention: torch.optim.Adagrad (lr_decay=0): ``acc += g^2;
    p -= lr * g / (sqrt(acc) + epsilon)`` — epsilon OUTSIDE the sqrt (Keras 3:
    ``sqrt(acc + eps)``). The accumulator starts at Keras' default 0.1
    (torch: initial_accumulator_value=0, so compare with torch using
    ``initial_accumulator_value=0.1``).

    Example:
        >>> opt = pynn.optimizers.Adagrad(learning_rate=0.01)
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer=opt, loss="mse")
        >>> history = model.fit(np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32), epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = self._check("initial_accumulator_value", initial_accumulator_value, lo=0.0)
        self.epsilon = self._check("epsilon", epsilon, lo=0.0)

    def _slot_specs(self):
        return [("accumulator", self.initial_accumulator_value)]

    def _update(self, k, params, grads, slots, lr, step):
        k.adagrad_step(params, grads, slots["accumulator"], lr, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
