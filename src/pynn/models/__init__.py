"""Models: ``Model`` (functional or subclassed), ``Sequential``, and Keras'
``pynn.models.load_model`` / ``clone_model`` / ``model_from_json``."""
from .model import Model
from .sequential import Sequential
from .cloning import clone_model, model_from_json
from ..saving import load_model

__all__ = ["Model", "Sequential", "load_model", "clone_model", "model_from_json"]
