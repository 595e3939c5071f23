"""More elementwise functions (contract v3): trigonometric and hyperbolic functions and their
inverses, logarithms and powers of 2 and 10, and the two-operand ufuncs (logaddexp, arctan2,
hypot, mod, fmod, floor_divide, float_power), each with PyTorch's derivative formula.

Each one-operand op is a :class:`Unary` whose derivative is a formula of its input and its
output, written with operators and NumPy ufuncs that autonet differentiates, so the same
formula serves plain gradients (ndarrays) and higher-order ones (Tensors).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..core.function import Function
from ..core.state import no_grad
from ..core.tensor import Tensor, TensorLike, as_tensor, value_of
from . import generic
from .elementwise import Pow, operand, operands
from .registry import register

_LN2, _LN10 = math.log(2.0), math.log(10.0)   # Python floats: float32 stays float32


class Unary(Function):
    """``compute(a)``, whose gradient is ``grad * slope(a, out)``."""

    @staticmethod
    def forward(ctx, a):
        with np.errstate(invalid="ignore"):   # NaN outside the domain, quietly (PyTorch's)
            out = ctx.fn.compute(a)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        return grad * ctx.fn.slope(a, out)


def _unary(name, compute, slope):
    """A :class:`Unary` subclass named ``name``."""
    return type(name.capitalize(), (Unary,), {
        "name": name, "compute": staticmethod(compute), "slope": staticmethod(slope)})


Tan = _unary("tan", np.tan, lambda a, out: 1 + out * out)
Arcsin = _unary("arcsin", np.arcsin, lambda a, out: 1 / np.sqrt(1 - a * a))
Arccos = _unary("arccos", np.arccos, lambda a, out: -1 / np.sqrt(1 - a * a))
Arctan = _unary("arctan", np.arctan, lambda a, out: 1 / (1 + a * a))
Arcsinh = _unary("arcsinh", np.arcsinh, lambda a, out: 1 / np.sqrt(a * a + 1))
Arccosh = _unary("arccosh", np.arccosh, lambda a, out: 1 / np.sqrt(a * a - 1))
Arctanh = _unary("arctanh", np.arctanh, lambda a, out: 1 / (1 - a * a))
Sinh = _unary("sinh", np.sinh, lambda a, out: np.cosh(a))
Cosh = _unary("cosh", np.cosh, lambda a, out: np.sinh(a))
Log2 = _unary("log2", np.log2, lambda a, out: 1 / (a * _LN2))
Log10 = _unary("log10", np.log10, lambda a, out: 1 / (a * _LN10))
Exp2 = _unary("exp2", np.exp2, lambda a, out: out * _LN2)
Reciprocal = _unary("reciprocal", lambda a: 1 / a, lambda a, out: -(out * out))


class Binary(Function):
    """``compute(a, b)``, whose gradients are ``grad * slopes(a, b, out)``."""

    @staticmethod
    def forward(ctx, a, b):
        out = ctx.fn.compute(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved
        slope_a, slope_b = ctx.fn.slopes(a, b, out)
        need_a, need_b = ctx.needs_input_grad
        return (grad * slope_a if need_a else None), (grad * slope_b if need_b else None)


def _binary(name, compute, slopes):
    """A :class:`Binary` subclass named ``name``."""
    return type(name.capitalize(), (Binary,), {
        "name": name, "compute": staticmethod(compute), "slopes": staticmethod(slopes)})


def _arctan2_slopes(a, b, out):
    """``b / (a^2 + b^2)`` and ``-a / (a^2 + b^2)``; both 0 at ``(0, 0)``, as PyTorch's."""
    squared = a * a + b * b
    origin = generic.value(squared) == 0
    scale = 1 / (squared + origin)
    return b * scale, -a * scale


def _floor_quotient(a, b):
    """``floor(a / b)`` as Python's and PyTorch's floor division round it (a constant)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.floor_divide(value_of(a), value_of(b))


def _trunc_quotient(a, b):
    """``trunc(a / b)`` (a constant), as PyTorch's ``div(rounding_mode="trunc")``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.trunc(value_of(a) / value_of(b))


