"""autonet: a small, fast, correct autograd framework on NumPy.

>>> import autonet
>>> w = autonet.Tensor([[0.5], [-0.5]], requires_grad=True)
>>> loss = (autonet.Tensor([[1.0, 2.0]]) @ w).sigmoid().sum()
>>> loss.backward()
>>> w.grad.shape
(2, 1)
"""
from .tensor import Tensor
from .autograd import enable_grad, grad, is_grad_enabled, no_grad
from .function import Context, Function
from .anomaly import detect_anomaly
from .check import GradcheckError, gradcheck, gradgradcheck
from .constructors import ones, ones_like, zeros, zeros_like
from .ops.elementwise import (abs, clip, exp, log, log_softmax, maximum, minimum, relu,
                              sigmoid, softmax, sqrt, tanh, where)
from .ops.linalg import matmul
from .ops.reduce import max, mean, min, sum, var
from .ops.shape import broadcast_to, concatenate, stack
from .serialization import load, save
from . import nn, optim, models, viz  # noqa: E402 - subpackages after the core
from .compiler import CompileError, compile  # noqa: E402,A004

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "Context", "detect_anomaly", "no_grad", "enable_grad", "is_grad_enabled", "grad",
    "gradcheck", "gradgradcheck", "GradcheckError",
    "zeros", "ones", "zeros_like", "ones_like",
    "exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "clip", "softmax", "log_softmax",
    "maximum", "minimum", "where", "matmul", "sum", "mean", "max", "min", "var",
    "concatenate", "stack", "broadcast_to", "save", "load", "nn", "optim", "models", "viz", "compile", "CompileError",
]
