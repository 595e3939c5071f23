"""Matrix products: ``matmul`` with NumPy semantics, and the fused ``linear``."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..core.state import no_grad
from ..core.tensor import Tensor, TensorLike, as_tensor, value_of
from . import generic, reduce
from .elementwise import operands
from .indexing import remove_repeated_subscripts
from .registry import refuse_numpy_extras, register
from .shape import broadcast_to
from ..core.types import Axis


class MatMul(Function):
    """``a @ b`` as ``numpy.matmul``: 1-D operands are promoted, batches broadcast."""

    name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        if type(a) is not np.ndarray and devices.is_host(a):
            a = np.asarray(a)
        if type(b) is not np.ndarray and devices.is_host(b):
            b = np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs operands with at least one dimension")
        ctx.ndims = (a.ndim, b.ndim)
        need_a, need_b = ctx.needs_input_grad or (False, False)
        ctx.save_for_backward(a if need_b else None, b if need_a else None)   # what each grad reads
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved       # each None where no wanted gradient reads it
        need_a, need_b = ctx.needs_input_grad
        a_ndim, b_ndim = ctx.ndims
        grad_a = grad_b = None
        if a_ndim == 1 and b_ndim == 1:          # inner product: grad is a scalar
            grad_a = grad * b if need_a else None
            grad_b = grad * a if need_b else None
        elif a_ndim == 1:                        # (k,) @ (..., k, m) -> (..., m)
            row = grad[..., None, :]
            grad_a = (row @ b.swapaxes(-1, -2))[..., 0, :] if need_a else None
            grad_b = a[:, None] @ row if need_b else None
        elif b_ndim == 1:                        # (..., n, k) @ (k,) -> (..., n)
            column = grad[..., :, None]
            grad_a = column @ b[None, :] if need_a else None
            grad_b = (a.swapaxes(-1, -2) @ column)[..., 0] if need_b else None
        else:
            grad_a = grad @ (b.T if b_ndim == 2 else b.swapaxes(-1, -2)) if need_a else None
            grad_b = (a.T if a_ndim == 2 else a.swapaxes(-1, -2)) @ grad if need_b else None
        # Batch axes that broadcast are summed back by the engine.
        return grad_a, grad_b


class Linear(Function):
    """``x @ weight.T + bias`` as one node; ``weight`` is ``(out, in)`` as PyTorch's."""

    name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias):
        if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
            raise ValueError(
                f"input of shape {x.shape} does not fit weight of shape {weight.shape} "
                f"(out_features, in_features)")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"bias of shape {bias.shape} does not fit weight {weight.shape}")
        need_x, need_weight, _ = ctx.needs_input_grad or (False, False, False)
        ctx.save_for_backward(x if need_weight else None, weight if need_x else None)
        out = _rows_matmul(x, weight.T)   # a transposed view: BLAS reads it as it is, no copy
        if bias is None:
            return out
        if out.dtype == bias.dtype:
            out += bias        # in place: no second temporary of the output's size
            return out
        return out + bias

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved   # each None where no wanted gradient reads it
        need_x, need_weight, need_bias = ctx.needs_input_grad
        grad_x = _rows_matmul(grad, weight) if need_x else None
        grad_weight = None
        if need_weight:
            if x.ndim == 2:
                grad_weight = grad.T @ x
            else:               # batches of any rank: fold them into the rows (the weight
                n_out, n_in = grad.shape[-1], x.shape[-1]   # itself is not saved when x needs no grad)
                grad_weight = grad.reshape(-1, n_out).T @ x.reshape(-1, n_in)
        grad_bias = grad if need_bias else None   # summed to (out,) by the engine
        return grad_x, grad_weight, grad_bias


def _rows_matmul(x, matrix):
    """``x @ matrix`` with ``x``'s leading axes folded into rows: one BLAS product, about twice
    as fast as NumPy's batched loop over a 3-d ``x`` (the same values up to rounding)."""
    if x.ndim <= 2 or not x.size:
        return x @ matrix
    return (x.reshape(-1, x.shape[-1]) @ matrix).reshape(x.shape[:-1] + matrix.shape[-1:])


@register("linalg", operators=("__matmul__", "__rmatmul__"), numpy=np.matmul, torch=("mm", "bmm"))
def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """The matrix product ``a @ b``, as ``numpy.matmul`` (batches broadcast)."""
    return MatMul.apply(*operands(a, b))


def linear(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None) -> Tensor:
    """``x @ weight.T + bias`` in one op; ``weight`` has shape ``(out, in)``, as PyTorch's."""
    return Linear.apply(as_tensor(x), weight, bias)


