"""Generic helpers for backward formulas: an ndarray or a Tensor in, the same kind out.

Backward formulas receive ndarrays normally and Tensors under
``create_graph=True``; these few helpers cover what the two types do not
already share through operators and methods.
"""
import functools

import numpy as np

from ..core import device as devices
from ..core.function import OpRefusal
from ..core.tensor import Tensor, value_of as value  # noqa: F401 - the ndarray behind x: for masks and signs


def exp(x):
    return x.exp() if isinstance(x, Tensor) else np.exp(x)


def log(x):
    return x.log() if isinstance(x, Tensor) else np.log(x)


def sigmoid(x):
    return x.sigmoid() if isinstance(x, Tensor) else stable_sigmoid(x)


def stable_sigmoid(x, out=None):
    """1 / (1 + exp(-x)), PyTorch's formula, with exp's overflow silenced.

    Below x = -709 (-88 in float32) exp(-x) overflows to inf, so the result is
    exactly 0 (and above the mirror threshold exactly 1), and the gradient
    there is exactly 0; nothing warns. A few ulp from the exact value
    everywhere (no cancellation: 1 + exp(-x) >= 1). Four passes over one
    array: ~10x faster than a logaddexp form on large arrays. Below
    ``SMALL_SIGMOID`` elements the logaddexp form (:func:`_small_sigmoid`), which
    needs no error state, costs half as much. ``out``: an ndarray to write into
    (``x`` itself allowed).
    """
    if getattr(x, "size", 1) < SMALL_SIGMOID:
        return _small_sigmoid(x, out)
    given = out
    out = np.negative(x, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    if isinstance(out, np.ndarray):
        return np.divide(1, out, out=out)
    out = 1 / out   # a device's array, or a fused kernel's symbolic one (no out= there)
    if given is not None:
        given[...] = out
        return given
    return out


SMALL_SIGMOID = 256
"""Measured (one thread): 8 elements 1.6 us (logaddexp form) against 4.1 us, 256 elements 6.7
against 4.5 us, 4096 elements 84 against 13 us."""


def _small_sigmoid(x, out):
    """exp(-log(1 + exp(-x))), with NumPy's stable logaddexp: nothing overflows, so nothing
    warns; at x = -1000 the result underflows to exactly 0 (at +1000 exactly 1). Within 4e-15
    relative of the exact value, as the large-array form is."""
    out = np.negative(x, out=out)
    if isinstance(out, np.generic):   # 0-d input: NumPy returned a scalar
        out = np.asarray(out)
    np.logaddexp(0.0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


# ------------------------------------------------------------------ lowerable primitives
def lowerable(function):
    """Mark a NumPy-level helper that a fused kernel runs as one helper of the same name.

    Formulas are run on symbolic arrays to write fused kernels (see
    ``autonet.compiler.symbolic``); what numba cannot write from NumPy calls
    (advanced indexing, a check that raises) is one of these small helpers.
    Given an argument whose type has ``__lower__`` (a symbolic array), the call
    is handed to it; otherwise the helper runs as written.
    """
    name = function.__name__

    @functools.wraps(function)
    def helper(*args):
        for arg in args:
            lower = getattr(type(arg), "__lower__", None)
            if lower is not None:
                return lower(arg, name, function, args)
        return function(*args)
    return helper


@lowerable
def check_labels(labels, classes, op):
    """``labels`` if every one lies in ``[0, classes)``, else ``ValueError`` naming ``op``."""
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise OpRefusal(f"{op}: labels must lie in [0, {classes}), got {labels.min()}..{labels.max()}")
    return labels


@lowerable
def pick(x, labels):
    """``x[i, labels[i]]`` for every row ``i`` of a 2-d ``x``."""
    return x[devices.arange(len(labels), labels), labels]


@lowerable
def one_hot(labels, like):
    """Zeros shaped and typed as ``like`` with a 1 at ``[i, labels[i]]`` in every row."""
    out = np.zeros_like(like)
    out[devices.arange(len(labels), labels), labels] = 1.0
    return out


def channel_sums(values):
    """The sums of ``(N, C, ...)`` over every axis but 1, kept as ``(1, C, 1, ...)``, for arrays
    and Tensors: over the batch first (whole rows added), then over each channel's contiguous
    positions. NumPy's one reduction over axes ``(0, 2, 3)`` takes 3-6x as long."""
    channels = values.shape[1]
    if isinstance(values, Tensor):
        per_channel = values.sum(axis=0).reshape(channels, -1).sum(axis=1)
    else:   # float16 adds up in float32, as NumPy's mean does (a channel's sum passes 65504)
        wide = np.promote_types(values.dtype, np.float32)
        per_channel = values.sum(axis=0, dtype=wide).reshape(channels, -1).sum(axis=1)
    return per_channel.reshape((1, channels) + (1,) * (values.ndim - 2))


def add_in_place(out, values):
    """``out + values`` for an ndarray ``out`` this formula made, in place when that keeps its
    dtype and shape (the same bits, one full-size array less)."""
    if np.result_type(out.dtype, values.dtype) != out.dtype or np.broadcast_shapes(out.shape, values.shape) != out.shape:
        return out + values
    out += values
    return out
