"""One process-wide random generator, so ``pynn.set_seed(n)`` makes weight
initialisation, shuffling and dropout reproducible."""
import numpy as np

_rng = np.random.default_rng()


def set_seed(seed: int) -> None:
    """Seed pynn's generator (initialisers, fit() shuffling, dropout)."""
    global _rng
    _rng = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    return _rng
