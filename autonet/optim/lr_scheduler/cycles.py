"""Schedules that cycle the rate, and the momentum (or Adam's beta1) against it: CyclicLR and
OneCycleLR."""
from __future__ import annotations

import math
import numbers

from typing import Callable, Sequence

from ..optimizer import Optimizer
from .base import LRScheduler, _positive_int


class CyclicLR(LRScheduler):
    """Cyclical learning rates (PyTorch's): each cycle climbs from ``base_lr`` to ``max_lr`` over
    ``step_size_up`` steps and back over ``step_size_down`` (default: the same), the swing scaled
    by ``mode`` (``"triangular"``: 1, ``"triangular2"``: halved each cycle, ``"exp_range"``:
    ``gamma ** step``) or by ``scale_fn(cycle or step)`` per ``scale_mode``; with
    ``cycle_momentum`` the momentum (or Adam's beta1) moves the other way between
    ``max_momentum`` and ``base_momentum``. Numbers may be one per group. The groups' rates are
    set to ``base_lr`` when it is made; unlike PyTorch's, the groups get no ``base_momentum`` /
    ``max_momentum`` keys (the scheduler keeps them, so the optimizer's state_dict still loads)."""

    def __init__(self, optimizer: Optimizer, base_lr: float | Sequence[float], max_lr: float | Sequence[float],
                 step_size_up: float = 2000, step_size_down: float | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True, base_momentum: float | Sequence[float] = 0.8,
                 max_momentum: float | Sequence[float] = 0.9) -> None:
        groups = optimizer.param_groups
        base_lrs = _per_group(base_lr, "base_lr", groups, "CyclicLR")
        self.max_lrs = _per_group(max_lr, "max_lr", groups, "CyclicLR")
        down = step_size_up if step_size_down is None else step_size_down
        if not (step_size_up > 0 and down >= 0):   # NaN too; PyTorch divides by zero at 0
            raise ValueError(f"CyclicLR: step_size_up must be > 0 and step_size_down >= 0, not "
                             f"{step_size_up!r} and {step_size_down!r}")
        self.total_size = float(step_size_up) + float(down)
        self.step_ratio = float(step_size_up) / self.total_size
        if scale_fn is None:
            if mode not in _CYCLE_SCALES:
                raise ValueError(f"CyclicLR: mode must be one of {sorted(_CYCLE_SCALES)} (or pass scale_fn), "
                                 f"not {mode!r}")
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        elif scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"CyclicLR: scale_mode must be 'cycle' or 'iterations', not {scale_mode!r}")
        self.mode, self.gamma, self.scale_mode, self.scale_fn = mode, gamma, scale_mode, scale_fn
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _cycles_beta1(optimizer, "CyclicLR")
            self.base_momentums = _per_group(base_momentum, "base_momentum", groups, "CyclicLR")
            self.max_momentums = _per_group(max_momentum, "max_momentum", groups, "CyclicLR")
        for number, group in enumerate(groups):
            group["lr"] = base_lrs[number]
            if cycle_momentum:
                _set_momentum(group, self.max_momentums[number], self.use_beta1)
        super().__init__(optimizer)
        self.base_lrs = base_lrs   # after the first step, as PyTorch's

    def _scale(self, cycle):
        if self.scale_fn is not None:
            return self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        return _CYCLE_SCALES[self.mode](self, cycle)

    def get_lr(self) -> list[float]:
        self._initial_rates()   # no group added since
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        fraction = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self._scale(cycle)
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
                _set_momentum(group, high - (high - low) * fraction * scale, self.use_beta1)
        return [low + (high - low) * fraction * scale for low, high in zip(self.base_lrs, self.max_lrs)]


_CYCLE_SCALES = {"triangular": lambda scheduler, cycle: 1.0,
                 "triangular2": lambda scheduler, cycle: 1 / (2.0 ** (cycle - 1)),
                 "exp_range": lambda scheduler, cycle: scheduler.gamma ** scheduler.last_epoch}


