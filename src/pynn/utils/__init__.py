"""Utilities with Keras' names: ``to_categorical``, ``pad_sequences``,
``set_random_seed``, ``PyDataset``, ``plot_model``, ``Progbar``."""
from .data import PyDataset, pad_sequences, set_random_seed, to_categorical
from .plot_model import model_to_dot, plot_model
from .progbar import Progbar

__all__ = ["model_to_dot", "plot_model", "Progbar", "PyDataset", "to_categorical", "pad_sequences", "set_random_seed"]
