"""The general class-index losses behind ``cross_entropy`` and ``nll_loss``: class weights,
``ignore_index``, label smoothing, ``(N, C, d1, ...)`` inputs, and class-probability targets,
all as PyTorch computes them.

``cross_entropy``'s plain case (``(N, C)`` logits, no weight, no smoothing, no ignored label)
stays one ``CrossEntropy`` node in ``functional``, which the fused backend lowers.
"""
from __future__ import annotations

import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..ops import generic


def checked_labels(labels, classes, ignore_index, op):
    """Integer labels, each in ``[0, classes)`` or ``ignore_index`` (``ValueError`` otherwise);
    whole-number floats are labels too (``Tensor([0, 2])`` is float64)."""
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{op}: labels must be finite class indices, got "
                             f"{labels[~np.isfinite(labels)][0]}")
        if not np.all(labels == np.round(labels)):
            raise TypeError(f"{op}: labels must be integer class indices (whole-number floats "
                            f"are accepted), not {labels.dtype} values such as 0.5; for "
                            f"class probabilities pass a target of the input's shape")
    kept = labels != ignore_index
    generic.check_labels(labels[kept], classes, op)
    return labels.astype(np.int64) if labels.dtype.kind == "f" else labels


class ClassNLL(Function):
    """The negative log-likelihood of log-probabilities ``(N, C, d1, ...)`` at integer labels
    ``(N, d1, ...)``, PyTorch's ``nll_loss`` and label-smoothed ``cross_entropy``, reduced.

    Each element's loss is ``-sum_c mass[c] * log_probs[c]`` with ``mass = (1 - s) w[c] [c = y]
    + s / C w[c]`` (``s`` the smoothing, ``w`` the class weights), 0 where ``y`` is
    ``ignore_index``; ``"mean"`` divides the sum by ``sum w[y]`` over the labels kept (NaN, with
    a zero gradient, when every label is ignored, as PyTorch). The weights are constants (no gradient), as PyTorch's.
    """

    name = "nll_loss"

    @staticmethod
    def forward(ctx, log_probs, labels, weight, ignore_index, smoothing, reduction, op):
        classes = log_probs.shape[1]
        labels = checked_labels(labels, classes, ignore_index, op)
        target_shape = (labels.shape[0], 1) + labels.shape[1:]
        class_axis = devices.arange(classes, labels).reshape((1, classes) + (1,) * (labels.ndim - 1))
        kept = (labels != ignore_index).reshape(target_shape)
        hits = (labels.reshape(target_shape) == class_axis) & kept   # ignore_index may be a class
        w = 1.0 if weight is None else weight.astype(log_probs.dtype).reshape(class_axis.shape)
        mass = hits * ((1.0 - smoothing) * w)
        if smoothing:
            mass = mass + kept * (smoothing / classes * w)
        used = kept if smoothing else hits   # elements that count: log(0) elsewhere stays out
        mass = np.where(used, mass, 0.0).astype(log_probs.dtype)
        with np.errstate(invalid="ignore"):   # -inf * 0 where unused: replaced by the where
            losses = -np.where(used, log_probs * mass, 0.0).sum(axis=1)
        if reduction == "none":
            ctx.save_for_backward(mass)
            ctx.target_shape = target_shape
            return losses
        total = losses.sum(keepdims=True).reshape(())
        if reduction == "mean":
            count = (hits * w).sum()   # sum of w[y] over the labels kept
            with np.errstate(invalid="ignore", divide="ignore"):
                total = total / count
            # every label ignored: the loss is NaN (0 / 0) but the gradient 0, as PyTorch's
            mass = mass / count if count != 0 else mass
        ctx.save_for_backward(mass)
        ctx.target_shape = None
        return total.astype(log_probs.dtype)

    @staticmethod
    def backward(ctx, grad):
        (mass,) = ctx.saved
        if ctx.target_shape is not None:
            grad = grad.reshape(ctx.target_shape)
        return -grad * generic.value(mass), None
