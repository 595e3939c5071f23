"""Stochastic gradient descent, PyTorch's update rule to the letter."""
from ..core import device as devices
from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD with optional momentum, dampening, weight decay and Nesterov momentum.

    Per step, with g the gradient: ``g += weight_decay * p``; with momentum,
    ``buf = g`` on the first step, else ``buf = momentum * buf + (1 - dampening) * g``,
    and ``g = g + momentum * buf`` (nesterov) or ``g = buf``; then ``p -= lr * g``.
    """

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        if not (group["momentum"] >= 0 and group["weight_decay"] >= 0):   # NaN fails too
            raise ValueError(f"momentum and weight_decay must be >= 0, got {group['momentum']} and "
                             f"{group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening 0")

    def state_shapes(self, param):
        return {"momentum_buffer": param.shape}

    def update(self, param, grad, group, state):
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
        lr = group["lr"]
        param.data -= grad if lr == 1 else lr * grad   # 1 * grad is grad: one NumPy call less
