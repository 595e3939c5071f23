"""NumPy's functions and ufuncs on Tensors: in the graph, or a clear error.

``np.exp(t)``, ``np.concatenate([t, u])``, ``np.sum(t, axis=0)``, ``ndarray @ t``
return Tensors recorded like the autonet ops they map to. Functions that
answer a question rather than compute a value (``np.shape``, ``np.isfinite``,
``np.allclose``, ``np.argmax``, ...) run on the data and return NumPy's
non-float result (shapes, bool masks, indices), as comparisons do. Piecewise
constant functions (``np.floor``, ``np.sign``, ...) return a constant Tensor:
their gradient is zero, as PyTorch's. Everything else raises ``TypeError``
naming the NumPy function and autonet's nearest spelling: never a plain float
array that silently leaves the graph.

This holds inside a custom ``Function.backward`` under ``create_graph=True``
too, which is what makes such formulas differentiable again.
"""
import numpy as np

from .core.tensor import Tensor, as_tensor, reading_value
from .ops import elementwise as ew, linalg, reduce, shape


def _unwrap(value):
    """``value`` with Tensors replaced by their arrays (in lists and tuples too)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _no_out(name, kwargs, allowed=()):
    """Refuse NumPy arguments that would write outside the graph or change the op."""
    for key, value in kwargs.items():
        if key in allowed or value is None or value is np._NoValue:
            continue
        raise TypeError(f"numpy.{name} on Tensors does not support {key}=; autonet ops make new "
                        f"Tensors (assign the result, or cast it with .astype())")


# ---------------------------------------------------------------- ufuncs
_UFUNCS = {
    np.add: ew.Add.apply, np.subtract: ew.Sub.apply, np.multiply: ew.Mul.apply,
    np.true_divide: ew.Div.apply, np.power: ew.Pow.apply, np.negative: ew.Neg.apply,
    np.positive: lambda a: a, np.matmul: linalg.MatMul.apply,
    np.exp: ew.exp, np.log: ew.log, np.sqrt: ew.sqrt, np.absolute: ew.abs, np.tanh: ew.tanh,
    np.maximum: ew.maximum, np.minimum: ew.minimum, np.square: lambda a: ew.Pow.apply(a, 2),
    np.sin: ew.sin, np.cos: ew.cos, np.log1p: ew.log1p, np.expm1: ew.expm1,
}
_UFUNC_REDUCTIONS = {
    (np.add, "reduce"): lambda a, axis=0, keepdims=False: reduce.sum(a, axis=axis, keepdims=keepdims),
    (np.maximum, "reduce"): lambda a, axis=0, keepdims=False: reduce.max(a, axis=axis, keepdims=keepdims),
    (np.minimum, "reduce"): lambda a, axis=0, keepdims=False: reduce.min(a, axis=axis, keepdims=keepdims),
}
_QUESTIONS = {   # non-differentiable answers: bool masks
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
    np.isfinite, np.isnan, np.isinf, np.signbit, np.logical_and, np.logical_or, np.logical_not,
    np.logical_xor,
}
_STEPS = {np.floor, np.ceil, np.trunc, np.rint, np.sign}   # piecewise constant: gradient 0


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """NumPy's ufuncs on Tensors run autonet's differentiable ops (see the module doc)."""
    name = ufunc.__name__ + ("" if method == "__call__" else "." + method)
    if method == "__call__" and ufunc in _QUESTIONS and not kwargs:
        reading_value(f"numpy.{name}")
        return ufunc(*_unwrap(inputs))
    if method == "__call__" and ufunc in _STEPS and not kwargs:
        reading_value(f"numpy.{name}")
        return Tensor(ufunc(*_unwrap(inputs)))
    if method == "__call__":
        function = _UFUNCS.get(ufunc)
    else:
        function = _UFUNC_REDUCTIONS.get((ufunc, method))
        kwargs = {k: v for k, v in kwargs.items() if not (k == "dtype" and v is None)}
    if function is None or kwargs.keys() - ({"axis", "keepdims"} if method != "__call__" else set()):
        raise TypeError(
            f"numpy.{name} has no differentiable autonet version"
            f"{' with ' + str(sorted(kwargs)) if kwargs else ''}; use autonet's own ops "
            f"(Tensor methods and autonet.* functions), or apply NumPy to t.data outside the graph")
    return function(*inputs, **kwargs)


# ---------------------------------------------------------------- functions
def _sum(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
    _no_out("sum", dict(rest, dtype=dtype, out=out))
    return reduce.sum(a, axis=axis, keepdims=bool(keepdims))


def _mean(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
    _no_out("mean", dict(rest, dtype=dtype, out=out))
    return reduce.mean(a, axis=axis, keepdims=bool(keepdims))


def _extreme(function, name):
    def handler(a, axis=None, out=None, keepdims=False, **rest):
        _no_out(name, dict(rest, out=out))
        return function(a, axis=axis, keepdims=bool(keepdims))
    return handler


def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **rest):
    _no_out("var", dict(rest, dtype=dtype, out=out))
    return reduce.var(a, axis=axis, keepdims=bool(keepdims), ddof=ddof)


def _std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **rest):
    _no_out("std", dict(rest, dtype=dtype, out=out))
    return reduce.std(a, axis=axis, keepdims=bool(keepdims), ddof=ddof)


def _prod(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
    _no_out("prod", dict(rest, dtype=dtype, out=out))
    return reduce.prod(a, axis=axis, keepdims=bool(keepdims))


def _cumsum(a, axis=None, dtype=None, out=None):
    _no_out("cumsum", {"dtype": dtype, "out": out})
    return reduce.cumsum(a, axis=axis)


def _pad(array, pad_width, mode="constant", constant_values=0, **rest):
    if mode != "constant" or rest:
        raise TypeError("numpy.pad on Tensors supports mode='constant' (with constant_values) only")
    return shape.pad(array, pad_width, constant_values=constant_values)


def _einsum(*operands, out=None, optimize=False, **rest):
    _no_out("einsum", dict(rest, out=out))
    if not operands or not isinstance(operands[0], str):
        raise TypeError("numpy.einsum on Tensors takes its subscripts as a string first")
    return linalg.einsum(*operands)


def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    return linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)


def _concatenate(arrays, axis=0, out=None, **rest):
    _no_out("concatenate", dict(rest, out=out), allowed=("casting",))
    return shape.concatenate(arrays, axis=axis)


def _stack(arrays, axis=0, out=None, **rest):
    _no_out("stack", dict(rest, out=out), allowed=("casting",))
    return shape.stack(arrays, axis=axis)


def _reshape(a, shape_=None, order="C", *, copy=None, **rest):
    new_shape = rest.pop("shape", shape_)
    _no_out("reshape", rest)
    if order != "C" or copy is False:
        raise TypeError("numpy.reshape on Tensors supports order='C' only")
    return as_tensor(a).reshape(new_shape)


def _transpose(a, axes=None):
    return as_tensor(a).transpose(axes)


def _swapaxes(a, axis1, axis2):
    return as_tensor(a).swapaxes(axis1, axis2)


def _clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue,  # noqa: A002
          max=np._NoValue, **rest):  # noqa: A002
    _no_out("clip", dict(rest, out=out))
    if (a_min is np._NoValue) != (a_max is np._NoValue):
        raise TypeError("numpy.clip takes both a_min and a_max (None for an open side)")
    lo = a_min if a_min is not np._NoValue else (None if min is np._NoValue else min)
    hi = a_max if a_max is not np._NoValue else (None if max is np._NoValue else max)
    return ew.clip(a, lo, hi)


def _where(condition, *branches):
    if len(branches) != 2:
        raise TypeError("numpy.where with one argument (the indices of nonzero elements) is not "
                        "differentiable; use np.nonzero(t.data)")
    return ew.where(condition, *branches)


def _dot(a, b, out=None):
    _no_out("dot", {"out": out})
    return linalg.dot(a, b)


def _outer(a, b, out=None):
    _no_out("outer", {"out": out})
    return linalg.outer(a, b)


def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _no_out("trace", {"dtype": dtype, "out": out})
    return linalg.trace(a, offset, axis1, axis2)


def _copy(a, order="K", subok=False):
    if order not in ("K", "A", "C", "F"):
        raise TypeError(f"numpy.copy: order must be 'K', 'A', 'C' or 'F', not {order!r}")
    return as_tensor(a) * 1   # a differentiable copy


_QUESTION_FUNCTIONS = {
    np.shape, np.ndim, np.size, np.allclose, np.isclose, np.array_equal, np.array_equiv,
    np.argmax, np.argmin, np.argsort, np.nonzero, np.flatnonzero, np.count_nonzero, np.any,
    np.all, np.result_type, np.may_share_memory, np.shares_memory, np.iscomplexobj,
    np.isrealobj, np.isscalar, np.min_scalar_type, np.can_cast, np.argwhere, np.searchsorted,
    np.array_repr, np.array_str, np.array2string,
}

_FUNCTIONS = {
    np.sum: _sum, np.mean: _mean, np.var: _var, np.std: _std, np.einsum: _einsum,
    np.linalg.norm: _norm,
    np.max: _extreme(reduce.max, "max"), np.amax: _extreme(reduce.max, "amax"),
    np.min: _extreme(reduce.min, "min"), np.amin: _extreme(reduce.min, "amin"),
    np.concatenate: _concatenate, np.stack: _stack, np.reshape: _reshape,
    np.transpose: _transpose, np.swapaxes: _swapaxes, np.moveaxis: shape.moveaxis,
    np.squeeze: shape.squeeze, np.expand_dims: shape.expand_dims, np.repeat: shape.repeat,
    np.broadcast_to: lambda array, shape_=None, subok=False, **kw: shape.broadcast_to(
        array, kw.pop("shape", shape_)),
    np.clip: _clip, np.where: _where, np.dot: _dot, np.outer: _outer,
    np.tensordot: linalg.tensordot, np.trace: _trace, np.copy: _copy,
    np.prod: _prod, np.cumsum: _cumsum, np.pad: _pad,
}

_SPELLINGS = {   # NumPy name -> what to use in autonet instead
    "asarray": "Tensor(...) or t.data", "array": "Tensor(...)", "ravel": "t.reshape(-1)",
    "hstack": "autonet.concatenate", "vstack": "autonet.concatenate", "diff": "t[1:] - t[:-1]",
    "average": "autonet.mean (or a weighted sum)", "matmul": "t @ u", "around": "np.round(t.data)",
}


def array_function(self, func, types, args, kwargs):
    """NumPy's functions on Tensors: autonet ops, questions on the data, or TypeError."""
    if func in _QUESTION_FUNCTIONS:
        reading_value(f"numpy.{func.__name__}")
        return func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
    handler = _FUNCTIONS.get(func)
    if handler is None:
        hint = _SPELLINGS.get(func.__name__)
        raise TypeError(
            f"numpy.{func.__name__} has no differentiable autonet version, so it cannot take a "
            f"Tensor without leaving the graph"
            + (f"; use {hint}" if hint else "; use autonet's ops (Tensor methods and autonet.* "
               "functions), or apply NumPy to t.data outside the graph"))
    return handler(*args, **kwargs)


Tensor.__array_ufunc__ = array_ufunc
Tensor.__array_function__ = array_function
