"""Schedulers made of others: SequentialLR (one after another) and ChainedScheduler (all at
once, their factors multiplying)."""
from __future__ import annotations

import bisect

from typing import Any, Sequence

from ..optimizer import Optimizer
from .base import LRScheduler


def _refuse_plateau(schedulers, owner):
    """PyTorch's refusal: a scheduler stepped with a metric (ReduceLROnPlateau), or anything but
    an LRScheduler, cannot be stepped by another (it failed at the milestone, mid-training)."""
    for number, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise ValueError(f"{owner}: schedulers[{number}] is a {type(scheduler).__name__}, which "
                             f"{owner} cannot step (ReduceLROnPlateau needs the metric: step it "
                             f"yourself)")


def _undo_first_step(scheduler):
    """Take back the step a scheduler took when it was made, as PyTorch's ``recursive_undo``:
    those of a ChainedScheduler or SequentialLR inside, not its own count."""
    inner = getattr(scheduler, "_schedulers", None)
    if inner is None:
        scheduler.last_epoch -= 1
    for each in inner or ():
        _undo_first_step(each)


class SequentialLR(LRScheduler):
    """``schedulers`` one after another: the first until ``milestones[0]``, the next restarted
    from step 0 there, and so on (PyTorch's, e.g. a ``LinearLR`` warmup then a cosine)."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int]) -> None:
        schedulers, milestones = list(schedulers), list(milestones)
        _refuse_plateau(schedulers, "SequentialLR")
        if not schedulers or any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("SequentialLR: every scheduler must belong to the optimizer given")
        if len(milestones) != len(schedulers) - 1 or milestones != sorted(milestones):
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} "
                             f"increasing milestones, not {milestones!r}")
        self.optimizer, self._schedulers, self._milestones = optimizer, schedulers, milestones
        self.last_epoch = 0
        for group in optimizer.param_groups:   # undo the schedulers' own first steps
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            _undo_first_step(scheduler)
        first = schedulers[bisect.bisect_right(milestones, 0)]   # a milestone 0 skips the first
        first._step_count = 0
        first._advance()
        self._last_lr = first.get_last_lr()

    def _advance(self):
        epoch = self.last_epoch + 1
        number = bisect.bisect_right(self._milestones, epoch)
        scheduler = self._schedulers[number]
        if number > 0 and self._milestones[number - 1] == epoch:
            scheduler._restart()
        else:
            scheduler._advance()
        self.last_epoch, self._last_lr = epoch, scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "_milestones": list(self._milestones),
                "_last_lr": list(self._last_lr), "_schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if set(state_dict) != set(self.state_dict()) or len(state_dict["_schedulers"]) != len(self._schedulers):
            raise ValueError(f"load_state_dict: {type(self).__name__} takes keys {sorted(self.state_dict())} "
                             f"with {len(self._schedulers)} schedulers' states")
        for scheduler, saved in zip(self._schedulers, state_dict["_schedulers"]):
            scheduler.load_state_dict(saved)
        self.last_epoch, self._milestones = state_dict["last_epoch"], list(state_dict["_milestones"])
        self._last_lr = list(state_dict["_last_lr"])


class ChainedScheduler(SequentialLR):
    """Step every one of ``schedulers`` on each ``step()``, in order, so their factors multiply
    (PyTorch's; the schedulers must be chainable: each scales the current rate)."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("ChainedScheduler: give at least one scheduler")
        _refuse_plateau(schedulers, "ChainedScheduler")
        optimizer = optimizer or schedulers[0].optimizer
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("ChainedScheduler: every scheduler must belong to the same optimizer")
        self.optimizer, self._schedulers, self._milestones = optimizer, schedulers, []
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _advance(self):
        """Each scheduler's step, in order; when one fails, those before it are taken back too
        (the groups' settings and the schedulers' states), so that nothing has changed."""
        groups = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
        states = [scheduler.state_dict() for scheduler in self._schedulers]
        try:
            for scheduler in self._schedulers:
                scheduler._advance()
        except BaseException:
            for group, saved in zip(self.optimizer.param_groups, groups):
                group.update(saved)
            for scheduler, saved in zip(self._schedulers, states):
                scheduler.load_state_dict(saved)
            raise
        self.last_epoch += 1
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
