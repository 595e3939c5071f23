"""The op registry: every public op declared once, beside its Function.

An op module declares each user-facing function with :func:`register`::

    @register("elementwise", numpy=np.exp)
    def exp(x):
        \"\"\"e to the power ``x``.\"\"\"
        return Exp.apply(as_tensor(x))

The entry says what the op is called (``autonet.exp``), its Tensor method (the
same name unless ``method=`` names another, or gives the method itself where the
tensor is not the first argument; ``method=None`` for none), which
operators it implements (``operators=("__add__", "__radd__")``), which NumPy
functions and ufuncs answer to it (``np.exp(t)`` runs it), the PyTorch names
that mean it (``torch=("clamp",)``: ``autonet.clamp`` and ``t.clamp`` then raise
an error naming autonet's spelling), and its docstring (the function's own).

Everything else is derived from the entries by loops, never kept by hand:
Tensor's methods and operators (``autonet._methods``), the NumPy protocol
(``autonet._numpy``), the package's exports and PyTorch hints
(``autonet/__init__``) and the op reference page, docs/ops.md
(:func:`reference`; a test holds the page to the registry).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

import numpy as np

_F = TypeVar("_F", bound=Callable[..., Any])

KINDS = {   # section titles of the reference page, in its order
    "arithmetic": "Arithmetic (operators)",
    "elementwise": "Elementwise functions",
    "activation": "Activations",
    "reduction": "Reductions and scans",
    "linalg": "Products and norms",
    "shape": "Shape, joining and indexing",
    "constructor": "Constructors",
}

OPS: dict[str, Entry] = {}
"""name -> :class:`Entry`, in declaration order."""


class Entry:
    """One registered op: its function and every name it answers to."""

    __slots__ = ("name", "function", "kind", "method", "operators", "numpy", "torch", "top_level",
                 "in_place")

    def __init__(self, name, function, kind, method, operators, numpy, torch, top_level, in_place):
        self.name = name
        self.in_place = in_place
        self.function = function
        self.kind = kind
        self.method = method
        self.operators = operators
        self.numpy = numpy
        self.torch = torch
        self.top_level = top_level

    @property
    def method_name(self):
        """The Tensor method's name, or None."""
        return self.name if callable(self.method) else self.method

    @property
    def summary(self):
        """The docstring's first line."""
        return (inspect.getdoc(self.function) or "").split("\n")[0]


def register(kind: str, *, name: str | None = None, method: bool | str | Callable[..., Any] | None = True,
             operators: tuple[str, ...] = (), numpy: Any = (), torch: str | tuple[str, ...] = (),
             top_level: bool = True, in_place: Any = None) -> Callable[[_F], _F]:
    """Declare the decorated function as an op (see the module doc).

    ``numpy`` is a NumPy callable, a tuple of them, or a dict mapping each to
    a handler (``None``: the function itself, called with NumPy's arguments
    matched by name; see ``autonet._numpy``). A ufunc method is given as
    ``(ufunc, "reduce")``. ``torch`` names are a str or a tuple. ``in_place`` is
    the Function that in-place operators (``__iadd__``) apply.
    """
    if kind not in KINDS:
        raise ValueError(f"register: kind must be one of {sorted(KINDS)}, not {kind!r}")

    def declare(function: _F) -> _F:
        op_name = name or function.__name__
        if op_name in OPS:
            raise ValueError(f"register: the op {op_name!r} is declared twice")
        if not inspect.getdoc(function):
            raise ValueError(f"register: the op {op_name!r} needs a docstring (the reference "
                             f"page and help() show it)")
        OPS[op_name] = Entry(
            op_name, function, kind,
            op_name if method is True else method,
            tuple(operators), _handlers(numpy), _names(torch), top_level, in_place)
        return function

    return declare


def _handlers(numpy):
    if isinstance(numpy, dict):
        return dict(numpy)
    if callable(numpy) or (isinstance(numpy, tuple) and len(numpy) == 2 and isinstance(numpy[1], str)):
        numpy = (numpy,)
    return {numpy_function: None for numpy_function in numpy}


def _names(torch):
    return (torch,) if isinstance(torch, str) else tuple(torch)


def refuse_numpy_extras(name, kwargs, allowed=()):
    """Refuse NumPy arguments (``out=``, ``dtype=``, ``where=``...) that would write outside the
    graph or change the op; those left at None (or NumPy's no-value) are fine."""
    for key, value in kwargs.items():
        if key in allowed or value is None or value is np._NoValue:
            continue
        raise TypeError(f"numpy.{name} on Tensors does not support {key}=; autonet ops make new "
                        f"Tensors (assign the result, or cast it with .astype())")


def entries(kind: str | None = None) -> list[Entry]:
    """The registered ops (of one kind), in declaration order."""
    return [entry for entry in OPS.values() if kind is None or entry.kind == kind]


def reference() -> str:
    """docs/ops.md: every registered op, by kind, with its NumPy and PyTorch names."""
    lines = [
        "# Op reference",
        "",
        "<!-- Generated from the op registry (autonet/ops/registry.py) by `make ops-page`;",
        "     tests/test_registry.py checks that it matches. Do not edit by hand. -->",
        "",
        "Every op below is a function `autonet.<name>` (unless marked *method only*)",
        "and a Tensor method or operator, differentiable to any order. The NumPy",
        "column lists the NumPy functions and ufuncs that run the op when given a",
        "Tensor (`np.exp(t)`); the PyTorch column lists PyTorch names that mean the",
        "op, which raise an error naming autonet's spelling.",
    ]
    for kind, title in KINDS.items():
        ops = entries(kind)
        if not ops:
            continue
        lines += ["", f"## {title}", "", "| op | Tensor | NumPy | PyTorch | what it does |",
                  "|---|---|---|---|---|"]
        lines += [_row(entry) for entry in ops]
    return "\n".join(lines) + "\n"


def _row(entry):
    name = f"`{entry.name}`" if entry.top_level else f"`{entry.name}` (*method only*)"
    tensor = ", ".join(f"`{_spelled(op)}`" for op in entry.operators)
    if entry.method_name:
        tensor = ", ".join(filter(None, [f"`t.{entry.method_name}`", tensor]))
    numpy = ", ".join(f"`{_numpy_name(f)}`" for f in entry.numpy)
    torch = ", ".join(f"`{n}`" for n in entry.torch)
    return f"| {name} | {tensor} | {numpy} | {torch} | {entry.summary.replace('|', '/')} |"


_OPERATORS = {
    "__add__": "a + b", "__radd__": "b + a", "__iadd__": "a += b", "__sub__": "a - b",
    "__rsub__": "b - a", "__isub__": "a -= b", "__mul__": "a * b", "__rmul__": "b * a",
    "__imul__": "a *= b", "__truediv__": "a / b", "__rtruediv__": "b / a", "__itruediv__": "a /= b",
    "__pow__": "a ** b", "__rpow__": "b ** a", "__matmul__": "a @ b", "__rmatmul__": "b @ a",
    "__neg__": "-a", "__pos__": "+a", "__abs__": "abs(a)", "__getitem__": "a[index]",
    "__setitem__": "a[index] = b", "__mod__": "a % b", "__rmod__": "b % a", "__floordiv__": "a // b",
    "__rfloordiv__": "b // a",
}


def _spelled(operator):
    return _OPERATORS.get(operator, operator)


def _numpy_name(function):
    if isinstance(function, tuple):
        return f"np.{function[0].__name__}.{function[1]}"
    module = getattr(function, "__module__", None) or "numpy"
    prefix = "np.linalg." if module.startswith("numpy.linalg") else "np."
    return prefix + function.__name__