def _shares(power):
    """The slopes of ``log(power(a) + power(b))``: ``1 / (1 + power(b - a))`` and its mirror,
    PyTorch's formula (an overflow there is a slope of exactly 0)."""
    def slopes(a, b, out):
        with np.errstate(over="ignore"):
            return 1 / (1 + power(b - a)), 1 / (1 + power(a - b))
    return slopes


Logaddexp = _binary("logaddexp", np.logaddexp, _shares(np.exp))
Logaddexp2 = _binary("logaddexp2", np.logaddexp2, _shares(np.exp2))
Arctan2 = _binary("arctan2", np.arctan2, _arctan2_slopes)
Hypot = _binary("hypot", np.hypot, lambda a, b, out: (a / out, b / out))
Mod = _binary("mod", np.remainder, lambda a, b, out: (1.0, -_floor_quotient(a, b)))
Fmod = _binary("fmod", np.fmod, lambda a, b, out: (1.0, -_trunc_quotient(a, b)))


class FloorDivide(Function):
    """``a // b``, as NumPy's ``floor_divide``: piecewise constant, so never recorded."""

    name = "floor_divide"

    @staticmethod
    def forward(ctx, a, b):
        return np.floor_divide(a, b)

    @staticmethod
    def backward(ctx, grad):
        return None, None


# ------------------------------------------------------------- the ops
def _register_unary(function, numpy, aliases=()):
    """Register ``function`` and each NumPy 2 alias (``asin`` for ``arcsin``) as its own op."""
    register("elementwise", numpy=numpy)(function)
    for alias in aliases:
        register("elementwise", name=alias)(_alias(function, alias))
    return function


def _alias(function, alias):
    def same(x: TensorLike) -> Tensor:
        return function(x)
    same.__name__ = same.__qualname__ = alias
    same.__doc__ = f"``{function.__name__}`` under NumPy 2's name ``{alias}``."
    return same


def tan(x: TensorLike) -> Tensor:
    """The tangent."""
    return Tan.apply(as_tensor(x))


def arcsin(x: TensorLike) -> Tensor:
    """The inverse sine (PyTorch: ``asin``); NaN outside [-1, 1], as NumPy."""
    return Arcsin.apply(as_tensor(x))


def arccos(x: TensorLike) -> Tensor:
    """The inverse cosine (PyTorch: ``acos``); NaN outside [-1, 1], as NumPy."""
    return Arccos.apply(as_tensor(x))


def arctan(x: TensorLike) -> Tensor:
    """The inverse tangent (PyTorch: ``atan``)."""
    return Arctan.apply(as_tensor(x))


def arcsinh(x: TensorLike) -> Tensor:
    """The inverse hyperbolic sine (PyTorch: ``asinh``)."""
    return Arcsinh.apply(as_tensor(x))


def arccosh(x: TensorLike) -> Tensor:
    """The inverse hyperbolic cosine (PyTorch: ``acosh``); NaN below 1, as NumPy."""
    return Arccosh.apply(as_tensor(x))


def arctanh(x: TensorLike) -> Tensor:
    """The inverse hyperbolic tangent (PyTorch: ``atanh``); NaN outside [-1, 1], as NumPy."""
    return Arctanh.apply(as_tensor(x))


def sinh(x: TensorLike) -> Tensor:
    """The hyperbolic sine."""
    return Sinh.apply(as_tensor(x))


def cosh(x: TensorLike) -> Tensor:
    """The hyperbolic cosine."""
    return Cosh.apply(as_tensor(x))


def log2(x: TensorLike) -> Tensor:
    """The base-2 logarithm."""
    return Log2.apply(as_tensor(x))


def log10(x: TensorLike) -> Tensor:
    """The base-10 logarithm."""
    return Log10.apply(as_tensor(x))


def exp2(x: TensorLike) -> Tensor:
    """2 to the power ``x``."""
    return Exp2.apply(as_tensor(x))


def reciprocal(x: TensorLike) -> Tensor:
    """``1 / x``, as ``numpy.reciprocal`` on floats.

    Coming from NumPy: an integer tensor is float64 in autonet, so its
    reciprocal is the float ``1 / x`` (NumPy's integer ``reciprocal`` truncates).
    """
    return Reciprocal.apply(as_tensor(x))


