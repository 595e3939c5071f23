"""Batch and layer normalization, PyTorch's formulas, built from differentiable ops."""
from ..core.state import no_grad
from ..core.tensor import as_tensor


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,  # noqa: A002
               momentum=0.1, eps=1e-5):
    """Normalize each channel (axis 1) of ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.

    In training, with the batch's mean and (biased) variance, and the running
    statistics (Tensors, if given) move by ``momentum`` toward the batch's mean
    and unbiased variance, in place; otherwise with the running statistics.
    """
    x = as_tensor(input)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: input must be (N, C), (N, C, L) or (N, C, H, W), not {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    channels = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        count = x.size // x.shape[1]
        if count < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got "
                             f"input of shape {x.shape}")
        mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
        with no_grad():
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mean.reshape(-1)
            if running_var is not None:
                running_var *= 1.0 - momentum
                running_var += (momentum * count / (count - 1)) * var.reshape(-1)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation needs running_mean and running_var")
        mean, var = as_tensor(running_mean).reshape(channels), as_tensor(running_var).reshape(channels)
    out = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        out = out * as_tensor(weight).reshape(channels)
    if bias is not None:
        out = out + as_tensor(bias).reshape(channels)
    return out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Normalize over the last ``len(normalized_shape)`` axes (biased variance), then scale and shift."""
    x = as_tensor(input)
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end in {normalized_shape}")
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    out = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out



