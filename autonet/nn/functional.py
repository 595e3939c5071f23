"""Functions behind the layers and losses, for use without Module objects."""
import numpy as np

from ..core.function import Function
from ..ops import dual
from ..ops.elementwise import log_softmax, relu, sigmoid, softmax, tanh
from ..ops.linalg import linear
from ..core.tensor import Tensor, as_tensor

__all__ = ["linear", "sigmoid", "tanh", "relu", "softmax", "log_softmax", "mse_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")
_LOG_FLOOR = float(np.exp(-100.0))   # log is clamped at -100, as in PyTorch


def reduce(losses, reduction, op):
    """Apply a loss's ``reduction``: 'mean', 'sum' or 'none'."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, not {reduction!r}")


def _same_shape(input, target, op):
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    if target.shape != input.shape:
        raise ValueError(
            f"{op}: input shape {input.shape} and target shape {target.shape} differ "
            f"(broadcasting them would silently pair the wrong elements)")
    return target


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: reduce((input - target) ** 2)."""
    input = as_tensor(input)
    diff = input - _same_shape(input, target, "mse_loss")
    return reduce(diff * diff, reduction, "mse_loss")


def binary_cross_entropy(input, target, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p; logs clamped at -100."""
    p = as_tensor(input)
    t = _same_shape(p, target, "binary_cross_entropy")
    log_p = p.clip(_LOG_FLOOR, None).log()
    log_not_p = (1 - p).clip(_LOG_FLOOR, None).log()
    return reduce(-(t * log_p + (1 - t) * log_not_p), reduction, "binary_cross_entropy")


class BinaryCrossEntropyWithLogits(Function):
    """max(x, 0) - x t + log(1 + exp(-|x|)): finite for logits of any size."""

    name = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(ctx, x, t):
        ctx.save_for_backward(x, t)
        return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved
        need_x, need_t = ctx.needs_input_grad
        return (grad * (dual.sigmoid(x) - t) if need_x else None), (-grad * x if need_t else None)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """Binary cross-entropy of sigmoid(input), computed from the logits stably."""
    x = as_tensor(input)
    t = _same_shape(x, target, "binary_cross_entropy_with_logits")
    return reduce(BinaryCrossEntropyWithLogits.apply(x, t), reduction,
                  "binary_cross_entropy_with_logits")


class CrossEntropy(Function):
    """-log_softmax(logits)[i, label_i] per sample, as one node that keeps softmax."""

    name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, labels):
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(len(labels))
        one_hot = np.zeros_like(logits)
        one_hot[rows, labels] = 1.0
        ctx.save_for_backward(logits, exp / total, one_hot)
        return np.log(total[:, 0]) - shifted[rows, labels]

    @staticmethod
    def backward(ctx, grad):
        logits, probs, one_hot = ctx.saved
        if isinstance(logits, Tensor):   # create_graph: softmax must be part of the graph
            probs = logits.softmax(axis=1)
        return grad[:, None] * (probs - one_hot), None


def cross_entropy(input, target, reduction="mean"):
    """Softmax cross-entropy of logits ``(N, C)`` against integer labels ``(N,)``."""
    logits = as_tensor(input)
    labels = np.asarray(target.data if isinstance(target, Tensor) else target)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, C), not {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(
            f"cross_entropy: labels of shape {labels.shape} do not fit logits {logits.shape}")
    if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integer class indices, not {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {logits.shape[1]}), got "
            f"{labels.min()}..{labels.max()}")
    return reduce(CrossEntropy.apply(logits, labels), reduction, "cross_entropy")
