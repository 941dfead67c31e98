"""Layers: each owns its weights and calls ``pynn.functional``."""
from .activation import Activation
from .attention import AdditiveAttention, Attention, MultiHeadAttention
from .base import Layer, Variable
from .conv import Conv1D, Conv2D
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .input_layer import Input
from .merging import Add, Concatenate, Multiply
from .normalization import BatchNormalization, LayerNormalization
from .pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)
from .recurrent import GRU, LSTM, SimpleRNN
from .reshaping import Lambda, Reshape, Rescaling
from .transformer import PositionEmbedding, SinePositionEncoding, TransformerEncoder
from .wrappers import Bidirectional, TimeDistributed
from .activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .masking import Masking, UnitNormalization
from .merging_more import (Average, Dot, Maximum, Minimum, Subtract, add, average, concatenate, dot, maximum,
                           minimum, multiply, subtract)
from .noise import GaussianNoise, SpatialDropout1D
from .preprocessing import CategoryEncoding, GroupNormalization, Normalization
from .rnn_cells import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .conv_more import Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from .shaping import Identity, InputLayer, Permute, RepeatVector
from .spatial import Cropping1D, Cropping2D, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D

__all__ = [
    "Activation", "AdditiveAttention", "Attention", "MultiHeadAttention", "Layer", "Variable", "Conv2D", "Conv1D", "MaxPooling1D", "AveragePooling1D", "Dense",
    "Dropout", "Embedding", "Flatten", "Input", "Add", "Concatenate", "Multiply", "BatchNormalization",
    "LayerNormalization", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPooling2D", "GRU",
    "LSTM", "SimpleRNN", "Lambda", "Reshape", "Rescaling", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
    "PositionEmbedding", "SinePositionEncoding", "TransformerEncoder", "Bidirectional", "TimeDistributed",
    "ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax", "Masking", "UnitNormalization", "Average", "Dot", "Maximum",
    "Minimum", "Subtract", "add", "average", "concatenate", "dot", "maximum", "minimum", "multiply", "subtract",
    "GaussianNoise", "SpatialDropout1D", "Identity", "InputLayer", "Permute", "RepeatVector", "Cropping1D",
    "Cropping2D", "UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D", "CategoryEncoding",
    "GroupNormalization", "Normalization", "RNN", "StackedRNNCells", "GRUCell", "LSTMCell", "SimpleRNNCell",
    "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D",
]
