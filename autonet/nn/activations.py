"""Contract v3's activations and helpers (``nn.functional``), PyTorch's values and gradients,
kinks included: piecewise ones are single ops whose gradients pick PyTorch's side at each kink;
smooth ones are compositions of differentiable ops (every order of derivative comes free).

>>> import autonet
>>> from autonet.nn import functional as F
>>> F.hardswish(autonet.Tensor([-1.0, 0.0, 1.0, 4.0]))
Tensor([-0.33333333,  0.        ,  0.66666667,  4.        ])
>>> F.one_hot([0, 2], num_classes=3)
Tensor([[1., 0., 0.],
        [0., 0., 1.]])
"""
from __future__ import annotations
from typing import Any

import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor, TensorLike, as_tensor
from ..ops import generic
from ..ops.activations import elu, softplus
from ..ops.elementwise import sigmoid, softmax, tanh
from ..ops.linalg import norm
from ..ops.shape import broadcast_to
from ..core.types import DTypeLike

_SELU_ALPHA = 1.6732632423543772848170429916717   # PyTorch's constants
_SELU_SCALE = 1.0507009873554804934193349852946


class Hardtanh(Function):
    """``clip(x, min_val, max_val)``; the gradient is 1 strictly inside, 0 at and beyond the
    edges, and at NaN 1 (PyTorch's ``hardtanh_backward``) or, without ``nan_passes``, 0
    (its ``hardsigmoid_backward``)."""

    name = "hardtanh"

    @staticmethod
    def forward(ctx, a, min_val, max_val, nan_passes=True):
        inside = ~((a <= min_val) | (a >= max_val)) if nan_passes else (a > min_val) & (a < max_val)
        ctx.save_for_backward(inside)
        return np.minimum(np.maximum(a, min_val), max_val)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved
        return grad * generic.value(inside)


def hardtanh(x: TensorLike, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``x`` clipped to ``[min_val, max_val]``."""
    if not min_val <= max_val:   # equal bounds: a constant, as PyTorch's (its module refuses them)
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return Hardtanh.apply(as_tensor(x), min_val=float(min_val), max_val=float(max_val))


def relu6(x: TensorLike) -> Tensor:
    """``min(max(x, 0), 6)`` (PyTorch's: ``hardtanh(x, 0, 6)``, gradient 0 at 0 and 6)."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x: TensorLike) -> Tensor:
    """``relu6(x + 3) / 6`` (gradient 1/6 strictly between -3 and 3, 0 elsewhere, NaN included,
    as PyTorch's ``hardsigmoid_backward``)."""
    return Hardtanh.apply(as_tensor(x) + 3.0, min_val=0.0, max_val=6.0, nan_passes=False) / 6.0


class Hardswish(Function):
    """``x relu6(x + 3) / 6``; PyTorch's gradient: 0 up to -3, ``x / 3 + 1/2`` strictly
    between -3 and 3, 1 elsewhere (so 0 at -3 and -inf, 1 at 3, inf and NaN)."""

    name = "hardswish"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * np.minimum(np.maximum(a + 3.0, 0.0), 6.0) / 6.0

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        values = generic.value(a)
        middle = (values > -3.0) & (values < 3.0)
        rest = ~(middle | (values <= -3.0))
        return grad * (np.where(middle, a / 3.0 + 0.5, 0.0) + rest.astype(values.dtype))


def hardswish(x: TensorLike) -> Tensor:
    """``x * relu6(x + 3) / 6`` (MobileNetV3's)."""
    return Hardswish.apply(as_tensor(x))


def mish(x: TensorLike) -> Tensor:
    """``x * tanh(softplus(x))``."""
    x = as_tensor(x)
    return x * tanh(softplus(x))


class Celu(Function):
    """x for x > 0, else ``alpha * (exp(x / alpha) - 1)``; gradient ``exp(x / alpha)`` at and
    below 0 (1 at 0, as PyTorch's)."""

    name = "celu"

    @staticmethod
    def forward(ctx, a, alpha):
        ctx.save_for_backward(a)
        ctx.alpha = alpha
        return np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0) * (1.0 / alpha)))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        positive = ~(generic.value(a) <= 0)   # NaN too, as PyTorch's
        return grad * np.where(positive, 1.0, np.exp(np.minimum(a, 0) * (1.0 / ctx.alpha)))


def celu(x: TensorLike, alpha: float = 1.0) -> Tensor:
    """``max(0, x) + min(0, alpha (exp(x / alpha) - 1))``."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides x)")
    return Celu.apply(as_tensor(x), alpha=float(alpha))


def selu(x: TensorLike) -> Tensor:
    """``scale * elu(x, alpha)`` with PyTorch's self-normalising constants."""
    return elu(as_tensor(x), alpha=_SELU_ALPHA) * _SELU_SCALE


