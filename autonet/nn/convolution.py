"""Convolution and pooling, PyTorch's layouts: inputs ``(N, C, L)`` or ``(N, C, H, W)``.

A convolution with ``groups=1`` is one op (:mod:`autonet.nn.fused_conv`; under
``create_graph`` its backward runs the composite below), and so is max pooling over exact
tiles (``MaxPoolTiles``). Grouped convolutions and other pooling are built from
differentiable ops: constant padding, ``Windows`` (im2col through one strided view, see
:mod:`autonet.ops.windows`), then one matrix product (convolution) or one reduction
(pooling). The 1-d versions run the 2-d ones on a height of 1.
"""
from __future__ import annotations

import contextlib
from typing import Literal, overload

import numpy as np

from ..core import device as devices
from ..core.tensor import Tensor, TensorLike, as_tensor
from ..ops import shape
from ..ops.windows import Col2Im, MaxLast, MaxPoolTiles, Windows, first_maxima
from .constants import constant_like
from .fused_conv import Conv2d
from ..core.types import Array, IntOrTuple


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


def _check_weight(weight, layout, op):
    """A 2-d convolution's weight: four axes (``layout`` names them), none empty. A layer with
    no output channel (or input channel, or kernel element) is refused, as PyTorch refuses it."""
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must have shape {layout}, not {weight.shape}")
    if 0 in weight.shape:
        raise ValueError(f"{op}: the weight {weight.shape} {layout} is empty; a convolution needs "
                         f"at least one channel in and out and one kernel element")


def conv2d(input: TensorLike, weight: TensorLike, bias: TensorLike | None = None,  # noqa: A002
           stride: IntOrTuple = 1, padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
           groups: int = 1) -> Tensor:
    """2-d cross-correlation, as ``torch.nn.functional.conv2d``; weight ``(O, C // groups, kh, kw)``."""
    x, weight = as_tensor(input), as_tensor(weight)
    _check(x, 2, "conv2d")
    _check_weight(weight, "(O, C // groups, kh, kw)", "conv2d")
    out_channels, group_channels, kh, kw = weight.shape
    n, channels = x.shape[:2]
    groups = _groups(groups, "conv2d")
    if groups < 1 or channels % groups or out_channels % groups or channels // groups != group_channels:
        raise ValueError(f"conv2d: {channels} input channels, {out_channels} output channels and "
                         f"groups={groups} do not fit a weight of shape {weight.shape}")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if min(stride + dilation) < 1:
        raise ValueError("conv2d: stride and dilation must be >= 1")
    padding = _padding(padding, (kh, kw), stride, dilation)
    bias = None if bias is None else _bias(bias, out_channels, "conv2d")
    if groups == 1:
        return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    return _grouped_conv2d(_padded(x, padding), weight, bias, stride, dilation, groups)


