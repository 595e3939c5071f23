"""Tensor's operators and methods, bound from the op registry by one loop.

The core's Tensor knows nothing of ops (so the core imports nothing above
it); this module, imported once by ``autonet/__init__``, attaches every
registered op (``autonet.ops.registry``) as a method and as the operators it
implements, and PyTorch's spellings as methods that raise an error naming
autonet's.

Type checkers and editors cannot see methods bound at run time, so :func:`stubs`
writes the same bindings as declarations: ``autonet/core/tensor_ops.pyi`` (the
class ``TensorOps`` that Tensor derives from for type checkers) and
``autonet/_exports.pyi`` (the package's op exports), by ``make ops-page``;
tests/test_typing.py holds both files to the registry.
"""
from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, Callable, NoReturn

from .core import backward as _backward
from .core.function import apply_in_place
from .core.tensor import Tensor, TensorLike
from .ops import activations, constructors, elementwise, linalg, reduce, shape  # noqa: F401 - they register
from .ops import indexing, layout, sorting, ufuncs  # noqa: F401 - they register (contract v3)
from .ops.registry import Entry, entries

PYTORCH_KEYWORDS = {"dim": "axis", "keepdim": "keepdims"}
"""PyTorch's keyword names that autonet spells as NumPy does."""

_PYTORCH_BASICS = {   # PyTorch's Tensor methods that are not ops, and autonet's spelling
    "float": "astype(np.float32)", "double": "astype(np.float64)", "half": "astype(np.float16)",
    "long": "astype(np.int64)", "int": "astype(np.int32)", "bool": "astype(bool)",
    "cuda": "t.to('cuda')", "cpu": "t.to('cpu')", "numel": "size", "dim": "ndim",
    "contiguous": "nothing (NumPy arrays need no such call)",
    "zero_": "autonet.no_grad() and t.data[...] = 0",
}


def backward(self: Tensor, grad: TensorLike | None = None, retain_graph: bool | None = None,
             create_graph: bool = False) -> None:
    _backward.backward(self, grad, retain_graph, create_graph)


backward.__doc__ = _backward.backward.__doc__


def transposed(self: Tensor) -> Tensor:
    """The tensor with its axes reversed, as ``ndarray.T``."""
    return shape.transpose(self)


def numpy_keywords(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, with ``dim=`` / ``keepdim=`` refused in words that name NumPy's keywords
    (applied to every op that takes an ``axis``)."""
    if "axis" not in inspect.signature(function).parameters:
        return function

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        pytorch = [key for key in kwargs if key in PYTORCH_KEYWORDS]
        if pytorch:
            raise TypeError(f"{function.__name__}() takes NumPy's keyword names: use "
                            + ", ".join(f"{PYTORCH_KEYWORDS[k]}= instead of {k}=" for k in pytorch))
        return function(*args, **kwargs)
    return wrapper


def _operator(entry: Entry, name: str) -> Callable[..., Any]:
    """The method for one operator of ``entry``: ``a + b`` itself, or ``b + a`` (``__radd__``)
    and ``a += b`` (``__iadd__``) when the entry also has the plain ``__add__``."""
    function = entry.function
    plain = "__" + name[3:]
    if plain not in entry.operators:
        return function
    if name.startswith("__r"):
        def method(self: Tensor, other: TensorLike) -> Tensor:
            return function(other, self)
    else:
        in_place = entry.in_place

        def method(self: Tensor, other: TensorLike) -> Tensor:
            return apply_in_place(self, in_place, other)
    method.__name__ = name
    return method


def _pytorch_name(name: str, hint: str) -> Callable[..., NoReturn]:
    """A method under a PyTorch name that says autonet's. (Not ``__getattr__``: defining that
    on Tensor would slow every attribute access, since CPython then cannot specialise them.)"""
    def method(self: Tensor, *args: Any, **kwargs: Any) -> NoReturn:
        raise AttributeError(f"'Tensor' object has no method {name!r} (a PyTorch name); "
                             f"in autonet use {hint}")

    method.__name__ = name
    return method


def op_methods() -> dict[str, Any]:
    """Every method and operator the registry declares (and ``backward``, ``T``)."""
    methods: dict[str, Any] = {"backward": backward, "T": property(transposed)}
    for entry in entries():
        if entry.method_name:
            method = entry.method if callable(entry.method) else numpy_keywords(entry.function)
            methods[entry.method_name] = staticmethod(method) if entry.kind == "constructor" else method
        for name in entry.operators:
            methods[name] = _operator(entry, name)
    return methods


def _methods() -> dict[str, Any]:
    """The op methods, plus PyTorch's spellings."""
    methods = op_methods()
    hints = dict(_PYTORCH_BASICS)
    for entry in entries():
        for name in entry.torch:
            hints[name] = f"t.{entry.method_name}" if entry.method_name else f"autonet.{entry.name}"
    for name, hint in hints.items():
        if name not in methods and not hasattr(Tensor, name):
            methods[name] = _pytorch_name(name, hint)
    return methods


