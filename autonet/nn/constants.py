"""Constant arrays that layers derive from shapes (interpolation weights, pooling divisors),
made inside an op on the device of a given tensor.

Made inside an op, a compiled step makes them again on every replay (a NumPy
array made in a layer's Python code would be a traced value), and on the
input's device (a host array would not mix with a device's).
"""
import numpy as np

from ..core import device as devices
from ..core.function import Function


class ConstantLike(Function):
    """``values`` (nested Python lists of numbers) as an array of ``like``'s dtype and device."""

    name = "constant"

    @staticmethod
    def forward(ctx, like, values):
        return devices.to_device(np.asarray(values, dtype=like.dtype), devices.device_of(like))

    @staticmethod
    def backward(ctx, grad):
        return None


def constant_like(x, values):
    """A Tensor of ``values`` on ``x``'s device with ``x``'s dtype; it requires no grad."""
    return ConstantLike.apply(x.detach(), values=values)
