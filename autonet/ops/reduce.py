"""Reductions (sum, mean, max, min, var, prod, logsumexp), cumsum and argmax/argmin,
with NumPy's ``axis``/``keepdims``."""
from __future__ import annotations

import math
import operator

import numpy as np

from ..core.function import Function
from ..core import device as devices
from ..core.tensor import Tensor, TensorLike, as_tensor, reading_value, value_of
from . import generic
from .registry import register
from .shape import expand_to
from ..core.types import Array, Axis


def normalize_axis(axis, ndim):
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    normalized = []
    for a in axes:
        if isinstance(a, Tensor) or isinstance(axis, Tensor):
            raise TypeError("axis must be None, an int or a tuple of ints, not a Tensor: the "
                            "elementwise max(a, b) / min(a, b) of PyTorch are maximum(a, b) and "
                            "minimum(a, b) here (max and min reduce, as NumPy's)")
        a = operator.index(a)   # 1.5 is a TypeError, as in NumPy, not axis 1
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        normalized.append(a % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"duplicate value in axis {axis}")
    return tuple(sorted(normalized))


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class _Reduction(Function):
    """Shared bookkeeping: the input shape and the reduced axes."""

    @staticmethod
    def remember(ctx, a, axis, keepdims):
        ctx.in_shape = a.shape
        ctx.axes = normalize_axis(axis, a.ndim)
        ctx.keepdims = keepdims
        return ctx.axes

    @staticmethod
    def expand(ctx, grad):
        """``grad`` reshaped so it broadcasts against the input again."""
        if ctx.keepdims or grad.ndim == 0:   # a 0-d gradient broadcasts as it is
            return grad
        return grad.reshape(_keepdims_shape(ctx.in_shape, ctx.axes))


class Sum(_Reduction):
    name = "sum"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        axes = _Reduction.remember(ctx, a, axis, keepdims)
        return np.add.reduce(a, axis=axes, keepdims=keepdims)   # what ndarray.sum runs

    @staticmethod
    def backward(ctx, grad):
        return expand_to(_Reduction.expand(ctx, grad), ctx.in_shape)


class Mean(_Reduction):
    name = "mean"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        axes = _Reduction.remember(ctx, a, axis, keepdims)
        ctx.count = math.prod(a.shape[i] for i in axes)
        if a.dtype == np.float16:   # NumPy sums float16 in float32 for the mean: no overflow
            return np.mean(a, axis=axes, keepdims=keepdims)
        # ndarray.mean's own steps, without its Python wrapper
        return np.add.reduce(a, axis=axes, keepdims=keepdims) / ctx.count

    @staticmethod
    def backward(ctx, grad):
        return expand_to(_Reduction.expand(ctx, grad) / ctx.count, ctx.in_shape)


class _Extreme(_Reduction):
    """max or min: the gradient goes to the extreme elements, split between ties."""

    @staticmethod
    def reduce(ctx, a, axis, keepdims, numpy_reduce):
        axes = _Reduction.remember(ctx, a, axis, keepdims)
        if any(a.shape[i] == 0 for i in axes):   # over a non-empty axis: empty, as NumPy
            raise ValueError(f"{ctx.name} over an empty axis (NumPy: zero-size array to reduction "
                             f"operation which has no identity)")
        extreme = numpy_reduce(a, axis=axes, keepdims=True)
        # the tied extremes share the gradient; in a slice whose extreme is NaN, its NaNs (PyTorch)
        winners = np.where(np.isnan(extreme), np.isnan(a), a == extreme) if a.dtype.kind == "f" \
            else a == extreme
        ctx.save_for_backward(winners / winners.sum(axis=axes, keepdims=True))
        return extreme if keepdims else extreme.reshape(
            tuple(n for i, n in enumerate(a.shape) if i not in axes))

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved   # 1 / (number of ties) at the extremes, 0 elsewhere
        return _Reduction.expand(ctx, grad) * share


