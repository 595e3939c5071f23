"""ReduceLROnPlateau: stepped with a metric, not by a count."""
from __future__ import annotations

import math
import numbers

from typing import Any, Sequence

from ...core.state import replayable
from ..optimizer import Optimizer
from .base import LRScheduler


class ReduceLROnPlateau:
    """Multiply the rates by ``factor`` once a metric has not improved for ``patience`` steps
    (PyTorch's rule: ``threshold`` relative or absolute, then ``cooldown`` steps of rest, never
    below ``min_lr``, no change smaller than ``eps``). Call ``step(metric)`` with a number.

    >>> import autonet
    >>> from autonet.optim import SGD
    >>> optimizer = SGD([autonet.Tensor([1.0], requires_grad=True)], lr=1.0)
    >>> plateau = ReduceLROnPlateau(optimizer, patience=1, factor=0.5)
    >>> for loss in [3.0, 2.0, 2.0, 2.0]:
    ...     plateau.step(loss)
    >>> plateau.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> None:
        if not factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, not {factor!r}")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max' and threshold_mode "
                             f"'rel' or 'abs', not {mode!r} and {threshold_mode!r}")
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        if len(min_lrs) != len(groups):
            raise ValueError(f"ReduceLROnPlateau: min_lr must be a number or {len(groups)} numbers")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown, self.eps = threshold, threshold_mode, cooldown, eps
        self.min_lrs = min_lrs
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr   # PyTorch's name
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]

    def _better(self, value):
        if self.mode == "min":
            bound = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return value < bound
        bound = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return value > bound

    @replayable
    def step(self, metrics: float) -> None:
        """Record one value of the watched metric and reduce the rates if it has stalled."""
        value = float(metrics)
        self._match_groups()
        self.last_epoch += 1
        if self._better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, low in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, low)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _match_groups(self):
        """PyTorch's rule for groups added with ``add_param_group`` after this scheduler was
        made: a single ``min_lr`` applies to them too (they were never reduced); one ``min_lr``
        per group has none for them (``RuntimeError``, before anything changes)."""
        groups = len(self.optimizer.param_groups)
        if groups == len(self.min_lrs):
            return
        if self.default_min_lr is None:
            raise RuntimeError(
                f"ReduceLROnPlateau: the optimizer has {groups} parameter groups but min_lr gives "
                f"{len(self.min_lrs)} (a group was added after the scheduler was made): set "
                f"scheduler.min_lrs to {groups} rates, or make the scheduler after add_param_group")
        self.min_lrs = [self.default_min_lr] * groups

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if key != "optimizer"}

    load_state_dict = LRScheduler.load_state_dict
