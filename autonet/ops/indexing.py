"""Indexing ops (contract v3): take, take_along_axis, scatter, tril/triu, diagonal, diag.

take_along_axis and scatter share one idea: an ``indices`` array along one axis
names, for each position, the element read (or written), and the index tuple
built from it (:func:`along_index`) is plain NumPy advanced indexing, so their
gradients are the existing scatter-add and gather. The index arrays are built
inside the Functions' forwards from the shapes, as compiled steps require.
"""
from __future__ import annotations

import numbers
import operator

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor, TensorLike, as_tensor, value_of
from .registry import register
from .shape import (GetItem, ScatterAdd, Transpose, _on_device_of, normalize_index, refuse_repeats,
                    scatter_add, written)
from ..core.types import Axis


def along_index(indices, axis, shape, op):
    """The advanced-indexing tuple that reads ``take_along_axis(a, indices, axis)`` from an
    array of ``shape``, as NumPy's rules (same ndim; other axes broadcast)."""
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{op}: indices must be an integer array, got dtype {indices.dtype}")
    if indices.ndim != len(shape):
        raise ValueError(f"{op}: indices need as many dimensions as the tensor ({len(shape)}), got "
                         f"{indices.ndim} (add axes with expand_dims)")
    size = shape[axis]
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise IndexError(f"{op}: indices must lie in [{-size}, {size}) along axis {axis} of "
                         f"size {size}, got {indices.min()}..{indices.max()}")
    target = list(np.broadcast_shapes(*(tuple(1 if d == axis else n for d, n in enumerate(s))
                                        for s in (shape, indices.shape))))
    target[axis] = indices.shape[axis]
    index = []
    for d, n in enumerate(shape):
        if d == axis:
            index.append(np.broadcast_to(indices, target))
        else:   # an axis of length 1 broadcasts: always position 0
            position = devices.arange(n, indices) if n != 1 else devices.zeros(1, np.intp, indices)
            index.append(position.reshape([-1 if k == d else 1 for k in range(len(shape))]))
    return tuple(index)


def _given(indices, listed, like):
    """The indices array: given as one, or as (nested) lists, made an array here inside the
    forward so that a compiled step takes the lists by value."""
    if listed is None:
        return indices
    return np.asarray(listed) if type(like) is np.ndarray else np.asarray(listed, like=like)


class TakeAlongAxis(Function):
    """``numpy.take_along_axis(a, indices, axis)``; repeated indices accumulate gradient."""

    name = "take_along_axis"

    @staticmethod
    def forward(ctx, a, indices, axis, listed=None):
        ctx.in_shape = a.shape
        indices = _given(indices, listed, a)
        ctx.index = _on_device_of(along_index(indices, axis, a.shape, "take_along_axis"), a)
        return a[ctx.index]

    @staticmethod
    def backward(ctx, grad):
        return scatter_add(grad, ctx.in_shape, ctx.index), None


class Scatter(Function):
    """``a`` with ``values`` written (``"replace"``) or added (``"add"``) at ``indices``."""

    name = "scatter"

    @staticmethod
    def forward(ctx, a, indices, values, axis, reduce, listed=None):
        index = _on_device_of(along_index(_given(indices, listed, a), axis, a.shape, "scatter"), a)
        values = np.broadcast_to(values, index[axis].shape)   # the indices' broadcast shape
        if reduce == "replace":
            refuse_repeats(index, a, "scatter: with reduce='replace', repeated indices would keep "
                           "only one of their values (and its gradient would be ambiguous); use "
                           "reduce='add' or distinct indices")
            return written(ctx, a, index, values)
        out = a.copy()
        np.add.at(out, index, values)
        ctx.index = index
        return out

    @staticmethod
    def backward(ctx, grad):
        kept = value_of(ctx.saved[0]) if ctx.saved else True
        return grad * kept, None, grad[ctx.index]


class Tril(Function):
    """The lower (``tril``) or upper (``triu``) triangle of the last two axes."""

    name = "tril"
    numpy_function = staticmethod(np.tril)

    @staticmethod
    def forward(ctx, a, k):
        ctx.k = k
        return ctx.fn.numpy_function(a, k)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return ctx.fn.apply(grad, k=ctx.k)
        return ctx.fn.numpy_function(grad, ctx.k)


class Triu(Tril):
    name = "triu"
    numpy_function = staticmethod(np.triu)


# ------------------------------------------------------------- the ops
def _axis(axis, ndim):
    return normalize_axis_index(operator.index(axis), ndim)


def _on_device_of_tensor(array, x, dtype=None):
    """``array`` (a number or host array) as an array where ``x``'s data lives."""
    if devices.is_host(x.data):
        return np.asarray(array, dtype=dtype)
    return array if not devices.is_host(array) else np.asarray(array, dtype=dtype, like=x.data)


def _indices(indices, x):
    """``(indices, listed)`` for the Functions: an array beside ``x``'s data (a Tensor gives its
    data: indices get no gradient), or lists passed on as they are."""
    if isinstance(indices, (list, tuple)):
        return None, {"listed": indices}
    return _on_device_of_tensor(value_of(indices), x), {}


