"""Loss modules; each takes ``reduction='mean' | 'sum' | 'none'`` and PyTorch's options."""
from __future__ import annotations
from typing import Any, Callable

from . import functional as F
from .module import Module
from ..core.tensor import Tensor, TensorLike


class _Loss(Module):
    """A loss module: ``function(input, target, reduction=..., **options)``; options are the
    keywords after ``reduction`` (PyTorch's ``weight`` may come first, by position)."""

    function: Callable[..., Any] = None  # type: ignore[assignment]  # each subclass sets it
    reductions: tuple[str, ...] = F.REDUCTIONS

    def __init__(self, reduction: str = "mean", **options: Any) -> None:
        super().__init__()
        if reduction not in self.reductions:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {self.reductions}, not {reduction!r}")
        if isinstance(options.get("weight"), str):   # CrossEntropyLoss("sum"): PyTorch's order
            raise TypeError(f"{type(self).__name__}: the first argument is weight, as in PyTorch; "
                            f"pass reduction={options['weight']!r} by keyword")
        self.reduction = reduction
        self.options = options

    def forward(self, input: TensorLike, target: TensorLike) -> Tensor:
        return type(self).function(input, target, reduction=self.reduction, **self.options)

    def extra_repr(self) -> str:
        return ", ".join([f"reduction={self.reduction!r}"] + [
            f"{key}={value!r}" for key, value in self.options.items() if key != "weight"])


class MSELoss(_Loss):
    """Mean squared error between predictions and targets of the same shape."""

    function = staticmethod(F.mse_loss)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities against 0/1 targets (PyTorch's ``weight`` first)."""

    function = staticmethod(F.binary_cross_entropy)

    def __init__(self, weight: TensorLike | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction, weight=weight)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of sigmoid(logits), computed stably from the logits (PyTorch's
    ``weight`` and ``pos_weight``)."""

    function = staticmethod(F.binary_cross_entropy_with_logits)

    def __init__(self, weight: TensorLike | None = None, reduction: str = "mean",
                 pos_weight: TensorLike | None = None) -> None:
        super().__init__(reduction, weight=weight, pos_weight=pos_weight)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits ``(N, C, ...)`` against integer labels or class
    probabilities (see ``functional.cross_entropy``)."""

    function = staticmethod(F.cross_entropy)

    def __init__(self, weight: TensorLike | None = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities ``(N, C, ...)`` against integer labels."""

    function = staticmethod(F.nll_loss)

    def __init__(self, weight: TensorLike | None = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(reduction, weight=weight, ignore_index=ignore_index)


class L1Loss(_Loss):
    """Mean absolute error between predictions and targets of the same shape."""

    function = staticmethod(F.l1_loss)


class HuberLoss(_Loss):
    """Squared error near 0, absolute error beyond ``delta``."""

    function = staticmethod(F.huber_loss)

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        if not delta > 0:
            raise ValueError(f"HuberLoss: delta must be > 0, not {delta}")
        super().__init__(reduction, delta=delta)


class SmoothL1Loss(_Loss):
    """PyTorch's smooth L1: squared (over ``beta``) near 0, absolute beyond ``beta``."""

    function = staticmethod(F.smooth_l1_loss)

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        if not beta >= 0:
            raise ValueError(f"SmoothL1Loss: beta must be >= 0, not {beta}")
        super().__init__(reduction, beta=beta)


class KLDivLoss(_Loss):
    """KL divergence of log-probabilities from a target (``reduction="batchmean"`` too)."""

    function = staticmethod(F.kl_div)
    reductions = F.REDUCTIONS + ("batchmean",)

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction, log_target=log_target)


class _PairLoss(_Loss):
    """A loss of two inputs and a target of 1 or -1 per pair, with a ``margin``."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction, margin=margin)

    def forward(self, input1: TensorLike, input2: TensorLike,  # type: ignore[override]
                target: TensorLike) -> Tensor:
        return type(self).function(input1, input2, target, reduction=self.reduction, **self.options)


class CosineEmbeddingLoss(_PairLoss):
    """``1 - cos`` for pairs marked 1, ``max(0, cos - margin)`` for pairs marked -1."""

    function = staticmethod(F.cosine_embedding_loss)


class MarginRankingLoss(_PairLoss):
    """``max(0, -target (input1 - input2) + margin)``."""

    function = staticmethod(F.margin_ranking_loss)
