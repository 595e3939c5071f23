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

NOT_DIFFERENTIABLE = {"argmax", "argmin", "zeros", "ones", "zeros_like", "ones_like", "full", "arange",
                      "linspace", "eye", "to", "setitem", "astype"}
"""Registered ops without a row here, and where they are tested instead: argmax/argmin return
indices (test_ops_reduce), constructors make leaves (test_ops_contract_v2, test_dtypes), ``to``
moves between devices (test_devices), ``setitem`` writes in place (test_inplace), ``astype``
changes the dtype, which finite differences in float64 cannot follow (test_dtypes)."""
