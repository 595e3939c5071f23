"""numba kernels that fused programs call for ops written as loops (imported with numba only)."""
import numba
import numpy as np
from numba.extending import overload

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


@numba.njit(cache=True)
def sgd_step(param, grad, lr):
    """``param -= lr * grad`` in one pass, rounded as NumPy rounds the two operations."""
    for index in np.ndindex(param.shape):
        param[index] -= lr * grad[index]


@numba.njit(cache=True)
def dot(a, b):
    """``a @ b`` of 2-d arrays: loops for small products, BLAS for the rest."""
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