def softsign(x: TensorLike) -> Tensor:
    """``x / (1 + |x|)``."""
    x = as_tensor(x)
    return x / (1.0 + abs(x))


class LogSigmoid(Function):
    """``log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|))``, finite for any x; gradient
    ``sigmoid(-x)``."""

    name = "logsigmoid"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.minimum(a, 0.0) - np.log1p(np.exp(-np.abs(a)))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * generic.sigmoid(-a)


def logsigmoid(x: TensorLike) -> Tensor:
    """``log(sigmoid(x))``, computed stably."""
    return LogSigmoid.apply(as_tensor(x))


def softmin(x: TensorLike, axis: int) -> Tensor:
    """``softmax(-x, axis)``: weights that favour the smallest entries."""
    return softmax(-as_tensor(x), axis=axis)


def tanhshrink(x: TensorLike) -> Tensor:
    """``x - tanh(x)``."""
    x = as_tensor(x)
    return x - tanh(x)


def glu(x: TensorLike, axis: int = -1) -> Tensor:
    """The gated linear unit: ``a * sigmoid(b)`` for the halves ``a, b`` of ``x`` along ``axis``."""
    x = as_tensor(x)
    if x.ndim == 0:
        raise ValueError("glu: a 0-d input has no axis to halve")
    axis = _axis(axis, x.ndim, "glu")
    size = x.shape[axis]
    if size % 2:
        raise ValueError(f"glu: axis {axis} of shape {x.shape} has odd size {size}; it must halve")
    before = (slice(None),) * axis
    return x[before + (slice(0, size // 2),)] * sigmoid(x[before + (slice(size // 2, size),)])


def _axis(axis, ndim, op):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis!r} is out of range for {ndim} axes")
    return int(axis) % ndim


def normalize(x: TensorLike, ord: float = 2, axis: int = 1,  # noqa: A002 - numpy.linalg.norm's name
              eps: float = 1e-12) -> Tensor:
    """``x / max(norm(x, ord, axis), eps)`` (PyTorch's ``normalize``; its ``p`` is ``ord``)."""
    x = as_tensor(x)
    _axis(axis, x.ndim, "normalize")
    return x / norm(x, ord=ord, axis=axis, keepdims=True).clip(eps, None)


def cosine_similarity(x1: TensorLike, x2: TensorLike, axis: int = 1, eps: float = 1e-8) -> Tensor:
    """``sum(x1 / |x1| * x2 / |x2|)`` along ``axis``, each norm at least ``eps`` (PyTorch's:
    the clamp only changes the value, the gradient is the norm's)."""
    x1, x2 = as_tensor(x1), as_tensor(x2)
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    axis = _axis(axis, len(shape), "cosine_similarity")
    x1, x2 = (x if x.shape == shape else broadcast_to(x, shape) for x in (x1, x2))
    return ((x1 / _clamped_norm(x1, axis, eps)) * (x2 / _clamped_norm(x2, axis, eps))).sum(axis=axis)


def _clamped_norm(x, axis, eps):
    """The 2-norm, at least ``eps`` in value; its gradient the norm's (PyTorch clamps in place
    under no_grad). The adjustment is computed from a detached copy, inside the graph."""
    length = norm(x, axis=axis, keepdims=True)
    kept = length.detach()
    return length + (kept.clip(eps, None) - kept)


def one_hot(indices: TensorLike, num_classes: int = -1, dtype: DTypeLike = np.float64) -> Tensor:
    """A constant of ``indices.shape + (num_classes,)`` with a 1 at each index (PyTorch's
    ``one_hot``, as floats unless told: autonet's default dtype); ``num_classes=-1`` means
    ``max(indices) + 1``."""
    array: Any = indices.data if isinstance(indices, Tensor) else indices
    if not hasattr(array, "dtype"):
        array = np.asarray(array)
    if array.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, not {array.dtype}; convert them "
                        f"with indices.astype(np.int64)")
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < -1:
        raise ValueError(f"one_hot: num_classes must be a positive int or -1, not {num_classes!r}")
    if num_classes == -1:
        if not array.size:
            raise ValueError("one_hot: num_classes=-1 cannot be inferred from empty indices; pass it")
        num_classes = int(array.max()) + 1
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"one_hot: indices must lie in [0, {num_classes}), got "
                         f"{array.min()}..{array.max()}")
    classes = devices.arange(num_classes, array)
    return Tensor((array[..., None] == classes).astype(dtype), dtype=dtype)


__all__ = ["relu6", "hardtanh", "hardsigmoid", "hardswish", "mish", "celu", "selu", "softsign",
           "logsigmoid", "softmin", "tanhshrink", "glu", "normalize", "cosine_similarity", "one_hot"]
