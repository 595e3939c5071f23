"""The base of every scheduler that ``step()`` moves: the rates set per parameter group, a
step that changes nothing when it fails, state_dict, and the checks of counts they share."""
from __future__ import annotations

import numbers

from typing import Any

from ...core.state import replayable
from ..optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses define ``get_lr()`` from ``last_epoch`` and the current rates."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        # PyTorch's ``initial_lr``: the first scheduler records each group's rate; a second one on
        # the same optimizer starts from it too, not from the rate the first one has scaled
        self.base_lrs = [group.setdefault("initial_lr", group["lr"]) for group in optimizer.param_groups]
        self.last_epoch = -1
        self._step_count = 0
        self._last_lr = list(self.base_lrs)
        self.step()

    @property
    def _initial(self):
        return self._step_count == 1

    @replayable
    def step(self, epoch: None = None) -> None:
        """Advance one epoch (or batch) and set the groups' learning rates."""
        if epoch is not None:
            raise TypeError(
                f"{type(self).__name__}.step() takes no epoch (PyTorch deprecates step(epoch) but "
                f"for CosineAnnealingWarmRestarts, the one autonet offers it on): call step() once "
                f"per epoch or batch; to resume mid-schedule, use state_dict() / load_state_dict()")
        self._advance()

    def _advance(self):
        """``step()``'s work; schedulers that step others call this (one replayed call, not two)."""
        self._move_to(self.last_epoch + 1, self.get_lr)

    def _move_to(self, epoch, rates):
        """Count one step, to ``epoch``, and set the groups' rates to ``rates()`` (computed at
        that epoch); on an error nothing has changed."""
        counters = self._step_count, self.last_epoch
        self._step_count, self.last_epoch = self._step_count + 1, epoch
        try:
            computed = rates()
        except BaseException:
            self._step_count, self.last_epoch = counters
            raise
        self._set(computed)

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def closed_form(self) -> list[float]:
        """The rates at ``last_epoch`` straight from the initial ones (what PyTorch's
        ``step(epoch)`` sets); schedulers without one repeat ``get_lr()``."""
        return self.get_lr()

    def _restart(self):
        """Start the schedule again at step 0, from the initial rates (``SequentialLR``'s
        milestones; PyTorch's ``step(0)``)."""
        self._move_to(0, self.closed_form)

    def _initial_rates(self):
        """``base_lrs``, one per parameter group: ``ValueError`` (PyTorch's is a zip's) where a
        group was added after this scheduler was made, which has no initial rate here."""
        groups = len(self.optimizer.param_groups)
        if groups != len(self.base_lrs):
            raise ValueError(
                f"{type(self).__name__}: the optimizer has {groups} parameter groups, but this "
                f"scheduler was made for {len(self.base_lrs)}; its rule starts from each group's "
                f"initial rate, which a group added with add_param_group since has not here: make "
                f"the scheduler after the last add_param_group")
        return self.base_lrs

    def _set(self, rates):
        for group, lr in zip(self.optimizer.param_groups, rates):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (and functions, which cannot be saved)."""
        return {key: value for key, value in vars(self).items()
                if key != "optimizer" and not callable(value) and key != "lr_lambdas"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``; its keys must be this scheduler's (``ValueError``)."""
        expected = set(self.state_dict())
        if set(state_dict) != expected:
            raise ValueError(f"load_state_dict: {type(self).__name__} takes keys {sorted(expected)}, "
                             f"not {sorted(state_dict)}")
        vars(self).update(state_dict)


def _integer(value):
    """``value`` as a Python int when it is an integer (a NumPy one too, as PyTorch takes
    ``np.int64(10)``); None for anything else (a float, a bool, a string)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return None


def _positive_int(value, name):
    number = _integer(value)
    if number is None or number <= 0:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return number
