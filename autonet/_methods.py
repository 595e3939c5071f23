"""Tensor's operators and methods, bound to the ops that implement them.

The core's Tensor knows nothing of ops (so the core imports nothing above
it); this module, imported once by ``autonet/__init__``, attaches them.
"""
import functools
import numbers

import numpy as np

from .core import backward as _backward
from .core.function import apply_in_place
from .core.tensor import Tensor, check_kind
from .ops import activations, constructors, elementwise as ew, linalg, reduce, shape


def _varargs(args):
    """Accept ``f(1, 2)`` and ``f((1, 2))`` alike."""
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        return tuple(args[0]) if args[0] is not None else ()
    return tuple(args)


def _numpy_only(out, dtype):
    if out is not None or dtype is not None:
        raise TypeError("autonet reductions make new Tensors: out= and dtype= are not supported "
                        "(use .astype() on the result)")


# ---------------------------------------------------------------- autograd
def backward(self, grad=None, retain_graph=None, create_graph=False):
    _backward.backward(self, grad, retain_graph, create_graph)


backward.__doc__ = _backward.backward.__doc__


# ---------------------------------------------------------------- reductions
# ``out`` and ``dtype`` exist so np.sum(t), np.mean(t), ... reach these methods.
def sum(self, axis=None, keepdims=False, *, out=None, dtype=None):  # noqa: A001
    _numpy_only(out, dtype)
    return reduce.Sum.apply(self, axis=axis, keepdims=keepdims)


def mean(self, axis=None, keepdims=False, *, out=None, dtype=None):
    _numpy_only(out, dtype)
    return reduce.Mean.apply(self, axis=axis, keepdims=keepdims)


def max(self, axis=None, keepdims=False, *, out=None):  # noqa: A001
    """Maximum; the gradient is split evenly between tied maxima."""
    _numpy_only(out, None)
    return reduce.Max.apply(self, axis=axis, keepdims=keepdims)


def min(self, axis=None, keepdims=False, *, out=None):  # noqa: A001
    """Minimum; the gradient is split evenly between tied minima."""
    _numpy_only(out, None)
    return reduce.Min.apply(self, axis=axis, keepdims=keepdims)


def var(self, axis=None, keepdims=False, ddof=0, *, out=None, dtype=None):
    _numpy_only(out, dtype)
    return reduce.Var.apply(self, axis=axis, keepdims=keepdims, ddof=ddof)


def std(self, axis=None, keepdims=False, ddof=0):
    """Standard deviation, ``sqrt(var)``, with NumPy's ``ddof``."""
    return reduce.std(self, axis=axis, keepdims=keepdims, ddof=ddof)


