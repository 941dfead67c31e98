from .base import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba), optional AMSGrad.

    Convention: torch.optim.Adam. ``m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
    p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + epsilon)`` — epsilon is added
    to the *bias-corrected* sqrt(v). Keras adds epsilon to the uncorrected
    sqrt(v) (``lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)``), i.e. Keras' eps
    equals torch's eps*sqrt(1-b2^t); the two agree when eps is negligible.
    Default epsilon is Keras' 1e-7 (torch: 1e-8). AMSGrad keeps
    ``vhat = max(vhat, v)`` and uses it in the denominator (same in both).
    ``weight_decay`` here is coupled L2 (torch Adam: ``g += wd*p``); use AdamW
    for decoupled decay.

    Example:
        >>> opt = pynn.optimizers.Adam(learning_rate=1e-3)
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer=opt, loss="mse")
        >>> history = model.fit(np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32), epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
    """

    _decoupled = False

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = self._check("beta_1", beta_1, lo=0.0, hi=1.0, hi_open=True)
        self.beta_2 = self._check("beta_2", beta_2, lo=0.0, hi=1.0, hi_open=True)
        self.epsilon = self._check("epsilon", epsilon, lo=0.0)
        self.amsgrad = bool(amsgrad)
        self.weight_decay = None if weight_decay is None else self._check("weight_decay", weight_decay, lo=0.0)

    def _slot_specs(self):
        return [("m", 0.0), ("v", 0.0)] + ([("vhat", 0.0)] if self.amsgrad else [])

    def _update(self, k, params, grads, slots, lr, step):
        k.adam_step(params, grads, slots["m"], slots["v"], slots.get("vhat", []), lr, self.beta_1,
                    self.beta_2, self.epsilon, step, self.weight_decay or 0.0, self._decoupled, self.amsgrad)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad, "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter).

    Convention: torch.optim.AdamW and Keras AdamW agree on the decay:
    ``p *= 1 - lr*weight_decay`` before the Adam step (lr, not the bias-corrected
    step size). Epsilon placement as :class:`Adam` (torch). Default
    weight_decay is Keras' 0.004 (torch: 0.01).

    Example:
        >>> opt = pynn.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.004)
        >>> model = pynn.Sequential([pynn.layers.Input((3,)), pynn.layers.Dense(1)])
        >>> model.compile(optimizer=opt, loss="mse")
        >>> history = model.fit(np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32), epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
    """

    _decoupled = True

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number >= 0, got None")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                         weight_decay=weight_decay, **kwargs)
