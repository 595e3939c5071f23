"""``softmax(q @ k^T * scale) @ v`` as one op that keeps no scores.

The composite (matmul, scale, masks, softmax, matmul) keeps each of its
``(..., L, S)`` intermediates alive until backward: the scaled queries, the
softmax's output and the masked copies. This op computes the scores in one
array, turns it into the weights in place and saves ``q``, ``k``, ``v`` and the
softmax's row maxima and sums only, as PyTorch's fused CPU kernel keeps its
log-sum-exp; backward recomputes the weights with the same operations (one
more ``q @ k^T``, the same bits). Backward is the chain rule of the same
formulas::

    dV = W^T dO;   dW = dO V^T;   dS = W * (dW - sum(dW * W, -1));
    dQ = scale dS K;   dK = scale dS^T Q

A row whose keys are all excluded (every score -inf) gets zero weights, or NaN
ones with ``dead_fill=nan``, and passes no gradient to the scores, as the
composite in ``masking.attention_weights``. Under ``create_graph`` the weights are
recomputed from ``q`` and ``k`` with that composite, so the gradient is
differentiable again.
"""
from __future__ import annotations

import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor
from . import masking


class Attention(Function):
    """``softmax(q @ k^T * scale [causal]) @ v`` over ``(..., L, E)``, ``(..., S, E)``, ``(..., S, Ev)``."""

    name = "attention"

    @staticmethod
    def forward(ctx, q, k, v, scale, causal, dead_fill):
        scores = _scores(q, k, scale, causal)
        top = np.max(scores, axis=-1, keepdims=True)
        dead = top == -np.inf   # rows of -inf only: exp(-inf - -inf) would be NaN
        if dead.any():
            top = np.where(dead, top.dtype.type(0), top)
        else:
            dead = None
        weights = _exp_shifted(scores, top, dead)
        total = weights.sum(axis=-1, keepdims=True)
        weights = _divided(weights, total, dead)
        ctx.save_for_backward(q, k, v, top, total, dead)
        ctx.scale, ctx.causal, ctx.dead_fill = scale, causal, dead_fill
        return _filled(weights, dead, dead_fill) @ v   # NaN weights give NaN outputs

    @staticmethod
    def backward(ctx, grad):
        q, k, v, top, total, dead = ctx.saved
        scale, fill = ctx.scale, ctx.dead_fill
        if isinstance(grad, Tensor):   # create_graph: the weights as a function of q and k
            scores = _composite_scores(q, k, scale, ctx.causal)
            weights = masking.attention_weights(scores, safe=True)
            shown = weights if fill == 0 else masking.attention_weights(scores, safe=False)
        else:   # the forward's operations again: the same weights, bit for bit
            weights = _divided(_exp_shifted(_scores(q, k, scale, ctx.causal), top, dead), total, dead)
            shown = _filled(weights, dead, fill)
        grad_v = shown.swapaxes(-1, -2) @ grad   # dead rows: no gradient reaches the scores
        grad_scores = _scores_gradient(grad @ v.swapaxes(-1, -2), weights, scale)
        return grad_scores @ k, grad_scores.swapaxes(-1, -2) @ q, grad_v


def _scores(q, k, scale, causal):
    """``q @ k^T * scale`` in one new array, -inf after each query's position if ``causal``."""
    scores = q @ k.swapaxes(-1, -2)
    scores *= scale
    if causal:
        rows, cols = scores.shape[-2:]
        scores[..., devices.arange(cols, scores)[None, :] > devices.arange(rows, scores)[:, None]] = -np.inf
    return scores


def _exp_shifted(scores, top, dead):
    """``exp(scores - top)`` in place (``ops.Softmax``'s formula, so the same bits); dead rows
    are zeros first (a new array: rare), as the composite's."""
    if dead is not None:
        scores = np.where(dead, scores.dtype.type(0), scores)
    scores -= top
    return np.exp(scores, out=scores)


def _divided(weights, total, dead):
    """The softmax weights: ``weights / total`` in place, dead rows 0."""
    weights /= total
    return weights if dead is None else np.where(dead, weights.dtype.type(0), weights)


def _filled(weights, dead, fill):
    """The weights as the output shows them: dead rows ``fill`` (0 already, or NaN)."""
    return weights if dead is None or fill == 0 else np.where(dead, weights.dtype.type(fill), weights)


def _scores_gradient(grad_weights, weights, scale):
    """``scale * W * (dW - sum(dW * W, -1))``: softmax's backward, then the scale; in place
    on ``dW``'s array unless it is a Tensor (create_graph), the same operations either way."""
    row = (grad_weights * weights).sum(axis=-1, keepdims=True)
    if isinstance(grad_weights, Tensor):
        return (grad_weights - row) * weights * scale
    grad_weights -= row
    grad_weights *= weights
    grad_weights *= scale
    return grad_weights


def _composite_scores(q, k, scale, causal):
    """The scores from differentiable ops (Tensors in, a Tensor out)."""
    scores = (q @ k.swapaxes(-1, -2)) * scale
    return masking.causal(scores) if causal else scores


def attention(q: Tensor, k: Tensor, v: Tensor, scale: float, causal: bool = False,
              dead_fill: float = 0.0) -> Tensor:
    """The attention of ``q`` over ``k`` and ``v``, one node saving no scores (see the module).
    Without keys (``S = 0``) there are no row maxima to keep: the composite, whose empty weights
    give zeros."""
    if not k.shape[-2]:
        return masking.attention_weights(_composite_scores(q, k, scale, causal), safe=dead_fill == 0) @ v
    return Attention.apply(q, k, v, scale=float(scale), causal=bool(causal), dead_fill=float(dead_fill))
