"""Layers, losses and initialisers for building models on autonet."""
from . import functional, init, utils
from .layers import Linear, ReLU, Sequential, Sigmoid, Softmax, Tanh
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module, ModuleDict, ModuleList, Parameter

__all__ = ["Module", "ModuleList", "ModuleDict", "Parameter", "Linear", "Sequential", "Sigmoid", "Tanh", "ReLU", "Softmax",
           "MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "functional", "init", "utils"]
