"""Scans and order statistics (contract v3): cumprod, sort, argsort, topk, median, and the
``amax``/``amin`` aliases of max/min.

sort, topk and median gather their values with ``take_along_axis`` at indices that an
unrecorded Function (:class:`Order`, :class:`MedianPicks`) computes inside its forward:
the gradient is take_along_axis's, and a compiled step recomputes the order on every call.
"""
from __future__ import annotations

import operator

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ..core.function import Function
from ..core.state import no_grad
from ..core.tensor import Tensor, TensorLike, as_tensor, reading_value, value_of
from . import generic
from .indexing import TakeAlongAxis
from .reduce import max as maximum_of, min as minimum_of, normalize_axis
from .registry import register, refuse_numpy_extras
from ..core.types import Array, Axis


class Cumprod(Function):
    """Running products along ``axis`` (the flattened array when None, as NumPy)."""

    name = "cumprod"

    @staticmethod
    def forward(ctx, a, axis):
        ctx.in_shape = a.shape
        line = a.reshape(-1) if axis is None else a
        ctx.axis = normalize_axis(0 if axis is None else axis, line.ndim)[0]
        out = np.cumprod(line, axis=ctx.axis)
        ctx.save_for_backward(a, out)   # the input itself: create_graph cannot follow a view
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        a = a.reshape(out.shape)
        if np.all(generic.value(a) != 0):   # d out_j / d a_k = out_j / a_k for j >= k
            result = _reverse_cumsum(grad * out, ctx.axis) / a
        else:
            result = _cumprod_slopes_with_zeros(a, grad, ctx.axis)
        return result.reshape(ctx.in_shape)


def _reverse_cumsum(x, axis):
    """``sum(x[k:])`` for every ``k`` along ``axis``."""
    flip = (slice(None),) * axis + (slice(None, None, -1),)
    return np.cumsum(x[flip], axis=axis)[flip]


def _cumprod_slopes_with_zeros(a, grad, axis):
    """The gradient of cumprod where ``a`` holds zeros: for each ``k``, the running products with
    ``a_k`` replaced by 1, summed against ``grad`` from ``k`` on (``n * n`` memory per line)."""
    moved = np.moveaxis(a, axis, -1)
    n = moved.shape[-1]
    like = generic.value(moved)
    others = np.where(np.eye(n, dtype=bool, like=like), 1.0, moved[..., None, :])   # [..., k, i]
    from_k_on = np.tri(n, dtype=bool, like=like).T                                  # [k, j]: j >= k
    terms = np.moveaxis(grad, axis, -1)[..., None, :] * np.cumprod(others, axis=-1) * from_k_on
    return np.moveaxis(terms.sum(axis=-1), -1, axis)


class Order(Function):
    """The indices that sort ``a`` along ``axis`` (stable; NaN last), or that sort it in
    descending order (NaN first, ties in ascending index order), the first ``count`` of them.
    Never recorded: indices have no gradient."""

    name = "order"

    @staticmethod
    def forward(ctx, a, axis, descending, count):
        if descending:   # a stable descending order: sort the reversed line, read it backwards
            flip = (slice(None),) * axis + (slice(None, None, -1),)
            order = a.shape[axis] - 1 - np.argsort(a[flip], axis=axis, kind="stable")[flip]
        else:
            order = np.argsort(a, axis=axis, kind="stable")
        return order if count is None else order[(slice(None),) * axis + (slice(0, count),)]

    @staticmethod
    def backward(ctx, grad):
        return None


