"""Layers: Linear, Sequential and the activation modules."""
import math

import numpy as np

from . import functional as F, init
from .module import Module, ModuleList, Parameter


class Linear(Module):
    """``y = x @ weight + bias`` with ``weight`` of shape ``(in_features, out_features)``.

    The layout is the notebook's (``X @ W0`` with ``W0`` of shape (3, 4)).
    Weights and bias start uniform in ±1/sqrt(in_features), drawn from ``rng``
    (a Generator or an int seed).
    """

    def __init__(self, in_features, out_features, bias=True, rng=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        rng = init.generator(rng)
        bound = 1.0 / math.sqrt(in_features)
        weight = Parameter(np.empty((in_features, out_features)))
        self.weight = init.uniform_(weight, -bound, bound, rng)
        self.bias = init.uniform_(Parameter(np.empty(out_features)), -bound, bound, rng) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features} -> {self.out_features}" + ("" if self.bias is not None else ", bias=False")


class Sequential(ModuleList):
    """Modules applied in order; children are named "0", "1", ... (``append`` adds one)."""

    def __init__(self, *modules):
        super().__init__(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*list(self)[index])
        return super().__getitem__(index)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Softmax(Module):
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.softmax(x, axis=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"
