"""The weights' generation: a process-wide counter bumped by every write pynn makes to a
weight (``Variable.assign`` -- so ``set_weights``/``load_weights``/loading a model --,
optimizer steps and their constraints, DataParallel's weight broadcast).

Caches derived from weight values record the generation they were built in and are
rebuilt when it has moved: Dense's kernel packed for inference (``Dense._inference_pack``)
is the one user. Code that writes into a weight's ``.data`` directly (``w.data[...] = v``)
must call ``pynn.weights_changed()`` afterwards, or use ``w.assign(v)`` which does.
Inference plans (``pynn.models.plan``) are keyed on it too.
"""
import itertools

_counter = itertools.count(1)
_generation = 0


def weights_changed():
    """Announce that weight values changed: inference caches derived from them are rebuilt."""
    global _generation
    _generation = next(_counter)


def generation():
    """The current weights generation (compare for equality only)."""
    return _generation