class MedianPicks(Function):
    """For each line along ``axis``, the positions of its two middle values in sorted order
    (the same one twice for an odd count), or of its first NaN twice where it holds one
    (NumPy's median is then NaN; its gradient goes to that NaN, as PyTorch's). Never recorded."""

    name = "median_picks"

    @staticmethod
    def forward(ctx, a, axis):
        n = a.shape[axis]
        order = np.argsort(a, axis=axis, kind="stable")   # NaN last
        middle = np.array([(n - 1) // 2, n // 2]).reshape([2 if d == axis else 1 for d in range(a.ndim)])
        middle = np.asarray(middle, like=order)
        if a.dtype.kind == "f":
            nans = np.isnan(a).sum(axis=axis, keepdims=True)
            middle = np.where(nans > 0, n - nans, middle)
        return np.take_along_axis(order, np.broadcast_to(middle, _with(order.shape, axis, 2)), axis)

    @staticmethod
    def backward(ctx, grad):
        return None


def _with(shape, axis, n):
    return tuple(n if d == axis else size for d, size in enumerate(shape))


def _unrecorded(function, x, **settings):
    """``function`` applied outside the graph: an int Tensor that needs no gradient."""
    with no_grad():
        return function.apply(x, **settings)


# ------------------------------------------------------------- the ops
def _line(x, axis):
    """``(x, axis)`` with ``axis=None`` meaning the flattened tensor, as NumPy's sort does."""
    x = as_tensor(x)
    if axis is None:
        return x.reshape(-1), 0
    if x.ndim == 0:
        raise np.exceptions.AxisError(axis, 0)
    return x, normalize_axis_index(operator.index(axis), x.ndim)


@register("reduction", numpy=np.cumprod)
def cumprod(x: TensorLike, axis: int | None = None) -> Tensor:
    """Running products along ``axis`` (the flattened tensor when None, as NumPy); the gradient
    is exact where ``x`` holds zeros (PyTorch's)."""
    return Cumprod.apply(as_tensor(x), axis=axis)


def _numpy_sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``np.sort(t, axis)``; every ``kind`` gives the same values (autonet's sort is stable)."""
    refuse_numpy_extras("sort", {"order": order})
    return sort(a, axis=axis)


@register("reduction", numpy={np.sort: _numpy_sort})
def sort(x: TensorLike, axis: int | None = -1) -> Tensor:
    """The values sorted in ascending order along ``axis`` (None: flattened), NaN last, as
    ``numpy.sort``; each value's gradient goes back to its element (tied values keep their
    order, as a stable sort's).

    Coming from PyTorch: ``torch.sort`` returns ``(values, indices)``; here ``sort`` returns
    the values and ``argsort`` the indices (``topk`` returns both).
    """
    x, axis = _line(x, axis)
    order = _unrecorded(Order, x, axis=axis, descending=False, count=None)
    return TakeAlongAxis.apply(x, order, axis=axis)


@register("reduction")
def argsort(x: TensorLike, axis: int | None = -1) -> Array:
    """The indices that sort ``x`` along ``axis`` (an int ndarray: not differentiable), as
    ``numpy.argsort`` with ``kind="stable"``: ties keep their order."""
    reading_value("argsort")
    return np.argsort(value_of(x), axis=axis, kind="stable")


@register("reduction", method=None)
def topk(x: TensorLike, k: int, axis: int = -1, largest: bool = True) -> tuple[Tensor, Array]:
    """The ``k`` largest (or, with ``largest=False``, smallest) values along ``axis``, sorted,
    and their indices: ``(values, indices)``, values in the graph and indices an int ndarray,
    as PyTorch's ``topk`` (NaN counts as the largest value; ties go to the lower index).
    """
    if axis is None:
        raise TypeError("topk: axis must be an int (flatten the tensor first for the whole of it)")
    x, axis = _line(x, axis)
    k = operator.index(k)
    size = x.shape[axis]
    if not 0 <= k <= size:
        raise ValueError(f"topk: k must lie in [0, {size}] (the length of axis {axis}), got k={k}")
    indices = _unrecorded(Order, x, axis=axis, descending=largest, count=k)
    return TakeAlongAxis.apply(x, indices, axis=axis), value_of(indices)


def _numpy_median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """``np.median(t, axis, keepdims=...)``."""
    refuse_numpy_extras("median", {"out": out, "overwrite_input": overwrite_input or None})
    return median(a, axis=axis, keepdims=keepdims)


@register("reduction", numpy={np.median: _numpy_median})
def median(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """The median along ``axis`` (a tuple: over those axes together; None: of all elements), as
    ``numpy.median``: the mean of the two middle values for an even count, whose gradient is
    split between them; NaN where the line holds a NaN.

    Coming from PyTorch: ``torch.median`` returns the lower of the two middle values instead.
    """
    tensor = as_tensor(x)
    if axis is not None and np.ndim(axis) != 0:   # several axes: NumPy's median of their elements
        return _median_over_axes(tensor, normalize_axis(axis, tensor.ndim), keepdims)
    line, axis_ = _line(tensor, axis)
    if line.shape[axis_] == 0:
        raise ValueError(f"median: the axis is empty (shape {tensor.shape}); NumPy's answer would "
                         f"be NaN with a warning")
    picks = _unrecorded(MedianPicks, line, axis=axis_)
    out = TakeAlongAxis.apply(line, picks, axis=axis_).mean(axis=axis_, keepdims=True)
    if not keepdims:
        return out.reshape(tuple(n for d, n in enumerate(out.shape) if d != axis_))
    return out.reshape((1,) * tensor.ndim) if axis is None else out


def _median_over_axes(x, axes, keepdims):
    """The median over the elements of ``axes``: those axes moved last and merged into one."""
    others = [d for d in range(x.ndim) if d not in axes]
    merged = x.transpose(others + list(axes)).reshape(tuple(x.shape[d] for d in others) + (-1,))
    out = median(merged, axis=-1)
    if keepdims:
        return out.reshape(tuple(1 if d in axes else n for d, n in enumerate(x.shape)))
    return out


@register("reduction")
def amax(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """``max`` under NumPy's other name (and PyTorch's)."""
    return maximum_of(x, axis=axis, keepdims=keepdims)


@register("reduction")
def amin(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """``min`` under NumPy's other name (and PyTorch's)."""
    return minimum_of(x, axis=axis, keepdims=keepdims)

