"""Adam and AdamW, PyTorch's update rules to the letter (amsgrad too)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..core.tensor import Tensor
from ..core.types import Array
from .optimizer import Optimizer, ParamsLike


class Adam(Optimizer):
    """Adam: ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2``,
    ``p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.

    ``weight_decay`` adds ``weight_decay * p`` to the gradient first (PyTorch's Adam). With
    ``amsgrad`` the denominator uses the running maximum of ``v`` (state ``max_exp_avg_sq``).
    """

    def __init__(self, params: ParamsLike, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        super().check_hyperparameters(group)
        beta1, beta2 = group["betas"]
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {group['betas']}")
        if not (group["eps"] >= 0 and group["weight_decay"] >= 0):   # NaN fails too, as PyTorch's
            raise ValueError(f"eps and weight_decay must be >= 0, got {group['eps']} and "
                             f"{group['weight_decay']}")

    def state_shapes(self, param: Tensor) -> dict[str, tuple[int, ...]]:
        shapes = {"step": (), "exp_avg": param.shape, "exp_avg_sq": param.shape}
        if self.group_of(param)["amsgrad"]:
            shapes["max_exp_avg_sq"] = param.shape
        return shapes

    host_state = ("step",)   # read in Python each step: kept on the host, as PyTorch keeps it

    decoupled = False   # AdamW: weight decay shrinks the parameter, not the gradient

    def update(self, param: Tensor, grad: Array, group: dict[str, Any], state: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        if group["weight_decay"] and self.decoupled:
            param.data *= 1 - group["lr"] * group["weight_decay"]
        elif group["weight_decay"]:
            grad = grad + group["weight_decay"] * param.data
        if not state:
            state["step"] = np.array(0.0)
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data)
        state["step"] += 1
        step = float(state["step"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)          # torch.lerp for weight < 0.5
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        step_size = group["lr"] / (1 - beta1 ** step)
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]
        denominator = np.sqrt(exp_avg_sq) / math.sqrt(1 - beta2 ** step) + group["eps"]
        param.data -= step_size * (exp_avg / denominator)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before Adam's step
    (PyTorch's AdamW)."""

    decoupled = True

    def __init__(self, params: ParamsLike, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
