"""The op table: each autonet Function class and the ONNX operators that compute it.

Every mapping takes the Graph and a :class:`Call` (the op's inputs as value
names, its settings, input and output shapes and dtypes) and returns the name
of its result; most end in a node named ``call.out``. Composite ops (GELU,
normalization, sliding windows) are written with the same formulas autonet
runs, so results agree to rounding. Shape entries that follow a dynamic axis
arrive as ``Dim``s: the mappings that build shapes pass them to ``g.ints``;
the others need plain ints and say so (``static``).
"""
from __future__ import annotations

import math

import numpy as np

from ..core.function import Function
from ..func import Alias
from ..nn import activations as nn_activations
from ..nn.constants import ConstantLike
from ..nn.functional import EmbeddingLookup
from ..nn.fused_attention import Attention
from ..nn.lstm_layer import LSTMLayer
from ..nn.masking import CausalKeep, DeadRows, MaskedFill
from ..nn.fused_conv import Conv2d
from ..nn.normalization import BatchNorm, BatchStatistics, LayerNorm, Normalize
from ..ops import activations, elementwise as ew, indexing, linalg, reduce, shape as shapes, ufuncs
from ..ops.windows import MaxLast, MaxPoolTiles, Windows
from .dims import Dim
from .graph import INT64_MAX, INT64_MIN, Graph


class Call:
    """One op, as the mappings see it."""

    def __init__(self, step, inputs, shapes_in, dtypes_in):
        self.fn, self.settings, self.out = step.fn, step.settings, step.out
        self.inputs = inputs              # value names (str), or the numbers/None given
        self.shapes = shapes_in           # per input: its shape (ints and Dims), or None
        self.dtypes = dtypes_in           # per input: its dtype, or None
        self.shape, self.dtype = step.shape, np.dtype(step.dtype)


def static(value, call: Call, what: str) -> int:
    """``value`` as a plain int, or ``ValueError``: this setting cannot follow a dynamic axis."""
    if isinstance(value, Dim):
        raise ValueError(f"autonet.onnx.export: {call.fn.name}'s {what} depends on a dynamic axis "
                         f"({value}), which its ONNX form cannot follow; export with that axis fixed")
    return value


def tensor(g: Graph, call: Call, position: int, dtype=None) -> str:
    """Input ``position`` as a value name, cast to ``dtype`` (default: as it is); a number
    becomes a constant of ``dtype`` (default: the output's)."""
    value = call.inputs[position]
    if isinstance(value, Dim):   # a number that follows a dynamic axis (x / x.shape[0])
        scalar = g.node("Reshape", [g.ints([value]), g.ints([])])
        return g.node("Cast", [scalar], to=_onnx_type(dtype or call.dtype))
    if not isinstance(value, str):
        return g.constant(value, dtype or call.dtype)
    if dtype is not None and np.dtype(dtype) != call.dtypes[position]:
        return g.node("Cast", [value], to=_onnx_type(dtype))
    return value


def _onnx_type(dtype) -> int:
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _axes(axis, ndim: int) -> list[int]:
    return list(range(ndim)) if axis is None else [a % ndim for a in np.atleast_1d(axis).tolist()]


# ------------------------------------------------------------------ elementwise
def _same_op(onnx_op: str):
    """An elementwise op with the same name in ONNX, its inputs in the output's dtype."""
    def mapping(g, call):
        inputs = [tensor(g, call, i, call.dtype) for i in range(len(call.inputs))]
        return g.node(onnx_op, inputs, call.out)
    return mapping


def _positive_or(g, call, negative: str) -> str:
    """``where(a > 0, a, negative)``; the slopes are constants of the dtype (ONNX's LeakyRelu and
    Elu take them as float32 attributes, which float64 would notice)."""
    a = tensor(g, call, 0)
    return g.node("Where", [g.node("Greater", [a, g.constant(0, call.dtype)]), a, negative], call.out)


def _tan(g, call):
    """``sin / cos`` (ONNX Runtime has no float64 Tan)."""
    a = tensor(g, call, 0)
    return g.node("Div", [g.node("Sin", [a]), g.node("Cos", [a])], call.out)


