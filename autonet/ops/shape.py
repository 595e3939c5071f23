"""Shape ops: reshape, transpose, indexing, joining, broadcasting, casting."""
from __future__ import annotations

import numbers
import operator
from typing import Sequence, SupportsIndex

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ..core import device as devices
from ..core.function import Function, apply_in_place
from ..core.tensor import Tensor, TensorLike, as_tensor, check_kind, value_of
from .registry import refuse_numpy_extras, register
from ..core.types import Axis, DTypeLike, Index, ShapeLike


class Reshape(Function):
    name = "reshape"

    @staticmethod
    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape)


class Transpose(Function):
    name = "transpose"

    @staticmethod
    def forward(ctx, a, axes):
        out = a.transpose(axes)   # NumPy validates the permutation
        if axes is None:
            ctx.axes = tuple(reversed(range(a.ndim)))
        else:
            ctx.axes = tuple(int(x) % a.ndim for x in axes)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(tuple(np.argsort(ctx.axes)))


def normalize_index(index):
    """An index with Tensors replaced by their data; lists stay lists (taken by value when
    compiled) and become arrays inside the ops (``as_arrays``)."""
    if isinstance(index, tuple):
        return tuple(_index_part(part) for part in index)
    return _index_part(index)


def _index_part(part):
    """One part of an index, checked: integer or bool arrays (a recorded op copies them)."""
    if isinstance(part, Tensor):
        part = part.data
    if isinstance(part, (list, np.ndarray)) and np.asarray(part).dtype.kind not in "biu" and (
            np.size(part) or isinstance(part, np.ndarray)):
        raise IndexError("tensors used as indices must be integer or bool arrays")
    return part


def as_arrays(index):
    """``index`` with its lists as arrays, as NumPy reads them (``[]`` selects nothing)."""
    if isinstance(index, tuple):
        return tuple(as_arrays(part) for part in index)
    if isinstance(index, list):
        return np.array(index, dtype=np.intp if not index else None)
    return index


def _is_basic(index):
    """True when ``index`` selects each element at most once (no integer arrays)."""
    parts = index if isinstance(index, tuple) else (index,)
    return not any(getattr(p, "ndim", 0) and p.dtype.kind != "b" for p in parts)   # any device


def scatter_array(values, shape, index):
    """Zeros of ``shape`` with ``values`` added at ``index``; repeats accumulate."""
    out = devices.zeros(shape, values.dtype, values)
    if _is_basic(index):
        out[index] = values
    elif type(values) is not np.ndarray:   # on a device: its own scatter, with the index there
        np.add.at(out, _on_device_of(index, values), values)
    elif isinstance(index, np.ndarray) and index.size:   # rows, as embeddings and x[idx] pick
        _add_rows(out, index, values)
    else:
        np.add.at(out, index, values)
    return out


def add_at(out, values, index):
    """``out[index] += values`` in place, repeated indices adding up (``np.add.at``)."""
    if _is_basic(index):
        out[index] += values
    else:
        np.add.at(out, _on_device_of(index, values), values)


def _on_device_of(index, values):
    """``index`` with its arrays moved to where ``values`` live."""
    if isinstance(index, tuple):
        return tuple(_on_device_of(part, values) for part in index)
    return np.asarray(index, like=values) if isinstance(index, np.ndarray) else index


def _add_rows(out, index, values):
    """``np.add.at(out, index, values)`` for one integer array on the first axis, 4-5x faster:
    the rows are sorted by target, then each run is summed at once (``np.add.reduceat``)."""
    rows = np.where(index < 0, index + out.shape[0], index).ravel()
    values = values.reshape((rows.size,) + out.shape[1:])
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    out[rows[starts]] = np.add.reduceat(values[order], starts, axis=0)


class GetItem(Function):
    """NumPy indexing for reading; repeated integer indices accumulate gradient."""

    name = "getitem"

    @staticmethod
    def forward(ctx, a, index):
        ctx.in_shape = a.shape
        ctx.index = index = as_arrays(index)
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        return scatter_add(grad, ctx.in_shape, ctx.index)

    @staticmethod
    def backward_into(ctx, grad, out):
        add_at(out, grad, ctx.index)