class Max(_Extreme):
    name = "max"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        return _Extreme.reduce(ctx, a, axis, keepdims, np.max)


class Min(_Extreme):
    name = "min"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        return _Extreme.reduce(ctx, a, axis, keepdims, np.min)


class Var(_Reduction):
    """Variance with NumPy's ``ddof`` (default 0)."""

    name = "var"

    @staticmethod
    def forward(ctx, a, axis, keepdims, ddof):
        axes = _Reduction.remember(ctx, a, axis, keepdims)
        # NumPy divides by max(n - ddof, 0): the variance is inf (NumPy warns), and so is
        # the scale of its gradient, rather than a ZeroDivisionError or a finite number
        count = math.prod(a.shape[i] for i in axes)
        ctx.divisor = count - ddof if count > ddof else 0
        ctx.save_for_backward(a)
        return a.var(axis=axes, keepdims=keepdims, ddof=ddof)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved[:1]
        centred = a - a.mean(axis=ctx.axes, keepdims=True)
        scale = 2.0 / ctx.divisor if ctx.divisor else np.inf
        return _Reduction.expand(ctx, grad) * centred * scale


class Std(Var):
    """Standard deviation, ``sqrt(var)``; its gradient is 0 where it is 0 (PyTorch's), not the
    NaN that ``inf * 0`` through ``sqrt`` would give."""

    name = "std"

    @staticmethod
    def forward(ctx, a, axis, keepdims, ddof):
        out = np.sqrt(Var.forward(ctx, a, axis, keepdims, ddof))
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.saved[1]
        zero = generic.value(out) == 0
        return Var.backward(ctx, grad * ~zero / (2 * (out + zero)))


class Prod(_Reduction):
    """Product; the gradient is the product of the other elements, zeros included."""

    name = "prod"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        axes = _Reduction.remember(ctx, a, axis, keepdims)
        ctx.save_for_backward(a)
        return np.multiply.reduce(a, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return _Reduction.expand(ctx, grad) * _product_of_others(a, ctx.axes)


def _product_of_others(a, axes):
    """For each element of ``a``, the product of the others along ``axes`` (any order)."""
    if np.all(value_of(a) != 0):
        return _prod(a, axes, keepdims=True) / a
    # with zeros: line the reduced elements up on a last axis of n, make n copies each with
    # one element replaced by 1, and take their products (n * n memory, on this path only)
    moved = np.moveaxis(a, axes, range(-len(axes), 0))
    rest = moved.shape[:moved.ndim - len(axes)]
    n = math.prod(moved.shape[len(rest):])
    rows = moved.reshape(rest + (1, n))
    others = _prod(np.where(np.eye(n, dtype=bool, like=value_of(a)), 1.0, rows), (len(rest) + 1,), keepdims=False)
    return np.moveaxis(others.reshape(moved.shape), range(-len(axes), 0), axes)


def _prod(x, axes, keepdims):
    if isinstance(x, Tensor):
        return Prod.apply(x, axis=axes, keepdims=keepdims)
    return np.multiply.reduce(x, axis=axes, keepdims=keepdims)


class Cumsum(Function):
    """Running sums along ``axis`` (the flattened array when None, as NumPy)."""

    name = "cumsum"

    @staticmethod
    def forward(ctx, a, axis):
        ctx.in_shape = a.shape
        if axis is None:
            a, axis = a.reshape(-1), 0
        ctx.axis = normalize_axis(axis, a.ndim)[0]
        return np.cumsum(a, axis=ctx.axis)

    @staticmethod
    def backward(ctx, grad):
        flip = (slice(None),) * ctx.axis + (slice(None, None, -1),)
        reversed_sums = grad[flip]
        if isinstance(grad, Tensor):
            reversed_sums = Cumsum.apply(reversed_sums, axis=ctx.axis)
        else:
            reversed_sums = np.cumsum(reversed_sums, axis=ctx.axis)
        return reversed_sums[flip].reshape(ctx.in_shape)


class LogSumExp(_Reduction):
    """log(sum(exp(a))) without overflow (the max is taken out); -inf where all are -inf."""

    name = "logsumexp"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        axes = _Reduction.remember(ctx, a, axis, keepdims)
        shift = np.max(a, axis=axes, keepdims=True) if a.size else 0.0
        shift = np.where(np.isfinite(shift), shift, 0.0)
        with np.errstate(divide="ignore"):   # all -inf: log(0) = -inf is the answer
            out = np.log(np.add.reduce(np.exp(a - shift), axis=axes, keepdims=True)) + shift
        if not keepdims:
            out = out.reshape(tuple(n for i, n in enumerate(a.shape) if i not in axes)).copy()
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):   # the gradient is softmax(a), written with differentiable ops
        a, out = ctx.saved
        return _Reduction.expand(ctx, grad) * np.exp(a - _Reduction.expand(ctx, out))


