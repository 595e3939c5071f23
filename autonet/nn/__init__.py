"""Layers, losses and initialisers for building models on autonet."""
from . import functional, init, utils
from .keywords import refuse_in_classes
from .layers import (CELU, ELU, GELU, GLU, SELU, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d,
                     Conv2d, Dropout, Embedding, Flatten, Hardsigmoid, Hardswish, Hardtanh, Identity,
                     LayerNorm, LeakyReLU, Linear, LogSigmoid, LogSoftmax, MaxPool1d, MaxPool2d, Mish,
                     ReLU, ReLU6, Sequential, Sigmoid, SiLU, Softmax, Softmin, Softplus, Softsign, Tanh,
                     Tanhshrink, Unflatten)
from .losses import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, HuberLoss,
                     KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, NLLLoss, SmoothL1Loss)
from .module import Module, ModuleDict, ModuleList, Parameter

__all__ = ["Module", "ModuleList", "ModuleDict", "Parameter", "Linear", "Sequential", "Sigmoid",
           "Tanh", "ReLU", "Softmax", "GELU", "SiLU", "LeakyReLU", "ELU", "Softplus", "Conv1d",
           "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "Flatten", "Dropout",
           "Embedding", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "MSELoss", "BCELoss",
           "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "L1Loss", "HuberLoss", "SmoothL1Loss",
           "KLDivLoss", "CosineEmbeddingLoss", "MarginRankingLoss", "ReLU6", "Hardtanh", "Hardsigmoid",
           "Hardswish", "Mish", "CELU", "SELU", "Softsign", "LogSigmoid", "Softmin", "LogSoftmax",
           "Tanhshrink", "GLU", "Identity", "Unflatten",
           "functional", "init", "utils"]

# PyTorch's dim=, start_dim=, end_dim=, inplace= on autonet's own layers: a TypeError naming
# autonet's spelling (a user's subclass with its own such parameter is left alone)
refuse_in_classes(globals()[name] for name in __all__
                  if isinstance(globals()[name], type) and name not in ("Module", "Parameter"))