class SetItem(Function):
    """``a`` with ``a[index] = value``: the out-of-place heart of ``t[index] = value``."""

    name = "setitem"

    @staticmethod
    def forward(ctx, a, value, index):
        index = as_arrays(index)
        if not _is_basic(index):
            refuse_repeats(_on_device_of(index, a), a, "assignment through repeated indices keeps "
                           "only the last value; its gradient would be ambiguous")
        return written(ctx, a, index, value)

    @staticmethod
    def backward(ctx, grad):
        (kept,) = ctx.saved
        return grad * value_of(kept), grad[ctx.index]


def written(ctx, a, index, value):
    """A copy of ``a`` with ``value`` written at ``index`` (each element at most once); saves
    which elements kept ``a``'s values, the mask ``a``'s gradient passes through (SetItem,
    scatter's "replace")."""
    out = a.copy()
    out[index] = value
    kept = np.ones_like(a, dtype=bool)
    kept[index] = False
    ctx.save_for_backward(kept)
    ctx.index = index
    return out


def refuse_repeats(index, like, message):
    """``ValueError(message)`` when ``index`` selects an element of ``like`` more than once."""
    hits = devices.zeros(like.shape, np.int64, like)
    np.add.at(hits, index, 1)
    if hits.size and hits.max() > 1:   # (CuPy's max takes no initial=)
        raise ValueError(message)


class ScatterAdd(Function):
    """The transpose of indexing; used by ``getitem`` for higher-order gradients."""

    name = "scatter_add"

    @staticmethod
    def forward(ctx, values, shape, index):
        ctx.index = index
        return scatter_array(values, shape, index)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.index]


class BroadcastTo(Function):
    name = "broadcast_to"

    @staticmethod
    def forward(ctx, a, shape):
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad   # the engine sums it back to the input's shape


class AsType(Function):
    name = "astype"

    @staticmethod
    def forward(ctx, a, dtype):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad   # the engine casts it back to the input's dtype


class Concatenate(Function):
    name = "concatenate"

    @staticmethod
    def forward(ctx, *arrays, axis):
        out = np.concatenate(arrays, axis=axis)
        axis = axis % out.ndim
        bounds = np.cumsum([0] + [a.shape[axis] for a in arrays])
        ctx.pieces = [(slice(None),) * axis + (slice(lo, hi),)
                      for lo, hi in zip(bounds[:-1], bounds[1:])]
        return out

    @staticmethod
    def backward(ctx, grad):
        return tuple(grad[piece] for piece in ctx.pieces)


class Stack(Function):
    name = "stack"

    @staticmethod
    def forward(ctx, *arrays, axis):
        out = np.stack(arrays, axis=axis)
        axis = axis % out.ndim
        ctx.pieces = [(slice(None),) * axis + (i,) for i in range(len(arrays))]
        return out

    @staticmethod
    def backward(ctx, grad):
        return tuple(grad[piece] for piece in ctx.pieces)


# ------------------------------------------------------------- for formulas
# Backward formulas get ndarrays, or Tensors under create_graph: these two
# helpers take either and return the same kind.
class Pad(Function):
    """Constant padding, as ``numpy.pad(a, pad_width, constant_values=...)``."""

    name = "pad"

    @staticmethod
    def forward(ctx, a, widths, constant_values):
        ctx.inside = tuple(slice(before, before + n) for (before, _), n in zip(widths, a.shape))
        return np.pad(a, widths, mode="constant", constant_values=constant_values)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.inside]


def _source(mode, n, before, after):
    """For each position of a padded axis, the position of the element it copies."""
    positions = range(-before, n + after)
    if mode == "edge":
        return [min(max(i, 0), n - 1) for i in positions]
    if mode == "wrap":
        return [i % n for i in positions]
    period = 2 * (n - 1)   # reflect: mirrored about the first and last elements
    return [0 if period == 0 else min(i % period, period - i % period) for i in positions]


