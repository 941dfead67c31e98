"""Layers: each owns its weights and calls ``pynn.functional``."""
from .activation import Activation
from .base import Layer, Variable
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .input_layer import Input
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Input", "Layer", "Variable",
           "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D"]
