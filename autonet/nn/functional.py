"""Functions behind the layers and losses, for use without Module objects."""
from __future__ import annotations

import numpy as np

from .._methods import numpy_keywords
from ..core import device as devices
from ..core.function import Function, OpRefusal
from ..core.tensor import Tensor, TensorLike, as_tensor, value_of
from ..ops import activations, generic
from ..ops.activations import elu, gelu, leaky_relu, silu
from ..ops.elementwise import log_softmax, relu, sigmoid, softmax, tanh
from ..ops.linalg import linear
from ..ops.reduce import logsumexp
from ..ops.shape import scatter_add
from ..random import generator
from . import masking
from .fused_attention import attention
from .activations import (celu, cosine_similarity, glu, hardsigmoid, hardswish, hardtanh, logsigmoid,
                          mish, normalize, one_hot, relu6, selu, softmin, softsign, tanhshrink)
from .class_losses import ClassNLL
from .keywords import refusing_pytorch_keywords
from .convolution import (avg_pool1d, avg_pool2d, conv1d, conv2d, conv_transpose1d, conv_transpose2d,
                          max_pool1d, max_pool2d)
from .normalization import batch_norm, group_norm, layer_norm
from .resampling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d,
                         adaptive_max_pool2d, interpolate)
from ..core.types import Seed

softmax, log_softmax, logsumexp = (numpy_keywords(f) for f in (softmax, log_softmax, logsumexp))

__all__ = ["linear", "sigmoid", "tanh", "relu", "softmax", "log_softmax", "mse_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
           "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "dropout",
           "layer_norm", "batch_norm", "embedding", "gelu", "silu", "softplus", "leaky_relu", "elu",
           "nll_loss", "l1_loss", "huber_loss", "logsumexp", "smooth_l1_loss", "kl_div",
           "cosine_embedding_loss", "margin_ranking_loss", "relu6", "hardtanh", "hardsigmoid",
           "hardswish", "mish", "celu", "selu", "softsign", "logsigmoid", "softmin", "tanhshrink",
           "glu", "normalize", "cosine_similarity", "one_hot", "scaled_dot_product_attention",
           "conv_transpose1d", "conv_transpose2d", "interpolate",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "group_norm"]

REDUCTIONS = ("mean", "sum", "none")


def reduce(losses, reduction, op):
    """Apply a loss's ``reduction``: 'mean', 'sum' or 'none'."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, not {reduction!r}")


def _same_shape(input, target, op):
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    if target.shape != input.shape:
        raise ValueError(
            f"{op}: input shape {input.shape} and target shape {target.shape} differ "
            f"(broadcasting them would silently pair the wrong elements)")
    return target


def mse_loss(input: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """Mean squared error: reduce((input - target) ** 2)."""
    input = as_tensor(input)
    diff = input - _same_shape(input, target, "mse_loss")
    return reduce(diff * diff, reduction, "mse_loss")


class BinaryCrossEntropy(Function):
    """-(t log p + (1 - t) log(1 - p)) with logs clamped at -100, PyTorch's rule to the letter.

    Its gradient ``(p - t) / max(p (1 - p), 1e-12)`` stays large where a
    prediction is saturated and wrong (p = 0, t = 1 gives -1e12), so training
    can recover; a clamped log would give exactly 0 there.
    """

    name = "binary_cross_entropy"

    @staticmethod
    def forward(ctx, p, t):
        _check_probabilities(p, "input", "; for logits use binary_cross_entropy_with_logits")
        _check_probabilities(t, "target", "")
        ctx.save_for_backward(p, t)
        log_p, log_not_p = _clamped_logs(p)
        return -(t * log_p + (1 - t) * log_not_p)

    @staticmethod
    def backward(ctx, grad):
        p, t = ctx.saved
        need_p, need_t = ctx.needs_input_grad
        grad_p = grad * (p - t) / np.maximum(p * (1 - p), _BCE_EPSILON) if need_p else None
        grad_t = None
        if need_t:
            log_p, log_not_p = _clamped_logs(p)
            grad_t = grad * (log_not_p - log_p)
        return grad_p, grad_t


_BCE_EPSILON = 1e-12


def _check_probabilities(values, name, hint):
    """``ValueError`` unless every element lies in [0, 1] (NaN does not), as PyTorch refuses;
    checked inside the op, so a compiled replay checks each call's values."""
    outside = ~((values >= 0) & (values <= 1))
    if outside.any():
        raise OpRefusal(f"binary_cross_entropy: every {name} must lie in [0, 1], got "
                         f"{values[outside].reshape(-1)[0]}{hint}")


