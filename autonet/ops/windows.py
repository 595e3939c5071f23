"""Sliding windows: the linear op under convolution and pooling, and its transpose.

``Windows`` copies every window of a (padded) batch ``(N, C, H, W)`` into
``(N, OH, OW, C, kh, kw)`` through one strided view (im2col): a convolution is
then one matrix product, a pooling one reduction. Its backward, ``Col2Im``,
adds each window back where it came from with ``kh * kw`` slice additions (no
``np.add.at``). Each op's backward is the other, so both are differentiable
to any order.
"""
import numpy as np

from ..core import device as devices
from ..core.function import Function
from ..core.tensor import Tensor


def output_size(size, kernel, stride, dilation):
    """How many windows fit along an axis of ``size``."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


class Windows(Function):
    """``x (N, C, H, W)`` -> windows ``(N, OH, OW, C, kh, kw)`` (a copy)."""

    name = "windows"

    @staticmethod
    def forward(ctx, x, kernel, stride, dilation):
        ctx.in_shape, ctx.kernel, ctx.stride, ctx.dilation = x.shape, kernel, stride, dilation
        return windows_array(x, kernel, stride, dilation)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return Col2Im.apply(grad, shape=ctx.in_shape, stride=ctx.stride, dilation=ctx.dilation)
        return col2im_array(grad, ctx.in_shape, ctx.stride, ctx.dilation)


class Col2Im(Function):
    """The transpose of ``Windows``: windows ``(N, OH, OW, C, kh, kw)`` summed into ``shape``."""

    name = "col2im"

    @staticmethod
    def forward(ctx, cols, shape, stride, dilation):
        ctx.kernel, ctx.stride, ctx.dilation = cols.shape[-2:], stride, dilation
        return col2im_array(cols, shape, stride, dilation)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return Windows.apply(grad, kernel=ctx.kernel, stride=ctx.stride, dilation=ctx.dilation)
        return windows_array(grad, ctx.kernel, ctx.stride, ctx.dilation)


def window_view(x, kernel, stride, dilation):
    """Every window of ``x (N, C, H, W)`` as a strided view ``(N, OH, OW, C, kh, kw)`` (no copy)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = output_size(h, kh, sh, dh), output_size(w, kw, sw, dw)
    if oh < 1 or ow < 1:
        raise ValueError(f"the kernel {kernel} (dilation {dilation}) does not fit the input's "
                         f"spatial size {(h, w)}")
    s_n, s_c, s_h, s_w = x.strides
    return devices.as_strided(x, (n, oh, ow, c, kh, kw), (s_n, s_h * sh, s_w * sw, s_c, s_h * dh, s_w * dw))


def contiguous_copy(view):
    """A C-ordered copy of ``view`` (a plain copy keeps a strided view's axis order, and a later
    reshape would copy it again)."""
    out = devices.empty(view.shape, view.dtype, view)
    out[...] = view
    return out


def windows_array(x, kernel, stride, dilation):
    return contiguous_copy(window_view(x, kernel, stride, dilation))


def col2im_array(cols, shape, stride, dilation):
    n, oh, ow, c, kh, kw = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    out = devices.zeros(shape, cols.dtype, cols)
    spread = cols.transpose(0, 3, 4, 5, 1, 2)     # (N, C, kh, kw, OH, OW)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                j * dw: j * dw + sw * (ow - 1) + 1: sw] += spread[:, :, i, j]
    return out


class MaxLast(Function):
    """The maximum over the last axis; the gradient goes to the first maximum (PyTorch's pooling)."""

    name = "max_pool"

    @staticmethod
    def forward(ctx, a, fallback=None):
        first = first_maxima(a, fallback)
        ctx.save_for_backward(devices.arange(a.shape[-1], first) == first[..., None])   # freed by backward
        return np.take_along_axis(a, first[..., None], axis=-1)[..., 0]

    @staticmethod
    def backward(ctx, grad):
        (hit,) = ctx.saved
        return grad[..., None] * hit


def first_maxima(a, fallback=None):
    """Where the first maximum over the last axis lies (a NaN counts as the maximum). Where it
    is -inf (every candidate is), ``fallback`` instead: nested lists that broadcast against the
    leading axes, e.g. each pooling window's first position inside the input, which PyTorch
    picks over the -inf padding."""
    first = np.argmax(a, axis=-1)
    if fallback is None:
        return first
    lost = np.take_along_axis(a, first[..., None], axis=-1)[..., 0] == -np.inf
    return np.where(lost, devices.to_device(np.asarray(fallback), devices.device_of(a)), first)


