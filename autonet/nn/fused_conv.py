"""A convolution (``groups=1``) as one op that keeps its input and weight, not an im2col copy.

The composite (pad, ``Windows``, matmul, bias, transpose) keeps the padded
input's im2col copy, ``(N * OH * OW, C * kh * kw)``, alive until backward for the
weight's gradient, and gives a transposed (non-contiguous) ``(N, O, OH, OW)``.
This op saves ``x`` (unpadded) and the weight, as PyTorch's, and works through
the batch in chunks of at most ``CHUNK_ELEMENTS`` im2col elements, so no
full-size copy exists even for a moment. Per chunk::

    forward:   cols = im2col(pad(x));   out = W @ cols^T (+ bias)      contiguous NCHW
    backward:  dW += dOut @ cols        (cols recomputed: the same bits)
               dx  = crop(col2im(dOut^T @ W))
               db  = sum of dOut over N, OH, OW

With stride 1 and padding within the kernel's reach ``dilation * (kernel - 1)``,
``dx`` is instead the forward's convolution of ``dOut``, padded by the rest of
the reach, with the flipped weight ``(C, O, kh, kw)``: one im2col copy and one
product per chunk in place of col2im's ``kh * kw`` slice additions and the crop.

The chunk's copies are channels last (``(n, H, W, C)``, the columns ordered
``kh, kw, C``): each window row is then one run of ``kw * C`` values, and each
of col2im's slice additions moves runs of ``C`` or more, where NCHW's are runs
of ``kw`` and ``OW``.

Under ``create_graph`` backward runs the same formulas through the composite's
differentiable ops (``Windows``, ``Col2Im``, matmul), so the gradient is
differentiable again.
"""
from __future__ import annotations

import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor
from ..ops import shape
from ..ops.generic import add_in_place, channel_sums
from ..ops.windows import Col2Im, Windows, contiguous_copy, output_size

CHUNK_ELEMENTS = 2 ** 16
"""The most im2col elements one chunk of the batch copies (256 KiB of float32; the example
CNN's step 4% faster than at 2^15, its peak the same, 2^17 raises the peak 17%)."""


class Conv2d(Function):
    """``x (N, C, H, W)``, weight ``(O, C, kh, kw)``, bias ``(O,)`` or None -> ``(N, O, OH, OW)``;
    ``padding`` is ``((top, bottom), (left, right))``."""

    name = "conv2d"

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        ctx.stride, ctx.padding, ctx.dilation = stride, padding, dilation
        ctx.save_for_backward(x, weight)
        geometry = _Geometry(x.shape, weight.shape, stride, padding, dilation)
        out = devices.empty((x.shape[0], weight.shape[0]) + geometry.out,
                            np.result_type(x.dtype, weight.dtype), x)
        _convolve(x, weight, geometry, out)
        return out if bias is None else add_in_place(out, bias.reshape(-1, 1, 1))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        geometry = _Geometry(x.shape, weight.shape, ctx.stride, ctx.padding, ctx.dilation)
        wants_x, wants_weight, wants_bias = ctx.needs_input_grad
        grad_bias = channel_sums(grad).reshape(-1) if wants_bias else None
        if isinstance(grad, Tensor):
            grad_x, grad_weight = _composite_backward(x, weight, grad, geometry)
            return grad_x if wants_x else None, grad_weight if wants_weight else None, grad_bias
        transposed = geometry.transposed(grad.shape)
        by_col2im = wants_x and transposed is None
        grad_x = devices.empty(x.shape, grad.dtype, grad) if wants_x else None
        grad_weight = None
        if wants_weight or by_col2im:
            grad_weight = _weight_grad_and_col2im(x, weight, grad, geometry, wants_weight,
                                                  grad_x if by_col2im else None)
        if wants_x and not by_col2im:
            _convolve(grad, _flipped(weight), transposed, grad_x)
        return grad_x, grad_weight, grad_bias


def _convolve(x, weight, geometry, out):
    """``out (N, O, OH, OW)`` = the convolution of ``x`` with ``weight (O, C, kh, kw)``, chunk by chunk."""
    kernels = _channels_last(weight)
    for batch in geometry.chunks():   # one chunk's columns alive at a time
        into = out[batch].reshape(out[batch].shape[0], kernels.shape[0], -1)    # (n, O, OH OW)
        np.matmul(kernels, _columns(x[batch], geometry).transpose(0, 2, 1), out=into)


