"""Helpers that accept an ndarray or a Tensor and return the same kind.

Backward formulas receive ndarrays normally and Tensors under
``create_graph=True``; these few helpers cover what the two types do not
already share through operators and methods.
"""
import numpy as np

from ..tensor import Tensor
from . import elementwise, shape as shape_ops


def value(x):
    """The ndarray behind ``x``: for masks and signs, which are constants."""
    return x.data if isinstance(x, Tensor) else x


def exp(x):
    return x.exp() if isinstance(x, Tensor) else np.exp(x)


def log(x):
    return x.log() if isinstance(x, Tensor) else np.log(x)


def sigmoid(x):
    return x.sigmoid() if isinstance(x, Tensor) else elementwise.stable_sigmoid(x)


def broadcast_to(x, shape):
    """``x`` broadcast to ``shape``; for ndarrays a fresh array (faster than a view here)."""
    if isinstance(x, Tensor):
        return shape_ops.broadcast_to(x, shape)
    out = np.empty(shape, dtype=x.dtype)
    out[...] = x
    return out


def scatter_add(x, shape, index):
    """Zeros of ``shape`` with ``x`` added at ``index`` (repeated indices add up)."""
    if isinstance(x, Tensor):
        return shape_ops.ScatterAdd.apply(x, shape=shape, index=index)
    return shape_ops.scatter_array(x, shape, index)
