"""Tensors made from shapes: zeros, ones, full, empty, arange, linspace, eye, and the ``_like``
forms (float64 unless told; every ``dtype=`` is honoured, integer and bool included).

They are also static methods of Tensor (``Tensor.eye(2)``), as NumPy-style namespaces offer."""
from __future__ import annotations

import numbers

import numpy as np

from ..core.state import constructed
from ..core.tensor import Tensor, TensorLike
from .registry import register
from ..core.types import DTypeLike, ShapeLike


def _filled(fill, shape, dtype, requires_grad):
    """``fill(shape, dtype)`` as a Tensor of exactly ``dtype`` (float64 when None)."""
    if isinstance(dtype, numbers.Integral) and not isinstance(dtype, bool):
        raise TypeError(f"pass the shape as one tuple, ({shape}, {dtype}), not as separate "
                        f"arguments {shape}, {dtype} (the second argument is the dtype)")
    dtype = np.float64 if dtype is None else dtype
    return Tensor(constructed(fill(shape, dtype=dtype), fill, shape, dtype), dtype=dtype,
                  requires_grad=requires_grad)


@register("constructor")
def zeros(shape: ShapeLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float64 unless ``dtype``)."""
    return _filled(np.zeros, shape, dtype, requires_grad)


@register("constructor")
def ones(shape: ShapeLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float64 unless ``dtype``)."""
    return _filled(np.ones, shape, dtype, requires_grad)


@register("constructor", method=None)
def zeros_like(t: TensorLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and, unless ``dtype``, the dtype) of ``t``."""
    return _filled(np.zeros, np.shape(t), dtype or _dtype_of(t), requires_grad)


@register("constructor", method=None)
def ones_like(t: TensorLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and, unless ``dtype``, the dtype) of ``t``."""
    return _filled(np.ones, np.shape(t), dtype or _dtype_of(t), requires_grad)


def _dtype_of(t):
    dtype = t.dtype if isinstance(t, Tensor) else np.asarray(t).dtype
    return dtype if dtype.kind == "f" else np.float64


@register("constructor")
def empty(shape: ShapeLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros, as ``zeros``: autonet never exposes uninitialised memory.

    Coming from NumPy: ``numpy.empty`` leaves the values unspecified; here they are 0.
    """
    return _filled(np.zeros, shape, dtype, requires_grad)


@register("constructor", method=None)
def empty_like(t: TensorLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    """Zeros shaped as ``t``, as ``zeros_like``: autonet never exposes uninitialised memory."""
    return _filled(np.zeros, np.shape(t), dtype or _dtype_of(t), requires_grad)


@register("constructor", method=None)
def full_like(x: TensorLike, value: float, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    """``value`` everywhere, shaped as ``x`` (and, unless ``dtype``, of its float dtype)."""
    return _filled(lambda shape, dtype: np.full(shape, value, dtype=dtype), np.shape(x),
                   dtype or _dtype_of(x), requires_grad)


@register("constructor")
def full(shape: ShapeLike, fill_value: float, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``fill_value``."""
    return _filled(lambda shape, dtype: constructed(np.full(shape, fill_value, dtype=dtype), fill_value),
                   shape, dtype, requires_grad)


@register("constructor")
def arange(start: float, stop: float | None = None, step: float = 1, dtype: DTypeLike = None,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, stop), as ``numpy.arange`` (float64 unless ``dtype``)."""
    return Tensor(constructed(np.arange(start, stop, step), start, stop, step), dtype=dtype or np.float64, requires_grad=requires_grad)


@register("constructor")
def linspace(start: float, stop: float, num: int = 50, endpoint: bool = True, dtype: DTypeLike = None,
             requires_grad: bool = False) -> Tensor:
    """``num`` evenly spaced values from start to stop, as ``numpy.linspace``."""
    return Tensor(constructed(np.linspace(start, stop, num, endpoint=endpoint), start, stop, num),
                  dtype=dtype or np.float64,
                  requires_grad=requires_grad)


@register("constructor")
def eye(N: int, M: int | None = None, k: int = 0, dtype: DTypeLike = None,  # noqa: N803 - numpy's names
        requires_grad: bool = False) -> Tensor:
    """Ones on the ``k``-th diagonal, as ``numpy.eye``."""
    return _filled(lambda shape, dtype: constructed(np.eye(N, M, k, dtype=dtype), N, M, k), None,
                   dtype, requires_grad)