def _numpy_pad(array, pad_width, mode="constant", **kwargs):
    """``np.pad(t, widths, mode=..., constant_values=...)`` for autonet's modes."""
    if callable(mode) or mode not in ("constant", "reflect", "edge", "wrap"):
        raise TypeError(f"numpy.pad on Tensors takes mode 'constant', 'reflect', 'edge' or 'wrap', "
                        f"not {mode!r}")
    constant_values = kwargs.pop("constant_values", 0)
    refuse_numpy_extras("pad", kwargs)
    return pad(array, pad_width, mode=mode, constant_values=constant_values)


@register("shape", numpy={np.pad: _numpy_pad})
def pad(x: TensorLike, pad_width: int | Sequence[int] | Sequence[Sequence[int]], mode: str = "constant",
        constant_values: float = 0) -> Tensor:
    """Padding as ``numpy.pad``: ``mode`` "constant" (``constant_values``), "reflect" (mirrored,
    edges not repeated), "edge" (edge values repeated) or "wrap" (periodic).

    Coming from PyTorch: ``pad_width`` lists (before, after) per axis from the first axis
    (NumPy's order), and "wrap" is PyTorch's "circular", "edge" its "replicate".
    """
    x = as_tensor(x)
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (x.ndim, 2)).tolist()
    except (ValueError, TypeError):
        raise ValueError(f"pad: pad_width must be a width, a (before, after) pair, or one pair per "
                         f"axis ({x.ndim}), got {pad_width!r}") from None
    if any(w < 0 for pair in widths for w in pair):
        raise ValueError(f"pad: widths must be >= 0, got {pad_width}")
    if mode == "constant":
        return Pad.apply(x, widths=tuple(map(tuple, widths)), constant_values=constant_values)
    if mode not in ("reflect", "edge", "wrap"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'edge' or 'wrap', not {mode!r}")
    if not (isinstance(constant_values, numbers.Number) and constant_values == 0):
        raise ValueError(f"pad: constant_values applies to mode='constant' only, not {mode!r}")
    for axis, (before, after) in enumerate(widths):
        if before or after:
            if x.shape[axis] == 0:
                raise ValueError(f"pad: cannot extend the empty axis {axis} with mode={mode!r} "
                                 f"(only 'constant' can)")
            source = _source(mode, x.shape[axis], before, after)
            x = GetItem.apply(x, index=(slice(None),) * axis + (source,))
    return x


class ToDevice(Function):
    """A copy on another device; the gradient is copied back to where the input lives."""

    name = "to"

    @staticmethod
    def forward(ctx, a, device):
        ctx.source = devices.device_of(a)
        return devices.to_device(a, device)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return ToDevice.apply(grad, device=ctx.source)
        return devices.to_device(grad, ctx.source)


@register("shape", top_level=False)
def to(x: TensorLike, device: str) -> Tensor:
    """``x`` on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``): itself if it is there,
    else a copy in the graph."""
    if isinstance(device, (type, np.dtype)):
        raise TypeError("Tensor.to takes a device; change the dtype with astype(dtype)")
    x = as_tensor(x)
    target = devices.name(device)
    return x if x.device == target else ToDevice.apply(x, device=target)


def expand_to(x, shape):
    """``x`` broadcast to ``shape``; for ndarrays a fresh array (faster than a view here)."""
    if isinstance(x, Tensor):
        return BroadcastTo.apply(x, shape=shape)
    if isinstance(x, np.generic):   # NumPy's result for 0-d arithmetic: a scalar
        x = np.asarray(x)
    out = devices.empty(shape, x.dtype, x)
    out[...] = x
    return out


def scatter_add(x, shape, index):
    """Zeros of ``shape`` with ``x`` added at ``index`` (repeated indices add up)."""
    if isinstance(x, Tensor):
        return ScatterAdd.apply(x, shape=shape, index=index)
    return scatter_array(x, shape, index)


# ------------------------------------------------------------- functions
def _joinable(tensors, op):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: need at least one tensor")
    return tensors


@register("shape", method=None, numpy=np.concatenate, torch="cat")
def concatenate(tensors: Sequence[TensorLike], axis: int | None = 0) -> Tensor:
    """Join tensors along an existing axis, as ``numpy.concatenate`` (``axis=None``: flattened)."""
    tensors = _joinable(tensors, "concatenate")
    if axis is None:
        tensors, axis = [Reshape.apply(t, shape=(-1,)) for t in tensors], 0
    return Concatenate.apply(*tensors, axis=axis)


@register("shape", method=None, numpy=np.stack)
def stack(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    """Join tensors along a new axis, as ``numpy.stack``."""
    return Stack.apply(*_joinable(tensors, "stack"), axis=axis)


@register("shape", method=None, numpy=np.broadcast_to, torch="expand")
def broadcast_to(x: TensorLike, shape: Sequence[SupportsIndex]) -> Tensor:
    """``x`` broadcast to ``shape`` (a read-only view), differentiable."""
    return BroadcastTo.apply(as_tensor(x), shape=tuple(shape))


def _axes(axis, ndim):
    """``axis`` (an int or a sequence) as a tuple of non-negative axes, validated as NumPy does."""
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return tuple(normalize_axis_index(int(a), ndim) for a in axes)


@register("shape", numpy=np.moveaxis, torch="movedim")
def moveaxis(x: TensorLike, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
    """Move axes to new positions, as ``numpy.moveaxis`` (a transpose)."""
    x = as_tensor(x)
    source, destination = _axes(source, x.ndim), _axes(destination, x.ndim)
    if len(source) != len(destination):
        raise ValueError("moveaxis: source and destination need the same number of axes")
    order = [a for a in range(x.ndim) if a not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return Transpose.apply(x, axes=tuple(order))


@register("shape", numpy=np.squeeze)
def squeeze(x: TensorLike, axis: Axis = None) -> Tensor:
    """Drop axes of length one (all of them, or those in ``axis``), as ``numpy.squeeze``."""
    x = as_tensor(x)
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = _axes(axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: cannot select axis {a} of length {x.shape[a]}, only length 1")
    return Reshape.apply(x, shape=tuple(n for i, n in enumerate(x.shape) if i not in axes))


@register("shape", numpy=np.expand_dims, torch="unsqueeze")
def expand_dims(x: TensorLike, axis: int | tuple[int, ...]) -> Tensor:
    """Insert axes of length one at ``axis``, as ``numpy.expand_dims``."""
    x = as_tensor(x)
    ndim = x.ndim + (1 if np.ndim(axis) == 0 else len(axis))  # type: ignore[arg-type]
    axes = _axes(axis, ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"expand_dims: repeated axis in {axis}")
    sizes = iter(x.shape)
    return Reshape.apply(x, shape=tuple(1 if i in axes else next(sizes) for i in range(ndim)))


@register("shape", numpy=np.repeat, torch="repeat_interleave")
def repeat(x: TensorLike, repeats: int | Sequence[int], axis: int | None = None) -> Tensor:
    """Repeat elements, as ``numpy.repeat``: an indexing op, so gradients add up per source.

    A 0-d tensor repeats as a 1-d one along ``axis`` 0 or -1, as NumPy's (coming from
    PyTorch: its ``repeat_interleave`` refuses a ``dim`` there).
    """
    x = as_tensor(x)
    if axis is None or x.ndim == 0:   # NumPy repeats a 0-d array as a 1-d one, along axis 0 or -1
        x, axis = Reshape.apply(x, shape=(-1,)), 0 if axis is None else axis
    axis = _axes(axis, x.ndim)[0]
    source = np.repeat(np.arange(x.shape[axis]), repeats).tolist()   # a list: compile takes it by value
    return GetItem.apply(x, index=(slice(None),) * axis + (source,))


def _varargs(args):
    """Accept ``f(1, 2)`` and ``f((1, 2))`` alike."""
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        return tuple(args[0]) if args[0] is not None else ()
    return tuple(args)


def _numpy_reshape(a, shape_=None, order="C", *, copy=None, **rest):
    """``np.reshape(t, shape)`` (C order only)."""
    new_shape = rest.pop("shape", shape_)
    refuse_numpy_extras("reshape", rest)
    if order != "C" or copy is False:
        raise TypeError("numpy.reshape on Tensors supports order='C' only")
    return reshape(as_tensor(a), new_shape)


@register("shape", top_level=False, numpy={np.reshape: _numpy_reshape}, torch="view")
def reshape(x: TensorLike, *shape: SupportsIndex | Sequence[SupportsIndex]) -> Tensor:
    """``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; one axis may be -1."""
    if not shape:
        raise TypeError("reshape() needs a shape: t.reshape(2, 3) or t.reshape((2, 3))")
    return Reshape.apply(x, shape=_varargs(shape))


def _numpy_transpose(a, axes=None):
    """``np.transpose(t, axes)``."""
    return transpose(as_tensor(a), axes)


@register("shape", top_level=False, numpy={np.transpose: _numpy_transpose}, torch="permute")
def transpose(x: TensorLike, *axes: SupportsIndex | Sequence[SupportsIndex] | None) -> Tensor:
    """Reverse the axes, or permute them as given (varargs or one tuple), as NumPy's.

    Coming from PyTorch: ``t.transpose(a, b)`` swapping two axes is ``swapaxes(a, b)``; a
    two-axis call that is not a full permutation, or the identity ``(0, 1)`` on a 2-D tensor,
    raises ``ValueError`` saying so rather than meaning something else.
    """
    if len(axes) == 2 and all(isinstance(a, numbers.Integral) for a in axes):
        _refuse_pytorch_transpose(x, *axes)
    return Transpose.apply(x, axes=_varargs(axes) or None)


def _refuse_pytorch_transpose(x, a, b):
    permutation = x.ndim == 2 and {a % 2, b % 2} == {0, 1} and -2 <= min(a, b) and max(a, b) < 2
    if not permutation or (a % 2, b % 2) == (0, 1):
        raise ValueError(f"transpose({a}, {b}) of a {x.ndim}-d tensor: NumPy's transpose takes a "
                         f"full permutation of the axes; to swap two axes (PyTorch's transpose) "
                         f"use swapaxes({a}, {b})")


@register("shape", top_level=False, numpy=np.swapaxes)
def swapaxes(x: TensorLike, axis1: int, axis2: int) -> Tensor:
    """Interchange two axes, as ``numpy.swapaxes`` (PyTorch's two-axis ``transpose``)."""
    x = as_tensor(x)
    first, second = (normalize_axis_index(operator.index(a), x.ndim) for a in (axis1, axis2))
    axes = list(range(x.ndim))
    axes[first], axes[second] = axes[second], axes[first]
    return Transpose.apply(x, axes=tuple(axes))


@register("shape", top_level=False)
def astype(x: TensorLike, dtype: DTypeLike) -> Tensor:
    """A cast; differentiable to another float dtype, a constant to int or bool (as PyTorch)."""
    dtype = np.dtype(dtype)
    check_kind(dtype)
    if dtype.kind != "f":
        return Tensor(x, dtype=dtype)   # a copy, as astype; compile records it as such
    return AsType.apply(x, dtype=dtype)


def _numpy_copy(a, order="K", subok=False):
    """``np.copy(t)``: a differentiable copy."""
    if order not in ("K", "A", "C", "F"):
        raise TypeError(f"numpy.copy: order must be 'K', 'A', 'C' or 'F', not {order!r}")
    return copy(a)


@register("shape", top_level=False, numpy={np.copy: _numpy_copy}, torch="clone")
def copy(x: TensorLike) -> Tensor:
    """A copy in the graph (its gradient passes through unchanged)."""
    return as_tensor(x) * 1


@register("shape", method=None, top_level=False, operators=("__getitem__",))
def getitem(x: TensorLike, index: Index) -> Tensor:
    """``t[index]``: slices, integer arrays (repeats accumulate), bool masks, None, ``...``."""
    return GetItem.apply(x, index=normalize_index(index))


@register("shape", method=None, top_level=False, operators=("__setitem__",))
def setitem(x: Tensor, index: Index, value: TensorLike) -> None:
    """``t[index] = value``, recorded as an op when gradients flow (see ``apply_in_place``)."""
    apply_in_place(x, SetItem, value, index=normalize_index(index))
