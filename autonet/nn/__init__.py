"""Layers, losses and initialisers for building models on autonet."""
from . import functional, init, utils
from .attention import MultiheadAttention, TransformerEncoder, TransformerEncoderLayer
from .layers import (ELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,
                     Upsample, GELU, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d,
                     ConvTranspose1d, ConvTranspose2d,
                     Dropout, Embedding, Flatten, GroupNorm, LayerNorm, LeakyReLU, Linear, MaxPool1d,
                     MaxPool2d, ReLU, Sequential, Sigmoid, SiLU, Softmax, Softplus, Tanh)
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss
from .module import Module, ModuleDict, ModuleList, Parameter
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = ["Module", "ModuleList", "ModuleDict", "Parameter", "Linear", "Sequential", "Sigmoid",
           "Tanh", "ReLU", "Softmax", "GELU", "SiLU", "LeakyReLU", "ELU", "Softplus", "Conv1d",
           "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "Flatten", "Dropout",
           "Embedding", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "MSELoss", "BCELoss",
           "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "L1Loss", "HuberLoss",
           "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "MultiheadAttention",
           "TransformerEncoderLayer", "TransformerEncoder", "ConvTranspose1d", "ConvTranspose2d",
           "Upsample", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "GroupNorm",
           "functional", "init", "utils"]
