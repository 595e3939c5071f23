"""``x @ weight.T + bias`` with PyTorch's ``(out_features, in_features)`` weight layout.

The recurrent and attention layers use PyTorch's layouts whatever ``nn.Linear``'s
is, so their ``state_dict`` moves to and from PyTorch unchanged. ``Projection``
is the submodule behind ``out_proj``, ``linear1`` and ``linear2`` (parameters
``weight (out, in)`` and ``bias (out,)``, PyTorch's ``Linear`` initialisation).
"""
from __future__ import annotations

import math

from ..ops.linalg import linear
from .layers import _uniform
from ..random import generator
from .module import Module


def affine(x, weight, bias=None):
    """``x @ weight.T + bias`` (``bias`` may be None), one node in the graph."""
    return linear(x, weight, bias)


class Projection(Module):
    """A Linear layer in PyTorch's layout: ``weight (out_features, in_features)``, uniform in
    ±1/sqrt(in_features) as PyTorch's, and ``bias (out_features,)``.

    >>> import numpy as np
    >>> from autonet.nn.projection import Projection
    >>> layer = Projection(3, 2, rng=0)
    >>> layer.weight.shape, layer(np.ones((4, 3))).shape
    ((2, 3), (4, 2))
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        rng = generator(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = _uniform((out_features, in_features), bound, rng, dtype)
        self.bias = _uniform((out_features,), bound, rng, dtype) if bias else None

    def forward(self, x):
        return affine(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}" + (
            "" if self.bias is not None else ", bias=False")
