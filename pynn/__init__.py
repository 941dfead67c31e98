"""pynn: a fast deep-learning library for the CPU."""
__version__ = "0.1.0"
