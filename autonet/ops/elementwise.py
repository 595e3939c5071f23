"""Elementwise ops: arithmetic with broadcasting, and the activation functions.

Broadcasting is undone centrally by the engine (``core.backward.fit``), so
the binary ops below return gradients of the broadcast shape.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor, TensorLike, as_tensor
from . import generic
from .registry import refuse_numpy_extras, register


class Add(Function):
    name = "add"

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    name = "sub"

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        need_a, need_b = ctx.needs_input_grad
        return (grad if need_a else None), (-grad if need_b else None)


class Mul(Function):
    name = "mul"

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad or (False, False)
        ctx.save_for_backward(a if need_b else None, b if need_a else None)   # what each grad reads
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(Function):
    name = "div"

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad or (False, False)
        ctx.save_for_backward(a if need_b else None, b if need_a or need_b else None)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad / b if need_a else None
        grad_b = -grad * a / (b * b) if need_b else None
        return grad_a, grad_b


class Pow(Function):
    name = "pow"

    @staticmethod
    def forward(ctx, a, b):
        out = a * a if _same_as_square(a, b) else a ** b   # same bits, faster
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            number = isinstance(b, numbers.Number)   # (an ABC: asked once)
            if number and b == 0:
                grad_a = grad * 0.0
            elif number and b == 2:   # the common square, one call less
                grad_a = grad * (2 * a)
            elif number:
                grad_a = grad * b * a ** (b - 1)
            else:   # at a == b == 0 the derivative is 0 (PyTorch's), not 0 * 0 ** -1
                at_zero = (generic.value(b) == 0) & (generic.value(a) == 0)
                grad_a = grad * b * a ** (b - 1 + at_zero)
        if need_b:   # d a**b / db = a**b log a; 0 where a == 0 and b >= 0, else -inf (PyTorch's)
            slope_zero = (generic.value(a) == 0) & (generic.value(b) >= 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_b = grad * _passed(out * generic.log(a), ~slope_zero)
        return grad_a, grad_b


def _same_as_square(a, b):
    """True where ``a ** b`` is ``a * a`` bit for bit: b is 2 and the result keeps a's dtype
    (an integer ``a`` with the float 2.0 becomes float64, and float32 with NumPy's ``float64(2)``
    or ``int64(2)`` float64, as NumPy's ``**``). Exact type tests, not ``numbers`` ABCs: this
    runs on every power (others take ``a ** b``, same value)."""
    if type(b) is int:
        return b == 2
    if type(b) is float:
        return b == 2 and a.dtype.kind == "f"
    return type(b) in _NUMPY_SCALARS and b == 2 and np.result_type(a.dtype, b) == a.dtype


_NUMPY_SCALARS = (np.int64, np.int32, np.float64, np.float32)


class Neg(Function):
    name = "neg"

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    name = "exp"

    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * out


class Log(Function):
    name = "log"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad / a


class Sqrt(Function):
    name = "sqrt"

    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad / (2 * out)


class Abs(Function):
    """|a|; the gradient at 0 is 0, as in PyTorch."""

    name = "abs"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        a = generic.value(a)
        return grad * ((a > 0) * 1.0 - (a < 0))   # PyTorch's sgn: 0 at NaN (NumPy's sign: NaN)


class Sin(Function):
    name = "sin"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.sin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * np.cos(a)


class Cos(Function):
    name = "cos"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.cos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return -grad * np.sin(a)


class Log1p(Function):
    """log(1 + a), accurate for small a."""

    name = "log1p"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log1p(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad / (1 + a)


class Expm1(Function):
    """exp(a) - 1, accurate for small a."""

    name = "expm1"

    @staticmethod
    def forward(ctx, a):
        out = np.expm1(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * (out + 1)


class Sigmoid(Function):
    """Logistic sigmoid; saves its output, as the notebook's ``x * (1 - x)``."""

    name = "sigmoid"

    @staticmethod
    def forward(ctx, a):
        out = generic.stable_sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * out * (1 - out)


class Tanh(Function):
    name = "tanh"

    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * (1 - out * out)


class Relu(Function):
    """max(a, 0); the gradient at 0 is 0, as in PyTorch."""

    name = "relu"

    @staticmethod
    def forward(ctx, a):
        out = np.maximum(a, 0)
        ctx.save_for_backward(out)   # as PyTorch: the output, which the next layer keeps too
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved   # PyTorch's threshold_backward: exactly 0 where out <= 0 (a <= 0),
        return _passed(grad, ~(generic.value(out) <= 0))   # grad at NaN (out is NaN there)


class Clip(Function):
    """Values limited to [lo, hi]; the gradient passes where lo <= a <= hi."""

    name = "clip"

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = lo, hi
        if lo is None and hi is None:
            return a.copy()
        return np.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        a = generic.value(a)
        inside = np.ones_like(a, dtype=bool)
        if ctx.lo is not None:
            inside &= a >= ctx.lo
        if ctx.hi is not None:
            inside &= a <= ctx.hi
        return grad * inside


class ClipBetween(Function):
    """``clip`` with Tensor bounds: PyTorch's ``clamp(x, min, max)`` forward and backward."""

    name = "clip"

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a, lo, hi)
        out = a if lo is None else np.maximum(a, lo)
        return out if hi is None else np.minimum(out, hi)   # one bound at least is given

    @staticmethod
    def backward(ctx, grad):
        a, lo, hi = (generic.value(v) for v in ctx.saved)
        inside, below, above = True, None, None
        if lo is not None:
            inside = inside & (a >= lo)
            below = (a < lo) if hi is None else (a < lo) & (lo < hi)
        if hi is not None:
            inside = inside & (a <= hi)
            above = (a > hi) if lo is None else (a > hi) | (hi < lo)
        return tuple(None if mask is None else _passed(grad, mask) for mask in (inside, below, above))


