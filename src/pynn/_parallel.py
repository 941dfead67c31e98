"""Where the training loop and layers find the active data-parallel strategy.

``pynn.distribution`` (the top of the layer diagram) installs a strategy here;
``Model.fit``/``evaluate``/``predict`` and ``BatchNormalization(synchronized=True)``
read it. The module sits below everything else so models and layers never
import upward, and it imports nothing: importing pynn never needs mpi4py.
"""

_strategy = None


def install(strategy) -> None:
    """Make ``strategy`` (or None) the process-wide one; called by set_distribution."""
    global _strategy
    _strategy = strategy


def installed():
    """The strategy set by ``pynn.distribution.set_distribution``, or None."""
    return _strategy


def active():
    """The installed strategy when it spans more than one process, else None: on
    one process every hook is skipped and training is the ordinary local loop."""
    s = _strategy
    return s if s is not None and s.world_size > 1 else None


def fit_session(model):
    """A per-``fit`` helper (sharding, gradient averaging, global logs), or None."""
    s = active()
    return None if s is None else s.fit_session(model)


def is_primary() -> bool:
    """False only on the non-zero ranks of an active multi-process strategy."""
    s = active()
    return True if s is None else s.rank == 0
