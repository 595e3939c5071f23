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
from .base import LRScheduler
from .rules import (ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, ExponentialLR, LambdaLR,
                    LinearLR, MultiplicativeLR, MultiStepLR, PolynomialLR, StepLR)
from .cycles import CyclicLR, OneCycleLR
from .plateau import ReduceLROnPlateau
from .combined import SequentialLR, ChainedScheduler

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "LambdaLR",
           "MultiplicativeLR", "ConstantLR", "PolynomialLR", "CosineAnnealingWarmRestarts", "CyclicLR",
           "OneCycleLR", "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"]
