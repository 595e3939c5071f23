"""The op test database: one row per op (or per variant of one), as PyTorch's OpInfo.

Each :class:`OpInfo` row names the registered op it tests (``autonet.ops.registry``)
and says how to call it, what NumPy computes for it (an independent reference on
ndarrays), where its inputs may be drawn (away from kinks and poles), and how
NumPy's own function reaches it on Tensors. ``tests/test_ops_db.py`` turns every
row into value, gradient, second-derivative, NumPy-protocol, compile and fused
tests, on the CPU and on the device double. Adding an op means adding one row.
"""
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import autonet

_erf = np.vectorize(math.erf, otypes=[float])


@dataclass(frozen=True)
class OpInfo:
    name: str                            # the row's name: an op's, or op_variant
    op: str                              # the registry entry it tests
    call: Callable                       # Tensors -> Tensor
    reference: Optional[Callable]        # ndarrays -> ndarray, computed independently
    domains: tuple = ({},)               # per input: bounds for autonet.testing.tensors
    shapes: str = "any"                  # "any", "axis" (one axis or more), "wide" (a last axis of 2 or
                                         # more), "broadcast", "matrices" (a product's), "matrices2"
                                         # (two of one shape), "matrix"
    numpy: Optional[Callable] = None     # NumPy's function called on the Tensors
    fused: bool = False                  # the fused backend lowers it
    ties: bool = False                   # keep two inputs apart (max/min are not differentiable at ties)
    compiles: bool = True                # its call can be traced as a compiled step's body
    notes: str = field(default="", compare=False)

    @property
    def arity(self):
        return len(self.domains)


def unary(name, reference, numpy=None, op=None, fused=False, shapes="any", **bounds):
    """A row for ``autonet.<op>(x)`` (and ``np.<numpy>(x)``), ``reference`` on ndarrays."""
    op = op or name
    function = getattr(autonet, op)
    return OpInfo(name, op, function, reference, (bounds,), shapes,
                  (lambda x: numpy(x)) if numpy is not None else None, fused)


def binary(name, call, reference, numpy=None, op=None, fused=False, domains=({}, {}), ties=False):
    """A row for a two-operand op, with broadcasting."""
    return OpInfo(name, op or name, call, reference, domains, "broadcast",
                  (lambda a, b: numpy(a, b)) if numpy is not None else None, fused, ties)