def _flipped(weight):
    """``(O, C, kh, kw)`` as ``(C, O, kh, kw)``, each kernel turned half a turn: with it, a
    stride-1 convolution's input gradient is the convolution of the output gradient."""
    return weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


def _weight_grad_and_col2im(x, weight, grad, geometry, wants_weight, grad_x):
    """The weight's gradient (if ``wants_weight``), and into ``grad_x`` (unless None) the
    input's by col2im."""
    kernels = _channels_last(weight)
    grad_weight = None
    for batch in geometry.chunks():
        piece = grad[batch].reshape(grad[batch].shape[0], kernels.shape[0], -1)   # (n, O, OH OW)
        if wants_weight:
            product = _weight_product(piece, _columns(x[batch], geometry), geometry.positions_last)
            grad_weight = product if grad_weight is None else grad_weight + product
        if grad_x is not None:
            columns = np.matmul(piece.transpose(0, 2, 1), kernels)     # (n, OH OW, kh kw C)
            grad_x[batch] = geometry.crop(_col2im(columns, geometry)).transpose(0, 3, 1, 2)
    if not wants_weight:
        return None
    o, c, kh, kw = weight.shape
    return (devices.zeros(weight.shape, grad.dtype, grad) if grad_weight is None   # an empty batch
            else grad_weight.reshape(o, kh, kw, c).transpose(0, 3, 1, 2).copy())


