"""Smooth and leaky activations, as PyTorch defines them (values and gradients).

GELU and SiLU are compositions of differentiable ops (so every order of
derivative comes free); the others are single ops whose backward formulas are
themselves written with differentiable operations.
"""
import math

import numpy as np

from ..core.function import Function
from ..core.tensor import as_tensor
from . import dual
from .elementwise import Sigmoid, tanh

_SOFTPLUS_THRESHOLD = 20.0   # PyTorch's: above it softplus(x) is x itself


class Erf(Function):
    """The error function (NumPy has none: ``math.erf`` per element, exact to an ulp)."""

    name = "erf"
    _erf = np.frompyfunc(math.erf, 1, 1)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.asarray(Erf._erf(a), dtype=a.dtype)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * (2.0 / math.sqrt(math.pi)) * dual.exp(-(a * a))


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's)."""

    name = "softplus"

    @staticmethod
    def forward(ctx, a, beta=1.0, threshold=_SOFTPLUS_THRESHOLD):
        ctx.save_for_backward(a)
        ctx.beta, ctx.above = beta, a * beta > threshold
        return np.where(ctx.above, a, np.log1p(np.exp(np.minimum(a * beta, threshold))) / beta)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * np.where(ctx.above, 1.0, dual.sigmoid(a * ctx.beta))


class LeakyRelu(Function):
    """x for x > 0, else ``negative_slope * x`` (the gradient at 0 is the slope, as PyTorch's)."""

    name = "leaky_relu"

    @staticmethod
    def forward(ctx, a, negative_slope):
        ctx.positive = a > 0
        ctx.slope = negative_slope
        return np.where(ctx.positive, a, a * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.where(ctx.positive, 1.0, ctx.slope).astype(dual.value(grad).dtype)


class Elu(Function):
    """x for x > 0, else ``alpha * (exp(x) - 1)`` (gradient ``alpha`` at 0, as PyTorch's)."""

    name = "elu"

    @staticmethod
    def forward(ctx, a, alpha):
        ctx.save_for_backward(a)
        ctx.alpha = alpha
        return np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0)))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        positive = dual.value(a) > 0
        return grad * np.where(positive, 1.0, ctx.alpha * np.exp(np.minimum(a, 0)))


def erf(x):
    return Erf.apply(as_tensor(x))


def gelu(x, approximate="none"):
    """x Φ(x), exactly (``approximate="none"``) or with PyTorch's tanh formula."""
    x = as_tensor(x)
    if approximate == "none":
        return x * 0.5 * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1.0 + tanh(inner))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', not {approximate!r}")


def silu(x):
    """x sigmoid(x) (also called swish)."""
    x = as_tensor(x)
    return x * Sigmoid.apply(x)


def softplus(x):
    return Softplus.apply(as_tensor(x))


def leaky_relu(x, negative_slope=0.01):
    return LeakyRelu.apply(as_tensor(x), negative_slope=float(negative_slope))


def elu(x, alpha=1.0):
    return Elu.apply(as_tensor(x), alpha=float(alpha))