for _function, _numpy, _aliases in [
        (tan, np.tan, ()), (arcsin, np.arcsin, ("asin",)), (arccos, np.arccos, ("acos",)),
        (arctan, np.arctan, ("atan",)), (arcsinh, np.arcsinh, ("asinh",)),
        (arccosh, np.arccosh, ("acosh",)), (arctanh, np.arctanh, ("atanh",)), (sinh, np.sinh, ()),
        (cosh, np.cosh, ()), (log2, np.log2, ()), (log10, np.log10, ()), (exp2, np.exp2, ()),
        (reciprocal, np.reciprocal, ())]:
    _register_unary(_function, _numpy, _aliases)


@register("elementwise", method=None, numpy=np.logaddexp)
def logaddexp(a: TensorLike, b: TensorLike) -> Tensor:
    """``log(exp(a) + exp(b))`` without overflow."""
    return Logaddexp.apply(*operands(a, b))


@register("elementwise", method=None, numpy=np.logaddexp2)
def logaddexp2(a: TensorLike, b: TensorLike) -> Tensor:
    """``log2(2 ** a + 2 ** b)`` without overflow."""
    return Logaddexp2.apply(*operands(a, b))


@register("elementwise", method=None, numpy=np.arctan2, torch="atan2")
def arctan2(a: TensorLike, b: TensorLike) -> Tensor:
    """The angle of the point ``(b, a)``: ``arctan(a / b)`` in the right quadrant.

    Its gradient at ``a == b == 0`` is 0, as PyTorch's.
    """
    return Arctan2.apply(*operands(a, b))


@register("elementwise", method=None, numpy=np.hypot)
def hypot(a: TensorLike, b: TensorLike) -> Tensor:
    """``sqrt(a ** 2 + b ** 2)`` without overflow; its gradient at ``(0, 0)`` is NaN (PyTorch's)."""
    return Hypot.apply(*operands(a, b))


@register("arithmetic", method=None, operators=("__mod__", "__rmod__"), numpy=np.remainder,
          torch="remainder")
def mod(a: TensorLike, b: TensorLike) -> Tensor:
    """``a % b``: the remainder with the sign of ``b``, as NumPy's ``mod`` and Python's ``%``.

    The gradient is 1 in ``a`` and ``-floor(a / b)`` in ``b`` (PyTorch's).
    """
    return Mod.apply(*operands(a, b))


@register("arithmetic", method=None, numpy=np.fmod)
def fmod(a: TensorLike, b: TensorLike) -> Tensor:
    """The remainder with the sign of ``a`` (C's ``fmod``), as NumPy's and PyTorch's ``fmod``.

    The gradient is 1 in ``a`` and ``-trunc(a / b)`` in ``b`` (PyTorch's).
    """
    return Fmod.apply(*operands(a, b))


@register("arithmetic", method=None, operators=("__floordiv__", "__rfloordiv__"),
          numpy=np.floor_divide)
def floor_divide(a: TensorLike, b: TensorLike) -> Tensor:
    """``a // b``, rounded down as NumPy's ``floor_divide``: a constant (it does not require
    grad; its gradient would be 0 almost everywhere, and PyTorch refuses to differentiate it)."""
    with no_grad():
        return FloorDivide.apply(*operands(a, b))


@register("arithmetic", method=None, numpy=np.float_power)
def float_power(a: TensorLike, b: TensorLike) -> Tensor:
    """``a ** b`` computed in float64 whatever the inputs' dtypes, as ``numpy.float_power``."""
    return Pow.apply(_float64(a), _float64(b))


def _float64(x):
    """``x`` in float64: a Tensor cast in the graph, a number as a float, an array converted."""
    if isinstance(x, Tensor):
        return x if x.dtype == np.float64 else x.astype(np.float64)
    if isinstance(x, numbers.Real):
        return float(x)
    x = operand(x)
    return x.astype(np.float64, copy=False) if hasattr(x, "astype") else np.asarray(x, dtype=np.float64)
