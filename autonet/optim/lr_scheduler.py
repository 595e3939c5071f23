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
import math

from ..core.state import replayable


class LRScheduler:
    """Base class: subclasses define ``get_lr()`` from ``last_epoch`` and the current rates."""

    def __init__(self, optimizer):
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
    def step(self):
        """Advance one epoch (or batch) and set the groups' learning rates."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self):
        raise NotImplementedError

    def _current(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (and functions, which cannot be saved)."""
        return {key: value for key, value in vars(self).items()
                if key != "optimizer" and not callable(value) and key != "lr_lambdas"}

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()``; its keys must be this scheduler's (``ValueError``)."""
        expected = set(self.state_dict())
        if set(state_dict) != expected:
            raise ValueError(f"load_state_dict: {type(self).__name__} takes keys {sorted(expected)}, "
                             f"not {sorted(state_dict)}")
        vars(self).update(state_dict)


def _positive_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return value


class StepLR(LRScheduler):
    """Multiply the rates by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size, self.gamma = _positive_int(step_size, "step_size"), gamma
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return self._current()
        return [lr * self.gamma for lr in self._current()]


class ExponentialLR(LRScheduler):
    """Multiply the rates by ``gamma`` on every step."""

    def __init__(self, optimizer, gamma):
        self.gamma = gamma
        super().__init__(optimizer)

    def get_lr(self):
        return self._current() if self._initial else [lr * self.gamma for lr in self._current()]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the initial rate down to ``eta_min`` over ``T_max`` steps (and back up),
    by PyTorch's recurrence (not the closed form: the two differ in the last bits)."""

    def __init__(self, optimizer, T_max, eta_min=0.0):  # noqa: N803 - PyTorch's name
        self.T_max, self.eta_min = _positive_int(T_max, "T_max"), eta_min
        super().__init__(optimizer)

    def get_lr(self):
        if self._initial:
            return self._current()
        t, period, low = self.last_epoch, self.T_max, self.eta_min
        if (t - 1 - period) % (2 * period) == 0:
            return [lr + (base - low) * (1 - math.cos(math.pi / period)) / 2
                    for lr, base in zip(self._current(), self.base_lrs)]
        return [(1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
                * (lr - low) + low for lr in self._current()]


class LinearLR(LRScheduler):
    """Scale the rates linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("LinearLR: start_factor must lie in (0, 1] and end_factor in [0, 1]")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = _positive_int(total_iters, "total_iters")
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current()]
        if self.last_epoch > self.total_iters:
            return self._current()
        change = self.end_factor - self.start_factor
        factor = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [lr * factor for lr in self._current()]


class LambdaLR(LRScheduler):
    """Rates ``base_lr * lr_lambda(step)``; ``lr_lambda`` is a function or one per group."""

    def __init__(self, optimizer, lr_lambda):
        groups = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * groups
        if len(lambdas) != groups or not all(callable(f) for f in lambdas):
            raise ValueError(f"LambdaLR: lr_lambda must be a function or {groups} functions")
        self.lr_lambdas = lambdas
        super().__init__(optimizer)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]