class MaxPoolTiles(Function):
    """Max pooling over non-overlapping ``kernel`` tiles that cover ``(N, C, H, W)`` exactly:
    no window copies, and the gradient goes to each tile's first maximum (PyTorch's; a NaN
    counts as the maximum and the first NaN wins, as in ``np.argmax`` and ``MaxLast``, where
    PyTorch's CPU kernel takes the last: the same NaN output, the gradient at another NaN). It
    saves only which position won, one byte per output."""

    name = "max_pool"

    @staticmethod
    def forward(ctx, x, kernel):
        out, first = tile_maxima(x, kernel)
        ctx.save_for_backward(first)   # freed by backward
        ctx.kernel, ctx.in_shape = kernel, x.shape
        return out

    @staticmethod
    def backward(ctx, grad):   # linear in grad (the hits are constants): any order
        n, c, h, w = ctx.in_shape
        (kh, kw) = ctx.kernel
        (first,) = ctx.saved
        if not isinstance(grad, Tensor):   # each position's share written where it lies
            out = devices.empty(ctx.in_shape, grad.dtype, grad)
            for position in range(kh * kw):
                i, j = divmod(position, kw)
                np.multiply(grad, first == position, out=out[:, :, i::kh, j::kw])
            return out
        first = first.data   # create_graph: the same formula from differentiable ops
        hit = devices.arange(kh * kw, first) == first[..., None]
        spread = (grad[..., None] * hit).reshape(n, c, h // kh, w // kw, kh, kw)
        return spread.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


BLOCK_ELEMENTS = 2 ** 15
"""The most input elements ``tile_maxima`` scans at once (whole rows of tiles; at least one)."""


def tile_maxima(x, kernel):
    """Each ``kernel`` tile's maximum of ``x (N, C, H, W)`` and the position of its first
    maximum (row-major in the tile). A scan over the flat input by whole shifted slices, each
    one contiguous loop: along each row, the best of ``x[f + j]``, ``j < kw``, for every flat
    position ``f``; then down the rows, the best of those at ``f + i * W``; then the values at
    the tiles' corners. The positions between tiles are computed too and dropped: twice the
    arithmetic, but strided views of the tiles cost NumPy one short inner loop per row. Rows
    of tiles go in blocks of at most ``BLOCK_ELEMENTS``, which bounds the temporaries."""
    n, c, h, w = x.shape
    (kh, kw) = kernel
    rows = x.reshape(-1, kh * w)   # each row one row of tiles
    index = np.uint8 if kh * kw < 256 else np.int64
    out = devices.empty((rows.shape[0], w // kw), x.dtype, x)
    first = devices.empty(out.shape, index, x)
    nan = x.size > 0 and bool(np.isnan(x.max()))   # then the first NaN is the maximum (rare)
    block = max(1, BLOCK_ELEMENTS // max(rows.shape[1], 1))
    for start in range(0, rows.shape[0], block):
        flat = rows[start:start + block].reshape(-1)
        best, at = _first_maxima(flat, None, kw, 1, 1, index, nan)   # along the rows
        best, at = _first_maxima(best, at, kh, w, kw, index, nan)   # down the columns
        corners = out[start:start + block]
        corners[...] = _corners(best, corners.shape, kh * w, kw)
        first[start:start + block] = _corners(at, corners.shape, kh * w, kw)
    return out.reshape(n, c, h // kh, w // kw), first.reshape(n, c, h // kh, w // kw)


def _first_maxima(values, positions, count, step, scale, index, nan):
    """For each flat ``f``, the first maximum of ``values[f + k * step]``, ``k < count``, and
    its position ``k * scale + positions[f + k * step]`` (``positions`` None: 0s)."""
    length = max(values.size - (count - 1) * step, 0)
    best = values[:length]
    first = devices.zeros((length,), index, values) if positions is None else positions[:length]
    for k in range(1, count):
        candidate = values[k * step: k * step + length]
        better = candidate > best   # strictly: a tie keeps the first
        if nan:
            better |= np.isnan(candidate) & ~np.isnan(best)
        moved = index(k * scale) + (0 if positions is None else positions[k * step: k * step + length])
        first = first + better * (moved - first)   # a select (np.where is 10x slower on mixed masks)
        best = np.maximum(best, candidate)   # the winner's value (a NaN if either is)
    return best, first


def _corners(flat, shape, row_step, step):
    """The 2-D strided view of ``flat`` at ``row * row_step + column * step`` (in elements)."""
    size = flat.dtype.itemsize
    return devices.as_strided(flat, shape, (row_step * size, step * size))
