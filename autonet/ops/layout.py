"""Shape ops of contract v3: tile, split, array_split, roll, flip, flatten, unflatten,
meshgrid, and pad with NumPy's modes.

Each is written with the primitive shape ops (reshape, broadcast, slicing,
indexing with Python lists, concatenation), so gradients, second derivatives
and compiled replays come from those.
"""
from __future__ import annotations

import math
import numbers
import operator
from typing import Sequence

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ..core.tensor import Tensor, TensorLike, as_tensor, value_of
from .registry import register
from .shape import BroadcastTo, Concatenate, GetItem, Reshape, Transpose, copy
from ..core.types import Axis, ShapeLike


def _axis(axis, ndim):
    return normalize_axis_index(operator.index(axis), ndim)


def _along(axis, part):
    """An index applying ``part`` (a slice or a list) to ``axis`` only."""
    return (slice(None),) * axis + (part,)


@register("shape", numpy=np.tile)
def tile(x: TensorLike, reps: int | Sequence[int]) -> Tensor:
    """``x`` repeated ``reps`` times along each axis, as ``numpy.tile`` (PyTorch's ``Tensor.repeat``).

    Coming from PyTorch: ``t.repeat(2, 3)`` is ``t.tile((2, 3))``; autonet's ``repeat`` is
    NumPy's (PyTorch's ``repeat_interleave``).
    """
    x = as_tensor(x)
    reps = (operator.index(reps),) if np.ndim(reps) == 0 else tuple(operator.index(r) for r in reps)  # type: ignore
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps must be >= 0, got {reps}")
    ndim = max(x.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    spaced = Reshape.apply(x, shape=tuple(d for n in shape for d in (1, n)))
    spread = BroadcastTo.apply(spaced, shape=tuple(d for r, n in zip(reps, shape) for d in (r, n)))
    return Reshape.apply(spread, shape=tuple(r * n for r, n in zip(reps, shape)))


def _pieces(x, indices_or_sections, axis, op, equal):
    x = as_tensor(x)
    axis = _axis(axis, x.ndim)
    n = x.shape[axis]
    if isinstance(indices_or_sections, numbers.Integral):
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"{op}: the number of sections must be larger than 0, got {sections}")
        if equal and n % sections:
            raise ValueError(f"{op}: an axis of length {n} does not divide into {sections} equal "
                             f"sections; use array_split (unequal sections) or split indices")
        sizes = [n // sections + (i < n % sections) for i in range(sections)]
        bounds = np.cumsum([0] + sizes).tolist()
    else:
        bounds = [0] + [operator.index(i) for i in indices_or_sections] + [n]
    return [GetItem.apply(x, index=_along(axis, slice(lo, hi))) for lo, hi in zip(bounds[:-1], bounds[1:])]


@register("shape", numpy=np.split)
def split(x: TensorLike, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """A list of tensors: ``x`` cut into equal sections (an int that must divide the axis) or
    at the given indices, as ``numpy.split``.

    Coming from PyTorch: ``torch.split`` takes section sizes; here an int is the number of
    sections and a list holds the cut points (NumPy's meaning).
    """
    return _pieces(x, indices_or_sections, axis, "split", equal=True)


@register("shape", numpy=np.array_split)
def array_split(x: TensorLike, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """As ``split``, but an int need not divide the axis: the first ``n % sections`` pieces get
    one element more, as ``numpy.array_split``."""
    return _pieces(x, indices_or_sections, axis, "array_split", equal=False)


@register("shape", numpy=np.roll)
def roll(x: TensorLike, shift: int | Sequence[int], axis: Axis = None) -> Tensor:
    """Elements shifted by ``shift`` along ``axis`` (the flattened tensor when None), those
    pushed off one end coming back at the other, as ``numpy.roll``."""
    x = as_tensor(x)
    if axis is None:
        return Reshape.apply(roll(Reshape.apply(x, shape=(-1,)), shift, 0), shape=x.shape)
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    total: dict[int, int] = {}
    for s, a in zip(shifts.ravel().tolist(), axes.ravel().tolist()):
        a = _axis(a, x.ndim)
        total[a] = total.get(a, 0) + s
    for a, s in total.items():
        n = x.shape[a]
        if n and s % n:
            cut = n - s % n
            x = Concatenate.apply(GetItem.apply(x, index=_along(a, slice(cut, None))),
                                  GetItem.apply(x, index=_along(a, slice(0, cut))), axis=a)
    return x


@register("shape", numpy=np.flip)
def flip(x: TensorLike, axis: Axis = None) -> Tensor:
    """The order of elements reversed along ``axis`` (every axis when None), as ``numpy.flip``."""
    x = as_tensor(x)
    axes = range(x.ndim) if axis is None else {_axis(a, x.ndim) for a in np.atleast_1d(axis).tolist()}
    index = tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(x.ndim))
    return GetItem.apply(x, index=index)


@register("shape")
def flatten(x: TensorLike, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Axes ``start_axis..end_axis`` (inclusive) merged into one, as PyTorch's ``flatten``; by
    default all of them (NumPy's ``flatten()``).

    Coming from NumPy: a string first argument is NumPy's ``order`` (``t.flatten("F")``
    flattens in column-major order).
    """
    x = as_tensor(x)
    if isinstance(start_axis, str):
        return _flatten_in_order(x, start_axis)
    if x.ndim == 0:
        return Reshape.apply(x, shape=(1,))
    first, last = _axis(start_axis, x.ndim), _axis(end_axis, x.ndim)
    if first > last:
        raise ValueError(f"flatten: start_axis ({start_axis}) must not come after end_axis ({end_axis})")
    merged = math.prod(x.shape[first:last + 1])
    return Reshape.apply(x, shape=x.shape[:first] + (merged,) + x.shape[last + 1:])


def _flatten_in_order(x, order):
    """NumPy's ``flatten(order)``: "C" row-major, "F" column-major, "A" and "K" as the memory."""
    if order not in ("C", "F", "A", "K"):
        raise ValueError(f"flatten: order must be 'C', 'F', 'A' or 'K', not {order!r}")
    flags = value_of(x).flags
    if order in ("A", "K") and not (flags.c_contiguous or flags.f_contiguous):
        raise ValueError(f"flatten: order={order!r} of a tensor laid out in neither C nor Fortran "
                         f"order would follow its strides; use 'C' or 'F'")
    column_major = order == "F" or (order in ("A", "K") and flags.f_contiguous and not flags.c_contiguous)
    if column_major:
        x = Transpose.apply(x, axes=None)
    return Reshape.apply(x, shape=(-1,))


@register("shape")
def unflatten(x: TensorLike, axis: int, sizes: Sequence[int]) -> Tensor:
    """Axis ``axis`` split into axes of ``sizes`` (one may be -1), as PyTorch's ``unflatten``."""
    x = as_tensor(x)
    axis = _axis(axis, x.ndim)
    sizes = tuple(operator.index(s) for s in sizes)
    known = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes) or (
            -1 not in sizes and known != x.shape[axis]) or (
            -1 in sizes and (known == 0 or x.shape[axis] % known)):
        raise ValueError(f"unflatten: sizes {sizes} do not multiply to the length {x.shape[axis]} "
                         f"of axis {axis} (one size may be -1)")
    if -1 in sizes:
        sizes = tuple(x.shape[axis] // known if s == -1 else s for s in sizes)
    return Reshape.apply(x, shape=x.shape[:axis] + sizes + x.shape[axis + 1:])


def _numpy_meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """``np.meshgrid(*tensors, indexing=...)`` (dense grids only)."""
    if sparse:
        raise TypeError("numpy.meshgrid on Tensors supports sparse=False only (broadcasting does "
                        "the rest)")
    return meshgrid(*xi, indexing=indexing)


@register("shape", method=None, numpy={np.meshgrid: _numpy_meshgrid})
def meshgrid(*xs: TensorLike, indexing: str = "xy") -> list[Tensor]:
    """Coordinate grids from 1-D tensors, as ``numpy.meshgrid`` (a list of Tensors).

    Coming from PyTorch: NumPy's default ``indexing="xy"`` swaps the first two axes of the
    grids; PyTorch's default is ``"ij"``.
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', not {indexing!r}")
    xs = [Reshape.apply(as_tensor(x), shape=(-1,)) for x in xs]
    shape = [x.shape[0] for x in xs]
    positions = list(range(len(xs)))
    if indexing == "xy" and len(xs) > 1:
        shape[0], shape[1] = shape[1], shape[0]
        positions[0], positions[1] = 1, 0
    return [copy(BroadcastTo.apply(Reshape.apply(x, shape=tuple(-1 if d == p else 1 for d in range(len(xs)))),
                                   shape=tuple(shape)))
            for x, p in zip(xs, positions)]
