"""Utilities with Keras' names: ``to_categorical``, ``pad_sequences``,
``set_random_seed``, ``Progbar``."""
from .data import PyDataset, pad_sequences, set_random_seed, to_categorical
from .progbar import Progbar

__all__ = ["Progbar", "PyDataset", "to_categorical", "pad_sequences", "set_random_seed"]