def _hyperbolic(combine: str):
    """``(exp(a) -/+ exp(-a)) / 2``: sinh and cosh (ONNX Runtime has no float64 kernels)."""
    def mapping(g, call):
        a = tensor(g, call, 0)
        both = g.node(combine, [g.node("Exp", [a]), g.node("Exp", [g.node("Neg", [a])])])
        return g.node("Div", [both, g.constant(2, call.dtype)], call.out)
    return mapping


def _leaky_relu(g, call):
    a = tensor(g, call, 0)
    return _positive_or(g, call, g.node("Mul", [a, g.constant(call.settings["negative_slope"], call.dtype)]))


def _elu(g, call):
    """``alpha * (exp(min(a, 0)) - 1)`` below 0: autonet's expm1, to within 2 ulp of 1."""
    a, dtype = tensor(g, call, 0), call.dtype
    below = g.node("Sub", [g.node("Exp", [g.node("Min", [a, g.constant(0, dtype)])]), g.constant(1, dtype)])
    return _positive_or(g, call, g.node("Mul", [g.constant(call.settings["alpha"], dtype), below]))


def _softplus(g, call):
    """``log(1 + exp(min(beta a, threshold))) / beta``, and ``a`` where ``beta a > threshold``."""
    a, const = tensor(g, call, 0), lambda value: g.constant(value, call.dtype)   # noqa: E731
    beta = const(call.settings.get("beta", 1.0))
    threshold = const(call.settings.get("threshold", activations._SOFTPLUS_THRESHOLD))
    scaled = g.node("Mul", [a, beta])
    soft = g.node("Log", [g.node("Add", [const(1), g.node("Exp", [g.node("Min", [scaled, threshold])])])])
    return g.node("Where", [g.node("Greater", [scaled, threshold]), a, g.node("Div", [soft, beta])], call.out)


def _log_sigmoid(g, call):
    """``min(a, 0) - log(1 + exp(-|a|))``."""
    a, const = tensor(g, call, 0), lambda value: g.constant(value, call.dtype)   # noqa: E731
    tail = g.node("Log", [g.node("Add", [const(1), g.node("Exp", [g.node("Neg", [g.node("Abs", [a])])])])])
    return g.node("Sub", [g.node("Min", [a, const(0)]), tail], call.out)


def _hardtanh(g, call):
    bounded = g.node("Max", [tensor(g, call, 0), g.constant(call.settings["min_val"], call.dtype)])
    return g.node("Min", [bounded, g.constant(call.settings["max_val"], call.dtype)], call.out)


def _hardswish(g, call):
    """``a * min(max(a + 3, 0), 6) / 6``."""
    a, const = tensor(g, call, 0), lambda value: g.constant(value, call.dtype)   # noqa: E731
    gate = g.node("Min", [g.node("Max", [g.node("Add", [a, const(3)]), const(0)]), const(6)])
    return g.node("Div", [g.node("Mul", [a, gate]), const(6)], call.out)


def _celu(g, call):
    """``alpha * (exp(min(a, 0) / alpha) - 1)`` below 0."""
    a, const = tensor(g, call, 0), lambda value: g.constant(value, call.dtype)   # noqa: E731
    alpha = float(call.settings["alpha"])
    inner = g.node("Mul", [g.node("Min", [a, const(0)]), const(1.0 / alpha)])
    below = g.node("Mul", [const(alpha), g.node("Sub", [g.node("Exp", [inner]), const(1)])])
    return _positive_or(g, call, below)


def _clip(g, call):
    """``min(max(a, lo), hi)``, as ``np.clip``; a missing bound is skipped. Number bounds are
    settings (``Clip``), Tensor bounds inputs (``ClipBetween``)."""
    out = tensor(g, call, 0, call.dtype)
    for position, name, op in ((1, "lo", "Max"), (2, "hi", "Min")):
        if len(call.inputs) > position:
            bound = None if call.inputs[position] is None else tensor(g, call, position, call.dtype)
        else:
            value = call.settings[name]
            bound = None if value is None else g.constant(value, call.dtype)
        if bound is not None:
            out = g.node(op, [out, bound])
    return g.node("Identity", [out], call.out)


def _where(g, call):
    condition = tensor(g, call, 0, np.bool_)
    return g.node("Where", [condition, tensor(g, call, 1, call.dtype), tensor(g, call, 2, call.dtype)],
                  call.out)


def _softmax(onnx_op):
    def mapping(g, call):
        return g.node(onnx_op, [tensor(g, call, 0)], call.out, axis=int(call.settings["axis"]))
    return mapping


