"""numba helpers that fused kernels call: NumPy operations numba lacks or computes otherwise
(sums accurate in float32, extremes along one axis, matrix products by size), and the
lowerings of ``ops.generic``'s lowerable primitives (imported with numba only).

Every helper is an overload (``overload``, ``register_jitable``), compiled into each kernel
that calls it, never a ``numba.njit`` dispatcher of its own: numba lowers a call of a dispatcher
with the dispatcher's address in the kernel, which LLVM's optimiser drops as unused but which,
unoptimised (``NUMBA_OPT=0``), stays and makes numba refuse to cache the kernel on disk
("uses dynamic globals")."""
import numpy as np
from numba import types
from numba.extending import overload, register_jitable

SMALL_PRODUCT = 512
"""Matrix products of at most this many multiply-adds run as loops, where BLAS's call costs
more than the arithmetic (measured: loops 0.17 us against BLAS 0.33 us at 4x4x4, even at 8x8x8,
BLAS ahead from 16x16x16 on)."""


def blas_ready(a):
    """``a`` itself if BLAS can read it (C or Fortran order: a transpose is), else a C copy."""
    raise TypeError("blas_ready is called from numba kernels only")


@overload(blas_ready)
def _blas_ready(a):
    if a.layout in "CF":   # decided by the array's type, when numba compiles the kernel
        return lambda a: a
    return lambda a: np.ascontiguousarray(a)


def summed(a, axis):
    """``np.sum(a, axis=axis)`` (``axis`` None: everything) as NumPy's own is accurate: numba adds
    float32 arrays one element at a time in float32, which drifts (a million 0.1s sum to
    100958), so those are summed in float64 and rounded once."""
    raise TypeError("summed is called from numba kernels only")


@overload(summed)
def _summed(a, axis):
    if isinstance(a, types.Number):
        return lambda a, axis: a
    whole = axis is None or isinstance(axis, types.NoneType)
    if a.dtype == types.float32:
        if whole:
            return lambda a, axis: np.float32(np.sum(a.astype(np.float64)))
        return lambda a, axis: np.sum(a.astype(np.float64), axis=axis).astype(np.float32)
    if whole:
        return lambda a, axis: np.sum(a)
    return lambda a, axis: np.sum(a, axis=axis)


@register_jitable
def dot(a, b):
    """``a @ b`` of 2-d arrays: loops for small products, numba's BLAS for larger ones (see
    SMALL_PRODUCT; the largest leave the kernel, see ``symbolic.LARGE_PRODUCT``)."""
    rows, inner = a.shape
    columns = b.shape[1]
    if rows * inner * columns > SMALL_PRODUCT:
        return np.dot(blas_ready(a), blas_ready(b))
    out = np.zeros((rows, columns), a.dtype)
    for i in range(rows):
        for k in range(inner):
            x = a[i, k]
            for j in range(columns):
                out[i, j] += x * b[k, j]
    return out


def maxed(a, axis):
    """``np.max(a, axis=axis)`` (``axis`` None: everything), which numba lacks for one axis."""
    raise TypeError("maxed is called from numba kernels only")


def mined(a, axis):
    """``np.min(a, axis=axis)`` (``axis`` None: everything)."""
    raise TypeError("mined is called from numba kernels only")


def _extreme(pick):
    """An overload of ``maxed`` / ``mined``: ``pick`` chooses between two values (NaN wins, as
    in NumPy's max)."""
    def overload_extreme(a, axis):
        if isinstance(a, types.Number):
            return lambda a, axis: a
        if axis is None or isinstance(axis, types.NoneType):
            def whole(a, axis):
                flat = a.reshape(-1) if a.flags.c_contiguous else a.copy().reshape(-1)
                best = flat[0]
                for value in flat[1:]:
                    best = pick(best, value)
                return best
            return whole

        def along(a, axis):   # 2-d arrays (symbolic.py lowers no other)
            rows, columns = a.shape
            if axis == 0:
                out = a[0].copy()
                for i in range(1, rows):
                    for j in range(columns):
                        out[j] = pick(out[j], a[i, j])
                return out
            out = a[:, 0].copy()
            for i in range(rows):
                for j in range(1, columns):
                    out[i] = pick(out[i], a[i, j])
            return out
        return along
    return overload_extreme


@register_jitable
def _larger(x, y):
    return x if x > y or x != x else y   # x != x: NaN propagates


@register_jitable
def _smaller(x, y):
    return x if x < y or x != x else y


overload(maxed)(_extreme(_larger))
overload(mined)(_extreme(_smaller))


@register_jitable
def check_labels(labels, classes, op):
    """``ops.generic.check_labels``: the labels if they lie in ``[0, classes)``."""
    for label in labels.ravel():
        if label < 0 or label >= classes:
            raise ValueError("labels must lie in [0, classes): one is outside")
    return labels


@register_jitable
def pick(x, labels):
    """``ops.generic.pick``: ``x[i, labels[i]]`` for every row."""
    out = np.empty(labels.shape[0], x.dtype)
    for i in range(labels.shape[0]):
        out[i] = x[i, labels[i]]
    return out


@register_jitable
def one_hot(labels, like):
    """``ops.generic.one_hot``: zeros like ``like`` with a 1 at ``[i, labels[i]]``."""
    out = np.zeros_like(like)
    for i in range(labels.shape[0]):
        out[i, labels[i]] = 1
    return out
