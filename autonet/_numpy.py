"""NumPy's functions and ufuncs on Tensors: in the graph, or a clear error.

``np.exp(t)``, ``np.concatenate([t, u])``, ``np.sum(t, axis=0)``, ``ndarray @ t``
return Tensors recorded like the autonet ops they map to: the op registry
(``autonet.ops.registry``) says which NumPy callables each op answers, and
this module builds its tables from it. Functions that answer a question
rather than compute a value (``np.shape``, ``np.isfinite``, ``np.allclose``,
``np.argmax``, ...) run on the data and return NumPy's non-float result
(shapes, bool masks, indices), as comparisons do. Piecewise constant
functions (``np.floor``, ``np.sign``, ...) return a constant Tensor: their
gradient is zero, as PyTorch's. Everything else raises ``TypeError`` naming the
NumPy function and autonet's nearest spelling: never a plain float array that
silently leaves the graph.

This holds inside a custom ``Function.backward`` under ``create_graph=True``
too, which is what makes such formulas differentiable again.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Collection

import numpy as np

from .ops import activations, constructors, elementwise, linalg, reduce, shape  # noqa: F401 - they register
from .ops import indexing, layout, sorting, ufuncs  # noqa: F401 - they register (contract v3)
from .core.tensor import Tensor, reading_value
from .ops.registry import entries, refuse_numpy_extras


def _unwrap(value):
    """``value`` with Tensors replaced by their arrays (in lists and tuples too)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


# ---------------------------------------------------------------- from the registry
def by_name(numpy_function, op):
    """A handler calling ``op`` with a NumPy call's arguments: NumPy's first parameter is the
    op's first, the others go by name, and NumPy's own extras (``out=``, ``dtype=``,
    ``where=``...) are refused unless left at their defaults."""
    signature = inspect.signature(numpy_function)
    first = next(iter(signature.parameters))
    takes = inspect.signature(op).parameters
    name = numpy_function.__name__

    def handler(*args, **kwargs):
        arguments = signature.bind(*args, **kwargs).arguments
        array = arguments.pop(first)
        passed = {key: value for key, value in arguments.items() if key in takes}
        refuse_numpy_extras(name, {key: value for key, value in arguments.items() if key not in takes})
        return op(array, **passed)

    return handler


def _ufunc_call(ufunc, op):
    def handler(*inputs, **kwargs):
        refuse_numpy_extras(ufunc.__name__, kwargs)
        return op(*inputs)
    return handler


def _ufunc_reduce(ufunc, op):
    """``np.add.reduce(t, axis=0, keepdims=False)``: NumPy's default axis is 0 there."""
    def handler(array, axis=0, dtype=None, out=None, keepdims=False, **rest):
        refuse_numpy_extras(f"{ufunc.__name__}.reduce", dict(rest, dtype=dtype, out=out))
        return op(array, axis=axis, keepdims=keepdims)
    return handler


def _tables():
    """``(ufunc calls, ufunc methods, functions)``: the NumPy callables of every registered op."""
    calls, methods, functions = {}, {}, {}
    for entry in entries():
        for numpy_function, handler in entry.numpy.items():
            if isinstance(numpy_function, tuple):
                ufunc, method = numpy_function
                methods[numpy_function] = handler or _ufunc_reduce(ufunc, entry.function)
            elif isinstance(numpy_function, np.ufunc):
                calls[numpy_function] = handler or _ufunc_call(numpy_function, entry.function)
            else:
                functions[numpy_function] = handler or by_name(numpy_function, entry.function)
    return calls, methods, functions


_UFUNCS, _UFUNC_METHODS, _FUNCTIONS = _tables()

# ---------------------------------------------------------------- not ops
_QUESTIONS = {   # non-differentiable answers: bool masks
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
    np.isfinite, np.isnan, np.isinf, np.signbit, np.logical_and, np.logical_or, np.logical_not,
    np.logical_xor,
}
_STEPS = {np.floor, np.ceil, np.trunc, np.rint, np.sign}   # piecewise constant: gradient 0

_QUESTION_FUNCTIONS = {
    np.shape, np.ndim, np.size, np.allclose, np.isclose, np.array_equal, np.array_equiv,
    np.argmax, np.argmin, np.argsort, np.nonzero, np.flatnonzero, np.count_nonzero, np.any,
    np.all, np.result_type, np.may_share_memory, np.shares_memory, np.iscomplexobj,
    np.isrealobj, np.isscalar, np.min_scalar_type, np.can_cast, np.argwhere, np.searchsorted,
    np.array_repr, np.array_str, np.array2string,
}

_SPELLINGS = {   # NumPy name -> what to use in autonet instead
    "asarray": "Tensor(...) or t.data", "array": "Tensor(...)", "ravel": "t.reshape(-1)",
    "hstack": "autonet.concatenate", "vstack": "autonet.concatenate", "diff": "t[1:] - t[:-1]",
    "average": "autonet.mean (or a weighted sum)", "matmul": "t @ u", "around": "np.round(t.data)",
}


def array_ufunc(self: Tensor, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """NumPy's ufuncs on Tensors run autonet's differentiable ops (see the module doc)."""
    name = ufunc.__name__ + ("" if method == "__call__" else "." + method)
    if method == "__call__" and ufunc in _QUESTIONS and not kwargs:
        reading_value(f"numpy.{name}")
        return ufunc(*_unwrap(inputs))
    if method == "__call__" and ufunc in _STEPS and not kwargs:
        reading_value(f"numpy.{name}")
        return Tensor(ufunc(*_unwrap(inputs)))
    handler = _UFUNCS.get(ufunc) if method == "__call__" else _UFUNC_METHODS.get((ufunc, method))
    if handler is None:
        raise TypeError(
            f"numpy.{name} has no differentiable autonet version; use autonet's own ops "
            f"(Tensor methods and autonet.* functions), or apply NumPy to t.data outside the graph")
    return handler(*inputs, **kwargs)


def array_function(self: Tensor, func: Callable[..., Any], types: Collection[type], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
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
