"""Data-parallel training over MPI, with Keras 3's distribution API names.

    import pynn
    pynn.distribution.set_distribution(pynn.distribution.DataParallel())
    model.fit(x, y, batch_size=256, epochs=5)      # unchanged: batch_size is the global batch

Launch one process per core or machine with ``mpiexec -n 4 python -m mpi4py train.py``
(``-m mpi4py`` makes one rank's exception abort every rank instead of leaving the
others blocked in a collective). Every rank runs the same script on the same data;
``fit`` gives each rank its slice of every global batch, averages the gradients
with one allreduce per step, and logs global values; ``evaluate`` and ``predict``
shard the samples and return global results on every rank; files are written
by rank 0 only.

mpi4py is imported only when a ``DataParallel`` is created: importing pynn never
needs it. ``rank()``, ``world_size()`` and ``is_primary()`` answer 0, 1 and True
when MPI is absent or not initialised.
"""
from .core import barrier, distribution, is_primary, rank, set_distribution, world_size
from .data_parallel import DataParallel
from .launch import find_mpiexec

__all__ = ["DataParallel", "set_distribution", "distribution", "rank", "world_size", "is_primary", "barrier",
           "find_mpiexec"]