class _Geometry:
    """A convolution's sizes: the padded input's, the output's, and the batch's chunks."""

    def __init__(self, x_shape, weight_shape, stride, padding, dilation):
        n, c, h, w = x_shape
        self.n, self.kernel, self.stride, self.dilation = n, tuple(weight_shape[2:]), stride, dilation
        self.padding = padding
        (self.top, bottom), (self.left, right) = padding
        self.sizes = (h, w)
        self.padded = (n, c, h + self.top + bottom, w + self.left + right)
        self.out = tuple(output_size(*args) for args in zip(self.padded[2:], self.kernel, stride, dilation))
        if min(self.out) < 1:
            raise ValueError(f"the kernel {self.kernel} (dilation {dilation}) does not fit the "
                             f"input's padded spatial size {self.padded[2:]}")
        per_sample = c * self.kernel[0] * self.kernel[1] * self.out[0] * self.out[1]
        self.chunk = max(1, CHUNK_ELEMENTS // max(per_sample, 1))
        self.positions_last = self.out[1] > self.kernel[1] * c   # im2col's layout: see _columns

    def transposed(self, grad_shape):
        """The geometry under which the input's gradient is the convolution of ``grad_shape``'s
        output gradient with the flipped weight: stride 1 and padding at most ``dilation *
        (kernel - 1)`` (padded by the rest); None otherwise (col2im then)."""
        reach = [d * (k - 1) for k, d in zip(self.kernel, self.dilation)]
        if self.stride != (1, 1) or any(p > r for pair, r in zip(self.padding, reach) for p in pair):
            return None
        padding = tuple((r - before, r - after) for (before, after), r in zip(self.padding, reach))
        o, c = grad_shape[1], self.padded[1]
        return _Geometry(grad_shape, (c, o) + self.kernel, (1, 1), padding, self.dilation)

    def chunks(self):
        """Slices of the batch, each of at most ``CHUNK_ELEMENTS`` im2col elements (or one sample)."""
        return [slice(start, start + self.chunk) for start in range(0, self.n, self.chunk)]

    def pad(self, x):
        """A chunk ``(n, C, H, W)`` channels last, ``(n, H, W, C)``, in a zero frame."""
        n, c, hp, wp = (x.shape[0],) + self.padded[1:]
        out = devices.zeros((n, hp, wp, c), x.dtype, x)
        self.crop(out)[...] = x.transpose(0, 2, 3, 1)
        return out

    def crop(self, padded):
        """The view of a channels-last ``padded`` without its frame."""
        (h, w) = self.sizes
        return padded[:, self.top:self.top + h, self.left:self.left + w]

    def window_view(self, padded):
        """Every window of a channels-last ``padded`` as a view ``(n, OH, OW, kh, kw, C)``."""
        (oh, ow), (kh, kw), (sh, sw), (dh, dw) = self.out, self.kernel, self.stride, self.dilation
        s_n, s_h, s_w, s_c = padded.strides
        return devices.as_strided(padded, (padded.shape[0], oh, ow, kh, kw, padded.shape[3]),
                                  (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c))


def _channels_last(weight):
    """``(O, C, kh, kw)`` as ``(O, kh * kw * C)``, the columns' order."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _columns(x, geometry):
    """im2col of a chunk ``(n, C, H, W)``: ``(n, OH * OW, kh * kw * C)``, the columns ordered
    ``kh, kw, C``. The copy moves the longer runs: channels last, each window row is one run of
    ``kw * C`` values (stride 1); or, where an output row is longer (``positions_last``: a
    few channels, as a first layer's one), each kernel position and channel is one run of
    ``OW``, and the result a transposed view of an ``(n, kh * kw * C, OH * OW)`` copy (2.5x
    faster for the example CNN's first layer)."""
    view = geometry.window_view(geometry.pad(x))   # (n, OH, OW, kh, kw, C)
    n, positions = view.shape[0], geometry.out[0] * geometry.out[1]
    if geometry.positions_last:
        return contiguous_copy(view.transpose(0, 3, 4, 5, 1, 2)).reshape(n, -1, positions).transpose(0, 2, 1)
    return contiguous_copy(view).reshape(n, positions, -1)


def _col2im(cols, geometry):
    """Each row of ``(n, OH * OW, kh * kw * C)`` added back where its window lies: a padded
    channels-last ``(n, H', W', C)``, one slice addition per kernel position."""
    n, c = cols.shape[0], geometry.padded[1]
    (oh, ow), (kh, kw), (sh, sw), (dh, dw) = geometry.out, geometry.kernel, geometry.stride, geometry.dilation
    grid = cols.reshape(n, oh, ow, kh, kw, c)
    out = devices.zeros((n,) + geometry.padded[2:] + (c,), cols.dtype, cols)
    for i in range(kh):
        for j in range(kw):
            out[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw] += grid[:, :, :, i, j]
    return out


def _weight_product(piece, columns, positions_last):
    """``(n, O, OH OW)`` and ``(n, OH OW, K)`` -> ``(O, K)``, summed over the chunk: one product
    ``(O, n OH OW) @ (n OH OW, K)``, as ``np.tensordot`` but 10-30% faster here; the columns
    positions last are copied to ``(K, n OH OW)`` first (runs of ``OH OW``)."""
    rows = piece.transpose(1, 0, 2).reshape(piece.shape[1], -1)
    if positions_last:
        return rows @ columns.transpose(2, 0, 1).reshape(columns.shape[2], -1).T
    return rows @ columns.reshape(-1, columns.shape[2])


def _composite_backward(x, weight, grad, geometry):
    """The input's and weight's gradients from differentiable ops (``create_graph``)."""
    (n, c), (o, kh, kw) = x.shape[:2], (weight.shape[0],) + geometry.kernel
    padded = x if geometry.padding == ((0, 0), (0, 0)) else shape.pad(x, ((0, 0), (0, 0)) + geometry.padding)
    cols = Windows.apply(padded, kernel=geometry.kernel, stride=geometry.stride, dilation=geometry.dilation)
    rows = n * geometry.out[0] * geometry.out[1]
    pixels = grad.transpose(0, 2, 3, 1).reshape(rows, o)
    grad_weight = (pixels.T @ cols.reshape(rows, c * kh * kw)).reshape(weight.shape)
    grad_cols = (pixels @ weight.reshape(o, -1)).reshape((n,) + geometry.out + (c, kh, kw))
    grad_padded = Col2Im.apply(grad_cols, shape=geometry.padded, stride=geometry.stride,
                               dilation=geometry.dilation)
    (h, w), top, left = geometry.sizes, geometry.top, geometry.left
    return grad_padded[:, :, top:top + h, left:left + w], grad_weight