def norm(self, ord=None, axis=None, keepdims=False):  # noqa: A002
    """As ``numpy.linalg.norm``; the 2-norm's gradient at 0 is 0."""
    return linalg.norm(self, ord=ord, axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------- shape
def reshape(self, *new_shape):
    """``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; one axis may be -1."""
    if not new_shape:
        raise TypeError("reshape() needs a shape: t.reshape(2, 3) or t.reshape((2, 3))")
    return shape.Reshape.apply(self, shape=_varargs(new_shape))


def transpose(self, *axes):
    """Reverse the axes, or permute them as given (varargs or one tuple)."""
    return shape.Transpose.apply(self, axes=_varargs(axes) or None)


def swapaxes(self, axis1, axis2):
    """Interchange two axes, as ``numpy.swapaxes``."""
    first, second = (reduce.normalize_axis(a, self.data.ndim)[0] for a in (axis1, axis2))
    axes = list(range(self.data.ndim))
    axes[first], axes[second] = axes[second], axes[first]
    return shape.Transpose.apply(self, axes=tuple(axes))


def flatten(self):
    return shape.Reshape.apply(self, shape=(-1,))


def astype(self, dtype):
    """A cast; differentiable to another float dtype, a plain constant to int or bool (as PyTorch)."""
    dtype = np.dtype(dtype)
    check_kind(dtype)
    if dtype.kind != "f":
        return Tensor(self, dtype=dtype)   # a copy, as astype; compile records it as such
    return shape.AsType.apply(self, dtype=dtype)


def __getitem__(self, index):
    return shape.GetItem.apply(self, index=shape.normalize_index(index))


def __setitem__(self, index, value):
    apply_in_place(self, shape.SetItem, value, index=shape.normalize_index(index))


def _in_place(function):
    def method(self, other):
        return apply_in_place(self, function, other)

    method.__name__ = f"__i{function.name}__"
    return method


def _binary(function, reflected=False):
    if reflected:
        def method(self, other):
            return function.apply(other, self)
    else:
        def method(self, other):
            return function.apply(self, other)
    return method


def _unary(function):
    def method(self):
        return function.apply(self)

    method.__name__ = function.name
    return method


def clip(self, lo, hi):
    """Limit values to [lo, hi] (None leaves a side open)."""
    return ew.clip(self, lo, hi)


def softmax(self, axis=-1):
    return ew.Softmax.apply(self, axis=axis)


def log_softmax(self, axis=-1):
    return ew.LogSoftmax.apply(self, axis=axis)


_METHODS = {
    "backward": backward, "sum": sum, "mean": mean, "max": max, "min": min, "var": var,
    "std": std, "norm": norm,
    "reshape": reshape, "transpose": transpose, "swapaxes": swapaxes, "flatten": flatten,
    "astype": astype, "__getitem__": __getitem__, "__setitem__": __setitem__,
    "clip": clip, "softmax": softmax, "log_softmax": log_softmax,
    "T": property(lambda self: shape.Transpose.apply(self, axes=None)),
    "__pos__": lambda self: self,
}
for _name, _function in (("add", ew.Add), ("sub", ew.Sub), ("mul", ew.Mul), ("truediv", ew.Div),
                         ("pow", ew.Pow), ("matmul", linalg.MatMul)):
    _METHODS[f"__{_name}__"] = _binary(_function)
    _METHODS[f"__r{_name}__"] = _binary(_function, reflected=True)
for _name, _function in (("add", ew.Add), ("sub", ew.Sub), ("mul", ew.Mul), ("truediv", ew.Div)):
    _METHODS[f"__i{_name}__"] = _in_place(_function)
for _function in (ew.Exp, ew.Log, ew.Sqrt, ew.Abs, ew.Sigmoid, ew.Tanh, ew.Relu):
    _METHODS[_function.name] = _unary(_function)
_METHODS["__neg__"] = _unary(ew.Neg)
_METHODS["__abs__"] = _unary(ew.Abs)

for _function in (ew.Sin, ew.Cos, ew.Log1p, ew.Expm1):
    _METHODS[_function.name] = _unary(_function)
_METHODS.update({   # the same functions as autonet.*, with the tensor first
    "square": ew.square, "logsumexp": reduce.logsumexp, "prod": reduce.prod,
    "cumsum": reduce.cumsum, "argmax": reduce.argmax, "argmin": reduce.argmin,
    "squeeze": shape.squeeze, "expand_dims": shape.expand_dims, "moveaxis": shape.moveaxis,
    "repeat": shape.repeat, "pad": shape.pad, "to": shape.to, "gelu": activations.gelu, "silu": activations.silu,
    "softplus": activations.softplus, "leaky_relu": activations.leaky_relu,
    "elu": activations.elu, "erf": activations.erf,
    "einsum": lambda self, subscripts, *others: linalg.einsum(subscripts, self, *others),
})
for _name in ("zeros", "ones", "full", "arange", "linspace", "eye"):
    _METHODS[_name] = staticmethod(getattr(constructors, _name))



# ---------------------------------------------------------------- PyTorch's spellings
# autonet follows NumPy's names; a PyTorch name gets an error that says autonet's.
_PYTORCH_KEYWORDS = {"dim": "axis", "keepdim": "keepdims"}
_PYTORCH_METHODS = {
    "view": "reshape", "unsqueeze": "expand_dims", "permute": "transpose", "clamp": "clip",
    "float": "astype(np.float32)", "double": "astype(np.float64)", "half": "astype(np.float16)",
    "long": "astype(np.int64)", "int": "astype(np.int32)", "bool": "astype(bool)",
    "cuda": "t.to('cuda')", "cpu": "t.to('cpu')", "numel": "size", "dim": "ndim",
    "contiguous": "nothing (NumPy arrays need no such call)", "expand": "autonet.broadcast_to",
    "mm": "the @ operator", "bmm": "the @ operator", "matmul": "the @ operator",
    "masked_fill": "autonet.where", "zero_": "autonet.no_grad() and t.data[...] = 0",
}


def _numpy_keywords(method):
    """``method``, with ``dim=`` / ``keepdim=`` refused in words that name NumPy's keywords."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        pytorch = [key for key in kwargs if key in _PYTORCH_KEYWORDS]
        if pytorch:
            raise TypeError(f"{method.__name__}() takes NumPy's keyword names: use "
                            + ", ".join(f"{_PYTORCH_KEYWORDS[k]}= instead of {k}=" for k in pytorch))
        return method(*args, **kwargs)
    return wrapper


def _pytorch_name(name, hint):
    """A method under a PyTorch name that says autonet's. (Not ``__getattr__``: defining that
    on Tensor would slow every attribute access, since CPython then cannot specialise them.)"""
    def method(self, *args, **kwargs):
        raise AttributeError(f"'Tensor' object has no method {name!r} (a PyTorch name); "
                             f"in autonet use {hint}")

    method.__name__ = name
    return method


for _name in ("sum", "mean", "max", "min", "var", "std", "norm", "softmax", "log_softmax",
              "logsumexp", "prod", "cumsum", "argmax", "argmin", "squeeze", "expand_dims"):
    _METHODS[_name] = _numpy_keywords(_METHODS[_name])
for _name, _hint in _PYTORCH_METHODS.items():
    if not hasattr(Tensor, _name):
        _METHODS[_name] = _pytorch_name(_name, _hint)

for _name, _value in _METHODS.items():
    setattr(Tensor, _name, _value)
