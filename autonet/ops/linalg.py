"""Matrix products: ``matmul`` with NumPy semantics, and the fused ``linear``."""
import numpy as np

from ..core.function import Function
from ..core.tensor import as_tensor


class MatMul(Function):
    """``a @ b`` as ``numpy.matmul``: 1-D operands are promoted, batches broadcast."""

    name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        a = np.asarray(a)
        b = np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs operands with at least one dimension")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if a.ndim == 1 and b.ndim == 1:          # inner product: grad is a scalar
            grad_a = grad * b if need_a else None
            grad_b = grad * a if need_b else None
        elif a.ndim == 1:                        # (k,) @ (..., k, m) -> (..., m)
            row = grad[..., None, :]
            grad_a = (row @ b.swapaxes(-1, -2))[..., 0, :] if need_a else None
            grad_b = a[:, None] @ row if need_b else None
        elif b.ndim == 1:                        # (..., n, k) @ (k,) -> (..., n)
            column = grad[..., :, None]
            grad_a = column @ b[None, :] if need_a else None
            grad_b = (a.swapaxes(-1, -2) @ column)[..., 0] if need_b else None
        else:
            grad_a = grad @ b.swapaxes(-1, -2) if need_a else None
            grad_b = a.swapaxes(-1, -2) @ grad if need_b else None
        # Batch axes that broadcast are summed back by the engine.
        return grad_a, grad_b


class Linear(Function):
    """``x @ weight + bias`` as one node; ``weight`` is ``(in, out)`` as in the notebook."""

    name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias):
        if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[0]:
            raise ValueError(
                f"input of shape {x.shape} does not fit weight of shape {weight.shape} "
                f"(in_features, out_features)")
        if bias is not None and bias.shape != (weight.shape[1],):
            raise ValueError(f"bias of shape {bias.shape} does not fit weight {weight.shape}")
        ctx.save_for_backward(x, weight)
        out = x @ weight
        if bias is None:
            return out
        if out.dtype == bias.dtype:
            out += bias        # in place: no second temporary of the output's size
            return out
        return out + bias

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        need_x, need_weight, need_bias = ctx.needs_input_grad
        grad_x = grad @ weight.T if need_x else None
        grad_weight = None
        if need_weight:
            if x.ndim == 2:
                grad_weight = x.T @ grad
            else:               # batches of any rank: fold them into the rows
                n_in, n_out = weight.shape
                grad_weight = x.reshape(-1, n_in).T @ grad.reshape(-1, n_out)
        grad_bias = grad if need_bias else None   # summed to (out,) by the engine
        return grad_x, grad_weight, grad_bias


def matmul(a, b):
    """Matrix product with ``numpy.matmul`` semantics, differentiable."""
    return MatMul.apply(a, b)


def linear(x, weight, bias=None):
    """``x @ weight + bias`` in one op; ``weight`` has shape ``(in, out)``."""
    return Linear.apply(as_tensor(x), weight, bias)


def dot(a, b):
    """``numpy.dot``: a product for 0-d operands, ``matmul`` for 1-D and 2-D, ``tensordot`` beyond."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return MatMul.apply(a, b)
    return tensordot(a, b, axes=([-1], [-2]))


def outer(a, b):
    """``numpy.outer``: every element of ``a`` (flattened) times every element of ``b``."""
    a, b = as_tensor(a), as_tensor(b)
    return a.reshape(-1, 1) * b.reshape(1, -1)


def tensordot(a, b, axes=2):
    """``numpy.tensordot``: sum products over the given axes, as one matrix product."""
    a, b = as_tensor(a), as_tensor(b)
    if np.ndim(axes) == 0:
        n = int(axes)
        axes_a, axes_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        axes_a, axes_b = ([x] if np.ndim(x) == 0 else list(x) for x in axes)
    axes_a = [int(x) % a.ndim for x in axes_a]
    axes_b = [int(x) % b.ndim for x in axes_b]
    if len(axes_a) != len(axes_b) or any(a.shape[i] != b.shape[j] for i, j in zip(axes_a, axes_b)):
        raise ValueError(f"tensordot: shape-mismatch for sum over axes {axes_a} of {a.shape} "
                         f"and {axes_b} of {b.shape}")
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [i for i in range(b.ndim) if i not in axes_b]
    summed = int(np.prod([a.shape[i] for i in axes_a]))
    left = a.transpose(free_a + axes_a).reshape(-1, summed)
    right = b.transpose(axes_b + free_b).reshape(summed, -1)
    return MatMul.apply(left, right).reshape([a.shape[i] for i in free_a] + [b.shape[i] for i in free_b])


def trace(a, offset=0, axis1=0, axis2=1):
    """``numpy.trace``: the sum along a diagonal (an indexing op, then a sum)."""
    a = as_tensor(a)
    n1, n2 = a.shape[axis1], a.shape[axis2]
    start1, start2 = max(-offset, 0), max(offset, 0)
    length = max(min(n1 - start1, n2 - start2), 0)
    moved = a.transpose([i for i in range(a.ndim) if i not in (axis1 % a.ndim, axis2 % a.ndim)]
                        + [axis1 % a.ndim, axis2 % a.ndim])
    steps = np.arange(length)
    return moved[..., start1 + steps, start2 + steps].sum(axis=-1)
