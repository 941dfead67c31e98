from pynn import _C  # noqa: F401

__all__ = []