@register("shape", numpy=np.take, torch="index_select")
def take(x: TensorLike, indices: TensorLike, axis: Axis = None) -> Tensor:
    """Elements at ``indices`` along ``axis`` (of the flattened tensor when None), as
    ``numpy.take``; repeated indices accumulate gradient."""
    x = as_tensor(x)
    indices = normalize_index(indices)
    if axis is None:
        return GetItem.apply(x.reshape(-1), index=indices)
    return GetItem.apply(x, index=(slice(None),) * _axis(axis, x.ndim) + (indices,))


@register("shape", method=None, numpy=np.take_along_axis, torch="gather")
def take_along_axis(x: TensorLike, indices: TensorLike, axis: int | None = -1) -> Tensor:
    """``numpy.take_along_axis``: ``out[..., i, ...] = x[..., indices[..., i, ...], ...]`` along
    ``axis`` (PyTorch's ``gather``); repeated indices accumulate gradient.

    Coming from PyTorch: ``gather(x, dim, index)`` is ``take_along_axis(x, index, axis)``.
    """
    x = as_tensor(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    indices, listed = _indices(indices, x)
    return TakeAlongAxis.apply(x, indices, axis=_axis(axis, x.ndim), **listed)


@register("shape", method=None)
def scatter(x: TensorLike, indices: TensorLike, values: TensorLike, axis: int,
            reduce: str = "replace") -> Tensor:
    """A copy of ``x`` with ``values`` put at ``indices`` along ``axis`` (``numpy.put_along_axis``'s
    index rules, out of place), or added there with ``reduce="add"`` (repeats accumulate).

    Coming from PyTorch: ``x.scatter(dim, index, src)`` is ``scatter(x, index, src, axis)``;
    ``"replace"`` refuses repeated indices, whose result PyTorch leaves unspecified.
    """
    if reduce not in ("replace", "add"):
        raise ValueError(f"scatter: reduce must be 'replace' or 'add', not {reduce!r}")
    x = as_tensor(x)
    if not isinstance(values, (Tensor, numbers.Number)):
        values = _on_device_of_tensor(values, x, x.dtype)
    indices, listed = _indices(indices, x)
    return Scatter.apply(x, indices, values, axis=_axis(axis, x.ndim), reduce=reduce, **listed)


def _triangle(function, x, k, op):
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"{op}: needs a tensor of 2 or more dimensions, got shape {x.shape} "
                         f"(NumPy's {op} would first repeat a 1-D array into a square; build it "
                         f"with autonet.diag or broadcasting)")
    return function.apply(x, k=operator.index(k))


@register("shape", numpy=np.tril)
def tril(x: TensorLike, k: int = 0) -> Tensor:
    """The lower triangle (on and below the ``k``-th diagonal) of the last two axes, zeros above."""
    return _triangle(Tril, x, k, "tril")


@register("shape", numpy=np.triu)
def triu(x: TensorLike, k: int = 0) -> Tensor:
    """The upper triangle (on and above the ``k``-th diagonal) of the last two axes, zeros below."""
    return _triangle(Triu, x, k, "triu")


@register("shape", numpy=np.diagonal)
def diagonal(x: TensorLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The ``offset``-th diagonal of the plane ``(axis1, axis2)``, as a last axis (``numpy.diagonal``;
    a copy, not NumPy's read-only view)."""
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"diagonal: needs 2 or more dimensions, got shape {x.shape}")
    first, second = _axis(axis1, x.ndim), _axis(axis2, x.ndim)
    if first == second:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same axis")
    order = [d for d in range(x.ndim) if d not in (first, second)] + [first, second]
    rows, cols = _diagonal_positions(x.shape[first], x.shape[second], operator.index(offset))
    moved = Transpose.apply(x, axes=tuple(order)) if order != list(range(x.ndim)) else x
    return GetItem.apply(moved, index=(Ellipsis, rows, cols))


def _diagonal_positions(n, m, offset):
    """Rows and columns (lists: compile takes them by value) of a diagonal of an n x m plane."""
    start_row, start_col = max(-offset, 0), max(offset, 0)
    length = max(min(n - start_row, m - start_col), 0)
    return list(range(start_row, start_row + length)), list(range(start_col, start_col + length))


@register("shape", numpy=np.diag)
def diag(v: TensorLike, k: int = 0) -> Tensor:
    """``numpy.diag``: a 1-D ``v`` builds a square matrix with ``v`` on the ``k``-th diagonal;
    a 2-D ``v`` gives its ``k``-th diagonal."""
    v = as_tensor(v)
    k = operator.index(k)
    if v.ndim == 2:
        return diagonal(v, offset=k)
    if v.ndim != 1:
        raise ValueError(f"diag: input must be 1-D (to build) or 2-D (to extract), got shape {v.shape}")
    n = v.shape[0] + abs(k)
    rows, cols = _diagonal_positions(n, n, k)
    return ScatterAdd.apply(v, shape=(n, n), index=(rows, cols))


def remove_repeated_subscripts(subscripts, x):
    """``(subscripts, x)`` with each letter repeated within one operand of an einsum replaced by
    the diagonal over its two axes (``"ii" -> "i"``), as NumPy's einsum reads them."""
    while len(set(subscripts)) != len(subscripts):
        letter = next(c for c in subscripts if subscripts.count(c) > 1)
        first = subscripts.index(letter)
        second = subscripts.index(letter, first + 1)
        x = diagonal(x, axis1=first, axis2=second)
        subscripts = "".join(c for i, c in enumerate(subscripts) if i not in (first, second)) + letter
    return subscripts, x

