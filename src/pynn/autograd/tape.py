"""``pynn.GradientTape``: the Keras/TensorFlow spelling of a custom training step.

    with pynn.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))

pynn records every op on tensors that require grad anyway; the tape only makes
sure recording is on inside the block and turns ``backward`` into returned
arrays without touching anyone's ``.grad``.
"""
from .engine import enable_grad, grad


class GradientTape:
    def __init__(self, persistent=False):
        self.persistent = persistent
        self._used = False

    def __enter__(self):
        self._ctx = enable_grad()
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        return False

    def gradient(self, target, sources):
        """d target / d source for each source (np.ndarrays; zeros where unconnected)."""
        if self._used and not self.persistent:
            raise RuntimeError("GradientTape.gradient can be called once on a non-persistent tape")
        self._used = True
        single = not isinstance(sources, (list, tuple))
        sources = [sources] if single else list(sources)
        grads = grad(target, sources, retain_graph=self.persistent)
        return grads[0] if single else grads
