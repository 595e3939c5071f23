"""Stochastic gradient descent, PyTorch's update rule to the letter."""

from __future__ import annotations

from typing import Any, Sequence

from ..core import device as devices
from ..core.tensor import Tensor
from ..core.types import Array
from .optimizer import FusedStep, Optimizer, ParamsLike


def descend(param, grad, lr):
    """``param -= lr * grad``, in place: SGD's last line, run by eager mode, the replay and (on
    symbolic arrays) the fused kernel alike. ``1 * grad`` is ``grad``: one NumPy call less."""
    param -= grad if type(lr) in _NUMBERS and lr == 1 else lr * grad


_NUMBERS = (int, float)


class SGD(Optimizer):
    """SGD with optional momentum, dampening, weight decay and Nesterov momentum.

    Per step, with g the gradient: ``g += weight_decay * p``; with momentum,
    ``buf = g`` on the first step, else ``buf = momentum * buf + (1 - dampening) * g``,
    and ``g = g + momentum * buf`` (nesterov) or ``g = buf``; then ``p -= lr * g``.
    """

    def __init__(self, params: ParamsLike, lr: float, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        super().check_hyperparameters(group)
        if not (group["momentum"] >= 0 and group["weight_decay"] >= 0):   # NaN fails too
            raise ValueError(f"momentum and weight_decay must be >= 0, got {group['momentum']} and "
                             f"{group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening 0")

    def state_shapes(self, param: Tensor, group: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
        return {"momentum_buffer": param.shape}

    def update(self, param: Tensor, grad: Array, group: dict[str, Any], state: dict[str, Any]) -> None:
        momentum = group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param.data
        if momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:   # an array even for a 0-d parameter, so *= below writes into it
                buffer = state["momentum_buffer"] = devices.copy(grad)
            else:
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        descend(param.data, grad, group["lr"])

    def fused_step(self, params: Sequence[Tensor]) -> FusedStep | None:
        """The plain step, ``p -= lr * g``, inside a fused kernel over ``params`` (every
        parameter of this optimizer); it applies on calls where no group has momentum or weight
        decay and the gradients are this pass's alone. Subclasses that change ``step`` or
        ``update`` are left to Python."""
        if type(self).step is not Optimizer.step or type(self).update is not SGD.update:
            return None
        group_of = {id(p): number for number, group in enumerate(self.param_groups) for p in group["params"]}
        if len(params) != len(group_of) or any(id(p) not in group_of or p.ndim == 0 for p in params):
            return None
        settings = [(group_of[id(p)], "lr") for p in params]
        return FusedStep(self, params, _descend_one, settings, zero=("momentum", "weight_decay"))


def _descend_one(k, param, grad, numbers, arrays=()):
    """:func:`descend` for one parameter, its learning rate (``numbers[0]``) in the parameter's
    dtype (as NumPy takes a Python float)."""
    descend(param, grad, numbers[0].astype(param.dtype))