for _name, _value in _methods().items():
    setattr(Tensor, _name, _value)


# ----------------------------------------------------------- declarations for type checkers
_STUB_HEADER = '''"""{what}, as type checkers and editors see them.

Generated from the op registry by `make ops-page` (autonet._methods.stubs()); tests/test_typing.py
checks that it matches. Do not edit by hand.
"""
from __future__ import annotations

from typing import Any, Sequence, SupportsIndex

from {core}.tensor import Tensor, TensorLike
from {core}.types import Array, Axis, DTypeLike, Index, ShapeLike
'''


def stubs() -> dict[str, str]:
    """The generated declarations, by path inside the package: Tensor's op methods and operators
    (``core/tensor_ops.pyi``) and the package's op exports (``_exports.pyi``)."""
    return {"core/tensor_ops.pyi": _tensor_ops_stub(), "_exports.pyi": _exports_stub()}


def _tensor_ops_stub() -> str:
    lines = [_STUB_HEADER.format(what="Tensor's op methods and operators", core=""), "", "class TensorOps:"]
    for name, value in op_methods().items():
        lines += [f"    {line}" if line else "" for line in _declaration(name, value)] + [""]
    return "\n".join(lines[:-1]) + "\n"


def _exports_stub() -> str:
    imports: dict[str, list[str]] = {}   # module -> its functions, "function as name"
    declared: list[str] = []   # functions made by a loop (NumPy 2's aliases): nothing to import
    for entry in entries():
        function = entry.function
        if not entry.top_level:
            continue
        if _importable(function):
            imports.setdefault(function.__module__, []).append(f"{function.__name__} as {entry.name}")
        else:
            declared += ["", ""] + _declaration(entry.name, function, method=False)
    lines = [_STUB_HEADER.format(what="The op functions autonet exports (``autonet.exp``)", core=".core")]
    for module, names in imports.items():
        lines += [f"from .{module.removeprefix('autonet.')} import ("] + [f"    {n}," for n in names] + [")"]
    return "\n".join(lines + declared) + "\n"


def _importable(function: Callable[..., Any]) -> bool:
    """True when ``function`` is its module's attribute of its name."""
    return getattr(sys.modules[function.__module__], function.__name__, None) is function


def _declaration(name: str, value: Any, method: bool = True) -> list[str]:
    """``def name(self, ...) -> ...: ...`` for one bound method (or a function), with its docstring."""
    decorator: list[str] = []
    if isinstance(value, property):
        decorator, value = ["@property"], value.fget
    elif isinstance(value, staticmethod):
        decorator, value = ["@staticmethod"], value.__func__
    assert callable(value)
    signature = inspect.signature(value)
    parameters = list(signature.parameters.values())
    if method and decorator != ["@staticmethod"]:
        parameters[0] = parameters[0].replace(name="self", annotation=inspect.Parameter.empty)
    parameters = [p.replace(annotation=_Written(p.annotation), default=_default(p.default))
                  if p.annotation is not inspect.Parameter.empty else p.replace(default=_default(p.default))
                  for p in parameters]
    if signature.return_annotation is inspect.Signature.empty:
        raise TypeError(f"Tensor.{name} has no return annotation: annotate {value.__qualname__}")
    returns = _Written(signature.return_annotation)
    text = str(signature.replace(parameters=parameters, return_annotation=returns))
    header = f"def {name}{text}:"
    if len(header) > 96:   # one parameter a line
        arguments, returns = text[1:].rsplit(") -> ", 1)
        header = "\n".join([f"def {name}("] + [f"    {part}," for part in _top_level_parts(arguments)]
                           + [f") -> {returns}:"])
    doc = inspect.getdoc(value)
    body = ["    " + _quoted(doc).replace("\n", "\n    "), "    ..."] if doc else ["    ..."]
    return decorator + [line.rstrip() for line in "\n".join([header] + body).split("\n")]


def _top_level_parts(text: str) -> list[str]:
    """``text`` split at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()]


class _Written:
    """An annotation or default as it is spelled in the source (``inspect`` would quote it)."""

    def __init__(self, text: object) -> None:
        self.text = text if isinstance(text, str) else getattr(text, "__name__", repr(text))

    def __repr__(self) -> str:
        return str(self.text)


def _default(value: Any) -> Any:
    """A default a stub may spell (None, a bool, a number, a string), else ``...``."""
    if value is inspect.Parameter.empty or value is None or isinstance(value, (bool, int, float, str)):
        return value
    return _Written("...")


def _quoted(doc: str) -> str:
    prefix = "r" if "\\" in doc else ""
    return f'{prefix}"""{doc}"""'
