"""Learning-rate schedulers, PyTorch's recurrences step for step.

A scheduler sets each parameter group's ``lr`` when it is made (its step 0)
and on every ``step()``; call ``step()`` after ``optimizer.step()``, once per
epoch or per batch as the schedule is meant. Inside ``autonet.compile`` a
``scheduler.step()`` is replayed on every call.

>>> import autonet
>>> from autonet.optim import SGD, lr_scheduler
>>> w = autonet.Tensor([1.0], requires_grad=True)
>>> optimizer = SGD([w], lr=0.1)
>>> scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
>>> for _ in range(4):
...     optimizer.step()
...     scheduler.step()
>>> scheduler.get_last_lr()
[0.025]
"""
from __future__ import annotations

import bisect
import collections
import math
import numbers

from typing import Any, Callable, Sequence

from ..core.state import replayable
from .optimizer import Optimizer


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


class LambdaLR(LRScheduler):
    """Rates ``base_lr * lr_lambda(step)``; ``lr_lambda`` is a function or one per group."""

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | list[Callable[[int], float]]
                 | tuple[Callable[[int], float], ...]) -> None:
        self.lr_lambdas = _lambdas(lr_lambda, optimizer, type(self).__name__)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch) for base, f in zip(self._initial_rates(), self.lr_lambdas)]


def _lambdas(lr_lambda, optimizer, owner):
    """``lr_lambda`` as one function per parameter group (``ValueError`` otherwise)."""
    groups = len(optimizer.param_groups)
    lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * groups
    if len(lambdas) != groups or not all(callable(f) for f in lambdas):
        raise ValueError(f"{owner}: lr_lambda must be a function or {groups} functions")
    return lambdas


class MultiplicativeLR(LRScheduler):
    """Multiply each group's rate by ``lr_lambda(step)`` on every step (a function or one per
    group), as PyTorch's."""

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | list[Callable[[int], float]]
                 | tuple[Callable[[int], float], ...]) -> None:
        self.lr_lambdas = _lambdas(lr_lambda, optimizer, type(self).__name__)
        super().__init__(optimizer)

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
        base_lrs = _per_group(base_lr, "base_lr", groups)
        self.max_lrs = _per_group(max_lr, "max_lr", groups)
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
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("CyclicLR: cycle_momentum needs an optimizer with momentum or betas; "
                                 "pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group(base_momentum, "base_momentum", groups)
            self.max_momentums = _per_group(max_momentum, "max_momentum", groups)
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


def _per_group(value, name, groups):
    """``value`` as one number per parameter group (a list of that length, or one number)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * len(groups)
    if len(values) != len(groups):
        raise ValueError(f"CyclicLR: {name} must be a number or {len(groups)} numbers, not {value!r}")
    return values


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
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"OneCycleLR: max_lr must be a number or {len(groups)} numbers, not {max_lr!r}")
        self.anneal = _cosine_anneal if anneal_strategy == "cos" else _linear_anneal
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or "
                                 "betas; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
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
