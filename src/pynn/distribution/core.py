"""The process-wide distribution (Keras's ``set_distribution``/``distribution``)
and the rank queries that work with or without MPI."""
import sys

from .. import _parallel


def mpi():
    """mpi4py's MPI module (initialises MPI on first import), or a clear ImportError."""
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("pynn.distribution.DataParallel needs mpi4py and an MPI library: "
                          "pip install 'pynn-cpu[mpi]'  (that is: pip install mpi4py mpich)") from exc
    return MPI


def _world():
    """COMM_WORLD when mpi4py is already imported and MPI is running, else None.
    Never imports mpi4py itself: asking for the rank must not start MPI."""
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is None or not MPI.Is_initialized() or MPI.Is_finalized():
        return None
    return MPI.COMM_WORLD


def set_distribution(value):
    """Make ``value`` (a :class:`DataParallel`, or None to go back to one
    process) the distribution used by ``fit``/``evaluate``/``predict``."""
    from .data_parallel import DataParallel
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(f"set_distribution: expected a pynn.distribution.DataParallel or None, "
                        f"got {type(value).__name__}")
    old = _parallel.installed()
    if old is not None and old is not value:
        old._deactivate()
    if value is not None and value is not old:
        value._activate()
    _parallel.install(value)


def distribution():
    """The active distribution, or None."""
    return _parallel.installed()


def _process_query(attribute, mpi_method, alone):
    """The active distribution's ``attribute``, else COMM_WORLD's ``mpi_method()`` when MPI is
    running, else ``alone`` (the value for a single process): rank and world_size ask the same way."""
    s = _parallel.installed()
    if s is not None:
        return getattr(s, attribute)
    world = _world()
    return alone if world is None else getattr(world, mpi_method)()


def rank() -> int:
    """This process's rank: the active distribution's, else MPI's COMM_WORLD rank
    when MPI is running, else 0."""
    return _process_query("rank", "Get_rank", 0)


def world_size() -> int:
    """Number of processes: the active distribution's, else COMM_WORLD's when
    MPI is running, else 1."""
    return _process_query("world_size", "Get_size", 1)


def is_primary() -> bool:
    """True on rank 0 (and whenever there is only one process): the rank that
    prints, logs and writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (e.g. before other ranks read a file rank 0
    saved). A no-op on one process."""
    s = _parallel.installed()
    comm = s.comm if s is not None else _world()
    if comm is not None and comm.Get_size() > 1:
        comm.Barrier()