def _groups(groups, op):
    """``groups`` as an int, or ``TypeError`` (a float made shapes of floats deep inside)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{op}: groups must be an int, not {groups!r}")
    return int(groups)


def _bias(bias, out_channels, op):
    """``bias`` as a Tensor of shape ``(out_channels,)``, or ``ValueError``."""
    bias = as_tensor(bias)
    if bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), one per output channel, "
                         f"not {bias.shape}")
    return bias


def _grouped_conv2d(x, weight, bias, stride, dilation, groups):
    """``conv2d`` with ``groups > 1`` from differentiable ops: ``Windows`` (im2col, kept for the
    weight's gradient), one batched matrix product, the bias."""
    out_channels, group_channels, kh, kw = weight.shape
    n, channels = x.shape[:2]
    cols = Windows.apply(x, kernel=(kh, kw), stride=stride, dilation=dilation)   # (N, OH, OW, C, kh, kw)
    _, oh, ow = cols.shape[:3]
    rows = n * oh * ow
    per_group = cols.reshape(rows, groups, group_channels * kh * kw).transpose(1, 0, 2)
    kernels = weight.reshape(groups, out_channels // groups, -1).transpose(0, 2, 1)
    out = (per_group @ kernels).transpose(1, 0, 2).reshape(rows, out_channels)
    if bias is not None:
        out = out + bias
    return out.reshape(n, oh, ow, out_channels).transpose(0, 3, 1, 2)


def conv1d(input: TensorLike, weight: TensorLike, bias: TensorLike | None = None,  # noqa: A002
           stride: IntOrTuple = 1, padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
           groups: int = 1) -> Tensor:
    """1-d cross-correlation, as ``torch.nn.functional.conv1d``; weight ``(O, C // groups, k)``."""
    x, weight = as_tensor(input), as_tensor(weight)
    _check(x, 1, "conv1d")
    if weight.ndim != 3:
        raise ValueError(f"conv1d: weight must have shape (O, C // groups, k), not {weight.shape}")
    padding = padding if isinstance(padding, str) else (0, _single(padding, "padding"))
    with _said_for("conv1d"):
        out = conv2d(x.expand_dims(2), weight.expand_dims(2), bias, (1, _single(stride, "stride")),
                     padding, (1, _single(dilation, "dilation")), groups)
    return out.squeeze(2)


@contextlib.contextmanager
def _said_for(op):
    """A ``ValueError`` of the 2-d op under a 1-d one, named for the 1-d op (its shapes and
    settings are the 2-d op's: a height of 1 in front)."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{op}: {error} (as the 2-d op on a height of 1)") from None


def _single(value, name):
    value = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    if not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {value!r}")
    return int(value)


def _pool_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output size; with ``ceil_mode`` the last window must start inside the
    input or its left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


class _Geometry:
    """A pooling's settings, checked, and its output size."""

    def __init__(self, x, kernel_size, stride, padding, dilation, ceil_mode, op):
        _check(x, 2, op)
        self.kernel = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel if stride is None else _pair(stride, "stride")
        self.padding, self.dilation = _pair(padding, "padding"), _pair(dilation, "dilation")
        if min(self.kernel + self.stride + self.dilation) < 1 or min(self.padding) < 0:
            raise ValueError(f"{op}: kernel_size, dilation and stride must be >= 1 and padding >= 0, "
                             f"got kernel_size={self.kernel}, stride={self.stride}, "
                             f"dilation={self.dilation}, padding={self.padding}")
        effective = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))
        if any(2 * p > k for p, k in zip(self.padding, effective)):
            raise ValueError(f"{op}: padding {self.padding} must be at most half the kernel {self.kernel}")
        self.sizes = x.shape[2:]
        self.out = tuple(_pool_size(*args, ceil_mode) for args in
                         zip(self.sizes, self.kernel, self.stride, self.padding, self.dilation))
        if min(self.out) < 1:
            raise ValueError(f"{op}: the kernel {self.kernel} (dilation {self.dilation}) does not fit "
                             f"the input's spatial size {self.sizes} with padding {self.padding}")
        self._refuse_windows_of_only_padding(op, ceil_mode)
        # right padding beyond ``padding`` that ceil_mode's last windows reach into
        self.extra = tuple(max(0, (o - 1) * s + e - (n + 2 * p)) for o, s, e, n, p in
                           zip(self.out, self.stride, effective, self.sizes, self.padding))

    def _refuse_windows_of_only_padding(self, op, ceil_mode):
        """``ValueError`` where a dilated window skips over every element of the input (PyTorch
        reads and writes outside the input there); without dilation a window always holds one."""
        for axis, (n, o, k, st, p, d) in enumerate(zip(self.sizes, self.out, self.kernel, self.stride,
                                                       self.padding, self.dilation)):
            if d == 1 or not n:
                continue
            empty = [i for i in range(o) if not any(0 <= i * st - p + j * d < n for j in range(k))]
            if empty:
                raise ValueError(f"{op}: window {empty[0]} along spatial axis {axis} holds no element of the "
                                 f"input (size {n}; kernel {k}, dilation {d}, padding {p}, stride {st}, "
                                 f"ceil_mode {ceil_mode}), only padding; use less padding or dilation")

    def tiles(self):
        """Non-overlapping tiles that cover the input exactly (no window copies needed)."""
        return (self.stride == self.kernel and self.padding == (0, 0) and self.dilation == (1, 1)
                and all(n % k == 0 for n, k in zip(self.sizes, self.kernel)))

    def windows(self, x, pad_value):
        """``(N, OH, OW, C, kh * kw)``: every window of ``x``, padded with ``pad_value``."""
        widths = tuple((p, p + e) for p, e in zip(self.padding, self.extra))
        if widths != ((0, 0), (0, 0)):
            x = shape.pad(x, ((0, 0), (0, 0)) + widths, constant_values=pad_value)
        cols = Windows.apply(x, kernel=self.kernel, stride=self.stride, dilation=self.dilation)
        n, oh, ow, c = cols.shape[:4]   # the window size spelled out: -1 is ambiguous for N = 0
        return cols.reshape(n, oh, ow, c, self.kernel[0] * self.kernel[1])

    def first_inside(self):
        """Each window's first position inside the input (row-major), ``(OH, OW, 1)`` nested
        lists, or None without padding (every window then starts inside the input): where a
        window holds only -inf, PyTorch's gradient and index go there, not to the padding."""
        if self.padding == (0, 0):
            return None
        rows, columns = ([-(-max(0, p - i * s) // d) for i in range(o)] for o, s, p, d in
                         zip(self.out, self.stride, self.padding, self.dilation))   # steps to reach 0
        return [[[r * self.kernel[1] + c] for c in columns] for r in rows]

    def counts(self, include_padding):
        """How many elements each window averages, per axis (PyTorch's avg_pool divisor)."""
        per_axis = []
        for n, o, k, s, p in zip(self.sizes, self.out, self.kernel, self.stride, self.padding):
            starts = [i * s - p for i in range(o)]
            ends = [min(start + k, n + p) for start in starts]
            if not include_padding:
                starts, ends = [max(start, 0) for start in starts], [min(end, n) for end in ends]
            per_axis.append([end - start for start, end in zip(starts, ends)])
        return per_axis


@overload
def max_pool2d(input: TensorLike, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,  # noqa: A002
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: Literal[False] = False) -> Tensor: ...


@overload
def max_pool2d(input: TensorLike, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,  # noqa: A002
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False, *,
               return_indices: Literal[True]) -> tuple[Tensor, Array]: ...


def max_pool2d(input: TensorLike, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,  # noqa: A002
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Array]:
    """Maximum over windows; each window's gradient goes to its first maximum (PyTorch's).
    ``return_indices``: also the int ndarray of where each maximum lies, flat within its
    ``(H, W)`` plane, as PyTorch's.

    >>> import numpy as np, autonet.nn.functional as F
    >>> out, where = F.max_pool2d(np.arange(9.0).reshape(1, 1, 3, 3), 2, ceil_mode=True, return_indices=True)
    >>> out.data[0, 0], where[0, 0]
    (array([[4., 5.],
           [7., 8.]]), array([[4, 5],
           [7, 8]]))
    """
    x = as_tensor(input)
    geometry = _Geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    if geometry.tiles():
        out = MaxPoolTiles.apply(x, kernel=geometry.kernel)
        return (out, _max_indices(x, geometry)) if return_indices else out
    cols = geometry.windows(x, -np.inf)
    out = MaxLast.apply(cols, fallback=geometry.first_inside()).transpose(0, 3, 1, 2)
    return (out, _max_indices(x, geometry, cols)) if return_indices else out


def _max_indices(x, geometry, cols=None):
    """Flat ``h * W + w`` of each window's first maximum, ``(N, C, OH, OW)`` int64."""
    if cols is None:
        cols = geometry.windows(x.detach(), -np.inf)
    first = first_maxima(cols.data, geometry.first_inside()).transpose(0, 3, 1, 2)   # (N, C, OH, OW)
    kw = geometry.kernel[1]
    (sh, sw), (ph, pw), (dh, dw) = geometry.stride, geometry.padding, geometry.dilation
    oh, ow = geometry.out
    rows = devices.arange(oh, first)[:, None] * sh - ph + (first // kw) * dh
    columns = devices.arange(ow, first)[None, :] * sw - pw + (first % kw) * dw
    return (rows * geometry.sizes[1] + columns).astype(np.int64)


def avg_pool2d(input: TensorLike, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,  # noqa: A002
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows, PyTorch's divisor: padded zeros count unless ``count_include_pad=False``;
    windows that ``ceil_mode`` adds past the padding count only what they cover."""
    x = as_tensor(input)
    geometry = _Geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    if geometry.tiles():
        return _average_tiles(x, geometry.kernel)
    cols = geometry.windows(x, 0.0)
    rows, columns = geometry.counts(count_include_pad)
    if set(rows) == {geometry.kernel[0]} and set(columns) == {geometry.kernel[1]}:
        return cols.mean(axis=-1).transpose(0, 3, 1, 2)
    divisor = constant_like(x, [[float(r * c) for c in columns] for r in rows])
    return cols.sum(axis=-1).transpose(0, 3, 1, 2) / divisor


def _average_tiles(x, kernel):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // kernel[0], kernel[0], w // kernel[1], kernel[1]).mean(axis=(3, 5))


def _pool1d(pool, x, kernel_size, stride, padding, op, **options):
    x = as_tensor(x)
    _check(x, 1, op)
    stride = None if stride is None else (1, _single(stride, "stride"))
    if "dilation" in options:
        options["dilation"] = (1, _single(options["dilation"], "dilation"))
    with _said_for(op):
        out = pool(x.expand_dims(2), (1, _single(kernel_size, "kernel_size")), stride,
                   (0, _single(padding, "padding")), **options)
    if isinstance(out, tuple):
        return out[0].squeeze(2), out[1][:, :, 0]
    return out.squeeze(2)


@overload
def max_pool1d(input: TensorLike, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,  # noqa: A002
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: Literal[False] = False) -> Tensor: ...


@overload
def max_pool1d(input: TensorLike, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,  # noqa: A002
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False, *,
               return_indices: Literal[True]) -> tuple[Tensor, Array]: ...


def max_pool1d(input: TensorLike, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,  # noqa: A002
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Array]:
    return _pool1d(max_pool2d, input, kernel_size, stride, padding, "max_pool1d", dilation=dilation,
                   ceil_mode=ceil_mode, return_indices=return_indices)


def avg_pool1d(input: TensorLike, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,  # noqa: A002
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    return _pool1d(avg_pool2d, input, kernel_size, stride, padding, "avg_pool1d", ceil_mode=ceil_mode,
                   count_include_pad=count_include_pad)


def conv_transpose2d(input: TensorLike, weight: TensorLike, bias: TensorLike | None = None,  # noqa: A002
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1) -> Tensor:
    """The transpose (gradient) of ``conv2d``, as ``torch.nn.functional.conv_transpose2d``; weight
    ``(C, O // groups, kh, kw)``. Each input pixel times the kernel is one window, and ``Col2Im``
    adds the windows where they land; ``padding`` is cropped, ``output_padding`` extends the
    bottom and right.

    >>> import numpy as np, autonet.nn.functional as F
    >>> F.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2).shape
    (1, 1, 4, 4)
    """
    x, weight = as_tensor(input), as_tensor(weight)
    _check(x, 2, "conv_transpose2d")
    _check_weight(weight, "(C, O // groups, kh, kw)", "conv_transpose2d")
    channels, group_out, kh, kw = weight.shape
    n, _, h, w = x.shape
    groups = _groups(groups, "conv_transpose2d")
    if groups < 1 or x.shape[1] != channels or channels % groups:
        raise ValueError(f"conv_transpose2d: {x.shape[1]} input channels and groups={groups} do not "
                         f"fit a weight of shape {weight.shape} (C, O // groups, kh, kw)")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    padding, extra = _pair(padding, "padding"), _pair(output_padding, "output_padding")
    if min(stride + dilation) < 1 or min(padding + extra) < 0:
        raise ValueError("conv_transpose2d: stride and dilation must be >= 1, padding and "
                         "output_padding >= 0")
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"conv_transpose2d: output_padding {extra} must be smaller than the stride "
                         f"{stride} (or the dilation {dilation}); use a smaller output_padding")
    out_channels = group_out * groups
    bias = None if bias is None else _bias(bias, out_channels, "conv_transpose2d")
    pixels = x.transpose(0, 2, 3, 1).reshape(n * h * w, channels)
    if groups == 1:
        cols = pixels @ weight.reshape(channels, -1)
    else:
        per_group = pixels.reshape(n * h * w, groups, channels // groups).transpose(1, 0, 2)
        kernels = weight.reshape(groups, channels // groups, group_out * kh * kw)
        cols = (per_group @ kernels).transpose(1, 0, 2)
    cols = cols.reshape(n, h, w, out_channels, kh, kw)
    full = tuple((size - 1) * s + d * (k - 1) + 1 for size, s, d, k in zip((h, w), stride, dilation, (kh, kw)))
    out = Col2Im.apply(cols, shape=(n, out_channels) + full, stride=stride, dilation=dilation)
    sizes = tuple(f - 2 * p + e for f, p, e in zip(full, padding, extra))
    if min(sizes) < 1:
        raise ValueError(f"conv_transpose2d: padding {padding} leaves no output for an input of "
                         f"spatial size {(h, w)}")
    grow = tuple(max(0, e - p) for e, p in zip(extra, padding))   # output_padding beyond the crop
    if grow != (0, 0):
        out = shape.pad(out, ((0, 0), (0, 0), (0, grow[0]), (0, grow[1])))
    out = out[:, :, padding[0]:padding[0] + sizes[0], padding[1]:padding[1] + sizes[1]]
    return out if bias is None else out + bias.reshape(1, out_channels, 1, 1)


def conv_transpose1d(input: TensorLike, weight: TensorLike, bias: TensorLike | None = None,  # noqa: A002
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1) -> Tensor:
    """``conv_transpose2d`` on a height of 1; weight ``(C, O // groups, k)``."""
    x, weight = as_tensor(input), as_tensor(weight)
    _check(x, 1, "conv_transpose1d")
    if weight.ndim != 3:
        raise ValueError(f"conv_transpose1d: weight must have shape (C, O // groups, k), not {weight.shape}")
    with _said_for("conv_transpose1d"):
        out = conv_transpose2d(x.expand_dims(2), weight.expand_dims(2), bias, (1, _single(stride, "stride")),
                               (0, _single(padding, "padding")), (0, _single(output_padding, "output_padding")),
                               groups, (1, _single(dilation, "dilation")))
    return out.squeeze(2)
