"""Anomaly mode: stop at the first NaN or Inf, and say which op made it and where.

>>> import autonet
>>> x = autonet.Tensor([0.0, 1.0], requires_grad=True)
>>> with autonet.detect_anomaly():
...     y = x.log()                      # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
FloatingPointError: log produced -inf in its forward pass ...
"""
from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from ..core import device as devices
from ..core.context import Context
from ..core.state import Observer, observing

# Frames in these packages are not the user's line: autonet's own, and NumPy's
# (np.sum(t) reaches autonet through numpy/_core/fromnumeric.py).
_AUTONET_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))
_LIBRARY_DIRS = (_AUTONET_DIR + os.sep, _NUMPY_DIR + os.sep)


class detect_anomaly:
    """Within this block (per thread) every op's output and every backward
    formula's gradients are checked; the first NaN or Inf raises
    ``FloatingPointError`` naming the op, the line of your code that created
    it, and the input shapes. Costs a pass over each array: use for debugging.
    """

    def __enter__(self) -> detect_anomaly:
        self._observing = observing(_AnomalyObserver())
        self._observing.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> bool | None:
        return self._observing.__exit__(*exc_info)


class _AnomalyObserver(Observer):
    quiet_numpy = True   # our error, naming the op, replaces NumPy's warning

    def applied(self, fn, args, kwargs, ctx, arrays, result):
        check_forward(ctx, arrays, result.data)

    def formula_ran(self, node, grads):
        check_backward(node, grads)

    def gradient_summed(self, node, position, grad):
        """Sums over broadcast axes and at a fan-out can overflow where no formula did."""
        bad = _bad_values(getattr(grad, "data", grad))
        if bad is not None:
            created = getattr(node, "created_at", "<created outside detect_anomaly>")
            raise FloatingPointError(
                f"the gradient of input {position} of {node.name} became {bad} when summed (over "
                f"broadcast axes, or across the ops that used it); {node.name} was created at "
                f"{created}")


def user_location():
    """``file:line`` of the innermost caller outside autonet and NumPy."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_LIBRARY_DIRS):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def _bad_values(array):
    """A word for the first kind of non-finite value in ``array``, or None."""
    if not devices.is_array(array):
        array = np.asarray(array)   # a number (on a device, the array stays there)
    if array.dtype.kind != "f" or bool(np.isfinite(array).all()):
        return None
    if bool(np.isnan(array).any()):
        return "NaN"
    return "-inf" if bool((array == -np.inf).any()) else "inf"


def check_forward(ctx, arrays, out):
    """Record where the op was created; raise if it produced NaN/Inf from finite inputs."""
    ctx.created_at = user_location()
    bad = _bad_values(out)
    if bad is None:
        return
    shapes = ", ".join(str(np.shape(a)) for a in arrays if a is not None)
    inputs_bad = [b for b in (_bad_values(a) for a in arrays if devices.is_array(a)) if b]
    origin = f" (its inputs already held {inputs_bad[0]})" if inputs_bad else ""
    raise FloatingPointError(
        f"{ctx.name} produced {bad} in its forward pass{origin}; created at "
        f"{ctx.created_at}; input shapes {shapes}")


def check_backward(node, grads):
    """Raise if a backward formula returned NaN/Inf."""
    for position, grad in enumerate(grads):
        if grad is None:
            continue
        bad = _bad_values(getattr(grad, "data", grad))
        if bad is not None:
            shapes = ", ".join(str(_edge_shape(e)) for e in node.inputs if e is not None)
            created = getattr(node, "created_at", "<created outside detect_anomaly>")
            raise FloatingPointError(
                f"the backward of {node.name} returned {bad} in the gradient of its input "
                f"{position}; {node.name} was created at {created}; input shapes {shapes}")


def _edge_shape(edge):
    if type(edge) is Context:
        return edge.shape
    return edge.shape   # a node records its output's shape; a leaf is a Tensor
