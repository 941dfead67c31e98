"""A process-wide counter that moves whenever a model's weights or structure may have
changed through pynn: ``Variable.assign`` (set_weights, load_weights, load_model),
an optimizer step, ``layer.trainable``, ``Sequential.add/pop``, the start of fit, a
DataParallel weight broadcast.

Inference plans (``pynn.models.plan``) hold copies derived from the weights (packed
GEMM panels); they compare this counter on every call and rebuild when it moved, so a
plan never serves weights older than the model's. A weight array a plan holds a derived
copy of is made read-only (``freeze``) until the next ``bump``: a direct in-place write
(``w.data[...] = v``, ``w.data -= g``) then raises numpy's "read-only" error instead of
leaving the plan silently stale. Every writer inside pynn calls ``bump`` before it
writes. A leaf module: anything may import it.
"""

_epoch = [0]
_frozen = []     # arrays made read-only for a plan, made writeable again by bump()


def bump():
    """Record that some weights (or a model's layer list) may be about to change, and make
    every array frozen for a plan writeable again (the plans holding them rebuild).

    Call it (as ``pynn.weights_changed()``) before writing a weight array in place.

    Returns:
        None.

    Example:
        >>> model = pynn.Sequential([pynn.Input((2,)), pynn.layers.Dense(1, kernel_initializer="ones")])
        >>> x = np.ones((1, 2), np.float32)
        >>> print(model.predict(x, verbose=0))
        [[2.]]
        >>> pynn.weights_changed()
        >>> model.layers[0].kernel.data[...] = 0.5
        >>> print(model.predict(x, verbose=0))
        [[1.]]
    """
    _epoch[0] += 1
    if _frozen:
        for a in _frozen:
            a.flags.writeable = True
        _frozen.clear()


def freeze(array):
    """Make ``array`` read-only until the next :func:`bump` (see the module docstring)."""
    if array.flags.writeable:
        array.flags.writeable = False
        _frozen.append(array)


def current():
    return _epoch[0]
