"""Anomaly mode: stop at the first NaN or Inf, and say which op made it and where.

>>> import autonet
>>> x = autonet.Tensor([0.0, 1.0], requires_grad=True)
>>> with autonet.detect_anomaly():
...     y = x.log()                      # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
FloatingPointError: log produced -inf in its forward pass ...
"""
import os
import sys

import numpy as np

from .autograd import state

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class detect_anomaly:
    """Within this block (per thread) every op's output and every backward
    formula's gradients are checked; the first NaN or Inf raises
    ``FloatingPointError`` naming the op, the line of your code that created
    it, and the input shapes. Costs a pass over each array: use for debugging.
    """

    def __enter__(self):
        self._previous = state.anomaly
        state.anomaly = True
        return self

    def __exit__(self, *exc_info):
        state.anomaly = self._previous
        return False


def user_location():
    """``file:line`` of the innermost caller outside the autonet package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def _bad_values(array):
    """A word for the first kind of non-finite value in ``array``, or None."""
    array = np.asarray(array)
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    if np.isnan(array).any():
        return "NaN"
    return "-inf" if (array == -np.inf).any() else "inf"


def check_forward(ctx, arrays, out):
    """Record where the op was created; raise if it produced NaN/Inf from finite inputs."""
    ctx.created_at = user_location()
    bad = _bad_values(out)
    if bad is None:
        return
    shapes = ", ".join(str(np.shape(a)) for a in arrays if a is not None)
    inputs_bad = [b for b in (_bad_values(a) for a in arrays if isinstance(a, np.ndarray)) if b]
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
            shapes = ", ".join(str(p.shape) for p in node.parents if p is not None)
            created = getattr(node, "created_at", "<created outside detect_anomaly>")
            raise FloatingPointError(
                f"the backward of {node.name} returned {bad} in the gradient of its input "
                f"{position}; {node.name} was created at {created}; input shapes {shapes}")
