"""Attention scores, masks and softmax, shared by ``scaled_dot_product_attention`` and
``MultiheadAttention``.

A boolean mask fills the scores it excludes with -inf (PyTorch's rule; which
value excludes depends on the caller: True takes part in
``scaled_dot_product_attention``, True is masked out in ``MultiheadAttention``);
a float mask is added. Masks that depend only on shapes (the causal one, the
rows with nothing left to attend to) are made inside ops, so a compiled step
makes them again on every replay.
"""
from __future__ import annotations

import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor
from ..ops import generic
from ..ops.elementwise import softmax


class MaskedFill(Function):
    """``value`` where the boolean ``mask`` (broadcast to the scores) equals ``fill_where``, the
    scores elsewhere; the mask arrives as a Tensor, so compiled steps read it afresh, on a
    device too."""

    name = "masked_fill"

    @staticmethod
    def forward(ctx, scores, mask, value, fill_where):
        keep = np.logical_not(mask) if fill_where else mask
        ctx.save_for_backward(keep)
        return np.where(keep, scores, value)

    @staticmethod
    def backward(ctx, grad):   # linear in grad (the mask is a constant): any order
        (keep,) = ctx.saved
        return grad * generic.value(keep), None


class CausalKeep(Function):
    """True on and below the diagonal of ``like``'s last two axes (top-left aligned, as
    PyTorch's ``is_causal``): a constant of the shape of the scores."""

    name = "causal_mask"

    @staticmethod
    def forward(ctx, like):
        rows, cols = like.shape[-2:]
        return devices.arange(cols, like)[None, :] <= devices.arange(rows, like)[:, None]

    @staticmethod
    def backward(ctx, grad):
        return None


class DeadRows(Function):
    """True for the rows (last axis) of the scores that are -inf throughout."""

    name = "fully_masked_rows"

    @staticmethod
    def forward(ctx, scores):
        return np.all(scores == -np.inf, axis=-1, keepdims=True)

    @staticmethod
    def backward(ctx, grad):
        return None


def as_mask(mask, dtype, name, op):
    """A mask as a Tensor: boolean, or of the scores' floating ``dtype``."""
    if not isinstance(mask, Tensor):
        mask = np.asarray(mask) if isinstance(mask, (list, tuple)) else mask
        mask = Tensor(mask, dtype=mask.dtype)
    if mask.dtype != np.bool_ and mask.dtype != dtype:
        raise TypeError(f"{op}: {name} must be a bool mask or a float mask of the query's dtype "
                        f"{dtype}, not {mask.dtype}; convert it with mask.astype(bool) or "
                        f"mask.astype({dtype})")
    return mask


def apply_mask(scores, mask, true_keeps):
    """Scores with a checked mask applied: bool fills -inf where it excludes, float adds."""
    if mask.dtype != np.bool_:
        return scores + mask
    return MaskedFill.apply(scores, mask, value=-np.inf, fill_where=not true_keeps)


def causal(scores):
    """Scores with every key after its query excluded."""
    return MaskedFill.apply(scores, CausalKeep.apply(scores.detach()), value=-np.inf, fill_where=False)


def attention_weights(scores, safe):
    """Softmax over the keys. A row with every key excluded gets zeros when ``safe`` (PyTorch's
    ``scaled_dot_product_attention``), else NaN (its ``MultiheadAttention`` with weights), with
    no floating-point warning either way."""
    dead = DeadRows.apply(scores.detach())
    weights = softmax(MaskedFill.apply(scores, dead, value=0.0, fill_where=True), axis=-1)
    return MaskedFill.apply(weights, dead, value=0.0 if safe else np.nan, fill_where=True)


def check_broadcast(mask, shape, name, op):
    """``mask`` must broadcast to ``shape`` without enlarging it."""
    try:
        fits = np.broadcast_shapes(mask.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: {name} of shape {mask.shape} does not broadcast to the attention "
                         f"scores' shape {tuple(shape)} (..., L, S)")
