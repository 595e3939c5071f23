"""autonet: a small, fast, correct autograd framework on NumPy.

>>> import autonet
>>> w = autonet.Tensor([[0.5], [-0.5]], requires_grad=True)
>>> loss = (autonet.Tensor([[1.0, 2.0]]) @ w).sigmoid().sum()
>>> loss.backward()
>>> w.grad.shape
(2, 1)

Layers, bottom up (docs/design.md): ``core`` (Tensor, Function, backward),
``ops`` (the primitives), the Tensor methods and NumPy protocol bound to them,
then the features: nn, optim, compile, debug, viz, serialization.
"""
from typing import TYPE_CHECKING

from .core.backward import grad
from .core.context import Context
from .core.function import Function
from .core.state import enable_grad, is_grad_enabled, no_grad
from .core.tensor import Tensor
from . import _methods, _numpy  # noqa: F401 - bind Tensor's operators and NumPy protocol
from .ops.registry import entries as _entries
from .debug.anomaly import detect_anomaly
from .debug.gradcheck import GradcheckError, gradcheck, gradgradcheck
from .serialization import load, save
from .interop import from_dlpack
from . import cuda, data, func, nn, onnx, optim, models, random, viz  # noqa: E402 - features after the core
from .random import manual_seed  # noqa: E402 - PyTorch's spelling of autonet.random.seed
from .compiler import CompileError, compile  # noqa: E402,A004

_OPS = [entry.name for entry in _entries() if entry.top_level]
for _entry in _entries():   # every registered op, as autonet.<name> (dim= gets a clear error)
    if _entry.top_level:
        globals()[_entry.name] = _methods.numpy_keywords(_entry.function)
if TYPE_CHECKING:   # the same exports, spelled out for type checkers (_exports.pyi: make ops-page)
    from ._exports import *  # noqa: F403

_PYTORCH_NAMES = {   # PyTorch's names that are no op of autonet's, and autonet's spelling
    "tensor": "autonet.Tensor", "from_numpy": "autonet.Tensor",
    "randn": "autonet.Tensor(rng.standard_normal(shape))", "rand": "autonet.Tensor(rng.random(shape))",
    "float32": "numpy.float32", "float64": "numpy.float64",
}
for _entry in _entries():   # and the PyTorch names of the ops
    for _name in _entry.torch:
        _PYTORCH_NAMES[_name] = f"autonet.{_entry.name}" if _entry.top_level else f"Tensor.{_entry.method_name}"


if not TYPE_CHECKING:   # a type checker would take every missing name for what this returns
    def __getattr__(name):
        """Only for names autonet lacks: a PyTorch spelling gets autonet's."""
        hint = _PYTORCH_NAMES.get(name)
        raise AttributeError(f"module 'autonet' has no attribute {name!r}"
                             + (f" (a PyTorch name); use {hint}" if hint else ""))


__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "Context", "detect_anomaly", "no_grad", "enable_grad", "is_grad_enabled", "grad",
    "gradcheck", "gradgradcheck", "GradcheckError", *_OPS,
    "save", "load", "from_dlpack", "cuda", "data", "func", "nn", "onnx", "optim", "models", "random",
    "manual_seed", "viz", "compile",
    "CompileError",
]
