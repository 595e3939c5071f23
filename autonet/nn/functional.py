"""Functions behind the layers and losses, for use without Module objects."""
import numpy as np

from .._methods import numpy_keywords
from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor, as_tensor
from ..ops import activations, generic
from ..ops.activations import elu, gelu, leaky_relu, silu
from ..ops.elementwise import log_softmax, relu, sigmoid, softmax, tanh
from ..ops.linalg import linear
from ..ops.reduce import logsumexp
from ..ops.shape import scatter_add
from . import init, masking
from .convolution import (avg_pool1d, avg_pool2d, conv1d, conv2d, conv_transpose1d, conv_transpose2d,
                          max_pool1d, max_pool2d)
from .normalization import batch_norm, group_norm, layer_norm
from .resampling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d,
                         adaptive_max_pool2d, interpolate)

softmax, log_softmax, logsumexp = (numpy_keywords(f) for f in (softmax, log_softmax, logsumexp))

__all__ = ["linear", "sigmoid", "tanh", "relu", "softmax", "log_softmax", "mse_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
           "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "dropout",
           "layer_norm", "batch_norm", "embedding", "gelu", "silu", "softplus", "leaky_relu", "elu",
           "nll_loss", "l1_loss", "huber_loss", "logsumexp", "scaled_dot_product_attention",
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


def mse_loss(input, target, reduction="mean"):
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


def _clamped_logs(p):
    """log p and log(1 - p), each at least -100 (ndarrays, or Tensors under create_graph)."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), -100.0), np.maximum(np.log(1 - p), -100.0)


def binary_cross_entropy(input, target, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p; logs clamped at -100."""
    p = as_tensor(input)
    t = _same_shape(p, target, "binary_cross_entropy")
    return reduce(BinaryCrossEntropy.apply(p, t), reduction, "binary_cross_entropy")


class BinaryCrossEntropyWithLogits(Function):
    """max(x, 0) - x t + log(1 + exp(-|x|)): finite for logits of any size."""

    name = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(ctx, x, t):
        ctx.save_for_backward(x, t)
        return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved
        need_x, need_t = ctx.needs_input_grad
        return (grad * (generic.sigmoid(x) - t) if need_x else None), (-grad * x if need_t else None)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """Binary cross-entropy of sigmoid(input), computed from the logits stably."""
    x = as_tensor(input)
    t = _same_shape(x, target, "binary_cross_entropy_with_logits")
    return reduce(BinaryCrossEntropyWithLogits.apply(x, t), reduction,
                  "binary_cross_entropy_with_logits")


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
    indices = target.data if isinstance(target, Tensor) else target
    if isinstance(indices, list):
        return devices.to_device(np.asarray(indices), weight.device)
    return np.asanyarray(indices) if devices.is_host(indices) else indices


def _as_given(target, array):
    """The Tensor of labels or indices itself when one was given (a compiled step then reads
    that tensor afresh on each call, on a device too), else their checked array."""
    return target if isinstance(target, Tensor) else array


def _labels_for(input, target, op):
    """``input (N, C)`` and the label array for it, their shapes checked."""
    labels = _indices(target, input)
    if devices.device_of(labels) != devices.device_of(input.data):
        raise RuntimeError(f"{op}: labels on {devices.device_of(labels)} but input on "
                           f"{devices.device_of(input.data)}; move them with .to(device)")
    if input.ndim != 2:
        raise ValueError(f"{op}: input must have shape (N, C), not {input.shape}")
    if labels.shape != (input.shape[0],):
        raise ValueError(f"{op}: labels of shape {labels.shape} do not fit input {input.shape}")
    if labels.dtype.kind not in "iuf":   # bool labels too: PyTorch wants int64 class indices
        raise TypeError(f"{op}: labels must be integer class indices, not {labels.dtype} values; "
                        f"convert them with labels.astype(np.int64)")
    return labels


class CrossEntropy(Function):
    """-log_softmax(logits)[i, label_i] per sample, as one node that keeps softmax."""

    name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, labels):
        labels = _class_indices(labels, logits.shape[1], "cross_entropy")
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        ctx.save_for_backward(logits, exp / total, generic.one_hot(labels, logits))
        return np.log(total[:, 0]) - generic.pick(shifted, labels)

    @staticmethod
    def backward(ctx, grad):
        logits, probs, one_hot = ctx.saved
        if isinstance(logits, Tensor):   # create_graph: softmax must be part of the graph
            probs = logits.softmax(axis=1)
        return grad[:, None] * (probs - one_hot), None