@register("linalg", method=None, numpy=np.dot)
def dot(a: TensorLike, b: TensorLike) -> Tensor:
    """``numpy.dot``: a product for 0-d operands, ``matmul`` for 1-D and 2-D, ``tensordot`` beyond."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return MatMul.apply(a, b)
    return tensordot(a, b, axes=([-1], [-2]))


@register("linalg", method=None, numpy=np.outer, torch="ger")
def outer(a: TensorLike, b: TensorLike) -> Tensor:
    """``numpy.outer``: every element of ``a`` (flattened) times every element of ``b``."""
    a, b = as_tensor(a), as_tensor(b)
    return a.reshape(-1, 1) * b.reshape(1, -1)


@register("linalg", method=None, numpy=np.tensordot)
def tensordot(a: TensorLike, b: TensorLike, axes: int | Sequence[Any] = 2) -> Tensor:
    """``numpy.tensordot``: sum products over the given axes, as one matrix product."""
    a, b = as_tensor(a), as_tensor(b)
    if np.ndim(axes) == 0:
        n = int(axes)  # type: ignore[arg-type]
        axes_a, axes_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        axes_a, axes_b = ([x] if np.ndim(x) == 0 else list(x) for x in axes)  # type: ignore
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


@register("linalg", method=None, numpy=np.trace)
def trace(a: TensorLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """``numpy.trace``: the sum along a diagonal (an indexing op, then a sum)."""
    a = as_tensor(a)
    n1, n2 = a.shape[axis1], a.shape[axis2]
    start1, start2 = max(-offset, 0), max(offset, 0)
    length = max(min(n1 - start1, n2 - start2), 0)
    moved = a.transpose([i for i in range(a.ndim) if i not in (axis1 % a.ndim, axis2 % a.ndim)]
                        + [axis1 % a.ndim, axis2 % a.ndim])
    rows, columns = list(range(start1, start1 + length)), list(range(start2, start2 + length))
    return moved[..., rows, columns].sum(axis=-1)   # lists: compile takes them by value


class Einsum(Function):
    """``numpy.einsum`` with explicit subscripts; each operand's gradient is an einsum too.

    The gradient of operand ``i`` contracts the upstream gradient with the
    other operands onto ``i``'s subscripts; letters only ``i`` uses (summed
    away inside it) are broadcast back. Repeated letters within one operand
    (diagonals, ``"ii->i"``) are taken as ``diagonal`` first (``einsum``).
    """

    name = "einsum"

    @staticmethod
    def forward(ctx, *operands, inputs, output):
        ctx.inputs_subscripts, ctx.output = inputs, output
        ctx.save_for_backward(*operands)
        return contract(inputs, output, operands)

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved
        grads = []
        for i, (subscripts, needed) in enumerate(zip(ctx.inputs_subscripts, ctx.needs_input_grad)):
            if not needed:
                grads.append(None)
                continue
            others = [(s, op) for j, (s, op) in enumerate(zip(ctx.inputs_subscripts, operands)) if j != i]
            available = set(ctx.output).union(*(s for s, _ in others))
            kept = "".join(letter for letter in subscripts if letter in available)
            terms = ",".join([ctx.output] + [s for s, _ in others]) + "->" + kept
            partial = _einsum(terms, grad, *(op for _, op in others))
            if kept != subscripts:   # letters summed only inside operand i: spread back
                shape = operands[i].shape
                partial = partial.reshape(tuple(n if letter in kept else 1
                                                for letter, n in zip(subscripts, shape)))
                partial = partial * devices.ones(shape, partial.dtype, generic.value(partial))
            grads.append(partial)
        return tuple(grads)


def _einsum(subscripts, *operands):
    """einsum on ndarrays in plain backward passes, recorded on Tensors under create_graph."""
    inputs, output = tuple(subscripts.split("->")[0].split(",")), subscripts.split("->")[1]
    if any(isinstance(op, Tensor) for op in operands):
        return Einsum.apply(*operands, inputs=inputs, output=output)
    return contract(inputs, output, operands)


def contract(inputs, output, operands):
    """``numpy.einsum`` for explicit subscripts; two operands go through one batched matrix
    product (BLAS) instead of einsum's loops: batch letters first, then each side's own
    letters, the contracted ones last."""
    if len(operands) != 2:
        return np.einsum(",".join(inputs) + "->" + output, *operands)
    (sa, sb), (a, b) = inputs, operands
    a, sa = _sum_private(a, sa, sb, output)
    b, sb = _sum_private(b, sb, sa, output)
    sizes = dict(zip(sa, a.shape))
    if any(sizes.get(letter, n) != n for letter, n in zip(sb, b.shape)):
        return np.einsum(f"{sa},{sb}->{output}", a, b)    # broadcasting sizes: NumPy decides
    sizes.update(zip(sb, b.shape))
    batch = [x for x in output if x in sa and x in sb]
    summed = [x for x in sa if x in sb and x not in output]
    free_a = [x for x in sa if x not in sb]
    free_b = [x for x in sb if x not in sa]
    def size(letters):
        return math.prod(sizes[x] for x in letters)
    left = a.transpose([sa.index(x) for x in batch + free_a + summed]).reshape(
        size(batch), size(free_a), size(summed))
    right = b.transpose([sb.index(x) for x in batch + summed + free_b]).reshape(
        size(batch), size(summed), size(free_b))
    product = (left @ right).reshape([sizes[x] for x in batch + free_a + free_b])
    order = batch + free_a + free_b
    return product.transpose([order.index(x) for x in output])


def _sum_private(array, letters, other, output):
    """Sum away the letters of ``array`` that appear nowhere else (as einsum does)."""
    private = [i for i, x in enumerate(letters) if x not in other and x not in output]
    if not private:
        return array, letters
    return array.sum(axis=tuple(private)), "".join(x for x in letters if x not in set(letters[i] for i in private))


def _parse_einsum(subscripts, operands):
    """Explicit per-operand subscripts and output, with ellipses spelled out as letters."""
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        inputs, output = subscripts.split("->")
    else:
        inputs = subscripts
        letters = inputs.replace(",", "").replace(".", "")
        output = ("..." if "..." in inputs else "") + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1))
    inputs = inputs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: {len(inputs)} operand subscripts for {len(operands)} operands")
    unused = iter(sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                         - set(subscripts)))
    ellipsis_dims = [np.ndim(op) - len(s.replace("...", "")) for s, op in zip(inputs, operands)
                     if "..." in s]
    letters = "".join(next(unused) for _ in range(max(ellipsis_dims, default=0)))
    spelled = []
    for s, op in zip(inputs, operands):
        if "..." in s:
            extra = np.ndim(op) - len(s.replace("...", ""))
            s = s.replace("...", letters[len(letters) - extra:] if extra else "")
        spelled.append(s)
    output = output.replace("...", letters)
    return tuple(spelled), output, _letter_sizes(spelled, operands, letters)


def _letter_sizes(spelled, operands, ellipsis_letters):
    """Each letter's size, a size 1 broadcasting against the others as NumPy's einsum does;
    ``ValueError`` for sizes that do not broadcast, or differ within one operand."""
    sizes = {}
    for s, op in zip(spelled, operands):
        own = {}
        for letter, n in zip(s, np.shape(op)):
            seen = sizes.get(letter, 1)
            if own.setdefault(letter, n) != n or (n != seen and 1 not in (n, seen)):
                shown = "an axis of '...'" if letter in ellipsis_letters else f"subscript {letter!r}"
                raise ValueError(f"einsum: {shown} has sizes {own[letter] if own[letter] != n else seen} "
                                 f"and {n}: a size does not broadcast unless it is 1")
            sizes[letter] = n if seen == 1 else seen
    return sizes


def _broadcast_letters(x, subscripts, sizes):
    """``x`` broadcast to its letters' sizes (a differentiable view; its gradient sums back), so
    that ``Einsum`` sees one size per letter (its gradient spreads letters an operand sums
    privately back to that operand's shape)."""
    shape = tuple(sizes[letter] for letter in subscripts)
    return x if x.shape == shape else broadcast_to(x, shape)


def _numpy_einsum(*operands, out=None, optimize=False, **rest):
    """``np.einsum("ij,jk", t, u)``: subscripts as a string first (not the interleaved form)."""
    refuse_numpy_extras("einsum", dict(rest, out=out))
    if not operands or not isinstance(operands[0], str):
        raise TypeError("numpy.einsum on Tensors takes its subscripts as a string first")
    return einsum(*operands)


def _einsum_method(self: Tensor, subscripts: str, *others: TensorLike) -> Tensor:
    """``t.einsum("ij,jk->ik", u)``: ``einsum`` with this tensor as the first operand."""
    return einsum(subscripts, self, *others)


@register("linalg", method=_einsum_method, numpy={np.einsum: _numpy_einsum})
def einsum(subscripts: str, *operands: TensorLike) -> Tensor:
    """``numpy.einsum(subscripts, *operands)``, differentiable in every operand.

    >>> import autonet
    >>> a = autonet.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> autonet.einsum("ij,j->i", a, autonet.Tensor([1.0, 1.0]))
    Tensor([3., 7.], grad_fn=einsum)
    """
    if not isinstance(subscripts, str):
        raise TypeError("einsum takes its subscripts as a string first ('ij,jk->ik')")
    operands = [as_tensor(op) for op in operands]
    inputs, output, sizes = _parse_einsum(subscripts, [value_of(op) for op in operands])
    operands = [_broadcast_letters(op, s, sizes) for s, op in zip(inputs, operands)]
    inputs, operands = zip(*(remove_repeated_subscripts(s, op) for s, op in zip(inputs, operands)))
    return Einsum.apply(*operands, inputs=inputs, output=output)


class Norm(Function):
    """The vector ``p``-norm ``sum(|x| ** p) ** (1 / p)`` over ``axes`` (finite ``p``, not 0), as
    ``numpy.linalg.norm`` computes it: ``sqrt(sum(x * x))`` for ``p = 2``. Its gradient
    ``sign(x) (|x| / norm) ** (p - 1)`` (``x / norm`` for ``p = 2``) is 0 where ``x`` or the norm is
    0, as PyTorch's (the composite's chain rule gives NaN there)."""

    name = "norm"

    @staticmethod
    def forward(ctx, x, axes, keepdims, p=2.0):
        ctx.p, ctx.keepdims = p, keepdims
        ctx.kept_shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        if p == 2:
            out = np.sqrt(np.add.reduce(x * x, axis=axes, keepdims=keepdims))
        else:
            with np.errstate(divide="ignore"):   # 0 ** p for p < 0: inf, and the norm 0
                out = np.add.reduce(np.abs(x) ** p, axis=axes, keepdims=keepdims) ** (1.0 / p)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved
        if not ctx.keepdims:
            grad, out = grad.reshape(ctx.kept_shape), out.reshape(ctx.kept_shape)
        out_values = value_of(out)
        if ctx.p == 2:
            return grad * x / (out + (out_values == 0))   # x / norm, with 0 / 1 where the norm is 0
        x_values = value_of(x)
        counted = (x_values != 0) & (out_values != 0)
        ratio = abs(x) / (out + (out_values == 0)) + ~counted   # 1 where not counted: no 0 ** (p - 1)
        return grad * (np.sign(x_values) * counted) * ratio ** (ctx.p - 1)


class NonzeroCount(Function):
    """The number of non-zero elements over ``axes``, in ``x``'s float dtype: ``norm``'s
    ``ord=0``. Piecewise constant, so applied without recording (gradient 0, as PyTorch's),
    but an op: a compiled step recomputes it on every call."""

    name = "count_nonzero"

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return (x != 0).astype(dtype).sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return None


@register("linalg", numpy=np.linalg.norm)
def norm(x: TensorLike, ord: float | str | None = None,  # noqa: A002 - numpy.linalg.norm's name
         axis: Axis = None, keepdims: bool = False) -> Tensor:
    """``numpy.linalg.norm``: vector norms over an axis, Frobenius (and 1, inf) over two.

    The gradient of a vector p-norm where it is 0 is 0, as PyTorch's; matrix norms take
    ``axis=(rows, columns)`` in that order. Matrix 2-norms and the
    nuclear norm (singular values) are refused with a ``TypeError``.
    """
    x = as_tensor(x)
    if axis is None:
        if ord is None or (ord == "fro" and x.ndim == 2):
            return _norm_over(x, tuple(range(x.ndim)), keepdims)
        axis = tuple(range(x.ndim)) if x.ndim <= 2 else None
        if axis is None:
            raise ValueError("norm: improper number of dimensions to norm")
    axes = reduce.normalize_axis(axis, x.ndim)
    if np.ndim(axis) != 0 and len(axes) == 2:   # (rows, columns) in the order given, as NumPy's
        return _matrix_norm(x, ord, tuple(int(a) for a in np.asarray(axis) % x.ndim), keepdims)
    if len(axes) != 1:
        raise ValueError("norm: improper number of dimensions to norm")
    if ord is None or ord == 2:
        return _norm_over(x, axes, keepdims)
    magnitude = abs(x)
    if ord == np.inf:
        return magnitude.max(axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return magnitude.min(axis=axes, keepdims=keepdims)
    if ord == 0:   # a count of non-zeros: piecewise constant, gradient 0
        with no_grad():
            return NonzeroCount.apply(x, axes=axes, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    return Norm.apply(x, axes=axes, keepdims=keepdims, p=float(ord))


def _norm_over(x, axes, keepdims):
    return Norm.apply(x, axes=axes, keepdims=keepdims)


def _matrix_norm(x, ord, axes, keepdims):
    rows, cols = axes
    if ord in (None, "fro"):
        return _norm_over(x, axes, keepdims)
    if ord in (1, -1, np.inf, -np.inf):
        summed, other = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = abs(x).sum(axis=summed, keepdims=True)
        out = sums.max(axis=other, keepdims=True) if ord > 0 else sums.min(axis=other, keepdims=True)
        return out if keepdims else out.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
    raise TypeError(f"norm: the matrix norm ord={ord!r} needs singular values, which autonet "
                    f"does not differentiate; use ord='fro', 1 or inf")