def _gelu(g, call):
    """``a * cdf(a)``, autonet's formulas: ``0.5 (1 + erf(a / sqrt 2))`` or PyTorch's tanh one."""
    a, dtype = tensor(g, call, 0), call.dtype
    const = lambda value: g.constant(value, dtype)   # noqa: E731
    if call.settings["approximate"] == "tanh":
        cube = g.node("Mul", [g.node("Mul", [a, a]), a])
        inner = g.node("Add", [a, g.node("Mul", [const(activations._TANH_CUBIC), cube])])
        squashed = g.node("Tanh", [g.node("Mul", [const(activations._TANH_SCALE), inner])])
    else:
        squashed = g.node("Erf", [g.node("Mul", [a, const(1.0 / math.sqrt(2.0))])])
    cdf = g.node("Mul", [const(0.5), g.node("Add", [const(1.0), squashed])])
    return g.node("Mul", [a, cdf], call.out)


# ------------------------------------------------------------------ matrices
def _linear(g, call):
    """``x @ weight.T + bias``: Gemm for a matrix, MatMul (and Add) for batches of rows."""
    x, weight = tensor(g, call, 0), tensor(g, call, 1)
    bias = None if call.inputs[2] is None else tensor(g, call, 2)
    if len(call.shapes[0]) == 2:
        return g.node("Gemm", [x, weight] + ([bias] if bias else []), call.out, transB=1)
    product = g.node("MatMul", [x, g.node("Transpose", [weight], perm=[1, 0])])
    return g.node("Add", [product, bias], call.out) if bias else g.node("Identity", [product], call.out)


def _einsum(g, call):
    equation = ",".join(call.settings["inputs"]) + "->" + call.settings["output"]
    inputs = [tensor(g, call, i, call.dtype) for i in range(len(call.inputs))]
    return g.node("Einsum", inputs, call.out, equation=equation)


# ------------------------------------------------------------------ shapes
def _reshape(g, call):
    target = call.settings["shape"]
    target = [target] if not isinstance(target, (tuple, list)) else list(target)
    return g.node("Reshape", [tensor(g, call, 0), g.ints(target)], call.out, allowzero=int(-1 not in target))


def _transpose(g, call):
    ndim = len(call.shapes[0])
    axes = call.settings["axes"]
    perm = list(reversed(range(ndim))) if axes is None else [a % ndim for a in axes]
    return g.node("Transpose", [tensor(g, call, 0)], call.out, perm=perm)


def _broadcast_to(g, call):
    target = call.settings["shape"]
    target = [target] if not isinstance(target, (tuple, list)) else list(target)
    return g.node("Expand", [tensor(g, call, 0), g.ints(target)], call.out)


def _astype(g, call):
    return g.node("Cast", [tensor(g, call, 0)], call.out, to=_onnx_type(call.dtype))


def _concatenate(g, call):
    inputs = [tensor(g, call, i, call.dtype) for i in range(len(call.inputs))]
    return g.node("Concat", inputs, call.out, axis=int(call.settings["axis"]) % len(call.shape))


def _stack(g, call):
    axis = int(call.settings["axis"]) % len(call.shape)
    where = g.ints([axis])
    inputs = [g.node("Unsqueeze", [tensor(g, call, i, call.dtype), where]) for i in range(len(call.inputs))]
    return g.node("Concat", inputs, call.out, axis=axis)


def _pad(g, call):
    widths = np.broadcast_to(np.asarray(call.settings["widths"], dtype=object), (len(call.shapes[0]), 2))
    pads = [static(w, call, "padding") for w in widths[:, 0]] + [static(w, call, "padding") for w in widths[:, 1]]
    value = g.constant(np.asarray(call.settings["constant_values"], dtype=call.dtype).reshape(()), call.dtype)
    return g.node("Pad", [tensor(g, call, 0), g.ints(pads), value], call.out, mode="constant")