def cross_entropy(input, target, reduction="mean"):
    """Softmax cross-entropy of logits ``(N, C)`` against integer labels ``(N,)``.

    Labels may be ints, or floats with whole values (``Tensor([0, 2])`` is
    float64); other floats raise ``TypeError`` (they are not class indices).
    """
    logits = as_tensor(input)
    labels = _labels_for(logits, target, "cross_entropy")
    return reduce(CrossEntropy.apply(logits, _as_given(target, labels)), reduction, "cross_entropy")


class NegativeLogLikelihood(Function):
    """-input[i, label_i] per sample (``input`` holds log-probabilities)."""

    name = "nll_loss"

    @staticmethod
    def forward(ctx, log_probs, labels):
        labels = _class_indices(labels, log_probs.shape[1], "nll_loss")
        rows = devices.arange(len(labels), labels)
        picked = np.zeros_like(log_probs, dtype=bool)
        picked[rows, labels] = True
        ctx.save_for_backward(picked)   # freed by backward, as every saved array
        return -log_probs[rows, labels]

    @staticmethod
    def backward(ctx, grad):
        (picked,) = ctx.saved
        return -grad[:, None] * generic.value(picked), None


def nll_loss(input, target, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``(N, C)`` (``log_softmax``'s output)."""
    log_probs = as_tensor(input)
    labels = _labels_for(log_probs, target, "nll_loss")
    return reduce(NegativeLogLikelihood.apply(log_probs, _as_given(target, labels)), reduction, "nll_loss")


def l1_loss(input, target, reduction="mean"):
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


def huber_loss(input, target, reduction="mean", delta=1.0):
    """Huber loss: squared near 0, linear beyond ``delta`` (> 0)."""
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, not {delta}")
    input = as_tensor(input)
    difference = input - _same_shape(input, target, "huber_loss")
    return reduce(Huber.apply(difference, delta=float(delta)), reduction, "huber_loss")


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


def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout in training; ``x`` itself otherwise (or when ``p`` is 0)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must lie in [0, 1], not {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, p=float(p), rng=init.generator(rng))


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


def embedding(indices, weight, padding_idx=None):
    """Rows of ``weight (num, dim)`` picked by integer ``indices`` of any shape; the row
    ``padding_idx`` (if given) gets no gradient."""
    weight = as_tensor(weight)
    if padding_idx is not None:
        if not -weight.shape[0] <= padding_idx < weight.shape[0]:
            raise ValueError(f"embedding: padding_idx must lie in [-{weight.shape[0]}, {weight.shape[0]}), "
                             f"not {padding_idx}")
        padding_idx = int(padding_idx) % weight.shape[0]
    return EmbeddingLookup.apply(weight, _as_given(indices, _indices(indices, weight)),
                                 padding_idx=padding_idx)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold (PyTorch's)."""
    return activations.Softplus.apply(as_tensor(x), beta=float(beta), threshold=float(threshold))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, rng=None):
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
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = (q @ k.swapaxes(-1, -2)) * scale
    if attn_mask is not None:
        mask = masking.as_mask(attn_mask, q.dtype, "attn_mask", op)
        masking.check_broadcast(mask, scores.shape, "attn_mask", op)
        scores = masking.apply_mask(scores, mask, true_keeps=True)
    elif is_causal:
        scores = masking.causal(scores)
    weights = masking.attention_weights(scores, safe=attn_mask is not None or is_causal)
    return dropout(weights, dropout_p, True, rng) @ v
