"""Resizing: ``interpolate`` (nearest, linear, bilinear) and adaptive pooling, PyTorch's rules.

Each works one spatial axis at a time (bilinear interpolation and rectangular
pooling windows are separable): picks along an axis are indexing with Python
lists, interpolation weights and pooling matrices are constants made inside an op
(:mod:`.constants`), so a compiled step makes them again, on the input's device. Everything is linear in
the input (or a selection of it), hence differentiable to any order.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.tensor import Tensor, TensorLike, as_tensor
from ..ops.shape import stack
from ..ops.windows import MaxLast
from .constants import constant_like
from ..core.types import IntOrTuple

_MODES = {"nearest": (3, 4), "linear": (3,), "bilinear": (4,)}


def _spatial(value, count, name, kinds):
    """``value`` (one or ``count`` numbers of ``kinds``) as a tuple of ``count``; a float size or
    a bool is refused, as PyTorch's ``TypeError`` (``int()`` would drop a fraction silently)."""
    values = (value,) * count if np.ndim(value) == 0 else tuple(value)
    if len(values) != count:
        raise ValueError(f"interpolate: {name} must be one number or {count}, not {value!r}")
    if not all(isinstance(v, kinds) and not isinstance(v, (bool, np.bool_)) for v in values):
        raise TypeError(f"interpolate: {name} must hold {'ints' if kinds is _INTS else 'numbers'}, "
                        f"not {value!r}")
    return tuple(int(v) if kinds is _INTS else float(v) for v in values)


_INTS = (int, np.integer)


def interpolate(input: TensorLike, size: IntOrTuple | None = None,  # noqa: A002
                scale_factor: float | tuple[float, ...] | None=None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """Resize ``(N, C, L)`` or ``(N, C, H, W)`` to ``size`` or by ``scale_factor``, as
    ``torch.nn.functional.interpolate``: ``nearest`` picks ``floor(i * scale)`` (in float32, as
    PyTorch); ``linear``/``bilinear`` interpolate between the two nearest samples, at half-pixel
    centres, or at the corners with ``align_corners=True``.

    >>> import numpy as np, autonet.nn.functional as F
    >>> F.interpolate(np.array([[[0.0, 1.0]]]), scale_factor=2, mode="linear").data
    array([[[0.  , 0.25, 0.75, 1.  ]]])
    """
    x = as_tensor(input)
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode must be one of {sorted(_MODES)}, not {mode!r}")
    if x.ndim not in _MODES[mode]:
        raise ValueError(f"interpolate: mode {mode!r} takes inputs of {' or '.join(map(str, _MODES[mode]))} "
                         f"axes (N, C, ...), not {x.shape}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor, not "
                         + ("both" if size is not None else "neither"))
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners is for the 'linear' and 'bilinear' modes; "
                         "leave it None with 'nearest'")
    count = x.ndim - 2
    if 0 in x.shape[2:]:
        raise ValueError(f"interpolate: the input {x.shape} has an empty spatial axis; there is "
                         f"nothing to resize")
    scales: tuple[float | None, ...] = (None,) * count
    if scale_factor is None:
        sizes = _spatial(size, count, "size", _INTS)
    else:
        factors = _spatial(scale_factor, count, "scale_factor", (int, float, np.integer, np.floating))
        if not all(0 < s < math.inf for s in factors):
            raise ValueError(f"interpolate: scale_factor must be positive and finite, not {scale_factor!r}")
        scales, sizes = factors, tuple(math.floor(n * s) for n, s in zip(x.shape[2:], factors))
    if min(sizes) < 1:
        raise ValueError(f"interpolate: the output size must be positive, not {sizes} "
                         f"(size={size}, scale_factor={scale_factor})")
    for axis, (out_size, scale) in enumerate(zip(sizes, scales)):
        axis = axis + 2 - x.ndim   # a negative axis: -2 then -1, or -1
        if mode == "nearest":
            x = _take(x, _nearest(x.shape[axis], out_size, scale), axis)
        else:
            x = _linear(x, axis, out_size, scale, bool(align_corners))
    return x


def _take(x, indices, axis):
    return x[(Ellipsis, indices) + (slice(None),) * (-1 - axis)]


def _nearest(in_size, out_size, scale):
    """PyTorch's nearest_idx, in float32 arithmetic as its CPU kernel."""
    if out_size == in_size:
        return list(range(out_size))
    step = np.float32(1.0 / scale) if scale is not None else np.float32(in_size) / np.float32(out_size)
    return [min(int(np.floor(np.float32(i) * step)), in_size - 1) for i in range(out_size)]


