"""One process-wide random generator, so ``pynn.set_seed(n)`` makes weight
initialisation, shuffling and dropout reproducible."""
import numpy as np

_rng = np.random.default_rng()


def set_seed(seed: int) -> None:
    """Seed pynn's generator (initialisers, fit() shuffling, dropout).

    Args:
        seed: an int; the same seed gives the same weights, shuffles and dropout masks.

    Returns:
        None.

    Example:
        >>> pynn.set_seed(42)
        >>> a = pynn.initializers.get("glorot_uniform")((2, 2))
        >>> pynn.set_seed(42)
        >>> b = pynn.initializers.get("glorot_uniform")((2, 2))
        >>> bool(np.array_equal(a, b))
        True
    """
    global _rng
    _rng = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The process-wide generator behind initialisers, fit() shuffling and dropout.

    Returns:
        pynn's ``np.random.Generator`` (replaced by each ``set_seed``).

    Example:
        >>> pynn.set_seed(0)
        >>> g = pynn.random.generator()
        >>> isinstance(g, np.random.Generator), g is pynn.random.generator()
        (True, True)
    """
    return _rng