def _clamped_logs(p):
    """log p and log(1 - p), each at least -100 (ndarrays, or Tensors under create_graph)."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), -100.0), np.maximum(np.log(1 - p), -100.0)


def binary_cross_entropy(input: TensorLike, target: TensorLike, reduction: str = "mean",
                         weight: TensorLike | None = None) -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities p; logs clamped at -100; ``weight``
    (broadcast to the input, as PyTorch's) scales each element's loss."""
    p = as_tensor(input)
    t = _same_shape(p, target, "binary_cross_entropy")
    losses = BinaryCrossEntropy.apply(p, t)
    if weight is not None:
        losses = losses * _broadcastable(weight, p, "weight", "binary_cross_entropy")
    return reduce(losses, reduction, "binary_cross_entropy")


class BinaryCrossEntropyWithLogits(Function):
    """``(1 - t) x + l softplus(-x)`` with ``l = 1 + (pos_weight - 1) t``, PyTorch's formula,
    and ``softplus(-x) = max(-x, 0) + log(1 + exp(-|x|))``: finite for logits of any size.
    Without ``pos_weight`` (l = 1) it is ``max(x, 0) - x t + log(1 + exp(-|x|))``."""

    name = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(ctx, x, t, pos_weight):
        ctx.save_for_backward(x, t, pos_weight)
        if pos_weight is None:
            return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        return (1 - t) * x + (1 + (pos_weight - 1) * t) * _softplus_of_negative(x)

    @staticmethod
    def backward(ctx, grad):
        x, t, pos_weight = ctx.saved
        need_x, need_t, need_pos_weight = ctx.needs_input_grad
        if pos_weight is None:
            return (grad * (generic.sigmoid(x) - t) if need_x else None), (-grad * x if need_t else None), None
        scale = 1 + (pos_weight - 1) * t
        grad_x = grad * ((1 - t) - scale * generic.sigmoid(-x)) if need_x else None
        grad_t = grad * ((pos_weight - 1) * _softplus_of_negative(x) - x) if need_t else None
        grad_pos_weight = grad * t * _softplus_of_negative(x) if need_pos_weight else None
        return grad_x, grad_t, grad_pos_weight