def _softmax(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


OPS = [
    # arithmetic
    binary("add", lambda a, b: a + b, np.add, numpy=np.add, fused=True),
    binary("subtract", lambda a, b: a - b, np.subtract, numpy=np.subtract, fused=True),
    binary("multiply", lambda a, b: a * b, np.multiply, numpy=np.multiply, fused=True),
    binary("divide", lambda a, b: a / b, np.true_divide, numpy=np.true_divide, fused=True,
           domains=({}, {"min_magnitude": 0.5})),
    binary("power", lambda a, b: a ** b, np.power, numpy=np.power,
           domains=({"min_value": 0.5, "max_value": 3}, {"min_value": -2, "max_value": 2})),
    OpInfo("power_fraction", "power", lambda x: x ** 1.5, lambda a: a ** 1.5, ({"min_value": 0.1},),
           fused=True),
    OpInfo("power_negative", "power", lambda x: x ** -2, lambda a: 1 / (a * a), ({"min_magnitude": 0.5},),
           fused=True),
    OpInfo("power_reflected", "power", lambda x: 2.0 ** x, lambda a: np.exp2(a),
           ({"min_value": -3, "max_value": 3},)),
    OpInfo("subtract_reflected", "subtract", lambda x: 3.0 - x, lambda a: 3.0 - a, fused=True),
    OpInfo("divide_reflected", "divide", lambda x: 3.0 / x, lambda a: 3.0 / a, ({"min_magnitude": 0.5},),
           fused=True),
    unary("negative", np.negative, numpy=np.negative, fused=True),
    unary("positive", lambda a: a, numpy=np.positive),
    # elementwise
    unary("exp", np.exp, numpy=np.exp, fused=True, min_value=-5, max_value=5),
    unary("log", np.log, numpy=np.log, fused=True, min_value=0.1),
    unary("sqrt", np.sqrt, numpy=np.sqrt, min_value=0.1),
    unary("abs", np.abs, numpy=np.absolute, min_magnitude=0.01),
    unary("sin", np.sin, numpy=np.sin),
    unary("cos", np.cos, numpy=np.cos),
    unary("arctan", lambda a: np.arcsin(a / np.sqrt(1 + a * a)), numpy=np.arctan),
    unary("log1p", np.log1p, numpy=np.log1p, min_value=-0.9),
    unary("expm1", np.expm1, numpy=np.expm1, min_value=-5, max_value=5),
    unary("square", lambda a: a * a, numpy=np.square),
    unary("erf", _erf, min_value=-4, max_value=4),
    OpInfo("clip", "clip", lambda x: x.clip(-1.0, 2.0), lambda a: np.minimum(np.maximum(a, -1.0), 2.0),
           ({"min_value": -0.99, "max_value": 1.99},), numpy=lambda x: np.clip(x, -1.0, 2.0)),
    OpInfo("clip_open_low", "clip", lambda x: x.clip(None, 0.5), lambda a: np.minimum(a, 0.5),
           ({"min_value": -3, "max_value": 0.49},)),
    binary("maximum", autonet.maximum, np.maximum, numpy=np.maximum, ties=True),
    binary("minimum", autonet.minimum, np.minimum, numpy=np.minimum, ties=True),
    OpInfo("where", "where", lambda a, b: autonet.where(a.data > 0, a, b),
           lambda a, b: np.where(a > 0, a, b), ({"min_magnitude": 0.01}, {}), "broadcast",
           numpy=lambda a, b: np.where(a.data > 0, a, b), compiles=False,
           notes="its condition is read from .data, which a compiled step refuses (test_compiler)"),
    # activations
    unary("tanh", np.tanh, numpy=np.tanh, fused=True, min_value=-4, max_value=4),
    unary("sigmoid", lambda a: 1 / (1 + np.exp(-a)), fused=True),
    unary("relu", lambda a: np.where(a > 0, a, 0.0), fused=True, min_magnitude=0.01),
    unary("softmax", _softmax, shapes="axis"),
    OpInfo("softmax_axis0", "softmax", lambda x: x.softmax(axis=0), lambda a: _softmax(a, axis=0),
           shapes="axis"),
    unary("log_softmax", lambda a: np.log(_softmax(a)), shapes="axis"),
    unary("gelu", lambda a: a * 0.5 * (1 + _erf(a / math.sqrt(2)))),
    OpInfo("gelu_tanh", "gelu", lambda x: autonet.gelu(x, approximate="tanh"),
           lambda a: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))),
    unary("silu", lambda a: a / (1 + np.exp(-a))),
    unary("softplus", lambda a: np.log1p(np.exp(a)), max_value=19),
    OpInfo("leaky_relu", "leaky_relu", lambda x: x.leaky_relu(0.2), lambda a: np.where(a > 0, a, 0.2 * a),
           ({"min_magnitude": 0.01},)),
    OpInfo("elu", "elu", lambda x: autonet.elu(x, alpha=0.7), lambda a: np.where(a > 0, a, 0.7 * np.expm1(a)),
           ({"min_magnitude": 0.01},)),
    # reductions and scans
    unary("sum", lambda a: np.add.reduce(a, axis=None), numpy=np.sum, fused=True),
    OpInfo("sum_axis_keepdims", "sum", lambda x: x.sum(axis=-1, keepdims=True),
           lambda a: a.sum(axis=-1, keepdims=True), shapes="axis",
           numpy=lambda x: np.add.reduce(x, axis=-1, keepdims=True), fused=True),
    unary("mean", lambda a: a.sum() / a.size, numpy=np.mean, fused=True),
    OpInfo("mean_axis0", "mean", lambda x: x.mean(axis=0), lambda a: a.sum(axis=0) / a.shape[0],
           shapes="axis", numpy=lambda x: np.mean(x, axis=0), fused=True),
    OpInfo("max", "max", lambda x: x.max(axis=-1), lambda a: a.max(axis=-1), ({"distinct": True},),
           shapes="axis", numpy=lambda x: np.max(x, axis=-1)),
    OpInfo("max_all", "max", autonet.max, np.max, ({"distinct": True},), numpy=np.amax),
    OpInfo("min", "min", lambda x: autonet.min(x), lambda a: a.min(), ({"distinct": True},),
           numpy=lambda x: np.min(x)),
    OpInfo("min_axis0", "min", lambda x: x.min(axis=0), lambda a: a.min(axis=0), ({"distinct": True},),
           shapes="axis", numpy=lambda x: np.amin(x, axis=0)),
    OpInfo("var", "var", lambda x: x.var(axis=-1), lambda a: ((a - a.mean(-1, keepdims=True)) ** 2).mean(-1),
           ({"min_value": -3, "max_value": 3},), "axis", numpy=lambda x: np.var(x, axis=-1)),
    OpInfo("var_ddof1", "var", lambda x: x.var(axis=-1, ddof=1),
           lambda a: ((a - a.mean(-1, keepdims=True)) ** 2).sum(-1) / (a.shape[-1] - 1),
           ({"min_value": -3, "max_value": 3},), "wide", numpy=lambda x: np.var(x, axis=-1, ddof=1)),
    OpInfo("std", "std", lambda x: x.std(), lambda a: np.sqrt(((a - a.mean()) ** 2).mean()),
           ({"distinct": True},), numpy=np.std),
    OpInfo("prod", "prod", lambda x: x.prod(axis=0), lambda a: a.prod(axis=0),
           ({"min_value": -2, "max_value": 2, "min_magnitude": 1e-3},), "axis",
           numpy=lambda x: np.prod(x, axis=0)),
    OpInfo("prod_all", "prod", autonet.prod, np.prod, ({"min_value": -2, "max_value": 2, "min_magnitude": 1e-3},)),
    OpInfo("cumsum", "cumsum", lambda x: x.cumsum(axis=-1), lambda a: np.cumsum(a, axis=-1), shapes="axis",
           numpy=lambda x: np.cumsum(x, axis=-1)),
    unary("cumsum_flat", np.cumsum, op="cumsum"),
    OpInfo("logsumexp", "logsumexp", lambda x: x.logsumexp(axis=-1),
           lambda a: np.log(np.exp(a).sum(axis=-1)), shapes="axis"),
    OpInfo("logsumexp_all_keepdims", "logsumexp", lambda x: autonet.logsumexp(x, keepdims=True),
           lambda a: np.log(np.exp(a).sum(keepdims=True))),
    # products and norms
    OpInfo("matmul", "matmul", lambda a, b: a @ b, lambda a, b: np.einsum("ij,jk->ik", a, b),
           ({}, {}), "matrices", numpy=np.matmul, fused=True),
    OpInfo("dot", "dot", autonet.dot, lambda a, b: np.einsum("ij,jk->ik", a, b), ({}, {}), "matrices",
           numpy=np.dot),
    OpInfo("outer", "outer", autonet.outer, lambda a, b: a.reshape(-1, 1) * b.reshape(1, -1), ({}, {}),
           "matrices", numpy=np.outer),
    OpInfo("tensordot", "tensordot", lambda a, b: autonet.tensordot(a, b, axes=1),
           lambda a, b: np.einsum("ij,jk->ik", a, b), ({}, {}), "matrices",
           numpy=lambda a, b: np.tensordot(a, b, axes=1)),
    OpInfo("einsum", "einsum", lambda a, b: autonet.einsum("ij,jk->ik", a, b),
           lambda a, b: a @ b, ({}, {}), "matrices", numpy=lambda a, b: np.einsum("ij,jk->ik", a, b)),
    OpInfo("trace", "trace", autonet.trace, lambda a: np.diagonal(a).sum(), shapes="matrix",
           numpy=np.trace),
    OpInfo("norm", "norm", lambda x: x.norm(axis=-1), lambda a: np.sqrt((a * a).sum(axis=-1)),
           ({"min_magnitude": 0.1},), "axis", numpy=lambda x: np.linalg.norm(x, axis=-1)),
    OpInfo("norm_p3", "norm", lambda x: autonet.norm(x, 3, axis=-1),
           lambda a: (np.abs(a) ** 3).sum(axis=-1) ** (1 / 3), ({"min_magnitude": 0.1},), "axis",
           numpy=lambda x: np.linalg.norm(x, 3, axis=-1)),
    OpInfo("norm_p_half_keepdims", "norm", lambda x: autonet.norm(x, 0.5, axis=0, keepdims=True),
           lambda a: np.sqrt(np.abs(a)).sum(axis=0, keepdims=True) ** 2, ({"min_magnitude": 0.1},), "axis",
           numpy=lambda x: np.linalg.norm(x, 0.5, axis=0, keepdims=True)),
    # shape
    OpInfo("pad", "pad", lambda x: x.pad(((1, 0),) + ((0, 2),) * (x.ndim - 1), constant_values=0.5),
           lambda a: np.pad(a, ((1, 0),) + ((0, 2),) * (a.ndim - 1), constant_values=0.5), shapes="axis",
           numpy=lambda x: np.pad(x, ((1, 0),) + ((0, 2),) * (x.ndim - 1), constant_values=0.5)),
    OpInfo("reshape", "reshape", lambda x: x.reshape(-1), lambda a: a.ravel(), numpy=lambda x: np.reshape(x, -1)),
    OpInfo("transpose", "transpose", lambda x: x.transpose(), lambda a: a.T, numpy=np.transpose),
    OpInfo("swapaxes", "swapaxes", lambda x: x.swapaxes(0, -1), lambda a: np.moveaxis(np.moveaxis(a, 0, -1), -2, 0)
           if a.ndim > 1 else a, shapes="axis", numpy=lambda x: np.swapaxes(x, 0, -1)),
    OpInfo("flatten", "flatten", lambda x: x.flatten(), lambda a: a.reshape(-1)),
    OpInfo("copy", "copy", lambda x: x.copy(), lambda a: a + 0.0, numpy=np.copy),
    OpInfo("getitem", "getitem", lambda x: x[..., ::-1], lambda a: np.flip(a, axis=-1), shapes="axis"),
    OpInfo("concatenate", "concatenate", lambda a, b: autonet.concatenate([a, b], axis=0),
           lambda a, b: np.vstack([a, b]), ({}, {}), "matrices2", numpy=lambda a, b: np.concatenate([a, b])),
    OpInfo("stack", "stack", lambda a, b: autonet.stack([a, b], axis=1),
           lambda a, b: np.array([a, b]).transpose(1, 0, 2), ({}, {}), "matrices2",
           numpy=lambda a, b: np.stack([a, b], axis=1)),
    OpInfo("broadcast_to", "broadcast_to", lambda x: autonet.broadcast_to(x, (2,) + x.shape),
           lambda a: np.array([a, a]), numpy=lambda x: np.broadcast_to(x, (2,) + x.shape)),
    OpInfo("moveaxis", "moveaxis", lambda x: x.moveaxis(0, -1), lambda a: np.transpose(a, list(range(1, a.ndim)) + [0]),
           shapes="axis", numpy=lambda x: np.moveaxis(x, 0, -1)),
    OpInfo("squeeze", "squeeze", lambda x: x.expand_dims(0).squeeze(0), lambda a: a + 0.0,
           numpy=lambda x: np.squeeze(np.expand_dims(x, 0), 0)),
    OpInfo("expand_dims", "expand_dims", lambda x: x.expand_dims(-1), lambda a: a[..., None],
           numpy=lambda x: np.expand_dims(x, -1)),
    OpInfo("repeat", "repeat", lambda x: x.repeat(2, axis=0), lambda a: np.concatenate(
        [a[i:i + 1] for i in range(a.shape[0]) for _ in range(2)]), shapes="axis",
        numpy=lambda x: np.repeat(x, 2, axis=0)),
]

