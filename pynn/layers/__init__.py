"""Layers: each owns its weights and calls ``pynn.functional``."""
from .activation import Activation
from .base import Layer, Variable
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .input_layer import Input

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Input", "Layer", "Variable"]
from .merging import Add, Concatenate, Multiply  # noqa: E402
from .normalization import BatchNormalization, LayerNormalization  # noqa: E402
from .reshaping import Lambda, Reshape, Rescaling  # noqa: E402

__all__ += ["Add", "Concatenate", "Multiply", "BatchNormalization", "LayerNormalization", "Lambda", "Reshape",
            "Rescaling"]
from .embedding import Embedding  # noqa: E402
from .recurrent import GRU, LSTM, SimpleRNN  # noqa: E402
from .wrappers import Bidirectional, TimeDistributed  # noqa: E402

__all__ += ["Embedding", "GRU", "LSTM", "SimpleRNN", "Bidirectional", "TimeDistributed"]
from .attention import AdditiveAttention, Attention, MultiHeadAttention  # noqa: E402
from .transformer import PositionEmbedding, SinePositionEncoding, TransformerEncoder  # noqa: E402

__all__ += ["AdditiveAttention", "Attention", "MultiHeadAttention", "PositionEmbedding", "SinePositionEncoding",
            "TransformerEncoder"]
from .sequence_pooling import GlobalAveragePooling1D, GlobalMaxPooling1D  # noqa: E402

__all__ += ["GlobalAveragePooling1D", "GlobalMaxPooling1D"]
