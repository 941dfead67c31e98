"""A process-wide counter that moves whenever a model's weights or structure may have
changed through pynn: ``Variable.assign`` (set_weights, load_weights, load_model),
an optimizer step, ``layer.trainable``, ``Sequential.add/pop``, the start of fit.

Inference plans (``pynn.models.plan``) hold copies derived from the weights (packed
GEMM panels); they compare this counter on every call and rebuild when it moved, so a
plan never serves weights older than the model's. A leaf module: anything may import it.
"""

_epoch = [0]


def bump():
    """Record that some weights (or a model's layer list) may have changed."""
    _epoch[0] += 1


def current():
    return _epoch[0]
