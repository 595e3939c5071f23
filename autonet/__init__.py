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
from .core.backward import grad
from .core.function import Context, Function
from .core.state import enable_grad, is_grad_enabled, no_grad
from .core.tensor import Tensor
from . import _methods, _numpy  # noqa: F401 - bind Tensor's operators and NumPy protocol
from .ops.activations import elu, erf, gelu, leaky_relu, silu, softplus
from .ops.constructors import arange, eye, full, linspace, ones, ones_like, zeros, zeros_like
from .ops.elementwise import (abs, clip, cos, exp, expm1, log, log1p, log_softmax, maximum,
                              minimum, relu, sigmoid, sin, softmax, sqrt, square, tanh, where)
from .ops.linalg import dot, einsum, matmul, norm, outer, tensordot, trace
from .ops.reduce import argmax, argmin, cumsum, logsumexp, max, mean, min, prod, std, sum, var
from .ops.shape import (broadcast_to, concatenate, expand_dims, moveaxis, pad, repeat, squeeze,
                        stack)
from .debug.anomaly import detect_anomaly
from .debug.gradcheck import GradcheckError, gradcheck, gradgradcheck
from .serialization import load, save
from .interop import from_dlpack
from . import cuda, data, func, nn, optim, models, viz  # noqa: E402 - features after the core
from .compiler import CompileError, compile  # noqa: E402,A004

for _name in ("sum", "mean", "max", "min", "var", "std", "norm", "softmax", "log_softmax",
              "logsumexp", "prod", "cumsum", "argmax", "argmin", "squeeze", "expand_dims",
              "concatenate", "stack"):
    globals()[_name] = _methods._numpy_keywords(globals()[_name])   # dim= gets a clear error

_PYTORCH_NAMES = {   # PyTorch's function names, and how autonet (NumPy-style) spells them
    "cat": "autonet.concatenate", "tensor": "autonet.Tensor", "from_numpy": "autonet.Tensor",
    "unsqueeze": "autonet.expand_dims", "clamp": "autonet.clip", "permute": "Tensor.transpose",
    "randn": "autonet.Tensor(rng.standard_normal(shape))", "rand": "autonet.Tensor(rng.random(shape))",
    "manual_seed": "rng= arguments (a numpy Generator or an int seed)", "mm": "autonet.matmul",
    "bmm": "autonet.matmul", "float32": "numpy.float32", "float64": "numpy.float64",
}


def __getattr__(name):
    """Only for names autonet lacks: a PyTorch spelling gets autonet's."""
    hint = _PYTORCH_NAMES.get(name)
    raise AttributeError(f"module 'autonet' has no attribute {name!r}"
                         + (f" (a PyTorch name); use {hint}" if hint else ""))


__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "Context", "detect_anomaly", "no_grad", "enable_grad", "is_grad_enabled", "grad",
    "gradcheck", "gradgradcheck", "GradcheckError",
    "zeros", "ones", "zeros_like", "ones_like", "full", "arange", "linspace", "eye",
    "exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "clip", "softmax", "log_softmax",
    "sin", "cos", "log1p", "expm1", "square", "erf", "gelu", "silu", "softplus", "leaky_relu", "elu",
    "maximum", "minimum", "where", "matmul", "dot", "outer", "tensordot", "trace", "einsum", "norm",
    "sum", "mean", "max", "min", "var", "std", "prod", "cumsum", "logsumexp", "argmax", "argmin",
    "concatenate", "stack", "broadcast_to", "squeeze", "expand_dims", "moveaxis", "repeat", "pad",
    "save", "load", "cuda", "data", "nn", "optim", "models", "viz", "compile", "CompileError",
]
