"""Gradient clipping, as ``torch.nn.utils``: both change ``.grad`` in place.

>>> import autonet
>>> w = autonet.Tensor([3.0, 4.0], requires_grad=True)
>>> (w * w).sum().backward()                 # w.grad is [6, 8], norm 10
>>> autonet.nn.utils.clip_grad_norm_([w], max_norm=5.0)
10.0
>>> w.grad.round(6)
array([3., 4.])

Inside ``autonet.compile`` the clipping is replayed on every call; the
returned norm is a Python float, seen by the step's code while it is traced only.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..core.state import replayable
from ..core.tensor import Tensor


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most
    ``max_norm``; returns the norm before clipping (PyTorch's rule: factor
    ``max_norm / (norm + 1e-6)``, capped at 1).

    ``norm_type`` is a positive float, ``inf`` (largest magnitude) or ``-inf``
    (smallest magnitude), as PyTorch's. With ``error_if_nonfinite`` a NaN or
    infinite total norm raises ``RuntimeError`` and no gradient changes.
    """
    norm_type = float(norm_type)
    if not (norm_type > 0 or norm_type == -math.inf):   # NaN, 0 and negative numbers fail
        raise ValueError(f"clip_grad_norm_: norm_type must be a positive float, inf or -inf, "
                         f"not {norm_type}")
    return _clip_norm(_listed(parameters), float(max_norm), norm_type, bool(error_if_nonfinite))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]``."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, not {clip_value}")
    _clip_value(_listed(parameters), clip_value)


def _listed(parameters):
    """A list (never an iterator: a compiled step replays the call with it)."""
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


@replayable
def _clip_norm(parameters, max_norm, norm_type, error_if_nonfinite):
    parameters = [p for p in parameters if p.grad is not None]
    # a Tensor gradient (backward(create_graph=True)) is measured and scaled by its values, out
    # of its graph, as PyTorch's no_grad clipping (recorded, its graph refused to differentiate)
    grads = [p.grad._data if isinstance(p.grad, Tensor) else p.grad for p in parameters]
    if not grads:
        return 0.0
    # computed where the gradients live (one read of the total on a device, not one per tensor);
    # each tensor's norm in its dtype, their joint norm in float64
    norms = np.stack([_norm(g, norm_type).astype(np.float64) for g in grads])
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite "
            f"({float(total)}), so it cannot be clipped; no gradient was changed. Pass "
            f"error_if_nonfinite=False to scale them by the non-finite norm anyway")
    factor = np.minimum(max_norm / (total + 1e-6), 1.0)
    for p, grad in zip(parameters, grads):
        if _fixed(grad):
            p.grad = np.asarray(grad * factor.astype(grad.dtype))
        else:
            grad *= factor.astype(grad.dtype)
        if isinstance(p.grad, Tensor):
            p.grad._bump_version()
    return float(total)


@replayable
def _clip_value(parameters, clip_value):
    for p in parameters:
        grad = p.grad
        if isinstance(grad, Tensor):   # after backward(create_graph=True): its values, as PyTorch
            np.clip(grad._data, -clip_value, clip_value, out=grad._data)   # clips them, no_grad
            grad._bump_version()
        elif grad is not None and _fixed(grad):
            p.grad = np.asarray(np.clip(grad, -clip_value, clip_value))
        elif grad is not None:
            np.clip(grad, -clip_value, clip_value, out=grad)


def _fixed(grad):
    """True for a gradient that cannot change in place, so clipping replaces it (PyTorch's are
    always writable): a NumPy scalar (``w.grad = np.float64(5.0)`` on a 0-d parameter, which
    clip_grad_norm_ left unclipped and clip_grad_value_ refused) or a read-only array."""
    return isinstance(grad, np.generic) or (isinstance(grad, np.ndarray) and not grad.flags.writeable)


def _norm(values, norm_type):
    """A NumPy scalar, or a 0-d array on ``values``' device."""
    values = np.abs(values)
    if norm_type == math.inf:   # an empty gradient's maximum is 0 (CuPy's max takes no initial=)
        return values.max() if values.size else values.sum()
    if norm_type == -math.inf:
        if not values.size:
            raise ValueError("clip_grad_norm_: the -inf norm (smallest magnitude) of an empty "
                             "gradient has no value; leave out parameters with no elements")
        return values.min()
    return np.sum(values ** norm_type) ** (1.0 / norm_type)
