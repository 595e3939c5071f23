"""RMSprop and Adagrad, PyTorch's update rules to the letter."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.tensor import Tensor
from ..core.types import Array
from .optimizer import Optimizer, ParamsLike, require_non_negative


class RMSprop(Optimizer):
    """RMSprop: ``v = alpha v + (1 - alpha) g^2``; with ``centered``, ``m = lerp(m, g, 1 - alpha)``
    and ``v - m^2`` replaces ``v``; ``d = sqrt(v) + eps``; then ``p -= lr g / d``, or with
    ``momentum`` ``b = momentum b + g / d`` and ``p -= lr b``. ``weight_decay`` adds
    ``weight_decay * p`` to the gradient first.

    >>> import autonet
    >>> w = autonet.Tensor([1.0], requires_grad=True)
    >>> (w * 3.0).sum().backward()
    >>> optimizer = RMSprop([w], lr=0.01)
    >>> optimizer.step()
    >>> w.data.round(4)                    # 1 - 0.01 * 3 / sqrt(0.01 * 9)
    array([0.9])
    """

    def __init__(self, params: ParamsLike, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        super().check_hyperparameters(group)
        require_non_negative(group, "alpha", "eps", "weight_decay", "momentum")

    def state_shapes(self, param: Tensor, group: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
        group = self.group_of(param) if group is None else group
        shapes = {"step": (), "square_avg": param.shape}
        if group["momentum"] > 0:
            shapes["momentum_buffer"] = param.shape
        if group["centered"]:
            shapes["grad_avg"] = param.shape
        return shapes

    host_state = ("step",)

    def update(self, param: Tensor, grad: Array, group: dict[str, Any], state: dict[str, Any]) -> None:
        alpha = group["alpha"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param.data
        if not state:
            state["step"] = np.array(0.0)
            state["square_avg"] = np.zeros_like(param.data)
            if group["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(param.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(param.data)
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * (grad * grad)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)   # torch.lerp for weight < 0.5
            average = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            average = np.sqrt(square_avg)
        average += group["eps"]
        if group["momentum"] > 0:
            buffer = state["momentum_buffer"]
            buffer *= group["momentum"]
            buffer += grad / average
            param.data -= group["lr"] * buffer
        else:
            param.data -= group["lr"] * (grad / average)


class Adagrad(Optimizer):
    """Adagrad: ``s += g^2``, ``p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)`` at
    step ``t``; ``weight_decay`` adds ``weight_decay * p`` to the gradient first.

    >>> import autonet
    >>> w = autonet.Tensor([1.0], requires_grad=True)
    >>> (w * 2.0).sum().backward()
    >>> optimizer = Adagrad([w], lr=0.1)
    >>> optimizer.step()
    >>> w.data.round(6)                    # 1 - 0.1 * 2 / sqrt(4)
    array([0.9])
    """

    def __init__(self, params: ParamsLike, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 eps: float = 1e-10) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps))

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        super().check_hyperparameters(group)
        require_non_negative(group, "lr_decay", "weight_decay", "eps")

    def state_shapes(self, param: Tensor, group: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
        return {"step": (), "sum": param.shape}

    host_state = ("step",)

    def update(self, param: Tensor, grad: Array, group: dict[str, Any], state: dict[str, Any]) -> None:
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param.data
        if not state:
            state["step"] = np.array(0.0)
            state["sum"] = np.zeros_like(param.data)
        state["step"] += 1
        rate = group["lr"] / (1 + (float(state["step"]) - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        param.data -= rate * (grad / (np.sqrt(state["sum"]) + group["eps"]))
