"""Tensor's operators and methods, bound from the op registry by one loop.

The core's Tensor knows nothing of ops (so the core imports nothing above
it); this module, imported once by ``autonet/__init__``, attaches every
registered op (``autonet.ops.registry``) as a method and as the operators it
implements, and PyTorch's spellings as methods that raise an error naming
autonet's.
"""
import functools
import inspect

from .core import backward as _backward
from .core.function import apply_in_place
from .core.tensor import Tensor
from .ops import activations, constructors, elementwise, linalg, reduce, shape  # noqa: F401 - they register
from .ops import indexing, layout, sorting, ufuncs  # noqa: F401 - they register (contract v3)
from .ops.registry import entries

PYTORCH_KEYWORDS = {"dim": "axis", "keepdim": "keepdims"}
"""PyTorch's keyword names that autonet spells as NumPy does."""

_PYTORCH_BASICS = {   # PyTorch's Tensor methods that are not ops, and autonet's spelling
    "float": "astype(np.float32)", "double": "astype(np.float64)", "half": "astype(np.float16)",
    "long": "astype(np.int64)", "int": "astype(np.int32)", "bool": "astype(bool)",
    "cuda": "t.to('cuda')", "cpu": "t.to('cpu')", "numel": "size", "dim": "ndim",
    "contiguous": "nothing (NumPy arrays need no such call)",
    "zero_": "autonet.no_grad() and t.data[...] = 0",
}


def backward(self, grad=None, retain_graph=None, create_graph=False):
    _backward.backward(self, grad, retain_graph, create_graph)


backward.__doc__ = _backward.backward.__doc__


def numpy_keywords(function):
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


def _operator(entry, name):
    """The method for one operator of ``entry``: ``a + b`` itself, or ``b + a`` (``__radd__``)
    and ``a += b`` (``__iadd__``) when the entry also has the plain ``__add__``."""
    function = entry.function
    plain = "__" + name[3:]
    if plain not in entry.operators:
        return function
    if name.startswith("__r"):
        def method(self, other):
            return function(other, self)
    else:
        in_place = entry.in_place

        def method(self, other):
            return apply_in_place(self, in_place, other)
    method.__name__ = name
    return method


def _pytorch_name(name, hint):
    """A method under a PyTorch name that says autonet's. (Not ``__getattr__``: defining that
    on Tensor would slow every attribute access, since CPython then cannot specialise them.)"""
    def method(self, *args, **kwargs):
        raise AttributeError(f"'Tensor' object has no method {name!r} (a PyTorch name); "
                             f"in autonet use {hint}")

    method.__name__ = name
    return method


def _methods():
    """Every method and operator the registry declares, plus PyTorch's spellings."""
    methods = {"backward": backward, "T": property(lambda self: shape.transpose(self))}
    hints = dict(_PYTORCH_BASICS)
    for entry in entries():
        if entry.method_name:
            method = entry.method if callable(entry.method) else numpy_keywords(entry.function)
            methods[entry.method_name] = staticmethod(method) if entry.kind == "constructor" else method
        for name in entry.operators:
            methods[name] = _operator(entry, name)
        for name in entry.torch:
            hints[name] = f"t.{entry.method_name}" if entry.method_name else f"autonet.{entry.name}"
    for name, hint in hints.items():
        if name not in methods and not hasattr(Tensor, name):
            methods[name] = _pytorch_name(name, hint)
    return methods


for _name, _value in _methods().items():
    setattr(Tensor, _name, _value)
