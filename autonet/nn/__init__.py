"""Layers, losses and initialisers for building models on autonet."""
from . import functional, init, utils
from .attention import MultiheadAttention, TransformerEncoder, TransformerEncoderLayer
from .keywords import refuse_in_classes
from .layers import (CELU, ELU, GELU, GLU, SELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d,
                     AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d,
                     ConvTranspose1d, ConvTranspose2d, Dropout, Embedding, Flatten, GroupNorm,
                     Hardsigmoid, Hardswish, Hardtanh, Identity, LayerNorm, LeakyReLU, Linear,
                     LogSigmoid, LogSoftmax, MaxPool1d, MaxPool2d, Mish, ReLU, ReLU6, Sequential,
                     Sigmoid, SiLU, Softmax, Softmin, Softplus, Softsign, Tanh, Tanhshrink, Unflatten,
                     Upsample)
from .losses import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, HuberLoss,
                     KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, NLLLoss, SmoothL1Loss)
from .module import Module, ModuleDict, ModuleList, Parameter
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = ["Module", "ModuleList", "ModuleDict", "Parameter", "Linear", "Sequential", "Sigmoid",
           "Tanh", "ReLU", "Softmax", "GELU", "SiLU", "LeakyReLU", "ELU", "Softplus", "Conv1d",
           "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "Flatten", "Dropout",
           "Embedding", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "MSELoss", "BCELoss",
           "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "L1Loss", "HuberLoss", "SmoothL1Loss",
           "KLDivLoss", "CosineEmbeddingLoss", "MarginRankingLoss", "ReLU6", "Hardtanh", "Hardsigmoid",
           "Hardswish", "Mish", "CELU", "SELU", "Softsign", "LogSigmoid", "Softmin", "LogSoftmax",
           "Tanhshrink", "GLU", "Identity", "Unflatten",
           "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "MultiheadAttention",
           "TransformerEncoderLayer", "TransformerEncoder", "ConvTranspose1d", "ConvTranspose2d",
           "Upsample", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "GroupNorm",
           "functional", "init", "utils"]

# PyTorch's dim=, start_dim=, end_dim=, inplace= on autonet's own layers: a TypeError naming
# autonet's spelling (a user's subclass with its own such parameter is left alone)
refuse_in_classes(globals()[name] for name in __all__
                  if isinstance(globals()[name], type) and name not in ("Module", "Parameter"))
