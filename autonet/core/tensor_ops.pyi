"""Tensor's op methods and operators, as type checkers and editors see them.

Generated from the op registry by `make ops-page` (autonet._methods.stubs()); tests/test_typing.py
checks that it matches. Do not edit by hand.
"""
from __future__ import annotations

from typing import Any, Sequence, SupportsIndex

from .tensor import Tensor, TensorLike
from .types import Array, Axis, DTypeLike, Index, ShapeLike


class TensorOps:
    def backward(
        self,
        grad: TensorLike | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Accumulate d(tensor)/d(leaf) into every leaf's ``.grad``.

        ``grad`` (ndarray, Tensor or number) is the upstream gradient; it may be
        omitted for a one-element tensor. The graph's saved arrays are freed
        unless ``retain_graph`` (default: ``create_graph``). With
        ``create_graph=True`` leaves get a ``.grad`` Tensor that is itself
        differentiable."""
        ...

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed, as ``ndarray.T``."""
        ...

    def __add__(self, b: TensorLike) -> Tensor:
        """``a + b``, broadcasting as NumPy."""
        ...

    def __radd__(self, other: TensorLike) -> Tensor:
        ...

    def __iadd__(self, other: TensorLike) -> Tensor:
        ...

    def __sub__(self, b: TensorLike) -> Tensor:
        """``a - b``, broadcasting as NumPy."""
        ...

    def __rsub__(self, other: TensorLike) -> Tensor:
        ...

    def __isub__(self, other: TensorLike) -> Tensor:
        ...

    def __mul__(self, b: TensorLike) -> Tensor:
        """``a * b``, broadcasting as NumPy."""
        ...

    def __rmul__(self, other: TensorLike) -> Tensor:
        ...

    def __imul__(self, other: TensorLike) -> Tensor:
        ...

    def __truediv__(self, b: TensorLike) -> Tensor:
        """``a / b``, broadcasting as NumPy."""
        ...

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        ...

    def __itruediv__(self, other: TensorLike) -> Tensor:
        ...

    def __pow__(self, b: TensorLike) -> Tensor:
        """``a ** b``; the gradient in ``b`` is ``a ** b * log(a)``: 0 where ``a == 0 <= b``, -inf
        where ``a == 0 > b`` (PyTorch's). An integer tensor to a float power is float64 (NumPy's)."""
        ...

    def __rpow__(self, other: TensorLike) -> Tensor:
        ...

    def __neg__(self) -> Tensor:
        """``-x``."""
        ...

    def __pos__(self) -> Tensor:
        """``+x``: ``x`` itself."""
        ...

    def exp(self) -> Tensor:
        """e to the power ``x``."""
        ...

    def log(self) -> Tensor:
        """The natural logarithm."""
        ...

    def sqrt(self) -> Tensor:
        """The square root (its gradient at 0 is inf, as PyTorch's)."""
        ...

    def abs(self) -> Tensor:
        """``|x|``; the gradient at 0 is 0, as PyTorch's."""
        ...

    def __abs__(self) -> Tensor:
        """``|x|``; the gradient at 0 is 0, as PyTorch's."""
        ...

    def sin(self) -> Tensor:
        """The sine."""
        ...

    def cos(self) -> Tensor:
        """The cosine."""
        ...

    def log1p(self) -> Tensor:
        """``log(1 + x)``, accurate for small ``x``."""
        ...

    def expm1(self) -> Tensor:
        """``exp(x) - 1``, accurate for small ``x``."""
        ...

    def square(self) -> Tensor:
        """``x * x`` (``Pow`` with exponent 2: the same bits as ``x ** 2``)."""
        ...

    def tanh(self) -> Tensor:
        """The hyperbolic tangent."""
        ...

    def sigmoid(self) -> Tensor:
        """The logistic sigmoid ``1 / (1 + exp(-x))``, without overflow."""
        ...

    def relu(self) -> Tensor:
        """``max(x, 0)``; the gradient at 0 is 0, as PyTorch's."""
        ...

    def clip(self, lo: TensorLike | None, hi: TensorLike | None) -> Tensor:
        """Limit values to ``[lo, hi]`` (None leaves a side open); bounds may be Tensors.

        The gradient reaches ``x`` where ``lo <= x <= hi`` (closed bounds), and a
        Tensor bound where it was chosen, as PyTorch's ``clamp``: ``lo`` where
        ``x < lo < hi``, ``hi`` where ``x > hi`` or ``hi < lo``; nowhere for
        ``x < lo == hi`` or a NaN ``x``."""
        ...

    def softmax(self, axis: int = -1) -> Tensor:
        """``exp(x)`` normalised to sum to 1 along ``axis``, without overflow."""
        ...

    def log_softmax(self, axis: int = -1) -> Tensor:
        """``log(softmax(x))`` as ``x - max - log(sum(exp(x - max)))``: no overflow."""
        ...

    def erf(self) -> Tensor:
        """The error function (PyTorch's ``torch.erf``; NumPy has none)."""
        ...

    def gelu(self, approximate: str = 'none') -> Tensor:
        """x Φ(x), exactly (``approximate="none"``) or with PyTorch's tanh formula."""
        ...

    def silu(self) -> Tensor:
        """x sigmoid(x) (also called swish)."""
        ...

    def softplus(self) -> Tensor:
        """``log(1 + exp(x))``, and ``x`` itself above 20 (PyTorch's threshold)."""
        ...

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        """``x`` for ``x > 0``, else ``negative_slope * x`` (the slope's gradient at 0, as PyTorch's)."""
        ...

    def elu(self, alpha: float = 1.0) -> Tensor:
        """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)`` (gradient ``alpha`` at 0, as PyTorch's)."""
        ...

    @staticmethod
    def zeros(shape: ShapeLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
        """A tensor of zeros (float64 unless ``dtype``)."""
        ...

    @staticmethod
    def ones(shape: ShapeLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
        """A tensor of ones (float64 unless ``dtype``)."""
        ...

    @staticmethod
    def empty(shape: ShapeLike, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
        """A tensor of zeros, as ``zeros``: autonet never exposes uninitialised memory.

        Coming from NumPy: ``numpy.empty`` leaves the values unspecified; here they are 0."""
        ...

    @staticmethod
    def full(
        shape: ShapeLike,
        fill_value: float,
        dtype: DTypeLike = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """A tensor of ``fill_value``."""
        ...

    @staticmethod
    def arange(
        start: float,
        stop: float | None = None,
        step: float = 1,
        dtype: DTypeLike = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Evenly spaced values in [start, stop), as ``numpy.arange`` (float64 unless ``dtype``)."""
        ...

    @staticmethod
    def linspace(
        start: float,
        stop: float,
        num: int = 50,
        endpoint: bool = True,
        dtype: DTypeLike = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """``num`` evenly spaced values from start to stop, as ``numpy.linspace``."""
        ...

    @staticmethod
    def eye(
        N: int,
        M: int | None = None,
        k: int = 0,
        dtype: DTypeLike = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Ones on the ``k``-th diagonal, as ``numpy.eye``."""
        ...

    def pad(
        self,
        pad_width: int | Sequence[int] | Sequence[Sequence[int]],
        mode: str = 'constant',
        constant_values: float = 0,
    ) -> Tensor:
        """Padding as ``numpy.pad``: ``mode`` "constant" (``constant_values``), "reflect" (mirrored,
        edges not repeated), "edge" (edge values repeated) or "wrap" (periodic).

        Coming from PyTorch: ``pad_width`` lists (before, after) per axis from the first axis
        (NumPy's order), and "wrap" is PyTorch's "circular", "edge" its "replicate"."""
        ...

    def to(self, device: str) -> Tensor:
        """``x`` on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``): itself if it is there,
        else a copy in the graph."""
        ...

    def moveaxis(self, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
        """Move axes to new positions, as ``numpy.moveaxis`` (a transpose)."""
        ...

    def squeeze(self, axis: Axis = None) -> Tensor:
        """Drop axes of length one (all of them, or those in ``axis``), as ``numpy.squeeze``."""
        ...

    def expand_dims(self, axis: int | tuple[int, ...]) -> Tensor:
        """Insert axes of length one at ``axis``, as ``numpy.expand_dims``."""
        ...

    def repeat(self, repeats: int | Sequence[int], axis: int | None = None) -> Tensor:
        """Repeat elements, as ``numpy.repeat``: an indexing op, so gradients add up per source.

        A 0-d tensor repeats as a 1-d one along ``axis`` 0 or -1, as NumPy's (coming from
        PyTorch: its ``repeat_interleave`` refuses a ``dim`` there)."""
        ...

    def reshape(self, *shape: SupportsIndex | Sequence[SupportsIndex]) -> Tensor:
        """``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; one axis may be -1."""
        ...

    def transpose(self, *axes: SupportsIndex | Sequence[SupportsIndex] | None) -> Tensor:
        """Reverse the axes, or permute them as given (varargs or one tuple), as NumPy's.

        Coming from PyTorch: ``t.transpose(a, b)`` swapping two axes is ``swapaxes(a, b)``; a
        two-axis call that is not a full permutation, or the identity ``(0, 1)`` on a 2-D tensor,
        raises ``ValueError`` saying so rather than meaning something else."""
        ...

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Interchange two axes, as ``numpy.swapaxes`` (PyTorch's two-axis ``transpose``)."""
        ...

    def astype(self, dtype: DTypeLike) -> Tensor:
        """A cast; differentiable to another float dtype, a constant to int or bool (as PyTorch)."""
        ...

    def copy(self) -> Tensor:
        """A copy in the graph (its gradient passes through unchanged)."""
        ...

    def __getitem__(self, index: Index) -> Tensor:
        """``t[index]``: slices, integer arrays (repeats accumulate), bool masks, None, ``...``."""
        ...

    def __setitem__(self, index: Index, value: TensorLike) -> None:
        """``t[index] = value``, recorded as an op when gradients flow (see ``apply_in_place``)."""
        ...

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The sum over ``axis`` (None: every axis), as ``numpy.sum``."""
        ...

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The mean over ``axis`` (None: every axis), as ``numpy.mean``."""
        ...

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The maximum over ``axis``; the gradient is split evenly between tied maxima."""
        ...

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The minimum over ``axis``; the gradient is split evenly between tied minima."""
        ...

    def var(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        """The variance over ``axis``, with NumPy's ``ddof`` (default 0; PyTorch's is 1)."""
        ...

    def std(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        """The standard deviation, ``sqrt(var)``, with NumPy's ``ddof`` (default 0)."""
        ...

    def prod(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The product over ``axis``; its gradient handles zeros exactly."""
        ...

    def cumsum(self, axis: int | None = None) -> Tensor:
        """Running sums along ``axis`` (the flattened tensor when None, as NumPy)."""
        ...

    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """``log(sum(exp(x)))`` over ``axis``, without overflow."""
        ...

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Array:
        """Indices of the largest values (an int ndarray: not differentiable), as NumPy's."""
        ...

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Array:
        """Indices of the smallest values (an int ndarray: not differentiable), as NumPy's."""
        ...

    def take(self, indices: TensorLike, axis: Axis = None) -> Tensor:
        """Elements at ``indices`` along ``axis`` (of the flattened tensor when None), as
        ``numpy.take``; repeated indices accumulate gradient."""
        ...

    def tril(self, k: int = 0) -> Tensor:
        """The lower triangle (on and below the ``k``-th diagonal) of the last two axes, zeros above."""
        ...

    def triu(self, k: int = 0) -> Tensor:
        """The upper triangle (on and above the ``k``-th diagonal) of the last two axes, zeros below."""
        ...

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """The ``offset``-th diagonal of the plane ``(axis1, axis2)``, as a last axis (``numpy.diagonal``;
        a copy, not NumPy's read-only view)."""
        ...

    def diag(self, k: int = 0) -> Tensor:
        """``numpy.diag``: a 1-D ``v`` builds a square matrix with ``v`` on the ``k``-th diagonal;
        a 2-D ``v`` gives its ``k``-th diagonal."""
        ...

    def matmul(self, b: TensorLike) -> Tensor:
        """The matrix product ``a @ b``, as ``numpy.matmul`` (batches broadcast)."""
        ...

    def __matmul__(self, b: TensorLike) -> Tensor:
        """The matrix product ``a @ b``, as ``numpy.matmul`` (batches broadcast)."""
        ...

    def __rmatmul__(self, other: TensorLike) -> Tensor:
        ...

    def einsum(self, subscripts: str, *others: TensorLike) -> Tensor:
        """``t.einsum("ij,jk->ik", u)``: ``einsum`` with this tensor as the first operand."""
        ...

    def norm(
        self,
        ord: float | str | None = None,
        axis: Axis = None,
        keepdims: bool = False,
    ) -> Tensor:
        """``numpy.linalg.norm``: vector norms over an axis, Frobenius (and 1, inf) over two.

        The gradient of a vector p-norm where it is 0 is 0, as PyTorch's; matrix norms take
        ``axis=(rows, columns)`` in that order. Matrix 2-norms and the
        nuclear norm (singular values) are refused with a ``TypeError``."""
        ...

    def tile(self, reps: int | Sequence[int]) -> Tensor:
        """``x`` repeated ``reps`` times along each axis, as ``numpy.tile`` (PyTorch's ``Tensor.repeat``).

        Coming from PyTorch: ``t.repeat(2, 3)`` is ``t.tile((2, 3))``; autonet's ``repeat`` is
        NumPy's (PyTorch's ``repeat_interleave``)."""
        ...

    def split(self, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
        """A list of tensors: ``x`` cut into equal sections (an int that must divide the axis) or
        at the given indices, as ``numpy.split``.

        Coming from PyTorch: ``torch.split`` takes section sizes; here an int is the number of
        sections and a list holds the cut points (NumPy's meaning)."""
        ...

    def array_split(self, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
        """As ``split``, but an int need not divide the axis: the first ``n % sections`` pieces get
        one element more, as ``numpy.array_split``."""
        ...

    def roll(self, shift: int | Sequence[int], axis: Axis = None) -> Tensor:
        """Elements shifted by ``shift`` along ``axis`` (the flattened tensor when None), those
        pushed off one end coming back at the other, as ``numpy.roll``."""
        ...

    def flip(self, axis: Axis = None) -> Tensor:
        """The order of elements reversed along ``axis`` (every axis when None), as ``numpy.flip``."""
        ...

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        """Axes ``start_axis..end_axis`` (inclusive) merged into one, as PyTorch's ``flatten``; by
        default all of them (NumPy's ``flatten()``).

        Coming from NumPy: a string first argument is NumPy's ``order`` (``t.flatten("F")``
        flattens in column-major order)."""
        ...

    def unflatten(self, axis: int, sizes: Sequence[int]) -> Tensor:
        """Axis ``axis`` split into axes of ``sizes`` (one may be -1), as PyTorch's ``unflatten``."""
        ...

    def cumprod(self, axis: int | None = None) -> Tensor:
        """Running products along ``axis`` (the flattened tensor when None, as NumPy); the gradient
        is exact where ``x`` holds zeros (PyTorch's)."""
        ...

    def sort(self, axis: int | None = -1) -> Tensor:
        """The values sorted in ascending order along ``axis`` (None: flattened), NaN last, as
        ``numpy.sort``; each value's gradient goes back to its element (tied values keep their
        order, as a stable sort's).

        Coming from PyTorch: ``torch.sort`` returns ``(values, indices)``; here ``sort`` returns
        the values and ``argsort`` the indices (``topk`` returns both)."""
        ...

    def argsort(self, axis: int | None = -1) -> Array:
        """The indices that sort ``x`` along ``axis`` (an int ndarray: not differentiable), as
        ``numpy.argsort`` with ``kind="stable"``: ties keep their order."""
        ...

    def median(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The median along ``axis`` (a tuple: over those axes together; None: of all elements), as
        ``numpy.median``: the mean of the two middle values for an even count, whose gradient is
        split between them; NaN where the line holds a NaN.

        Coming from PyTorch: ``torch.median`` returns the lower of the two middle values instead."""
        ...

    def amax(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """``max`` under NumPy's other name (and PyTorch's)."""
        ...

    def amin(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """``min`` under NumPy's other name (and PyTorch's)."""
        ...

    def tan(self) -> Tensor:
        """The tangent."""
        ...

    def arcsin(self) -> Tensor:
        """The inverse sine (PyTorch: ``asin``); NaN outside [-1, 1], as NumPy."""
        ...

    def asin(self) -> Tensor:
        """``arcsin`` under NumPy 2's name ``asin``."""
        ...

    def arccos(self) -> Tensor:
        """The inverse cosine (PyTorch: ``acos``); NaN outside [-1, 1], as NumPy."""
        ...

    def acos(self) -> Tensor:
        """``arccos`` under NumPy 2's name ``acos``."""
        ...

    def arctan(self) -> Tensor:
        """The inverse tangent (PyTorch: ``atan``)."""
        ...

    def atan(self) -> Tensor:
        """``arctan`` under NumPy 2's name ``atan``."""
        ...

    def arcsinh(self) -> Tensor:
        """The inverse hyperbolic sine (PyTorch: ``asinh``)."""
        ...

    def asinh(self) -> Tensor:
        """``arcsinh`` under NumPy 2's name ``asinh``."""
        ...

    def arccosh(self) -> Tensor:
        """The inverse hyperbolic cosine (PyTorch: ``acosh``); NaN below 1, as NumPy."""
        ...

    def acosh(self) -> Tensor:
        """``arccosh`` under NumPy 2's name ``acosh``."""
        ...

    def arctanh(self) -> Tensor:
        """The inverse hyperbolic tangent (PyTorch: ``atanh``); NaN outside [-1, 1], as NumPy."""
        ...

    def atanh(self) -> Tensor:
        """``arctanh`` under NumPy 2's name ``atanh``."""
        ...

    def sinh(self) -> Tensor:
        """The hyperbolic sine."""
        ...

    def cosh(self) -> Tensor:
        """The hyperbolic cosine."""
        ...

    def log2(self) -> Tensor:
        """The base-2 logarithm."""
        ...

    def log10(self) -> Tensor:
        """The base-10 logarithm."""
        ...

    def exp2(self) -> Tensor:
        """2 to the power ``x``."""
        ...

    def reciprocal(self) -> Tensor:
        """``1 / x``, as ``numpy.reciprocal`` on floats.

        Coming from NumPy: an integer tensor is float64 in autonet, so its
        reciprocal is the float ``1 / x`` (NumPy's integer ``reciprocal`` truncates)."""
        ...

    def __mod__(self, b: TensorLike) -> Tensor:
        """``a % b``: the remainder with the sign of ``b``, as NumPy's ``mod`` and Python's ``%``.

        The gradient is 1 in ``a`` and ``-floor(a / b)`` in ``b`` (PyTorch's)."""
        ...

    def __rmod__(self, other: TensorLike) -> Tensor:
        ...

    def __floordiv__(self, b: TensorLike) -> Tensor:
        """``a // b``, rounded down as NumPy's ``floor_divide``: a constant (it does not require
        grad; its gradient would be 0 almost everywhere, and PyTorch refuses to differentiate it)."""
        ...

    def __rfloordiv__(self, other: TensorLike) -> Tensor:
        ...