def _per_group(value, name, groups, owner):
    """``value`` as one number per parameter group (a list of that length, or one number)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * len(groups)
    if len(values) != len(groups):
        raise ValueError(f"{owner}: {name} must be a number or {len(groups)} numbers, not {value!r}")
    return values


def _cycles_beta1(optimizer, owner):
    """Whether cycling the momentum moves Adam's beta1 (True) or SGD's momentum (False);
    ``ValueError`` for an optimizer with neither."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(f"{owner}: cycle_momentum needs an optimizer with momentum or betas; "
                         f"pass cycle_momentum=False")
    return "betas" in optimizer.defaults


def _set_momentum(group, momentum, use_beta1):
    """Set a group's momentum, or its beta1 (Adam's)."""
    if use_beta1:
        group["betas"] = (momentum,) + tuple(group["betas"][1:])
    else:
        group["momentum"] = momentum


class OneCycleLR(LRScheduler):
    """The 1cycle policy (PyTorch's): the rate climbs from ``max_lr / div_factor`` to ``max_lr``
    over ``pct_start`` of ``total_steps`` (or ``epochs * steps_per_epoch``), then anneals to
    ``initial / final_div_factor`` (``"cos"`` or ``"linear"``; ``three_phase`` comes back to the
    initial rate first); with ``cycle_momentum`` the momentum (or Adam's beta1) moves the other way
    between ``max_momentum`` and ``base_momentum``. ``max_lr`` may be one number per group."""

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float] | tuple[float, ...],
                 total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: pass total_steps, or both epochs and steps_per_epoch")
            total_steps = _positive_int(epochs, "epochs") * _positive_int(steps_per_epoch, "steps_per_epoch")
        self.total_steps = _positive_int(total_steps, "total_steps")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must lie in [0, 1], not {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', not {anneal_strategy!r}")
        groups = optimizer.param_groups
        max_lrs = _per_group(max_lr, "max_lr", groups, "OneCycleLR")
        self.anneal = _cosine_anneal if anneal_strategy == "cos" else _linear_anneal
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _cycles_beta1(optimizer, "OneCycleLR")
        top = pct_start * self.total_steps
        if top == 1:   # the warm-up would end where it starts: PyTorch divides by zero there
            raise ValueError(f"OneCycleLR: pct_start * total_steps is 1 ({pct_start} * {self.total_steps}), "
                             f"which leaves the warm-up no step (PyTorch divides by zero); choose another pct_start")
        if three_phase:
            self.phases = [(top - 1, "initial", "max", "max_m", "base_m"),
                           (2 * top - 2, "max", "initial", "base_m", "max_m"),
                           (self.total_steps - 1, "initial", "min", "max_m", "max_m")]
        else:
            self.phases = [(top - 1, "initial", "max", "max_m", "base_m"),
                           (self.total_steps - 1, "max", "min", "base_m", "max_m")]
        self.points = [{"initial": peak / div_factor, "max": peak, "min": peak / div_factor / final_div_factor,
                        "max_m": max_momentum, "base_m": base_momentum} for peak in max_lrs]
        for group, points in zip(groups, self.points):
            group["initial_lr"] = points["initial"]   # as PyTorch's: the cycle's own start
            if cycle_momentum:
                _set_momentum(group, max_momentum, self.use_beta1)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        self._initial_rates()   # no group added since: the cycle has no points for one
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, past total_steps={self.total_steps}")
        rates = []
        for group, points in zip(self.optimizer.param_groups, self.points):
            start = 0.0
            for number, (end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(self.phases):
                if step <= end or number == len(self.phases) - 1:
                    fraction = (step - start) / (end - start)
                    rates.append(self.anneal(points[lr_from], points[lr_to], fraction))
                    if self.cycle_momentum:
                        _set_momentum(group, self.anneal(points[momentum_from], points[momentum_to], fraction),
                                      self.use_beta1)
                    break
                start = end
        return rates


def _cosine_anneal(start, end, fraction):
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


def _linear_anneal(start, end, fraction):
    return (end - start) * fraction + start