def _last_axis_index(values, ndim):
    """Indices ``values`` along the last of ``ndim`` axes, broadcasting elsewhere, as nested lists
    (a compiled step takes lists by value)."""
    return np.array(values).reshape((1,) * (ndim - 1) + (-1,)).tolist()


def _put_first(a, values):
    out = a.copy()
    out[..., 0] = values[..., 0]
    return out


def _diag_built(v, k):
    n = len(v) + abs(k)
    out = np.zeros((n, n))
    for i, value in enumerate(v):
        out[i + max(-k, 0), i + max(k, 0)] = value
    return out


def _lower(a, k):
    rows, cols = np.indices(a.shape[-2:])
    return np.where(cols - rows <= k, a, 0.0)


_UNIT = {"min_value": -0.9, "max_value": 0.9}
_QUOTIENT_MINUS_2_POINT_SOMETHING = ({"min_value": -1.9, "max_value": -1.6}, {"min_value": 0.7, "max_value": 0.75})
"""a / b in (-2.72, -2.13): away from the kinks of %, fmod and //, where floor and trunc differ."""
OPS += [
    # elementwise (contract v3)
    unary("tan", np.tan, numpy=np.tan, min_value=-1.2, max_value=1.2),
    unary("arcsin", np.arcsin, numpy=np.arcsin, **_UNIT),
    unary("arccos", np.arccos, numpy=np.arccos, **_UNIT),
    unary("arcsinh", np.arcsinh, numpy=np.arcsinh),
    unary("arccosh", np.arccosh, numpy=np.arccosh, min_value=1.1),
    unary("arctanh", np.arctanh, numpy=np.arctanh, **_UNIT),
    unary("asin", lambda a: np.arctan(a / np.sqrt(1 - a * a)), **_UNIT),
    unary("acos", lambda a: np.pi / 2 - np.arcsin(a), **_UNIT),
    unary("atan", lambda a: np.arcsin(a / np.sqrt(1 + a * a))),
    unary("asinh", lambda a: np.log(a + np.sqrt(a * a + 1)), max_value=5, min_value=-5),
    unary("acosh", lambda a: np.log(a + np.sqrt(a * a - 1)), min_value=1.1),
    unary("atanh", lambda a: 0.5 * np.log((1 + a) / (1 - a)), **_UNIT),
    unary("sinh", lambda a: (np.exp(a) - np.exp(-a)) / 2, numpy=np.sinh, min_value=-5, max_value=5),
    unary("cosh", lambda a: (np.exp(a) + np.exp(-a)) / 2, numpy=np.cosh, min_value=-5, max_value=5),
    unary("log2", lambda a: np.log(a) / np.log(2), numpy=np.log2, min_value=0.1),
    unary("log10", lambda a: np.log(a) / np.log(10), numpy=np.log10, min_value=0.1),
    unary("exp2", lambda a: np.exp(a * np.log(2)), numpy=np.exp2, min_value=-5, max_value=5),
    unary("reciprocal", lambda a: 1 / a, numpy=np.reciprocal, min_magnitude=0.5),
    binary("logaddexp", autonet.logaddexp, lambda a, b: np.log(np.exp(a) + np.exp(b)), numpy=np.logaddexp),
    binary("logaddexp2", autonet.logaddexp2, lambda a, b: np.log2(2.0 ** a + 2.0 ** b), numpy=np.logaddexp2),
    binary("arctan2", autonet.arctan2, lambda a, b: np.angle(b + 1j * a), numpy=np.arctan2,
           domains=({"min_magnitude": 0.5}, {})),
    binary("hypot", autonet.hypot, lambda a, b: np.sqrt(a * a + b * b), numpy=np.hypot,
           domains=({"min_magnitude": 0.5}, {})),
    binary("mod", lambda a, b: a % b, lambda a, b: a - b * np.floor(a / b), numpy=np.remainder,
           domains=_QUOTIENT_MINUS_2_POINT_SOMETHING),
    binary("fmod", autonet.fmod, lambda a, b: a - b * np.trunc(a / b), numpy=np.fmod,
           domains=_QUOTIENT_MINUS_2_POINT_SOMETHING),
    binary("floor_divide", lambda a, b: a - b * (a // b), lambda a, b: a - b * np.floor(a / b),
           numpy=lambda a, b: a - b * np.floor_divide(a, b), domains=_QUOTIENT_MINUS_2_POINT_SOMETHING),
    binary("float_power", autonet.float_power, lambda a, b: np.exp(b * np.log(a)), numpy=np.float_power,
           domains=({"min_value": 0.5, "max_value": 3}, {"min_value": -2, "max_value": 2})),
    # reductions and scans (contract v3)
    OpInfo("cumprod", "cumprod", lambda x: x.cumprod(axis=-1), lambda a: np.exp(np.cumsum(np.log(a), axis=-1)),
           ({"min_value": 0.5, "max_value": 2},), "axis", numpy=lambda x: np.cumprod(x, axis=-1)),
    OpInfo("cumprod_with_zeros", "cumprod", lambda x: autonet.cumprod(x - x[..., :1]),
           lambda a: np.cumprod(a - a[..., :1]), ({"min_value": -2, "max_value": 2},), "wide"),
    OpInfo("sort", "sort", lambda x: x.sort(axis=-1),
           lambda a: np.apply_along_axis(lambda line: np.array(sorted(line)), -1, a), ({"distinct": True},),
           "axis", numpy=lambda x: np.sort(x, axis=-1)),
    OpInfo("topk", "topk", lambda x: autonet.topk(x, 1, axis=-1)[0], lambda a: a.max(axis=-1, keepdims=True),
           ({"distinct": True},), "axis"),
    OpInfo("topk_smallest", "topk", lambda x: autonet.topk(x, x.shape[0], axis=0, largest=False)[0],
           lambda a: np.sort(a, axis=0), ({"distinct": True},), "axis"),
    OpInfo("median", "median", lambda x: autonet.median(x, axis=-1),
           lambda a: np.apply_along_axis(lambda line: _middle(sorted(line)), -1, a), ({"distinct": True},),
           "axis", numpy=lambda x: np.median(x, axis=-1)),
    OpInfo("amax", "amax", lambda x: x.amax(axis=-1), lambda a: a.max(axis=-1), ({"distinct": True},), "axis"),
    OpInfo("amin", "amin", lambda x: autonet.amin(x), lambda a: a.min(), ({"distinct": True},)),
    # indexing (contract v3)
    OpInfo("take", "take", lambda x: autonet.take(x, [0, -1, 0]), lambda a: a.ravel()[[0, a.size - 1, 0]],
           numpy=lambda x: np.take(x, [0, -1, 0])),
    OpInfo("take_axis", "take", lambda x: x.take([1, 0, 0], axis=-1), lambda a: a[..., [1, 0, 0]], shapes="wide"),
    OpInfo("take_along_axis", "take_along_axis",
           lambda x: autonet.take_along_axis(x, _last_axis_index([0, -1, 0], x.ndim), -1),
           lambda a: a[..., [0, -1, 0]], shapes="axis",
           numpy=lambda x: np.take_along_axis(x, _last_axis_index([0, -1, 0], x.ndim), -1)),
    OpInfo("scatter", "scatter", lambda x: autonet.scatter(x, _last_axis_index([0], x.ndim), x[..., -1:] * 3, -1),
           lambda a: _put_first(a, a[..., -1:] * 3), shapes="axis"),
    OpInfo("scatter_add", "scatter",
           lambda x: autonet.scatter(x, _last_axis_index([0, 0], x.ndim), x[..., -1:] * 3, -1, reduce="add"),
           lambda a: _put_first(a, a[..., :1] + 6 * a[..., -1:]), shapes="axis"),
    OpInfo("tril", "tril", lambda x: x.tril(-1), lambda a: _lower(a, -1), shapes="matrix",
           numpy=lambda x: np.tril(x, -1)),
    OpInfo("triu", "triu", lambda x: autonet.triu(x, 1), lambda a: a - _lower(a, 0), shapes="matrix",
           numpy=lambda x: np.triu(x, 1)),
    OpInfo("diagonal", "diagonal", lambda x: x.diagonal(1), lambda a: np.array(
        [a[i, i + 1] for i in range(min(a.shape[0], a.shape[1] - 1))]), shapes="matrix",
        numpy=lambda x: np.diagonal(x, 1)),
    OpInfo("diagonal_axes", "diagonal", lambda x: x[..., None].diagonal(0, -1, 0),
           lambda a: np.moveaxis(a[:1], 0, -1), shapes="axis"),
    OpInfo("diag", "diag", lambda x: autonet.diag(x.reshape(-1), -1), lambda a: _diag_built(a.ravel(), -1),
           numpy=lambda x: np.diag(x.reshape(-1), -1)),
    OpInfo("diag_extract", "diag", lambda x: autonet.diag(x), lambda a: np.array(
        [a[i, i] for i in range(min(a.shape))]), shapes="matrix"),
    OpInfo("einsum_diagonal", "einsum", lambda x: autonet.einsum("ii->i", x @ x.T), lambda a: (a * a).sum(1),
           shapes="matrix"),
    OpInfo("einsum_trace", "einsum", lambda x: autonet.einsum("ii", x.T @ x), lambda a: (a * a).sum(),
           shapes="matrix"),
    OpInfo("einsum_batch_diagonal", "einsum", lambda x: autonet.einsum("bii->bi", x[:, None, :] * x[:, :, None]),
           lambda a: a * a, shapes="matrix"),
    # shape (contract v3)
    OpInfo("tile", "tile", lambda x: x.tile((2, 1)), lambda a: np.concatenate([a, a], axis=-2) if a.ndim > 1
           else np.stack([a, a]), shapes="axis", numpy=lambda x: np.tile(x, (2, 1))),
    OpInfo("split", "split", lambda x: autonet.split(autonet.concatenate([x, 2 * x]), 2)[1], lambda a: 2 * a,
           shapes="axis", numpy=lambda x: np.split(autonet.concatenate([x, 2 * x]), 2)[1]),
    OpInfo("array_split", "array_split", lambda x: autonet.array_split(x, 2)[0], lambda a: a[:(len(a) + 1) // 2],
           shapes="axis", numpy=lambda x: np.array_split(x, 2)[0]),
    OpInfo("roll", "roll", lambda x: x.roll(1, axis=-1), lambda a: np.concatenate([a[..., -1:], a[..., :-1]], -1),
           shapes="axis", numpy=lambda x: np.roll(x, 1, axis=-1)),
    OpInfo("roll_flat", "roll", lambda x: autonet.roll(x, -2),
           lambda a: np.concatenate([a.ravel()[2 % a.size:], a.ravel()[:2 % a.size]]).reshape(a.shape)),
    OpInfo("flip", "flip", lambda x: x.flip(), lambda a: a.ravel()[::-1].reshape(a.shape),
           numpy=lambda x: np.flip(x)),
    OpInfo("flatten_range", "flatten", lambda x: autonet.flatten(x[..., None], 1),
           lambda a: a.reshape(a.shape[0], -1), shapes="axis"),
    OpInfo("flatten_fortran", "flatten", lambda x: x.flatten("F"), lambda a: a.T.reshape(-1)),
    OpInfo("unflatten", "unflatten", lambda x: x.reshape(-1).unflatten(0, (1, -1)), lambda a: a.reshape(1, -1)),
    OpInfo("meshgrid", "meshgrid", lambda a, b: _grid_product(autonet.meshgrid(a.reshape(-1), b.reshape(-1))),
           lambda a, b: np.outer(b, a), ({}, {}), "matrices2",
           numpy=lambda a, b: _grid_product(np.meshgrid(a.reshape(-1), b.reshape(-1)))),
    OpInfo("meshgrid_ij", "meshgrid", lambda a: autonet.meshgrid(a.reshape(-1), a.reshape(-1)[:2],
                                                                  indexing="ij")[0],
           lambda a: np.repeat(a.reshape(-1, 1), min(a.size, 2), axis=1), shapes="axis"),
    OpInfo("pad_reflect", "pad", lambda x: x.pad(((2, 3),) * x.ndim, mode="reflect"),
           lambda a: np.pad(a, ((2, 3),) * a.ndim, mode="reflect"), shapes="axis",
           numpy=lambda x: np.pad(x, ((2, 3),) * x.ndim, mode="reflect")),
    OpInfo("pad_edge", "pad", lambda x: autonet.pad(x, 2, mode="edge"), lambda a: np.pad(a, 2, mode="edge"),
           shapes="axis"),
    OpInfo("pad_wrap", "pad", lambda x: autonet.pad(x, (1, 5), mode="wrap"), lambda a: np.pad(a, (1, 5), mode="wrap"),
           shapes="axis"),
]


def _middle(line):
    n = len(line)
    return (line[(n - 1) // 2] + line[n // 2]) / 2


def _grid_product(grids):
    return grids[0] * grids[1]


NOT_DIFFERENTIABLE = {"argmax", "argmin", "zeros", "ones", "zeros_like", "ones_like", "full", "arange",
                      "linspace", "eye", "to", "setitem", "astype", "argsort", "empty", "empty_like",
                      "full_like"}
"""Registered ops without a row here, and where they are tested instead: argmax/argmin return
indices (test_ops_reduce, argsort: test_ops_edge_cases), constructors make leaves (test_ops_edge_cases, test_dtypes), ``to``
moves between devices (test_devices), ``setitem`` writes in place (test_inplace), ``astype``
changes the dtype, which finite differences in float64 cannot follow (test_dtypes)."""