def _linear(x, axis, out_size, scale, align_corners):
    """Linear interpolation along ``axis`` (PyTorch's area_pixel_compute_source_index)."""
    in_size = x.shape[axis]
    if align_corners:
        step = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        step = 1.0 / scale if scale is not None else in_size / out_size
    low, high, upper = [], [], []
    for i in range(out_size):
        source = step * i if align_corners else max(step * (i + 0.5) - 0.5, 0.0)
        first = int(source)
        low.append(first)
        high.append(first + 1 if first < in_size - 1 else first)
        upper.append(min(max(source - first, 0.0), 1.0))
    shape = (out_size,) + (1,) * (-1 - axis)
    weight = constant_like(x, upper).reshape(shape)
    return _take(x, low, axis) * (1.0 - weight) + _take(x, high, axis) * weight


class _Windows:
    """PyTorch's adaptive windows along one axis: ``[floor(i n / m), ceil((i + 1) n / m))``."""

    def __init__(self, in_size, out_size):
        self.bounds = [(i * in_size // out_size, -(-(i + 1) * in_size // out_size)) for i in range(out_size)]
        self.in_size = in_size


def _adaptive(x, output_size, count, op, reduce):
    x = as_tensor(x)
    if x.ndim not in (count + 1, count + 2):
        raise ValueError(f"{op}: input must have {count + 1} or {count + 2} axes ((N,) C, ...), not {x.shape}")
    sizes = (output_size,) * count if np.ndim(output_size) == 0 else tuple(output_size)
    if len(sizes) != count:
        raise ValueError(f"{op}: output_size must be one int or {count}, not {output_size!r}")
    if 0 in x.shape[x.ndim - count:]:
        raise ValueError(f"{op}: the input {x.shape} has an empty spatial axis; a window needs at "
                         f"least one element")
    sizes = tuple(x.shape[x.ndim - count + k] if s is None else s for k, s in enumerate(sizes))
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise ValueError(f"{op}: output_size must hold positive ints (or None), not {output_size!r}")
    for k in reversed(range(count)):   # the last axis first: row-major ties, as PyTorch
        axis = k - count
        x = reduce(x, axis, _Windows(x.shape[axis], int(sizes[k])))
    return x


def _average_along(x, axis, windows):
    """Window means along ``axis`` as one product with a constant averaging matrix."""
    matrix = np.zeros((windows.in_size, len(windows.bounds)))
    for i, (start, end) in enumerate(windows.bounds):
        matrix[start:end, i] = 1.0 / (end - start)
    matrix = constant_like(x, matrix.tolist())
    return x @ matrix if axis == -1 else (x.swapaxes(axis, -1) @ matrix).swapaxes(axis, -1)


def _maximum_along(x, axis, windows):
    """Window maxima along ``axis``; the gradient goes to each window's first maximum (PyTorch's)."""
    moved = x if axis == -1 else x.swapaxes(axis, -1)
    out = stack([MaxLast.apply(moved[..., start:end]) for start, end in windows.bounds], axis=-1)
    return out if axis == -1 else out.swapaxes(axis, -1)


def adaptive_avg_pool1d(input: TensorLike, output_size: IntOrTuple) -> Tensor:  # noqa: A002
    """Mean over PyTorch's adaptive windows of ``(N, C, L)`` (or ``(C, L)``)."""
    return _adaptive(input, output_size, 1, "adaptive_avg_pool1d", _average_along)


def adaptive_avg_pool2d(input: TensorLike, output_size: IntOrTuple) -> Tensor:  # noqa: A002
    """Mean over PyTorch's adaptive windows of ``(N, C, H, W)`` (or ``(C, H, W)``).

    >>> import numpy as np, autonet.nn.functional as F
    >>> F.adaptive_avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 1).data
    array([[[[7.5]]]])
    """
    return _adaptive(input, output_size, 2, "adaptive_avg_pool2d", _average_along)


def adaptive_max_pool1d(input: TensorLike, output_size: IntOrTuple) -> Tensor:  # noqa: A002
    """Maximum over PyTorch's adaptive windows of ``(N, C, L)`` (or ``(C, L)``)."""
    return _adaptive(input, output_size, 1, "adaptive_max_pool1d", _maximum_along)


def adaptive_max_pool2d(input: TensorLike, output_size: IntOrTuple) -> Tensor:  # noqa: A002
    """Maximum over PyTorch's adaptive windows of ``(N, C, H, W)``; rectangles are separable, so
    along each row, then down the columns (the first maximum in row-major order gets the
    gradient, as PyTorch)."""
    return _adaptive(input, output_size, 2, "adaptive_max_pool2d", _maximum_along)
