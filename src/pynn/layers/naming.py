"""Keras' default layer names. Below both layers.base and layers.input_layer (Input needs a unique
name too), so neither has to import the other for it."""
from __future__ import annotations

import re
from collections import defaultdict

_name_counts = defaultdict(int)


def unique_name(base: str) -> str:
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def snake_case(name: str) -> str:
    """Keras' default layer names: GRU -> gru, SimpleRNN -> simple_rnn, Conv2D -> conv2d."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
