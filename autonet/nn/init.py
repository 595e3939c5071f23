"""In-place initialisers, with PyTorch's fan-in and fan-out for every layout.

Each fills ``t.data`` without recording a graph and returns ``t``. ``rng`` is a
``numpy.random.Generator``, an int seed, or None (autonet.random's default generator,
which ``autonet.random.seed`` seeds).
"""
from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from ..core import device as devices
from ..core.tensor import Tensor
from ..core.types import Seed
from ..random import generator

_Filled = TypeVar("_Filled", bound=Tensor)   # each initialiser returns the tensor it filled

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 0.75,
          **{f"conv{kind}{n}d": 1.0 for kind in ("", "_transpose") for n in (1, 2, 3)}}   # PyTorch's calculate_gain


def _fill(t, values):
    if isinstance(values, np.ndarray) and not devices.is_host(t.data):
        values = devices.to_device(values, t.device)   # drawn on the host: the CPU's numbers
    t.data[...] = values
    t._bump_version()   # graphs that saved the old values now refuse to backward
    return t


def uniform_(t: _Filled, a: float = 0.0, b: float = 1.0, rng: Seed = None) -> _Filled:
    """Fill with values drawn uniformly from [a, b)."""
    return _fill(t, generator(rng).uniform(a, b, t.shape))


def normal_(t: _Filled, mean: float = 0.0, std: float = 1.0, rng: Seed = None) -> _Filled:
    """Fill with values drawn from N(mean, std**2)."""
    return _fill(t, generator(rng).normal(mean, std, t.shape))


def zeros_(t: _Filled) -> _Filled:
    """Fill with zeros."""
    return _fill(t, 0.0)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape ``(out, in, *receptive_field)``, PyTorch's
    layout for Linear ``(out_features, in_features)`` and convolutions alike."""
    if len(shape) < 2:
        raise ValueError(f"fan-in and fan-out need a weight of 2 or more axes, not shape {shape}")
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def xavier_uniform_(t: _Filled, gain: float = 1.0, rng: Seed = None) -> _Filled:
    """Glorot uniform: bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(t.shape)
    if not t.size:   # nothing to fill (PyTorch's no-op), and a fan may be 0
        return t
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound, rng)


def kaiming_uniform_(t: _Filled, a: float = 0.0, nonlinearity: str = "leaky_relu",
                     rng: Seed = None) -> _Filled:
    """He uniform: bound = gain * sqrt(3 / fan_in), gain as PyTorch's calculate_gain."""
    if nonlinearity == "leaky_relu":
        gain = math.sqrt(2.0 / (1 + a ** 2))
    elif nonlinearity in _GAINS:
        gain = _GAINS[nonlinearity]
    else:
        raise ValueError(f"kaiming_uniform_: unknown nonlinearity {nonlinearity!r}")
    fan_in, _ = fans(t.shape)
    if not t.size:   # nothing to fill (PyTorch's no-op), and fan_in may be 0
        return t
    bound = gain * math.sqrt(3.0 / fan_in)
    return uniform_(t, -bound, bound, rng)
