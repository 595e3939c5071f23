"""Batch and layer normalization, PyTorch's formulas: training batch norm and layer norm are
one op each (saving the input and per-row or per-channel statistics), ``Normalize`` the
shared step; evaluation batch norm is built from differentiable ops."""
from __future__ import annotations
from typing import Sequence

import numpy as np

from ..core.function import Function
from ..core.state import no_grad
from ..core.tensor import Tensor, TensorLike, as_tensor
from ..ops.generic import add_in_place, channel_sums


def batch_norm(input: TensorLike, running_mean: Tensor | None, running_var: Tensor | None,  # noqa: A002
               weight: TensorLike | None = None, bias: TensorLike | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (axis 1) of ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.

    In training, with the batch's mean and (biased) variance, and the running
    statistics (Tensors, if given) move by ``momentum`` toward the batch's mean
    and unbiased variance, in place; otherwise with the running statistics.
    """
    x = as_tensor(input)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: input must be (N, C), (N, C, L) or (N, C, H, W), not {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    channels = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    running_mean, running_var, weight, bias = _batch_norm_arguments(
        x, running_mean, running_var, weight, bias, training, momentum, eps)
    if training:
        with no_grad():
            statistics = BatchStatistics.apply(x)
            _update_running(running_mean, running_var, statistics, momentum, x.size // x.shape[1])
        return BatchNorm.apply(x, weight, bias, statistics, axes=axes, eps=float(eps))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation needs running_mean and running_var")
        mean, var = as_tensor(running_mean).reshape(channels), as_tensor(running_var).reshape(channels)
        out = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        out = out * as_tensor(weight).reshape(channels)
    if bias is not None:
        out = out + as_tensor(bias).reshape(channels)
    return out


def _batch_norm_arguments(x, running_mean, running_var, weight, bias, training, momentum, eps):
    """The running statistics (``(C,)``, as PyTorch's; Tensors in training, which updates them in
    place), weight and bias (``C`` values) as Tensors, and the training settings, all checked
    before anything moves; ``ValueError`` / ``TypeError`` otherwise."""
    if training and not all(v is None or isinstance(v, Tensor) for v in (running_mean, running_var)):
        raise TypeError("batch_norm: in training, running_mean and running_var must be Tensors "
                        "(updated in place) or None; wrap an array: autonet.Tensor(array)")
    running_mean, running_var = (None if v is None else
                                 _shaped(v, (x.shape[1],), name, "batch_norm", "one per channel")
                                 for v, name in ((running_mean, "running_mean"), (running_var, "running_var")))
    weight, bias = (None if v is None else _channel_values(v, x.shape[1], name)
                    for v, name in ((weight, "weight"), (bias, "bias")))
    if training:
        if x.size // x.shape[1] < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got "
                             f"input of shape {x.shape}")
        if not eps > 0:
            raise ValueError(f"batch_norm: eps must be positive in training (as PyTorch), not {eps}")
        if momentum is None:
            raise TypeError("batch_norm: momentum must be a number; the layers' momentum=None (the "
                            "cumulative average) is momentum=1 / (batches seen, this one included) here")
    return running_mean, running_var, weight, bias


def _update_running(running_mean, running_var, statistics, momentum, count):
    """Move the running statistics (each may be None) by ``momentum`` toward the batch's mean and
    unbiased variance, in place."""
    if running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += momentum * statistics[0]
    if running_var is not None:
        running_var *= 1.0 - momentum
        running_var += (momentum * count / (count - 1)) * statistics[1]


class BatchStatistics(Function):
    """The batch's per-channel mean and biased variance, ``(2, C)``, for ``BatchNorm`` and the
    running statistics: no gradient, and nothing saved (``Tensor.var`` would keep the input
    for its own backward, which a compiled step holds until the step ends)."""

    name = "batch_statistics"

    @staticmethod
    def forward(ctx, x):
        count = x.size // x.shape[1]
        mean = channel_sums(x) / count
        centred = x - mean
        centred *= centred
        statistics = np.stack((mean.reshape(-1), channel_sums(centred).reshape(-1) / count))
        return statistics.astype(x.dtype, copy=False)   # summed wider for float16


class BatchNorm(Function):
    """Training-mode batch normalization with its optional ``weight`` and ``bias`` ``(C,)`` as one
    node, as PyTorch's: it saves the input, the per-channel mean and inverse deviation and the
    weight, not the normalized input (the composite kept it twice, and each of the affine's
    outputs once), and its backward is PyTorch's formula on per-channel sums::

        dx = weight * inverse_std * (dy - mean(dy) - normalized * mean(dy * normalized))

    on arrays in place on its own temporaries. The batch's mean and variance come in as
    ``statistics`` (``BatchStatistics``, computed once for this and the running statistics; a
    constant: the formula is the whole derivative in ``x``). The forward is PyTorch's
    ``x * scale + shift`` with per-channel ``scale = weight * inverse_std`` and ``shift = bias -
    mean * scale`` (NumPy's per-channel broadcasts run one short inner loop per row: two passes,
    not four). Backward recomputes the normalized input; under ``create_graph`` from the input
    Tensor, as ``Normalize``, with the same formula out of place."""

    name = "batch_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, statistics, axes, eps):
        ctx.axes, ctx.eps = axes, eps
        ctx.bias_shape = None if bias is None else bias.shape
        mean, variance = (_per_channel(row, x.ndim) for row in statistics)
        inverse_std = 1.0 / np.sqrt(variance + eps)
        ctx.save_for_backward(x, mean, inverse_std, weight)
        scale = inverse_std if weight is None else inverse_std * _per_channel(weight, x.ndim)
        shift = -mean * scale if bias is None else _per_channel(bias, x.ndim) - mean * scale
        out = x * scale   # PyTorch's form: two per-channel passes, not four
        return add_in_place(out, shift)

    @staticmethod
    def backward(ctx, grad):
        x, mean, inverse_std, weight = ctx.saved
        axes = ctx.axes
        if isinstance(grad, Tensor):
            normalized, inverse_std = _normalized(x, axes, ctx.eps)
        else:
            normalized = x - mean
            normalized *= inverse_std
        count = x.size // x.shape[1]
        grad_bias = channel_sums(grad)
        grad_weight = channel_sums(grad * normalized)
        if isinstance(grad, Tensor):   # Normalize's formula, then the weight: differentiable again
            grad_x = Normalize.backward_from(grad, normalized, inverse_std, axes)
            if weight is not None:
                grad_x = grad_x * _per_channel(weight, x.ndim)
        else:   # the same formula on per-channel sums, in place on this formula's own arrays
            scale = inverse_std if weight is None else inverse_std * _per_channel(weight, x.ndim)
            normalized *= grad_weight / count
            grad_x = grad - grad_bias / count
            grad_x -= normalized
            grad_x *= scale
        return (grad_x, None if weight is None else grad_weight.reshape(weight.shape),
                None if ctx.bias_shape is None else grad_bias.reshape(ctx.bias_shape), None)


def _channel_values(values, channels, name):
    """``values`` as a Tensor of one value per channel (a Tensor given is returned itself), or
    ``ValueError``."""
    values = as_tensor(values)
    if values.size != channels:
        raise ValueError(f"batch_norm: {name} must hold one value per channel ({channels}), "
                         f"not shape {values.shape}")
    return values


def _per_channel(values, ndim):
    """``(C,)`` as ``(1, C, 1, ...)``, to broadcast over ``(N, C, ...)``."""
    return values.reshape((1, -1) + (1,) * (ndim - 2))


class Normalize(Function):
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance), as one node: the heart of
    batch and layer normalization.

    Its backward formula works on arrays and on Tensors; under ``create_graph``
    it recomputes the normalized input from the input Tensor, so higher
    derivatives stay exact.
    """

    name = "normalize"

    @staticmethod
    def forward(ctx, x, axes, eps):
        ctx.axes, ctx.eps = axes, eps
        normalized, inverse_std = _normalized(x, axes, eps)
        ctx.save_for_backward(x, normalized, inverse_std)
        return normalized

    @staticmethod
    def backward(ctx, grad):
        x, normalized, inverse_std = ctx.saved
        if isinstance(grad, Tensor):
            normalized, inverse_std = _normalized(x, ctx.axes, ctx.eps)
        return Normalize.backward_from(grad, normalized, inverse_std, ctx.axes)

    @staticmethod
    def backward_from(grad, normalized, inverse_std, axes):
        """The input's gradient from the normalized input's (``grad``)."""
        mean_grad = grad.mean(axis=axes, keepdims=True)
        projection = (grad * normalized).mean(axis=axes, keepdims=True)
        return inverse_std * (grad - mean_grad - normalized * projection)


def _normalized(x, axes, eps):
    centred = x - x.mean(axis=axes, keepdims=True)
    inverse_std = 1.0 / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
    return centred * inverse_std, inverse_std


class LayerNorm(Function):
    """``Normalize``, then ``* weight + bias`` (each may be None), as one node that saves the
    input, its mean and inverse deviation and the weight, as PyTorch's layer_norm: no
    full-size intermediate outlives the forward (the composite kept the normalized input
    twice, for its own backward and for the weight's gradient). Backward recomputes the
    normalized input with the forward's operations (the same bits); under ``create_graph``
    from the input Tensor, as ``Normalize``."""

    name = "layer_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, axes, eps):
        ctx.axes, ctx.eps = axes, eps
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        inverse_std = 1.0 / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
        ctx.save_for_backward(x, mean, inverse_std, weight)
        out = centred * inverse_std   # the composite's operations and dtypes, so the same bits
        if weight is not None:
            out = out * weight
        return out if bias is None else out + bias

    @staticmethod
    def backward(ctx, grad):
        x, mean, inverse_std, weight = ctx.saved
        if isinstance(grad, Tensor):
            normalized, inverse_std = _normalized(x, ctx.axes, ctx.eps)
        else:
            normalized = (x - mean) * inverse_std
        grad_weight = None if weight is None else grad * normalized   # summed by the engine
        grad_normalized = grad if weight is None else grad * weight
        return (Normalize.backward_from(grad_normalized, normalized, inverse_std, ctx.axes),
                grad_weight, grad)   # bias: grad, summed by the engine


def layer_norm(input: TensorLike, normalized_shape: int | Sequence[int],  # noqa: A002
               weight: TensorLike | None = None, bias: TensorLike | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` axes (biased variance), then scale and shift."""
    x = as_tensor(input)
    normalized_shape = normalized_shape_of(normalized_shape, "layer_norm")
    if x.shape[x.ndim - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end in {normalized_shape}")
    weight, bias = (None if v is None else _shaped(v, normalized_shape, name, "layer_norm", "normalized_shape")
                    for v, name in ((weight, "weight"), (bias, "bias")))
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    return LayerNorm.apply(x, weight, bias, axes=axes, eps=float(eps))


def normalized_shape_of(normalized_shape, op):
    """``normalized_shape`` (an int or a sequence of ints, at least one) as a tuple."""
    shape = (normalized_shape,) if np.ndim(normalized_shape) == 0 else tuple(normalized_shape)
    if not shape or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape):
        raise ValueError(f"{op}: normalized_shape must be an int or a non-empty sequence of ints, "
                         f"not {normalized_shape!r}")
    return tuple(int(n) for n in shape)


def _shaped(values, shape, name, op, meaning):
    """``values`` as a Tensor of exactly ``shape`` (no broadcasting: PyTorch refuses it too)."""
    values = as_tensor(values)
    if values.shape != shape:
        raise ValueError(f"{op}: {name} must have shape {shape} ({meaning}), not {values.shape}")
    return values


def group_norm(input: TensorLike, num_groups: int, weight: TensorLike | None = None,  # noqa: A002
               bias: TensorLike | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize ``(N, C, ...)`` over each group of ``C // num_groups`` channels and all positions
    (biased variance), then scale and shift per channel, as ``torch.nn.functional.group_norm``."""
    x = as_tensor(input)
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
        raise TypeError(f"group_norm: num_groups must be an int, not {num_groups!r}")
    if x.ndim < 2 or num_groups < 1 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: input (N, C, ...) of shape {x.shape} needs C divisible by "
                         f"num_groups {num_groups}")
    n, channels = x.shape[:2]
    weight, bias = (None if v is None else _shaped(v, (channels,), name, "group_norm", "one per channel")
                    for v, name in ((weight, "weight"), (bias, "bias")))
    grouped = x.reshape(n, num_groups, x.size // max(n * num_groups, 1))
    out = Normalize.apply(grouped, axes=(2,), eps=float(eps)).reshape(x.shape)
    per_channel = (1, channels) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * as_tensor(weight).reshape(per_channel)
    if bias is not None:
        out = out + as_tensor(bias).reshape(per_channel)
    return out
