"""Tensors filled with zeros or ones."""
import numpy as np

from ..core.tensor import Tensor


def _filled(fill, shape, dtype, requires_grad):
    dtype = np.float64 if dtype is None else dtype
    return Tensor(fill(shape, dtype=dtype), requires_grad=requires_grad)


def zeros(shape, dtype=None, requires_grad=False):
    """A tensor of zeros (float64 unless ``dtype``)."""
    return _filled(np.zeros, shape, dtype, requires_grad)


def ones(shape, dtype=None, requires_grad=False):
    """A tensor of ones (float64 unless ``dtype``)."""
    return _filled(np.ones, shape, dtype, requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    """Zeros with the shape (and, unless ``dtype``, the dtype) of ``t``."""
    return _filled(np.zeros, np.shape(t), dtype or _dtype_of(t), requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    """Ones with the shape (and, unless ``dtype``, the dtype) of ``t``."""
    return _filled(np.ones, np.shape(t), dtype or _dtype_of(t), requires_grad)


def _dtype_of(t):
    dtype = t.dtype if isinstance(t, Tensor) else np.asarray(t).dtype
    return dtype if dtype.kind == "f" else np.float64
