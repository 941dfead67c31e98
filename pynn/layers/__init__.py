"""Layers: each owns its weights and calls ``pynn.functional``."""
from .activation import Activation
from .base import Layer, Variable
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .input_layer import Input

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Input", "Layer", "Variable"]