class Maximum(Function):
    """Elementwise maximum; ties split the gradient evenly, as in PyTorch."""

    name = "maximum"
    pick, beats = staticmethod(np.maximum), staticmethod(np.greater)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.fn.pick(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = (generic.value(v) for v in ctx.saved)
        # PyTorch's formula: grad, halved on ties, masked to 0 (not multiplied) where the side
        # lost; a NaN on either side loses nowhere, so both sides get the gradient there
        scaled = grad * np.where(a == b, 0.5, 1.0)
        return _passed(scaled, ~ctx.fn.beats(b, a)), _passed(scaled, ~ctx.fn.beats(a, b))


LARGE_SELECT = 32768
"""From this many elements a product selects faster than ``np.where`` on a mixed mask (one
thread: 65536 elements 53 against 226 us); below, ``np.where`` is faster (16384: 13 against 16 us;
8: 1.0 against 5.7 us)."""


def _passed(grad, mask):
    """``grad`` where ``mask``, exactly 0 elsewhere: a select, as PyTorch's masked_fill, so a NaN
    gradient does not leak where the mask is False (as a product would)."""
    if isinstance(grad, Tensor):
        return Where.apply(mask, grad, 0.0)
    if type(grad) is np.ndarray and type(mask) is np.ndarray and grad.size >= LARGE_SELECT:
        with np.errstate(invalid="ignore"):   # inf * False: NaN, then the select below
            selected = grad * mask   # the select where no product is NaN, ~10x faster than
        if not np.isnan(selected.max()):   # np.where on a mixed mask (max: no array of bools, and
            selected += 0.0   # no overflow, as a sum of float16s has); the select's +0.0 where a
            return selected   # negative gradient met False (a -0.0 that passes becomes +0.0 too)
    return np.where(mask, grad, 0.0)


class Minimum(Maximum):
    """Elementwise minimum; ties split the gradient evenly, as in PyTorch."""

    name = "minimum"
    pick, beats = staticmethod(np.minimum), staticmethod(np.less)


class Where(Function):
    name = "where"

    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        condition = generic.value(ctx.saved[0])
        return None, grad * condition, grad * ~condition


def _minus_max(a, axis):
    """``a`` minus its maximum along ``axis``; an empty array is copied as it is (nothing to
    shift, and CuPy's ``max`` takes no ``initial=`` for empty axes)."""
    return a - np.max(a, axis=axis, keepdims=True) if a.size else a.copy()


class Softmax(Function):
    name = "softmax"

    @staticmethod
    def forward(ctx, a, axis):
        e = np.exp(_minus_max(a, axis))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return out * (grad - (grad * out).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """log(softmax(a)) computed as a - max - log(sum(exp(a - max))): no overflow."""

    name = "log_softmax"

    @staticmethod
    def forward(ctx, a, axis):
        shifted = _minus_max(a, axis)
        total = np.exp(shifted).sum(axis=axis, keepdims=True)
        out = shifted - np.log(total) if a.size else shifted   # no log(0) over an empty axis
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad - generic.exp(out) * grad.sum(axis=ctx.axis, keepdims=True)


def operand(x, other=None):
    """``x`` as an op takes it: a list or tuple of numbers becomes an array, as NumPy reads it
    (``[1, 2] * t``), on the device of ``other`` when that is a Tensor; Tensors, arrays and
    numbers pass unchanged."""
    if not isinstance(x, (list, tuple)):
        return x
    if isinstance(other, Tensor) and not devices.is_host(other.data):
        return np.asarray(x, like=other.data)
    return np.asarray(x)


def operands(a, b):
    """Both operands of a binary op, lists as arrays (see :func:`operand`); on the hot path, so
    the common case (no list) returns at once."""
    if type(a) not in _SEQUENCES and type(b) not in _SEQUENCES:
        return a, b
    return operand(a, b), operand(b, a)


_SEQUENCES = (list, tuple)


# ------------------------------------------------------------- the ops
@register("arithmetic", method=None, operators=("__add__", "__radd__", "__iadd__"), numpy=np.add,
          in_place=Add)
def add(a: TensorLike, b: TensorLike) -> Tensor:
    """``a + b``, broadcasting as NumPy."""
    return Add.apply(*operands(a, b))


@register("arithmetic", method=None, operators=("__sub__", "__rsub__", "__isub__"),
          numpy=np.subtract, in_place=Sub)
def subtract(a: TensorLike, b: TensorLike) -> Tensor:
    """``a - b``, broadcasting as NumPy."""
    return Sub.apply(*operands(a, b))


@register("arithmetic", method=None, operators=("__mul__", "__rmul__", "__imul__"),
          numpy=np.multiply, torch="mul", in_place=Mul)
def multiply(a: TensorLike, b: TensorLike) -> Tensor:
    """``a * b``, broadcasting as NumPy."""
    return Mul.apply(*operands(a, b))


@register("arithmetic", method=None, operators=("__truediv__", "__rtruediv__", "__itruediv__"),
          numpy=np.true_divide, torch="div", in_place=Div)
def divide(a: TensorLike, b: TensorLike) -> Tensor:
    """``a / b``, broadcasting as NumPy."""
    return Div.apply(*operands(a, b))


@register("arithmetic", method=None, operators=("__pow__", "__rpow__"), numpy=np.power,
          torch="pow")
def power(a: TensorLike, b: TensorLike) -> Tensor:
    """``a ** b``; the gradient in ``b`` is ``a ** b * log(a)``: 0 where ``a == 0 <= b``, -inf
    where ``a == 0 > b`` (PyTorch's). An integer tensor to a float power is float64 (NumPy's)."""
    return Pow.apply(*operands(a, b))


@register("arithmetic", method=None, operators=("__neg__",), numpy=np.negative, torch="neg")
def negative(x: TensorLike) -> Tensor:
    """``-x``."""
    return Neg.apply(x)


@register("arithmetic", method=None, operators=("__pos__",), numpy=np.positive)
def positive(x: TensorLike) -> Tensor:
    """``+x``: ``x`` itself."""
    return as_tensor(x)


@register("elementwise", numpy=np.exp)
def exp(x: TensorLike) -> Tensor:
    """e to the power ``x``."""
    return Exp.apply(as_tensor(x))


@register("elementwise", numpy=np.log)
def log(x: TensorLike) -> Tensor:
    """The natural logarithm."""
    return Log.apply(as_tensor(x))


@register("elementwise", numpy=np.sqrt)
def sqrt(x: TensorLike) -> Tensor:
    """The square root (its gradient at 0 is inf, as PyTorch's)."""
    return Sqrt.apply(as_tensor(x))


@register("elementwise", operators=("__abs__",), numpy=np.absolute)
def abs(x: TensorLike) -> Tensor:  # noqa: A001 - mirrors numpy.abs
    """``|x|``; the gradient at 0 is 0, as PyTorch's."""
    return Abs.apply(as_tensor(x))


@register("elementwise", numpy=np.sin)
def sin(x: TensorLike) -> Tensor:
    """The sine."""
    return Sin.apply(as_tensor(x))


@register("elementwise", numpy=np.cos)
def cos(x: TensorLike) -> Tensor:
    """The cosine."""
    return Cos.apply(as_tensor(x))


@register("elementwise", numpy=np.log1p)
def log1p(x: TensorLike) -> Tensor:
    """``log(1 + x)``, accurate for small ``x``."""
    return Log1p.apply(as_tensor(x))


@register("elementwise", numpy=np.expm1)
def expm1(x: TensorLike) -> Tensor:
    """``exp(x) - 1``, accurate for small ``x``."""
    return Expm1.apply(as_tensor(x))


@register("elementwise", numpy=np.square)
def square(x: TensorLike) -> Tensor:
    """``x * x`` (``Pow`` with exponent 2: the same bits as ``x ** 2``)."""
    return Pow.apply(as_tensor(x), 2)


@register("activation", numpy=np.tanh)
def tanh(x: TensorLike) -> Tensor:
    """The hyperbolic tangent."""
    return Tanh.apply(as_tensor(x))


@register("activation")
def sigmoid(x: TensorLike) -> Tensor:
    """The logistic sigmoid ``1 / (1 + exp(-x))``, without overflow."""
    return Sigmoid.apply(as_tensor(x))


@register("activation")
def relu(x: TensorLike) -> Tensor:
    """``max(x, 0)``; the gradient at 0 is 0, as PyTorch's."""
    return Relu.apply(as_tensor(x))


def _numpy_clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue,  # noqa: A002
                max=np._NoValue, **rest):  # noqa: A002
    """``np.clip(t, a_min, a_max)`` (or ``min=``/``max=``, NumPy 2's names)."""
    refuse_numpy_extras("clip", dict(rest, out=out))
    if (a_min is np._NoValue) != (a_max is np._NoValue):
        raise TypeError("numpy.clip takes both a_min and a_max (None for an open side)")
    lo = a_min if a_min is not np._NoValue else (None if min is np._NoValue else min)
    hi = a_max if a_max is not np._NoValue else (None if max is np._NoValue else max)
    return clip(a, lo, hi)


@register("elementwise", numpy={np.clip: _numpy_clip}, torch="clamp")
def clip(x: TensorLike, lo: TensorLike | None, hi: TensorLike | None) -> Tensor:
    """Limit values to ``[lo, hi]`` (None leaves a side open); bounds may be Tensors.

    The gradient reaches ``x`` where ``lo <= x <= hi`` (closed bounds), and a
    Tensor bound where it was chosen, as PyTorch's ``clamp``: ``lo`` where
    ``x < lo < hi``, ``hi`` where ``x > hi`` or ``hi < lo``; nowhere for
    ``x < lo == hi`` or a NaN ``x``.
    """
    if not (isinstance(lo, Tensor) or isinstance(hi, Tensor)):
        return Clip.apply(as_tensor(x), lo=lo, hi=hi)
    x = as_tensor(x)
    return ClipBetween.apply(x, operand(lo, x), operand(hi, x))


@register("activation")
def softmax(x: TensorLike, axis: int = -1) -> Tensor:
    """``exp(x)`` normalised to sum to 1 along ``axis``, without overflow."""
    return Softmax.apply(as_tensor(x), axis=axis)


@register("activation")
def log_softmax(x: TensorLike, axis: int = -1) -> Tensor:
    """``log(softmax(x))`` as ``x - max - log(sum(exp(x - max)))``: no overflow."""
    return LogSoftmax.apply(as_tensor(x), axis=axis)


@register("elementwise", method=None, numpy=np.maximum)
def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    """Elementwise maximum of two tensors, arrays or numbers; ties split the gradient."""
    return Maximum.apply(*operands(a, b))


@register("elementwise", method=None, numpy=np.minimum)
def minimum(a: TensorLike, b: TensorLike) -> Tensor:
    """Elementwise minimum of two tensors, arrays or numbers; ties split the gradient."""
    return Minimum.apply(*operands(a, b))


def _numpy_where(condition, *branches):
    """``np.where(c, a, b)``; the one-argument form has no gradient to give."""
    if len(branches) != 2:
        raise TypeError("numpy.where with one argument (the indices of nonzero elements) is not "
                        "differentiable; use np.nonzero(t.data)")
    return where(condition, *branches)


@register("elementwise", method=None, numpy={np.where: _numpy_where}, torch="masked_fill")
def where(condition: TensorLike, a: TensorLike, b: TensorLike) -> Tensor:
    """``a`` where ``condition`` holds, else ``b``; differentiable in ``a`` and ``b``."""
    condition = generic.value(condition)
    condition = (np.asanyarray(condition, dtype=bool) if devices.is_host(condition) or
                 isinstance(condition, list) else condition.astype(bool, copy=False))
    return Where.apply(condition, *operands(a, b))
