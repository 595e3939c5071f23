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


class BinaryCrossEntropy(Function):
    """-(t log p + (1 - t) log(1 - p)) with logs clamped at -100, PyTorch's rule to the letter.

    Its gradient ``(p - t) / max(p (1 - p), 1e-12)`` stays large where a
    prediction is saturated and wrong (p = 0, t = 1 gives -1e12), so training
    can recover; a clamped log would give exactly 0 there.
    """

    name = "binary_cross_entropy"

    @staticmethod
    def forward(ctx, p, t):
        ctx.save_for_backward(p, t)
        log_p, log_not_p = _clamped_logs(p)
        return -(t * log_p + (1 - t) * log_not_p)

    @staticmethod
    def backward(ctx, grad):
        p, t = ctx.saved
        need_p, need_t = ctx.needs_input_grad
        grad_p = grad * (p - t) / np.maximum(p * (1 - p), _BCE_EPSILON) if need_p else None
        grad_t = None
        if need_t:
            log_p, log_not_p = _clamped_logs(p)
            grad_t = grad * (log_not_p - log_p)
        return grad_p, grad_t


_BCE_EPSILON = 1e-12


def _clamped_logs(p):
    """log p and log(1 - p), each at least -100 (ndarrays, or Tensors under create_graph)."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), -100.0), np.maximum(np.log(1 - p), -100.0)


def binary_cross_entropy(input, target, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p; logs clamped at -100."""
    p = as_tensor(input)
    t = _same_shape(p, target, "binary_cross_entropy")
    return reduce(BinaryCrossEntropy.apply(p, t), reduction, "binary_cross_entropy")


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


_FLOAT_LABELS = ("cross_entropy: labels must be integer class indices (whole-number floats "
                 "are accepted), not {} values such as 0.5")


class CrossEntropy(Function):
    """-log_softmax(logits)[i, label_i] per sample, as one node that keeps softmax."""

    name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, labels):
        # Tensor([0, 2]) holds float64 (autonet's default), so whole-number floats are labels
        # too; any other float would be a class probability in PyTorch, which autonet does not
        # take. Checked here, so compiled replays check it too.
        if labels.dtype.kind == "f":
            if not np.all(labels == np.round(labels)):
                raise TypeError(_FLOAT_LABELS.format(labels.dtype))
            labels = labels.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):   # here, so
            raise ValueError(                                  # compiled replays check it too
                f"cross_entropy: labels must lie in [0, {logits.shape[1]}), got "
                f"{labels.min()}..{labels.max()}")
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
    """Softmax cross-entropy of logits ``(N, C)`` against integer labels ``(N,)``.

    Labels may be ints, or floats with whole values (``Tensor([0, 2])`` is
    float64); other floats raise ``TypeError`` (they are not class indices).
    """
    logits = as_tensor(input)
    labels = np.asanyarray(target.data if isinstance(target, Tensor) else target)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, C), not {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(
            f"cross_entropy: labels of shape {labels.shape} do not fit logits {logits.shape}")
    if labels.dtype.kind not in "iuf":
        raise TypeError(_FLOAT_LABELS.format(labels.dtype))
    return reduce(CrossEntropy.apply(logits, labels), reduction, "cross_entropy")
