"""Smooth and leaky activations, as PyTorch defines them (values and gradients).

SiLU is a composition of differentiable ops (so every order of derivative
comes free); the others are single ops whose backward formulas are themselves
written with differentiable operations.
"""
from __future__ import annotations

import math

import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor, TensorLike, as_tensor
from . import generic
from .elementwise import Sigmoid
from .registry import register

_SOFTPLUS_THRESHOLD = 20.0   # PyTorch's: above it softplus(x) is x itself


class Erf(Function):
    """The error function (NumPy has none: ``math.erf`` per element, exact to an ulp)."""

    name = "erf"
    erf = np.frompyfunc(math.erf, 1, 1)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return erf_array(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * (2.0 / math.sqrt(math.pi)) * generic.exp(-(a * a))


def erf_array(a):
    """erf of an array, element by element (a device array makes a trip to the host)."""
    if devices.is_host(a):
        return np.asarray(Erf.erf(a), dtype=a.dtype)
    return devices.to_device(erf_array(devices.to_host(a)), devices.device_of(a))


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
        return grad * np.where(ctx.above, 1.0, generic.sigmoid(a * ctx.beta))


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
        return grad * np.where(ctx.positive, 1.0, ctx.slope).astype(generic.value(grad).dtype)


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
        values = generic.value(a)
        # exp of the negative part, constant at 0: PyTorch's second derivative there is 0 (a
        # minimum(a, 0) would split its gradient at the tie, giving alpha / 2); NaN takes the
        # positive side's 1, as PyTorch's (its test is x <= 0)
        return grad * np.where(values <= 0, ctx.alpha * np.exp(np.where(values < 0, a, 0.0)), 1.0)


@register("elementwise")
def erf(x: TensorLike) -> Tensor:
    """The error function (PyTorch's ``torch.erf``; NumPy has none)."""
    return Erf.apply(as_tensor(x))


class Gelu(Function):
    """x Φ(x), exactly or with PyTorch's tanh formula, as one node.

    Saves only its input, as PyTorch's does, and recomputes Φ in backward (the same
    function of the same array: the same bits), so a transformer's feed-forward keeps
    one hidden activation, not two. The backward formula is written with operations
    that work on arrays and on Tensors, so under ``create_graph`` every order of
    derivative stays exact.
    """

    name = "gelu"

    @staticmethod
    def forward(ctx, a, approximate):
        ctx.approximate = approximate
        ctx.save_for_backward(a)
        return a * _gelu_cdf(a, approximate)

    @staticmethod
    def backward(ctx, grad):
        """Φ(a) + a Φ'(a), computed in place into three input-sized arrays (the output among
        them): written as one expression, NumPy held six at once, the tiny GPT step's peak.
        In place works alike on ndarrays, on Tensors (create_graph) and on the fused
        backend's symbolic arrays."""
        (a,) = ctx.saved
        if ctx.approximate == "tanh":     # Φ = (1 + t) / 2, t = tanh(u), u = c (a + k a^3)
            t = _gelu_tanh(a)
            out = t * t                   # a Φ' = -a (t^2 - 1) u' / 2
            out -= 1.0
            out *= a
            out *= -0.5
            slope = a * a                 # u' = c (1 + 3 k a^2)
            slope *= 3.0 * _TANH_CUBIC
            slope += 1.0
            slope *= _TANH_SCALE
            out *= slope
            del slope
            t = t + 1.0                   # Φ (a new array: under create_graph, t * t saved t)
            t *= 0.5
        else:                             # a Φ' = a exp(-a^2 / 2) / sqrt(2 pi)
            out = a * a
            out *= -0.5
            out = generic.exp(out)
            out *= 1.0 / math.sqrt(2.0 * math.pi)
            out *= a
            t = _gelu_cdf(a, "none")
        out += t
        del t
        out *= grad
        return out


_TANH_SCALE, _TANH_CUBIC = math.sqrt(2.0 / math.pi), 0.044715


def _gelu_tanh(a):
    """tanh(c (a + k a^3)): the tanh approximation's Φ is (1 + this) / 2."""
    return np.tanh(_TANH_SCALE * (a + _TANH_CUBIC * (a * a * a)))


def _gelu_cdf(a, approximate):
    """Φ(a) (or its tanh approximation), for arrays and Tensors alike."""
    if approximate == "tanh":
        return 0.5 * (1.0 + _gelu_tanh(a))
    erf_of = Erf.apply if isinstance(a, Tensor) else erf_array
    return 0.5 * (1.0 + erf_of(a * (1.0 / math.sqrt(2.0))))


@register("activation")
def gelu(x: TensorLike, approximate: str = "none") -> Tensor:
    """x Φ(x), exactly (``approximate="none"``) or with PyTorch's tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', not {approximate!r}")
    return Gelu.apply(as_tensor(x), approximate=approximate)


@register("activation")
def silu(x: TensorLike) -> Tensor:
    """x sigmoid(x) (also called swish)."""
    x = as_tensor(x)
    return x * Sigmoid.apply(x)


@register("activation")
def softplus(x: TensorLike) -> Tensor:
    """``log(1 + exp(x))``, and ``x`` itself above 20 (PyTorch's threshold)."""
    return Softplus.apply(as_tensor(x))


@register("activation")
def leaky_relu(x: TensorLike, negative_slope: float = 0.01) -> Tensor:
    """``x`` for ``x > 0``, else ``negative_slope * x`` (the slope's gradient at 0, as PyTorch's)."""
    return LeakyRelu.apply(as_tensor(x), negative_slope=float(negative_slope))


@register("activation")
def elu(x: TensorLike, alpha: float = 1.0) -> Tensor:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)`` (gradient ``alpha`` at 0, as PyTorch's)."""
    return Elu.apply(as_tensor(x), alpha=float(alpha))

