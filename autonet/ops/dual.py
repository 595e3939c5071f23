"""Helpers that accept an ndarray or a Tensor and return the same kind.

Backward formulas receive ndarrays normally and Tensors under
``create_graph=True``; these few helpers cover what the two types do not
already share through operators and methods.
"""
import numpy as np

from ..core.tensor import Tensor


def value(x):
    """The ndarray behind ``x``: for masks and signs, which are constants."""
    return x.data if isinstance(x, Tensor) else x


def exp(x):
    return x.exp() if isinstance(x, Tensor) else np.exp(x)


def log(x):
    return x.log() if isinstance(x, Tensor) else np.log(x)


def sigmoid(x):
    return x.sigmoid() if isinstance(x, Tensor) else stable_sigmoid(x)


def stable_sigmoid(x):
    """1 / (1 + exp(-x)) as exp(-log(1 + exp(-x))), with NumPy's stable logaddexp.

    Nothing overflows, so nothing warns; at x = -1000 the result underflows to
    exactly 0 (and at +1000 it is exactly 1), so the gradient there is exactly
    0. Within 4e-15 relative of the exact value; 4 NumPy calls, one array.
    """
    out = np.negative(x)
    if isinstance(out, np.generic):   # 0-d input: NumPy returned a scalar
        out = np.asarray(out)
    np.logaddexp(0.0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)
