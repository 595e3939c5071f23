"""Schedules of one rule each, PyTorch's recurrences: a step multiplies the rates, or a closed
form of the step count gives them (StepLR to CosineAnnealingWarmRestarts)."""
from __future__ import annotations

import collections
import math

from typing import Callable, Sequence

from ...core.state import replayable
from ..optimizer import Optimizer
from .base import LRScheduler, _integer, _positive_int


class StepLR(LRScheduler):
    """Multiply the rates by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size, self.gamma = _positive_int(step_size, "step_size"), gamma
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return self._current()
        return [lr * self.gamma for lr in self._current()]

    def closed_form(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self._initial_rates()]


class MultiStepLR(LRScheduler):
    """Multiply the rates by ``gamma`` at each of the ``milestones`` (a milestone given twice
    multiplies twice, as PyTorch's)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1) -> None:
        given = list(milestones)
        steps = [_integer(m) for m in given]
        if not all(m is not None and m >= 0 for m in steps):
            raise ValueError(f"MultiStepLR: milestones must be ints >= 0, not {given!r}")
        self.milestones, self.gamma = collections.Counter(steps), gamma
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current()]

    def closed_form(self) -> list[float]:
        passed = sum(count for milestone, count in self.milestones.items() if milestone <= self.last_epoch)
        return [base * self.gamma ** passed for base in self._initial_rates()]


class ExponentialLR(LRScheduler):
    """Multiply the rates by ``gamma`` on every step."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = gamma
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return self._current() if self._initial else [lr * self.gamma for lr in self._current()]

    def closed_form(self) -> list[float]:
        return [base * self.gamma ** self.last_epoch for base in self._initial_rates()]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the initial rate down to ``eta_min`` over ``T_max`` steps (and back up),
    by PyTorch's recurrence (not the closed form: the two differ in the last bits)."""

    def __init__(self, optimizer: Optimizer, T_max: int,  # noqa: N803 - PyTorch's name
                 eta_min: float = 0.0) -> None:
        self.T_max, self.eta_min = _positive_int(T_max, "T_max"), eta_min
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        if self._initial:
            return self._current()
        t, period, low = self.last_epoch, self.T_max, self.eta_min
        if (t - 1 - period) % (2 * period) == 0:
            return [lr + (base - low) * (1 - math.cos(math.pi / period)) / 2
                    for lr, base in zip(self._current(), self._initial_rates())]
        return [(1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
                * (lr - low) + low for lr in self._current()]

    def closed_form(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self._initial_rates()]


class LinearLR(LRScheduler):
    """Scale the rates linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("LinearLR: start_factor must lie in (0, 1] and end_factor in [0, 1]")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = _positive_int(total_iters, "total_iters")
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current()]
        if self.last_epoch > self.total_iters:
            return self._current()
        change = self.end_factor - self.start_factor
        factor = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [lr * factor for lr in self._current()]

    def closed_form(self) -> list[float]:
        done = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * done)
                for base in self._initial_rates()]


class _OfFunctions(LRScheduler):
    """A schedule of ``lr_lambda``: a function of the step, or one per parameter group."""

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | list[Callable[[int], float]]
                 | tuple[Callable[[int], float], ...]) -> None:
        groups = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * groups
        if len(lambdas) != groups or not all(callable(f) for f in lambdas):
            raise ValueError(f"{type(self).__name__}: lr_lambda must be a function or {groups} functions")
        self.lr_lambdas = lambdas
        super().__init__(optimizer)


class LambdaLR(_OfFunctions):
    """Rates ``base_lr * lr_lambda(step)``; ``lr_lambda`` is a function or one per group."""

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch) for base, f in zip(self._initial_rates(), self.lr_lambdas)]


class MultiplicativeLR(_OfFunctions):
    """Multiply each group's rate by ``lr_lambda(step)`` on every step (a function or one per
    group), as PyTorch's."""

    def get_lr(self) -> list[float]:
        self._initial_rates()   # one function per group: none for a group added since
        if self._initial:
            return self._current()
        return [lr * f(self.last_epoch) for lr, f in zip(self._current(), self.lr_lambdas)]


class ConstantLR(LRScheduler):
    """Scale the rates by ``factor`` for the first ``total_iters`` steps, then restore them."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5) -> None:
        if not 0 < factor <= 1:   # PyTorch takes 0, then divides by it at total_iters
            raise ValueError(f"ConstantLR: factor must lie in (0, 1], not {factor!r}")
        self.factor, self.total_iters = factor, _positive_int(total_iters, "total_iters")
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current()]
        if self.last_epoch != self.total_iters:
            return self._current()
        return [lr * (1.0 / self.factor) for lr in self._current()]

    def closed_form(self) -> list[float]:
        restored = self.last_epoch >= self.total_iters
        return [base * (self.factor + restored * (1 - self.factor)) for base in self._initial_rates()]


class PolynomialLR(LRScheduler):
    """Decay the rates to 0 over ``total_iters`` steps as ``(1 - t / total_iters) ** power``."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0) -> None:
        self.total_iters, self.power = _positive_int(total_iters, "total_iters"), power
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        t, total = self.last_epoch, self.total_iters
        if self._initial or t > total:
            return self._current()
        factor = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [lr * factor for lr in self._current()]

    def closed_form(self) -> list[float]:
        left = 1.0 - min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * left ** self.power for base in self._initial_rates()]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine from the initial rate down to ``eta_min`` over ``T_0`` steps, then again from the
    initial rate, each period ``T_mult`` times the last (SGDR, PyTorch's). ``T_cur`` counts the
    steps since the last restart and ``T_i`` is the current period; ``step(epoch)`` jumps to
    ``epoch``, a fraction too (``step(epoch + batch / batches)`` per batch), by PyTorch's rule."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1,  # noqa: N803 - PyTorch's names
                 eta_min: float = 0.0) -> None:
        self.T_0 = _positive_int(T_0, "T_0")
        self.T_mult = _positive_int(T_mult, "T_mult")
        self.eta_min = eta_min
        self.T_i: float = self.T_0
        self.T_cur: float = -1
        super().__init__(optimizer)

    @replayable
    def step(self, epoch: float | None = None) -> None:
        """Advance one step, or jump to ``epoch`` (a number >= 0, a fraction too)."""
        if epoch is None:
            self._advance()
        else:
            self._jump(epoch)

    def _advance(self):
        """PyTorch's recurrence (the first step, or one after SequentialLR took it back, is epoch 0)."""
        if self.last_epoch < 0:
            return self._jump(0)
        since, period = self.T_cur + 1, self.T_i
        if since >= period:
            since, period = since % period, period * self.T_mult
        self._go(self.last_epoch + 1, since, period)

    def _restart(self):
        self._jump(0)

    def _jump(self, epoch):
        """PyTorch's ``step(epoch)``: the period holding ``epoch`` by its closed form."""
        if not epoch >= 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: epoch must be >= 0, not {epoch!r}")
        since, period = epoch, self.T_0
        if epoch >= self.T_0 and self.T_mult == 1:
            since, period = epoch % self.T_0, self.T_i
        elif epoch >= self.T_0:
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            since = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            period = self.T_0 * self.T_mult ** n
        self._go(math.floor(epoch), since, period)

    def _go(self, epoch, since, period):
        """Move to ``epoch`` at ``since`` steps into a period of ``period``; on an error nothing
        has changed."""
        saved = self.T_cur, self.T_i
        self.T_cur, self.T_i = since, period
        try:
            self._move_to(epoch, self.get_lr)
        except BaseException:
            self.T_cur, self.T_i = saved
            raise

    def get_lr(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base in self._initial_rates()]