def _getitem(g, call):
    """Basic indexing (ints, slices, None, ...) as Slice, Gather and Unsqueeze; one integer array
    as Gather. Other advanced indexing (bool masks, several arrays) has no mapping."""
    parts = _index_parts(call)
    out = tensor(g, call, 0)
    axis = 0
    starts, ends, steps, axes = [], [], [], []
    for part in parts:   # slices first, all at once
        if isinstance(part, slice):
            if part != slice(None):
                step = 1 if part.step is None else static(part.step, call, "slice step")
                default_start, default_end = (0, INT64_MAX) if step > 0 else (INT64_MAX, INT64_MIN)
                starts.append(default_start if part.start is None else part.start)
                ends.append(default_end if part.stop is None else part.stop)
                steps.append(step)
                axes.append(axis)
            axis += 1
        elif part is not None:
            axis += 1
    if axes:
        out = g.node("Slice", [out, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    axis = 0
    for part in parts:   # then integers and the array, left to right, and new axes
        if part is None:
            out = g.node("Unsqueeze", [out, g.ints([axis])])
            axis += 1
        elif isinstance(part, slice):
            axis += 1
        else:
            indices = np.asarray(part, dtype=np.int64)
            out = g.node("Gather", [out, g.constant(indices, np.int64, "index")], axis=axis)
            axis += indices.ndim
    return g.node("Identity", [out], call.out)


def _index_parts(call: Call) -> list:
    index = call.settings["index"]
    index = index if isinstance(index, tuple) else (index,)
    ndim = len(call.shapes[0])
    used = sum(1 for part in index if part is not None and part is not Ellipsis)
    parts = []
    for part in index:
        if part is Ellipsis:
            parts.extend([slice(None)] * (ndim - used))
        elif _is_mask(part):
            raise _unmapped(call, "a boolean mask index")
        else:
            parts.append(part)
    arrays = [p for p in parts if isinstance(p, (list, np.ndarray))]
    plain = [p for p in parts if not isinstance(p, (list, np.ndarray, slice)) and p is not None]
    if arrays and (len(arrays) > 1 or plain or any(p is None for p in parts)):
        raise _unmapped(call, "an index mixing an integer array with other arrays, integers or None")
    return parts


def _is_mask(part) -> bool:
    return isinstance(part, (bool, np.bool_)) or (
        isinstance(part, (list, np.ndarray)) and np.asarray(part).dtype == np.bool_)


def _unmapped(call: Call, what: str) -> ValueError:
    return ValueError(f"autonet.onnx.export: {call.fn.name} with {what} has no ONNX mapping; "
                      f"index with slices, integers and one integer array")


def _take_along_axis(g, call):
    """GatherElements on ``a`` and the indices both broadcast to the result's shape (NumPy
    broadcasts them; ONNX does not)."""
    axis = int(call.settings["axis"]) % len(call.shape)
    listed = call.settings.get("listed")
    indices = tensor(g, call, 1, np.int64) if listed is None else g.constant(listed, np.int64, "index")
    a_shape = list(call.shape)
    a_shape[axis] = call.shapes[0][axis]
    a = g.node("Expand", [tensor(g, call, 0), g.ints(a_shape)])
    indices = g.node("Expand", [indices, g.ints(call.shape)])
    return g.node("GatherElements", [a, indices], call.out, axis=axis)


# ------------------------------------------------------------------ reductions
def _reduction(onnx_op):
    def mapping(g, call):
        axes = _axes(call.settings["axis"], len(call.shapes[0]))
        keepdims = int(bool(call.settings["keepdims"]))
        return g.node(onnx_op, [tensor(g, call, 0, call.dtype), g.ints(axes)], call.out, keepdims=keepdims,
                      noop_with_empty_axes=1)   # axis=() reduces nothing, as in NumPy
    return mapping


def _variance(root: bool):
    """``sum((a - mean)^2) / max(n - ddof, 0)`` over the axes, ``n`` read from the shape at run
    time; its square root for ``std``."""
    def mapping(g, call):
        a, dtype = tensor(g, call, 0, call.dtype), call.dtype
        axes = g.ints(_axes(call.settings["axis"], len(call.shapes[0])))
        keepdims = int(bool(call.settings["keepdims"]))
        centred = g.node("Sub", [a, g.node("ReduceMean", [a, axes], keepdims=1)])
        squares = g.node("ReduceSum", [g.node("Mul", [centred, centred]), axes], keepdims=keepdims)
        count = g.node("ReduceProd", [g.node("Gather", [g.node("Shape", [a]), axes]), g.ints([0])], keepdims=0)
        count = g.node("Sub", [g.node("Cast", [count], to=_onnx_type(dtype)), g.constant(call.settings["ddof"], dtype)])
        variance = g.node("Div", [squares, g.node("Max", [count, g.constant(0, dtype)])])
        return g.node("Sqrt" if root else "Identity", [variance], call.out)
    return mapping


def _norm(g, call):
    """``sqrt(sum(x * x))`` over the axes; for another ``p``, ``sum(|x| ** p) ** (1 / p)``."""
    x = tensor(g, call, 0)
    axes = g.ints(_axes(call.settings["axes"], len(call.shapes[0])))
    keepdims = int(bool(call.settings["keepdims"]))
    p = call.settings.get("p", 2.0)
    if p == 2:
        return g.node("Sqrt", [g.node("ReduceSum", [g.node("Mul", [x, x]), axes], keepdims=keepdims)], call.out)
    powers = g.node("Pow", [g.node("Abs", [x]), g.constant(p, call.dtype)])
    return g.node("Pow", [g.node("ReduceSum", [powers, axes], keepdims=keepdims), g.constant(1.0 / p, call.dtype)],
                  call.out)


def _logsumexp(g, call):
    """``log(sum(exp(a - shift))) + shift``, the shift the maximum where it is finite, else 0."""
    a = tensor(g, call, 0, call.dtype)
    axes = g.ints(_axes(call.settings["axis"], len(call.shapes[0])))
    largest = g.node("ReduceMax", [a, axes], keepdims=1)
    finite = g.node("Not", [g.node("Or", [g.node("IsInf", [largest]), g.node("IsNaN", [largest])])])
    shift = g.node("Where", [finite, largest, g.constant(0, call.dtype)])
    total = g.node("ReduceSum", [g.node("Exp", [g.node("Sub", [a, shift])]), axes], keepdims=1)
    out = g.node("Add", [g.node("Log", [total]), shift])
    if call.settings["keepdims"]:
        return g.node("Identity", [out], call.out)
    return g.node("Squeeze", [out, axes], call.out)


def _cumsum(g, call):
    axis = call.settings["axis"]
    x = tensor(g, call, 0, call.dtype)
    if axis is None:   # NumPy flattens first
        x, axis = g.node("Reshape", [x, g.ints([-1])]), 0
    return g.node("CumSum", [x, g.constant(np.int64(axis), np.int64)], call.out)


def _trilu(upper):
    def mapping(g, call):
        k = g.constant(np.int64(call.settings["k"]), np.int64)
        return g.node("Trilu", [tensor(g, call, 0), k], call.out, upper=upper)
    return mapping


# ------------------------------------------------------------------ layers
def _normalize(g, call, out=None):
    """``(x - mean) / sqrt(var + eps)`` over ``axes``: autonet's formula, step by step."""
    x = tensor(g, call, 0)
    axes = g.ints(_axes(call.settings["axes"], len(call.shapes[0])))
    centred = g.node("Sub", [x, g.node("ReduceMean", [x, axes], keepdims=1)])
    variance = g.node("ReduceMean", [g.node("Mul", [centred, centred]), axes], keepdims=1)
    root = g.node("Sqrt", [g.node("Add", [variance, g.constant(call.settings["eps"], call.dtype)])])
    inverse = g.node("Div", [g.constant(1.0, call.dtype), root])
    return g.node("Mul", [centred, inverse], call.out if out is None else out)


def _layer_norm(g, call):
    """``Normalize``, then ``* weight + bias`` where given (nn.normalization.LayerNorm)."""
    out = _normalize(g, call, out=g.fresh("normalized"))
    for position, op in ((1, "Mul"), (2, "Add")):
        if call.inputs[position] is not None:
            out = g.node(op, [out, tensor(g, call, position)])
    return g.node("Identity", [out], call.out)


def _batch_norm(g, call):
    """Training-mode ``BatchNorm`` (nn.normalization): ``Normalize`` over the batch, then the
    per-channel ``* weight + bias`` (reshaped to ``(1, C, 1, ...)``) where given."""
    out = _normalize(g, call, out=g.fresh("normalized"))
    channels = g.ints([1, -1] + [1] * (len(call.shapes[0]) - 2))
    for position, op in ((1, "Mul"), (2, "Add")):
        if call.inputs[position] is not None:
            out = g.node(op, [out, g.node("Reshape", [tensor(g, call, position), channels])])
    return g.node("Identity", [out], call.out)


def _batch_statistics(g, call):
    """``BatchStatistics`` (nn.normalization): the batch's per-channel mean and biased variance
    stacked as ``(2, C)``."""
    x = tensor(g, call, 0)
    axes = g.ints([0] + list(range(2, len(call.shapes[0]))))
    mean = g.node("ReduceMean", [x, axes], keepdims=1)
    centred = g.node("Sub", [x, mean])
    variance = g.node("ReduceMean", [g.node("Mul", [centred, centred]), axes], keepdims=1)
    rows = [g.node("Reshape", [value, g.ints([1, -1])]) for value in (mean, variance)]
    return g.node("Concat", rows, call.out, axis=0)


def _conv2d(g, call):
    """``nn.fused_conv.Conv2d``: ONNX's Conv for float32 and float16; other dtypes (ONNX
    Runtime has no float64 Conv) as autonet's composite: pad, windows, one MatMul, the bias."""
    (top, bottom), (left, right) = call.settings["padding"]
    x, weight = tensor(g, call, 0), tensor(g, call, 1)
    bias = None if call.inputs[2] is None else tensor(g, call, 2)
    if call.dtype in (np.dtype(np.float32), np.dtype(np.float16)):
        return g.node("Conv", [x, weight] + ([bias] if bias else []), call.out, pads=[top, left, bottom, right],
                      strides=list(call.settings["stride"]), dilations=list(call.settings["dilation"]))
    if (top, bottom, left, right) != (0, 0, 0, 0):
        x = g.node("Pad", [x, g.ints([0, 0, top, left, 0, 0, bottom, right])], mode="constant")
    out_channels, channels, kh, kw = (static(size, call, "weight shape") for size in call.shapes[1])
    oh, ow = (static(size, call, "output size") for size in call.shape[2:])
    grid = _window_grid(g, x, (kh, kw), call.settings["stride"], call.settings["dilation"], (oh, ow))
    rows = g.node("Reshape", [grid, g.ints([-1, channels * kh * kw])])
    kernels = g.node("Transpose", [g.node("Reshape", [weight, g.ints([out_channels, -1])])], perm=[1, 0])
    out = g.node("MatMul", [rows, kernels])
    if bias:
        out = g.node("Add", [out, bias])
    pixels = g.node("Reshape", [out, g.ints([-1, oh, ow, out_channels])])
    return g.node("Transpose", [pixels], call.out, perm=[0, 3, 1, 2])


def _embedding(g, call):
    indices = tensor(g, call, 1)
    if call.dtypes[1] not in (np.dtype(np.int32), np.dtype(np.int64)):
        indices = g.node("Cast", [indices], to=_onnx_type(np.int64))
    return g.node("Gather", [tensor(g, call, 0), indices], call.out, axis=0)


def _windows(g, call):
    """Every ``kernel`` window of ``(N, C, H, W)`` as ``(N, OH, OW, C, kh, kw)``."""
    size = tuple(static(size, call, "output size") for size in call.shape[1:3])
    return _window_grid(g, tensor(g, call, 0), call.settings["kernel"], call.settings["stride"],
                        call.settings["dilation"], size, call.out)


def _window_grid(g, x, kernel, stride, dilation, size, out=None):
    """The windows of ``x``: one strided Slice per kernel position, stacked, as
    ``(N, OH, OW, C, kh, kw)``."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, size
    last = g.ints([4])
    pieces = []
    for i in range(kh):
        for j in range(kw):
            starts, ends = [i * dh, j * dw], [i * dh + sh * (oh - 1) + 1, j * dw + sw * (ow - 1) + 1]
            piece = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints([2, 3]), g.ints([sh, sw])])
            pieces.append(g.node("Unsqueeze", [piece, last]))
    stacked = g.node("Concat", pieces, axis=4)                        # (N, C, OH, OW, kh * kw)
    grid = g.node("Reshape", [stacked, g.ints([0, 0, oh, ow, kh, kw])])   # 0: N and C as they are
    return g.node("Transpose", [grid], out, perm=[0, 2, 3, 1, 4, 5])


def _max_last(g, call):
    return g.node("ReduceMax", [tensor(g, call, 0), g.ints([-1])], call.out, keepdims=0)


def _max_pool_tiles(g, call):
    kh, kw = call.settings["kernel"]
    h, w = (static(size, call, "spatial size") for size in call.shapes[0][2:])
    tiles = g.node("Reshape", [tensor(g, call, 0), g.ints([0, 0, h // kh, kh, w // kw, kw])])
    return g.node("ReduceMax", [tiles, g.ints([3, 5])], call.out, keepdims=0)


def _masked_fill(g, call):
    mask, value = tensor(g, call, 1, np.bool_), g.constant(call.settings["value"], call.dtype)
    scores = tensor(g, call, 0)
    inputs = [mask, value, scores] if call.settings["fill_where"] else [mask, scores, value]
    return g.node("Where", inputs, call.out)


def _causal_keep(g, call):
    return _on_and_below_diagonal(g, tensor(g, call, 0), call.out)


def _on_and_below_diagonal(g, like, out=None):
    """True on and below the diagonal of the last two axes, for any (L, S) at run time."""
    size = g.node("Shape", [like], start=-2)
    ones = g.node("ConstantOfShape", [size], value=_one_int64())
    return g.node("Cast", [g.node("Trilu", [ones], upper=0)], out, to=_onnx_type(np.bool_))


def _one_int64():
    from onnx import numpy_helper
    return numpy_helper.from_array(np.ones(1, dtype=np.int64))


def _dead_rows(g, call):
    return _minus_infinite_rows(g, tensor(g, call, 0), call.out)


def _minus_infinite_rows(g, scores, out=None):
    """True for rows (last axis) that are -inf throughout."""
    negative_infinite = g.node("IsInf", [scores], detect_positive=0)
    as_number = g.node("Cast", [negative_infinite], to=_onnx_type(np.float32))
    lowest = g.node("ReduceMin", [as_number, g.ints([-1])], keepdims=1)
    return g.node("Cast", [lowest], out, to=_onnx_type(np.bool_))


def _attention(g, call):
    """``softmax(q @ k^T * scale) @ v`` (nn.fused_attention), as its composite: causal keys
    -inf, rows of -inf only give zero weights and ``dead_fill`` outputs."""
    q, k, v = (tensor(g, call, i) for i in range(3))
    ndim, dtype = len(call.shapes[1]), call.dtype
    swapped = g.node("Transpose", [k], perm=list(range(ndim - 2)) + [ndim - 1, ndim - 2])
    scores = g.node("Mul", [g.node("MatMul", [q, swapped]), g.constant(call.settings["scale"], dtype)])
    if call.settings["causal"]:
        scores = g.node("Where", [_on_and_below_diagonal(g, scores), scores, g.constant(-np.inf, dtype)])
    dead, zero = _minus_infinite_rows(g, scores), g.constant(0.0, dtype)
    weights = g.node("Softmax", [g.node("Where", [dead, zero, scores])], axis=-1)
    out = g.node("MatMul", [g.node("Where", [dead, zero, weights]), v])
    fill = g.constant(call.settings["dead_fill"], dtype)
    return g.node("Where", [dead, fill, out], call.out)


def _lstm_layer(g, call):
    """One LSTM layer (nn.lstm_layer) unrolled over its fixed length, its equations step by
    step: the outputs in input order, then the last cell state."""
    length = static(call.shapes[0][0], call, "sequence length")
    hidden = int(call.shapes[5][1])
    transposed = lambda w: g.node("Transpose", [w], perm=[1, 0])   # noqa: E731
    gates = g.node("MatMul", [tensor(g, call, 0), transposed(tensor(g, call, 3))])
    for position in (4, 6):   # the biases, added once for every step
        if call.inputs[position] is not None:
            gates = g.node("Add", [gates, tensor(g, call, position)])
    w_hh = transposed(tensor(g, call, 5))
    h, c = (None if call.inputs[k] is None else tensor(g, call, k) for k in (1, 2))
    outputs = [None] * length
    for t in (reversed(range(length)) if call.settings["reverse"] else range(length)):
        gate = g.node("Gather", [gates, g.constant(np.array(t, np.int64))], axis=0)
        if h is not None:
            gate = g.node("Add", [gate, g.node("MatMul", [h, w_hh])])
        i, f, cell, o = (g.node("Slice", [gate, g.ints([k * hidden]), g.ints([(k + 1) * hidden]),
                                          g.ints([-1])]) for k in range(4))
        i, f, o, cell = (g.node("Sigmoid", [i]), g.node("Sigmoid", [f]), g.node("Sigmoid", [o]),
                         g.node("Tanh", [cell]))
        new = g.node("Mul", [i, cell])
        c = new if c is None else g.node("Add", [g.node("Mul", [f, c]), new])
        h = outputs[t] = g.node("Mul", [o, g.node("Tanh", [c])])
    rows = [g.node("Unsqueeze", [row, g.ints([0])]) for row in outputs + [c]]
    return g.node("Concat", rows, call.out, axis=0)


def _constant_like(g, call):
    return g.node("Identity", [g.constant(call.settings["values"], call.dtype)], call.out)


def _alias(g, call):
    return call.inputs[0]


MAPPINGS = {
    ew.Add: _same_op("Add"), ew.Sub: _same_op("Sub"), ew.Mul: _same_op("Mul"), ew.Div: _same_op("Div"),
    ew.Pow: _same_op("Pow"), ew.Maximum: _same_op("Max"), ew.Minimum: _same_op("Min"),
    ew.Neg: _same_op("Neg"), ew.Exp: _same_op("Exp"), ew.Log: _same_op("Log"), ew.Sqrt: _same_op("Sqrt"),
    ew.Abs: _same_op("Abs"), ew.Sin: _same_op("Sin"), ew.Cos: _same_op("Cos"),
    ew.Sigmoid: _same_op("Sigmoid"), ew.Tanh: _same_op("Tanh"), ew.Relu: _same_op("Relu"),
    ufuncs.Tan: _tan, ufuncs.Sinh: _hyperbolic("Sub"), ufuncs.Cosh: _hyperbolic("Add"),
    ufuncs.Arcsin: _same_op("Asin"), ufuncs.Arccos: _same_op("Acos"), ufuncs.Arctan: _same_op("Atan"),
    ufuncs.Reciprocal: _same_op("Reciprocal"), activations.Erf: _same_op("Erf"),
    ew.Clip: _clip, ew.ClipBetween: _clip, ew.Where: _where,
    ew.Softmax: _softmax("Softmax"), ew.LogSoftmax: _softmax("LogSoftmax"),
    activations.Softplus: _softplus, nn_activations.LogSigmoid: _log_sigmoid, nn_activations.Hardtanh: _hardtanh,
    nn_activations.Hardswish: _hardswish, nn_activations.Celu: _celu, reduce.LogSumExp: _logsumexp,
    activations.LeakyRelu: _leaky_relu, activations.Elu: _elu, activations.Gelu: _gelu,
    linalg.MatMul: _same_op("MatMul"), linalg.Linear: _linear, linalg.Einsum: _einsum,
    shapes.Reshape: _reshape, shapes.Transpose: _transpose, shapes.GetItem: _getitem,
    shapes.BroadcastTo: _broadcast_to, shapes.AsType: _astype, shapes.Concatenate: _concatenate,
    shapes.Stack: _stack, shapes.Pad: _pad,
    reduce.Sum: _reduction("ReduceSum"), reduce.Mean: _reduction("ReduceMean"),
    reduce.Max: _reduction("ReduceMax"), reduce.Min: _reduction("ReduceMin"),
    reduce.Prod: _reduction("ReduceProd"), reduce.Var: _variance(False), reduce.Std: _variance(True),
    linalg.Norm: _norm, reduce.Cumsum: _cumsum,
    indexing.TakeAlongAxis: _take_along_axis, indexing.Tril: _trilu(0), indexing.Triu: _trilu(1),
    Normalize: _normalize, LayerNorm: _layer_norm, BatchNorm: _batch_norm, BatchStatistics: _batch_statistics, Conv2d: _conv2d, EmbeddingLookup: _embedding, Windows: _windows,
    MaxLast: _max_last, MaxPoolTiles: _max_pool_tiles, MaskedFill: _masked_fill, CausalKeep: _causal_keep,
    DeadRows: _dead_rows, ConstantLike: _constant_like, Alias: _alias, Attention: _attention,
    LSTMLayer: _lstm_layer,
}


def mapping_of(fn: type[Function]):
    """The mapping for ``fn``, or ``ValueError`` naming the op (a custom Function by its class)."""
    mapping = MAPPINGS.get(fn)
    if mapping is None:
        label = fn.name if fn.name == fn.__name__ else f"{fn.name} ({fn.__name__})"
        raise ValueError(f"autonet.onnx.export: the op {label} has no ONNX mapping; the exported "
                         f"ops are listed in docs/interop.md (ONNX export)")
    return mapping
