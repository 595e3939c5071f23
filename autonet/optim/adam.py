"""Adam and AdamW, PyTorch's update rules to the letter (amsgrad too)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..core.tensor import Tensor
from ..core.types import Array
from .optimizer import FusedStep, Optimizer, ParamsLike


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

    def state_shapes(self, param: Tensor, group: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
        shapes = {"step": (), "exp_avg": param.shape, "exp_avg_sq": param.shape}
        if (self.group_of(param) if group is None else group)["amsgrad"]:
            shapes["max_exp_avg_sq"] = param.shape
        return shapes

    host_state = ("step",)   # read in Python each step: kept on the host, as PyTorch keeps it

    decoupled = False   # AdamW: weight decay shrinks the parameter, not the gradient

    def update(self, param: Tensor, grad: Array, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not state:
            state["step"] = np.array(0.0)
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data)
        state["step"] += 1
        moments = [state["exp_avg"], state["exp_avg_sq"]] + ([state["max_exp_avg_sq"]] if group["amsgrad"] else [])
        adam_step(param.data, grad, moments, _numbers(group, float(state["step"])), group, self.decoupled)

    def fused_step(self, params: Sequence[Tensor]) -> FusedStep | None:
        """Adam's step inside a fused kernel, from :func:`adam_step` itself: the per-call numbers
        (learning rate and bias corrections, :func:`_numbers`) are computed in Python as eager
        mode computes them and cast to the parameter's dtype as NumPy casts a Python float;
        betas, eps, weight_decay and amsgrad are written into the kernel and must stay as
        traced. Applies from the second step on (the first makes the state)."""
        if type(self).step is not Optimizer.step or type(self).update is not Adam.update:
            return None
        groups = {id(p): number for number, group in enumerate(self.param_groups) for p in group["params"]}
        if len(params) != len(groups) or any(id(p) not in groups or p.ndim == 0 for p in params):
            return None
        owners = [self.param_groups[groups[id(p)]] for p in params]
        amsgrad = owners[0]["amsgrad"]
        if any(group["amsgrad"] != amsgrad for group in owners):
            return None
        state = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        decoupled = self.decoupled

        def numbers():
            states = self.state
            values = []
            for p, group in zip(params, owners):
                held = states.get(p)
                values += _numbers(group, float(held["step"]) + 1 if held else 1.0)
            return values

        def formula(k, param, grad, values, arrays):
            cast = [value.astype(param.dtype) for value in values]
            adam_step(param, grad, arrays, cast, owners[k], decoupled)

        return FusedStep(self, params, formula, numbers=numbers, count=3 * len(params), state=state,
                         fixed=("betas", "eps", "weight_decay", "amsgrad"))

    def finish_step(self) -> None:
        super().finish_step()
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["step"] += 1


def _numbers(group, step):
    """Adam's numbers for step ``step``, Python floats as eager mode computes them: the decoupled
    decay factor, the step size and the second moment's bias correction."""
    beta1, beta2 = group["betas"]
    return [1 - group["lr"] * group["weight_decay"], group["lr"] / (1 - beta1 ** step),
            math.sqrt(1 - beta2 ** step)]


def adam_step(param, grad, moments, numbers, group, decoupled):
    """Adam's arithmetic on one parameter, in place: run by eager mode (on ndarrays and Python
    floats) and, on symbolic arrays, by the fused kernel. ``moments``: ``exp_avg``,
    ``exp_avg_sq`` (and ``max_exp_avg_sq`` with amsgrad)."""
    shrink, step_size, correction = numbers
    beta1, beta2 = group["betas"]
    if group["weight_decay"] and decoupled:
        param *= shrink
    elif group["weight_decay"]:
        grad = grad + group["weight_decay"] * param
    exp_avg, exp_avg_sq = moments[0], moments[1]
    exp_avg += (1 - beta1) * (grad - exp_avg)          # torch.lerp for weight < 0.5
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * (grad * grad)
    if len(moments) == 3:
        np.maximum(moments[2], exp_avg_sq, out=moments[2])
        exp_avg_sq = moments[2]
    denominator = np.sqrt(exp_avg_sq) / correction + group["eps"]
    param -= step_size * (exp_avg / denominator)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before Adam's step
    (PyTorch's AdamW)."""

    decoupled = True

    def __init__(self, params: ParamsLike, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
