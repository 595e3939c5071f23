"""Convolution and pooling, PyTorch's layouts: inputs ``(N, C, L)`` or ``(N, C, H, W)``.

Each is built from differentiable ops: constant padding, ``Windows`` (im2col
through one strided view, see :mod:`autonet.ops.windows`), then one matrix
product (convolution) or one reduction (pooling). The 1-d versions run the
2-d ones on a height of 1.
"""
import numpy as np

from ..core.tensor import as_tensor
from ..ops import shape
from ..ops.windows import MaxLast, MaxPoolTiles, Windows


def _pair(value, name):
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, not {value!r}")
    return tuple(int(v) for v in pair)


def _padding(padding, kernel, stride, dilation):
    """``((top, bottom), (left, right))`` from an int, a pair, ``"valid"`` or ``"same"``."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        if stride != (1, 1):
            raise ValueError("padding='same' needs stride 1 (as in PyTorch)")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', not {padding!r}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    return ((ph, ph), (pw, pw))


def _padded(x, padding, value=0.0):
    if padding == ((0, 0), (0, 0)):
        return x
    return shape.pad(x, ((0, 0), (0, 0)) + padding, constant_values=value)


def _check(x, spatial, op):
    if x.ndim != 2 + spatial:
        layout = "(N, C, L)" if spatial == 1 else "(N, C, H, W)"
        raise ValueError(f"{op}: input must have shape {layout}, not {x.shape}")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-d cross-correlation, as ``torch.nn.functional.conv2d``; weight ``(O, C // groups, kh, kw)``."""
    x, weight = as_tensor(input), as_tensor(weight)
    _check(x, 2, "conv2d")
    out_channels, group_channels, kh, kw = weight.shape
    n, channels = x.shape[:2]
    if groups < 1 or channels % groups or out_channels % groups or channels // groups != group_channels:
        raise ValueError(f"conv2d: {channels} input channels, {out_channels} output channels and "
                         f"groups={groups} do not fit a weight of shape {weight.shape}")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if min(stride + dilation) < 1:
        raise ValueError("conv2d: stride and dilation must be >= 1")
    x = _padded(x, _padding(padding, (kh, kw), stride, dilation))
    cols = Windows.apply(x, kernel=(kh, kw), stride=stride, dilation=dilation)   # (N, OH, OW, C, kh, kw)
    _, oh, ow = cols.shape[:3]
    rows = n * oh * ow
    if groups == 1:
        out = cols.reshape(rows, channels * kh * kw) @ weight.reshape(out_channels, -1).T
    else:
        per_group = cols.reshape(rows, groups, group_channels * kh * kw).transpose(1, 0, 2)
        kernels = weight.reshape(groups, out_channels // groups, -1).transpose(0, 2, 1)
        out = (per_group @ kernels).transpose(1, 0, 2).reshape(rows, out_channels)
    if bias is not None:
        out = out + bias
    return out.reshape(n, oh, ow, out_channels).transpose(0, 3, 1, 2)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """1-d cross-correlation, as ``torch.nn.functional.conv1d``; weight ``(O, C // groups, k)``."""
    x, weight = as_tensor(input), as_tensor(weight)
    _check(x, 1, "conv1d")
    if weight.ndim != 3:
        raise ValueError(f"conv1d: weight must have shape (O, C // groups, k), not {weight.shape}")
    padding = padding if isinstance(padding, str) else (0, _single(padding, "padding"))
    out = conv2d(x.expand_dims(2), weight.expand_dims(2), bias, (1, _single(stride, "stride")),
                 padding, (1, _single(dilation, "dilation")), groups)
    return out.squeeze(2)


def _single(value, name):
    value = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    if not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {value!r}")
    return int(value)


def _pool2d(x, kernel_size, stride, padding, reduce, pad_value, op, tiled):
    x = as_tensor(x)
    _check(x, 2, op)
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if min(kernel + stride) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: kernel_size and stride must be >= 1 and padding >= 0, got "
                         f"kernel_size={kernel}, stride={stride}, padding={padding}")
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel {kernel}")
    if stride == kernel and padding == (0, 0) and x.shape[2] % kernel[0] == 0 == x.shape[3] % kernel[1]:
        return tiled(x, kernel)   # non-overlapping tiles that cover the input: no window copies
    x = _padded(x, tuple((p, p) for p in padding), pad_value)
    cols = Windows.apply(x, kernel=kernel, stride=stride, dilation=(1, 1))   # (N, OH, OW, C, kh, kw)
    n, oh, ow, c = cols.shape[:4]   # the window size spelled out: -1 is ambiguous for N = 0
    return reduce(cols.reshape(n, oh, ow, c, kernel[0] * kernel[1])).transpose(0, 3, 1, 2)


def max_pool2d(input, kernel_size, stride=None, padding=0):  # noqa: A002
    """Maximum over windows; each window's gradient goes to its first maximum (PyTorch's)."""
    return _pool2d(input, kernel_size, stride, padding, MaxLast.apply, -np.inf, "max_pool2d",
                   lambda x, kernel: MaxPoolTiles.apply(x, kernel=kernel))


def avg_pool2d(input, kernel_size, stride=None, padding=0):  # noqa: A002
    """Mean over windows; padded zeros count (PyTorch's default ``count_include_pad``)."""
    return _pool2d(input, kernel_size, stride, padding, lambda c: c.mean(axis=-1), 0.0, "avg_pool2d",
                   _average_tiles)


def _average_tiles(x, kernel):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // kernel[0], kernel[0], w // kernel[1], kernel[1]).mean(axis=(3, 5))


def _pool1d(pool, x, kernel_size, stride, padding, op):
    x = as_tensor(x)
    _check(x, 1, op)
    stride = None if stride is None else (1, _single(stride, "stride"))
    return pool(x.expand_dims(2), (1, _single(kernel_size, "kernel_size")), stride,
                (0, _single(padding, "padding"))).squeeze(2)


def max_pool1d(input, kernel_size, stride=None, padding=0):  # noqa: A002
    return _pool1d(max_pool2d, input, kernel_size, stride, padding, "max_pool1d")


def avg_pool1d(input, kernel_size, stride=None, padding=0):  # noqa: A002
    return _pool1d(avg_pool2d, input, kernel_size, stride, padding, "avg_pool1d")