def _softplus_of_negative(x):
    """``log(1 + exp(-x))`` as ``max(-x, 0) + log1p(exp(-|x|))`` (ndarrays and Tensors)."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


def binary_cross_entropy_with_logits(input: TensorLike, target: TensorLike, reduction: str = "mean",
                                     weight: TensorLike | None = None,
                                     pos_weight: TensorLike | None = None) -> Tensor:
    """Binary cross-entropy of sigmoid(input), computed from the logits stably.

    ``pos_weight`` (broadcast along the last axis, one per class as PyTorch's) scales the
    positive term; ``weight`` (broadcast to the input) scales each element's loss.
    """
    x = as_tensor(input)
    t = _same_shape(x, target, "binary_cross_entropy_with_logits")
    if pos_weight is not None:
        pos_weight = _broadcastable(pos_weight, x, "pos_weight", "binary_cross_entropy_with_logits")
    losses = BinaryCrossEntropyWithLogits.apply(x, t, pos_weight)
    if weight is not None:
        losses = losses * _broadcastable(weight, x, "weight", "binary_cross_entropy_with_logits")
    return reduce(losses, reduction, "binary_cross_entropy_with_logits")


def _broadcastable(weights, input, name, op):
    """``weights`` as a Tensor of ``input``'s dtype that broadcasts to ``input``'s shape without
    changing it (``ValueError`` naming ``op`` and ``name`` otherwise)."""
    weights = weights if isinstance(weights, Tensor) else Tensor(weights, dtype=input.dtype)
    try:
        fits = np.broadcast_shapes(weights.shape, input.shape) == input.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: {name} of shape {weights.shape} does "
                         f"not broadcast to the input's shape {input.shape}")
    return weights


_FLOAT_LABELS = ("{}: labels must be integer class indices (whole-number floats are "
                 "accepted), not {} values such as 0.5")


def _class_indices(labels, classes, op):
    """Labels as integer indices in ``[0, classes)``, checked inside the op so that compiled
    replays check them too. ``Tensor([0, 2])`` holds float64 (autonet's default), so
    whole-number floats are labels too; any other float would be a class probability in
    PyTorch, which autonet does not take."""
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            bad = labels[~np.isfinite(labels)][0]
            raise ValueError(f"{op}: labels must be finite class indices, got {bad}")
        if not np.all(labels == np.round(labels)):
            raise TypeError(_FLOAT_LABELS.format(op, labels.dtype))
    # checked before any cast: 1e20 as int64 would read as -9223372036854775808
    labels = generic.check_labels(labels, classes, op)
    return labels.astype(np.int64) if labels.dtype.kind == "f" else labels


def _indices(target, weight):
    """Integer labels or indices as an array; a Python list goes where ``weight`` lives (it has
    no device of its own, as numbers have none), an ndarray stays on the host."""
    indices = value_of(target)
    if isinstance(indices, list):
        return devices.to_device(np.asarray(indices), weight.device)
    return np.asanyarray(indices) if devices.is_host(indices) else indices


def _as_given(target, array):
    """The Tensor of labels or indices itself when one was given (a compiled step then reads
    that tensor afresh on each call, on a device too), else their checked array."""
    return target if isinstance(target, Tensor) else array


def _labels_for(input, target, op):
    """``input (N, C, d1, ...)`` and the label array ``(N, d1, ...)`` for it, their shapes checked."""
    labels = _indices(target, input)
    if devices.device_of(labels) != devices.device_of(value_of(input)):
        raise RuntimeError(f"{op}: labels on {devices.device_of(labels)} but input on "
                           f"{devices.device_of(value_of(input))}; move them with .to(device)")
    if input.ndim < 2:
        raise ValueError(f"{op}: input must have shape (N, C) or (N, C, d1, ...), not {input.shape}; "
                         f"give one sample a batch axis with x[None]")
    if labels.shape != (input.shape[0],) + input.shape[2:]:
        raise ValueError(f"{op}: labels of shape {labels.shape} do not fit input {input.shape} "
                         f"(labels (N, d1, ...) for input (N, C, d1, ...), or class probabilities "
                         f"of the input's shape)")
    if labels.dtype.kind not in "iuf":   # bool labels too: PyTorch wants int64 class indices
        raise TypeError(f"{op}: labels must be integer class indices, not {labels.dtype} values; "
                        f"convert them with labels.astype(np.int64)")
    return labels


def _class_options(input, weight, ignore_index, label_smoothing, reduction, op):
    """The options of a class-index loss, checked before anything is computed: the weights as an
    array of the input's dtype on its device (or None)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, not {reduction!r}")
    if not isinstance(ignore_index, (int, np.integer)) or isinstance(ignore_index, bool):
        raise TypeError(f"{op}: ignore_index must be an int (a label to leave out), not {ignore_index!r}")
    if not 0.0 <= label_smoothing <= 1.0:   # NaN too
        raise ValueError(f"{op}: label_smoothing must lie in [0, 1], not {label_smoothing!r}")
    if weight is None:
        return None
    array = value_of(weight)
    if isinstance(array, (list, tuple)):
        array = np.asarray(array, dtype=input.dtype)
    if array.shape != (input.shape[1],) or array.dtype.kind not in "iuf":
        raise ValueError(f"{op}: weight must hold one real number per class, shape "
                         f"({input.shape[1]},), not {array.dtype} of shape {array.shape}")
    if devices.device_of(array) != devices.device_of(value_of(input)):
        raise RuntimeError(f"{op}: weight on {devices.device_of(array)} but input on "
                           f"{devices.device_of(value_of(input))}; move it with .to(device)")
    return array   # as given (a compiled step reads it afresh); cast inside the op


def _is_probabilities(input, target):
    """True for a floating target of the input's shape: class probabilities, as PyTorch reads it."""
    array = value_of(target)
    if not hasattr(array, "dtype"):   # a list or a number: on the host
        array = np.asarray(array)
    return input.ndim >= 2 and array.shape == input.shape and array.dtype.kind == "f"


def _probability_cross_entropy(logits, target, weight, ignore_index, reduction, smoothing):
    """``-sum_c w[c] t[c] log_softmax(x)[c]`` per sample; ``"mean"`` over samples (PyTorch's)."""
    if ignore_index >= 0:
        raise ValueError(f"cross_entropy: ignore_index ({ignore_index}) applies to integer labels "
                         f"only, not to class probabilities; leave it at its default")
    target = _same_shape(logits, target, "cross_entropy")
    classes = logits.shape[1]
    if smoothing:
        target = target * (1.0 - smoothing) + smoothing / classes
    products = log_softmax(logits, axis=1) * target
    if weight is not None:
        weight = Tensor(weight, dtype=logits.dtype)
        products = products * weight.reshape((1, classes) + (1,) * (logits.ndim - 2))
    return reduce(-products.sum(axis=1), reduction, "cross_entropy")


class CrossEntropy(Function):
    """-log_softmax(logits)[i, label_i] per sample, reduced, as one node that keeps softmax.

    Labels equal to ``ignore_index`` (a negative number: never a class) count for nothing, and
    ``"mean"`` divides by the labels kept (NaN with a zero gradient when none is, as PyTorch).
    Written with NumPy operations and ``ops.generic``'s lowerable helpers only, and no branch on
    values, so the fused backend lowers it, ignored labels and all.
    """

    name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, labels, ignore_index, reduction):
        kept = labels != ignore_index
        labels = _class_indices(labels * kept, logits.shape[1], "cross_entropy")   # ignored: class 0
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        losses = (np.log(total[:, 0]) - generic.pick(shifted, labels)) * kept
        scale = kept.astype(logits.dtype)
        if reduction == "mean":
            count = scale.sum(keepdims=True).reshape(())
            scale = scale / np.maximum(count, 1.0)   # the gradient's: 0, not NaN, when none is kept
            with np.errstate(invalid="ignore"):
                losses = losses.sum(keepdims=True).reshape(()) / count
        elif reduction == "sum":
            losses = losses.sum(keepdims=True).reshape(())
        ctx.save_for_backward(logits, exp / total, generic.one_hot(labels, logits), scale)
        return losses

    @staticmethod
    def backward(ctx, grad):
        logits, probs, one_hot, scale = ctx.saved
        if isinstance(logits, Tensor):   # create_graph: softmax must be part of the graph
            probs = logits.softmax(axis=1)
        grad = grad * scale   # per sample, or the 0-d gradient of the sum spread over the kept
        return grad[:, None] * (probs - one_hot), None


def cross_entropy(input: TensorLike, target: TensorLike, weight: TensorLike | None = None,
                  ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``(N, C)`` or ``(N, C, d1, ...)``, as PyTorch's.

    ``target`` holds integer labels ``(N, d1, ...)`` (whole-number floats count, since
    ``Tensor([0, 2])`` is float64; other floats are refused), or class probabilities of the
    input's shape. ``weight`` (one per class) scales each class's terms, and ``"mean"`` then
    divides by the labels' total weight; labels equal to ``ignore_index`` count for nothing;
    ``label_smoothing`` mixes the target with the uniform distribution.

    >>> import autonet
    >>> logits = autonet.Tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(cross_entropy(logits, [0, -100]).item(), 6)   # the second label is ignored
    0.126928
    """
    logits = as_tensor(input)
    weight = _class_options(logits, weight, ignore_index, label_smoothing, reduction, "cross_entropy")
    smoothing = float(label_smoothing)
    if _is_probabilities(logits, target):
        return _probability_cross_entropy(logits, target, weight, ignore_index, reduction, smoothing)
    labels = _labels_for(logits, target, "cross_entropy")
    if weight is None and not smoothing and logits.ndim == 2 and ignore_index < 0:
        # the plain case (with PyTorch's default ignore_index): one node the fused backend lowers
        return CrossEntropy.apply(logits, _as_given(target, labels), ignore_index=int(ignore_index),
                                  reduction=reduction)
    return ClassNLL.apply(log_softmax(logits, axis=1), _as_given(target, labels), weight=weight,
                          ignore_index=int(ignore_index), smoothing=smoothing, reduction=reduction,
                          op="cross_entropy")


def nll_loss(input: TensorLike, target: TensorLike, weight: TensorLike | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``(N, C)`` or ``(N, C, d1, ...)``
    (``log_softmax``'s output) at integer labels ``(N, d1, ...)``, with PyTorch's ``weight``
    and ``ignore_index`` (see ``cross_entropy``)."""
    log_probs = as_tensor(input)
    weight = _class_options(log_probs, weight, ignore_index, 0.0, reduction, "nll_loss")
    labels = _labels_for(log_probs, target, "nll_loss")
    return ClassNLL.apply(log_probs, _as_given(target, labels), weight=weight,
                          ignore_index=int(ignore_index), smoothing=0.0, reduction=reduction, op="nll_loss")


def l1_loss(input: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """Mean absolute error (the gradient at a zero difference is 0, as PyTorch's)."""
    input = as_tensor(input)
    return reduce((input - _same_shape(input, target, "l1_loss")).abs(), reduction, "l1_loss")


class Huber(Function):
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2): PyTorch's HuberLoss, per element."""

    name = "huber"

    @staticmethod
    def forward(ctx, difference, delta):
        inside = np.abs(difference) < delta
        ctx.delta = delta
        ctx.save_for_backward(difference, inside)
        return np.where(inside, 0.5 * difference * difference,
                        delta * (np.abs(difference) - 0.5 * delta))

    @staticmethod
    def backward(ctx, grad):
        difference, inside = ctx.saved
        clipped = np.where(generic.value(inside), difference, ctx.delta * np.sign(generic.value(difference)))
        return grad * clipped


def huber_loss(input: TensorLike, target: TensorLike, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """Huber loss: squared near 0, linear beyond ``delta`` (> 0)."""
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, not {delta}")
    input = as_tensor(input)
    difference = input - _same_shape(input, target, "huber_loss")
    return reduce(Huber.apply(difference, delta=float(delta)), reduction, "huber_loss")


def smooth_l1_loss(input: TensorLike, target: TensorLike, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """PyTorch's smooth L1: ``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - beta / 2``;
    ``beta = 0`` is the L1 loss."""
    if not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, not {beta}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    input = as_tensor(input)
    difference = input - _same_shape(input, target, "smooth_l1_loss")
    return reduce(Huber.apply(difference, delta=float(beta)) / float(beta), reduction, "smooth_l1_loss")


class EntropyTerm(Function):
    """``t log t``, 0 at ``t = 0`` (``xlogy(t, t)``, the first term of ``kl_div``); its
    gradient is PyTorch's ``log t + t / t``: ``log t + 1``, and NaN at ``t = 0``."""

    name = "xlogy"

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(t == 0, 0.0, t * np.log(t)).astype(t.dtype)

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad * (generic.log(t) + t / t)


def kl_div(input: TensorLike, target: TensorLike, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """PyTorch's ``kl_div``: ``input`` holds log-probabilities; each element's loss is
    ``t (log t - input)`` (0 where ``t = 0``), or ``exp(t) (t - input)`` with ``log_target``.
    ``reduction="batchmean"`` divides the sum by the batch size (the KL divergence itself);
    ``"mean"`` averages over every element, as PyTorch's."""
    input = as_tensor(input)
    target = _same_shape(input, target, "kl_div")
    if reduction not in REDUCTIONS + ("batchmean",):
        raise ValueError(f"kl_div: reduction must be one of {REDUCTIONS + ('batchmean',)}, not {reduction!r}")
    if log_target:
        losses = target.exp() * (target - input)
    else:
        losses = EntropyTerm.apply(target) - target * input
    if reduction == "batchmean":
        return losses.sum() / (input.shape[0] if input.ndim else 1)
    return reduce(losses, reduction, "kl_div")


class SignSelect(Function):
    """``positive`` where ``target`` is 1, ``negative`` where it is -1, and 0 elsewhere
    (PyTorch's ``where(target == 1, ...)`` pair); the masks are made inside the op, so a
    compiled step reads each call's targets."""

    name = "sign_select"

    @staticmethod
    def forward(ctx, positive, negative, target):
        is_positive, is_negative = target == 1, target == -1
        ctx.save_for_backward(is_positive, is_negative)
        return np.where(is_positive, positive, np.where(is_negative, negative, 0.0)).astype(positive.dtype)

    @staticmethod
    def backward(ctx, grad):
        is_positive, is_negative = (generic.value(mask) for mask in ctx.saved)
        return grad * is_positive, grad * is_negative, None


def cosine_embedding_loss(input1: TensorLike, input2: TensorLike, target: TensorLike, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """PyTorch's ``cosine_embedding_loss``: ``1 - cos`` where ``target`` is 1, ``max(0, cos -
    margin)`` where it is -1, with ``cos`` along axis 1 of ``(N, D)`` inputs (axis 0 of one
    ``(D,)`` pair) computed as PyTorch's (``1e-12`` added to each squared norm)."""
    x1, x2 = as_tensor(input1), as_tensor(input2)
    if x1.shape != x2.shape or x1.ndim not in (1, 2):
        raise ValueError(f"cosine_embedding_loss: input1 {x1.shape} and input2 {x2.shape} must "
                         f"share one shape, (N, D) or (D,)")
    target = as_tensor(target)
    if target.shape != x1.shape[:-1]:
        raise ValueError(f"cosine_embedding_loss: target of shape {target.shape} does not fit "
                         f"inputs {x1.shape} (one 1 or -1 per pair)")
    axis = x1.ndim - 1
    products = (x1 * x2).sum(axis=axis)
    magnitudes = ((x1 * x1).sum(axis=axis) + 1e-12) * ((x2 * x2).sum(axis=axis) + 1e-12)
    cos = products / magnitudes.sqrt()
    losses = SignSelect.apply(1 - cos, (cos - margin).clip(0, None), target)
    return reduce(losses, reduction, "cosine_embedding_loss")


def margin_ranking_loss(input1: TensorLike, input2: TensorLike, target: TensorLike, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """PyTorch's ``margin_ranking_loss``: ``max(0, -target (input1 - input2) + margin)``."""
    x1 = as_tensor(input1)
    x2 = _same_shape(x1, input2, "margin_ranking_loss")
    target = _same_shape(x1, target, "margin_ranking_loss")
    return reduce((-target * (x1 - x2) + margin).clip(0, None), reduction, "margin_ranking_loss")


class Dropout(Function):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The mask is drawn inside the op from ``rng``, so a compiled step draws a
    new one on every replay, exactly as eager mode does.
    """

    name = "dropout"

    @staticmethod
    def forward(ctx, a, p, rng):
        if p == 1.0:
            scale = np.zeros_like(a)
        else:
            # drawn by NumPy's generator wherever ``a`` lives: the same masks on every device
            scale = ((rng.random(a.shape) >= p) / (1.0 - p)).astype(a.dtype)
            scale = scale if type(a) is np.ndarray else devices.to_device(scale, devices.device_of(a))
        ctx.save_for_backward(scale)   # freed by backward, as every saved array
        return a * scale

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved
        return grad * scale


def dropout(x: TensorLike, p: float = 0.5, training: bool = True, rng: Seed = None) -> Tensor:
    """Inverted dropout in training; ``x`` itself otherwise (or when ``p`` is 0)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must lie in [0, 1], not {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, p=float(p), rng=generator(rng))


class EmbeddingLookup(Function):
    """``weight[indices]`` with the indices checked (no negative wrap-around, as PyTorch)."""

    name = "embedding"

    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None):
        if indices.dtype.kind not in "iu":
            raise TypeError(f"embedding: indices must be integers, not {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= weight.shape[0]):
            raise IndexError(f"embedding: indices must lie in [0, {weight.shape[0]}), got "
                             f"{indices.min()}..{indices.max()}")
        ctx.in_shape, ctx.index, ctx.padding_idx = weight.shape, indices, padding_idx
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        if ctx.padding_idx is not None:   # that row learns nothing (PyTorch's padding_idx)
            grad = grad * (ctx.index != ctx.padding_idx)[..., None]
        return scatter_add(grad, ctx.in_shape, ctx.index), None


def padding_index(padding_idx, num_embeddings, op):
    """``padding_idx`` as a row in ``[0, num_embeddings)`` (a negative one counts from the end),
    or ``ValueError`` (a float was truncated to a row silently)."""
    if (isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer))
            or not -num_embeddings <= padding_idx < num_embeddings):
        raise ValueError(f"{op}: padding_idx must be an int in [-{num_embeddings}, {num_embeddings}), "
                         f"not {padding_idx!r}")
    return int(padding_idx) % num_embeddings


def embedding(indices: TensorLike, weight: TensorLike, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight (num, dim)`` picked by integer ``indices`` of any shape; the row
    ``padding_idx`` (if given) gets no gradient."""
    weight = as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must have shape (num_embeddings, embedding_dim), not "
                         f"{weight.shape}")
    if padding_idx is not None:
        padding_idx = padding_index(padding_idx, weight.shape[0], "embedding")
    return EmbeddingLookup.apply(weight, _as_given(indices, _indices(indices, weight)),
                                 padding_idx=padding_idx)


def softplus(x: TensorLike, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold (PyTorch's)."""
    return activations.Softplus.apply(as_tensor(x), beta=float(beta), threshold=float(threshold))


def scaled_dot_product_attention(query: TensorLike, key: TensorLike, value: TensorLike,
                                 attn_mask: TensorLike | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 rng: Seed = None) -> Tensor:
    """``softmax(q @ k^T * scale + mask) @ v`` over ``(..., L, E)``, ``(..., S, E)``, ``(..., S, Ev)``,
    as PyTorch's: ``scale`` defaults to ``1 / sqrt(E)``; a bool ``attn_mask`` is True where a
    query may attend (a float one is added); ``is_causal`` lets query i see keys 0..i; a query
    that may attend to nothing gets zeros. ``dropout_p`` drops weights (always: no training flag).

    >>> import numpy as np, autonet.nn.functional as F
    >>> q = k = v = np.eye(3)[None]                      # (N, L, E)
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).data[0, 0]
    array([1., 0., 0.])
    """
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    op = "scaled_dot_product_attention"
    if min(q.ndim, k.ndim, v.ndim) < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: query (..., L, E), key (..., S, E) and value (..., S, Ev) do not "
                         f"fit: {q.shape}, {k.shape}, {v.shape}")
    if not q.dtype == k.dtype == v.dtype or q.dtype.kind != "f":
        raise TypeError(f"{op}: query, key and value must share one floating dtype, not {q.dtype}, "
                        f"{k.dtype} and {v.dtype}; convert them with .astype(...)")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: give attn_mask or is_causal=True, not both (as PyTorch)")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must lie in [0, 1], not {dropout_p}")
    scale = float(1.0 / np.sqrt(q.shape[-1])) if scale is None else float(scale)   # a Python float keeps float32
    if attn_mask is None and not dropout_p:   # one op that keeps no scores
        return attention(q, k, v, scale, causal=is_causal, dead_fill=0.0 if is_causal else np.nan)
    scores = (q @ k.swapaxes(-1, -2)) * scale
    if attn_mask is not None:
        mask = masking.as_mask(attn_mask, q.dtype, "attn_mask", op)
        masking.check_broadcast(mask, scores.shape, "attn_mask", op)
        scores = masking.apply_mask(scores, mask, true_keeps=True)
    elif is_causal:
        scores = masking.causal(scores)
    weights = masking.attention_weights(scores, safe=attn_mask is not None or is_causal)
    return dropout(weights, dropout_p, True, rng) @ v


# PyTorch's dim=, start_dim=, end_dim=, inplace= on every functional: a TypeError naming
# autonet's spelling, or saying the option is not offered
globals().update({name: refusing_pytorch_keywords(globals()[name], name) for name in __all__})
