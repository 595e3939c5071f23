"""numba kernels that fused programs call for ops written as loops (imported with numba only)."""
import numba
import numpy as np
from numba import types
from numba.extending import overload

LARGE_PRODUCT = 2 ** 22
"""Matrix products of more multiply-adds than this leave the kernel for NumPy's own matmul (about
5 us there and back): numba calls scipy's BLAS, measured 3-7% slower than NumPy's on such
products (512x1024x1024 float32: 16.0 against 14.9 ms, one thread), and slower still when both
libraries start threads."""

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


@numba.njit(cache=True)
def sgd_step(param, grad, lr):
    """``param -= lr * grad`` in one pass, rounded as NumPy rounds the two operations."""
    _subtract_scaled(param, grad, lr)


def _subtract_scaled(param, grad, lr):
    raise TypeError("_subtract_scaled is called from numba kernels only")


@overload(_subtract_scaled)
def _subtract_scaled_loop(param, grad, lr):
    if param.layout == "C" and grad.layout == "C":   # one flat loop, which LLVM vectorises
        def flat(param, grad, lr):
            p, g = param.reshape(-1), grad.reshape(-1)
            for i in range(p.size):
                p[i] -= lr * g[i]
        return flat

    def strided(param, grad, lr):
        for index in np.ndindex(param.shape):
            param[index] -= lr * grad[index]
    return strided


def numpy_matmul(a, b):
    """``a @ b`` computed by NumPy, in Python (numba's object mode), from inside a kernel."""
    raise TypeError("numpy_matmul is called from numba kernels only")


@overload(numpy_matmul)
def _numpy_matmul(a, b):
    result = types.Array(numba.np.numpy_support.from_dtype(
        np.result_type(numba.np.numpy_support.as_dtype(a.dtype),
                       numba.np.numpy_support.as_dtype(b.dtype))), 2, "C")

    def impl(a, b):
        with numba.objmode(out=result):
            out = np.ascontiguousarray(a @ b)
        return out
    return impl


@numba.njit(cache=True)
def dot(a, b):
    """``a @ b`` of 2-d arrays: loops for small products, NumPy for large ones, numba's BLAS
    between (see SMALL_PRODUCT and LARGE_PRODUCT)."""
    rows, inner = a.shape
    columns = b.shape[1]
    if rows * inner * columns > LARGE_PRODUCT:
        return numpy_matmul(a, b)
    if rows * inner * columns > SMALL_PRODUCT:
        return np.dot(blas_ready(a), blas_ready(b))
    out = np.zeros((rows, columns), a.dtype)
    for i in range(rows):
        for k in range(inner):
            x = a[i, k]
            for j in range(columns):
                out[i, j] += x * b[k, j]
    return out


@numba.njit(cache=True)
def ce_forward(logits, labels):
    """Softmax cross-entropy per row and the softmax, as ``nn.functional.CrossEntropy``."""
    rows, classes = logits.shape
    losses = np.empty(rows)
    probabilities = np.empty_like(logits)
    for i in range(rows):
        label = labels[i]
        if label < 0 or label >= classes:   # eager mode's check, on every call
            raise ValueError("cross_entropy: labels must lie in [0, classes)")
        top = logits[i].max()
        total = 0.0
        for j in range(classes):
            probabilities[i, j] = np.exp(logits[i, j] - top)
            total += probabilities[i, j]
        for j in range(classes):
            probabilities[i, j] /= total
        losses[i] = np.log(total) - (logits[i, label] - top)
    return losses, probabilities


@numba.njit(cache=True)
def ce_backward(grad, probabilities, labels):
    """``grad[:, None] * (softmax - one_hot(labels))``."""
    out = probabilities.copy()
    for i in range(out.shape[0]):
        out[i, labels[i]] -= 1.0
    for i in range(out.shape[0]):
        out[i] *= grad[i]
    return out


@numba.njit(cache=True)
def linear(x, weight, bias):
    """``x @ weight + bias``, the bias added in place, as ``nn.functional.linear`` adds it."""
    out = dot(x, weight)
    out += bias
    return out