# ------------------------------------------------------------- the ops
@register("reduction", numpy=(np.sum, (np.add, "reduce")))
def sum(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - mirrors numpy.sum
    """The sum over ``axis`` (None: every axis), as ``numpy.sum``."""
    return Sum.apply(as_tensor(x), axis=axis, keepdims=keepdims)


@register("reduction", numpy=np.mean)
def mean(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """The mean over ``axis`` (None: every axis), as ``numpy.mean``."""
    return Mean.apply(as_tensor(x), axis=axis, keepdims=keepdims)


@register("reduction", numpy=(np.max, np.amax, (np.maximum, "reduce")))
def max(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - mirrors numpy.max
    """The maximum over ``axis``; the gradient is split evenly between tied maxima."""
    return Max.apply(as_tensor(x), axis=axis, keepdims=keepdims)


@register("reduction", numpy=(np.min, np.amin, (np.minimum, "reduce")))
def min(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - mirrors numpy.min
    """The minimum over ``axis``; the gradient is split evenly between tied minima."""
    return Min.apply(as_tensor(x), axis=axis, keepdims=keepdims)


@register("reduction", numpy=np.var)
def var(x: TensorLike, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """The variance over ``axis``, with NumPy's ``ddof`` (default 0; PyTorch's is 1)."""
    return Var.apply(as_tensor(x), axis=axis, keepdims=keepdims, ddof=ddof)


@register("reduction", numpy=np.std)
def std(x: TensorLike, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """The standard deviation, ``sqrt(var)``, with NumPy's ``ddof`` (default 0)."""
    return Std.apply(as_tensor(x), axis=axis, keepdims=keepdims, ddof=ddof)


@register("reduction", numpy=np.prod)
def prod(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """The product over ``axis``; its gradient handles zeros exactly."""
    return Prod.apply(as_tensor(x), axis=axis, keepdims=keepdims)


@register("reduction", numpy=np.cumsum)
def cumsum(x: TensorLike, axis: int | None = None) -> Tensor:
    """Running sums along ``axis`` (the flattened tensor when None, as NumPy)."""
    return Cumsum.apply(as_tensor(x), axis=axis)


@register("reduction")
def logsumexp(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` over ``axis``, without overflow."""
    return LogSumExp.apply(as_tensor(x), axis=axis, keepdims=keepdims)


@register("reduction")
def argmax(x: TensorLike, axis: int | None = None, keepdims: bool = False) -> Array:
    """Indices of the largest values (an int ndarray: not differentiable), as NumPy's."""
    reading_value("argmax")
    return _as_array(np.argmax(value_of(x), axis=axis, keepdims=keepdims))


@register("reduction")
def argmin(x: TensorLike, axis: int | None = None, keepdims: bool = False) -> Array:
    """Indices of the smallest values (an int ndarray: not differentiable), as NumPy's."""
    reading_value("argmin")
    return _as_array(np.argmin(value_of(x), axis=axis, keepdims=keepdims))


def _as_array(result):
    """NumPy's scalar result as a 0-d array (a device's result is one already)."""
    return np.asarray(result) if devices.is_host(result) else result
