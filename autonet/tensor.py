"""Tensor: an ndarray, the node that made it, and NumPy-style operators."""
import numbers

import numpy as np

from . import autograd

_REJECTED_KINDS = {"U": "string", "S": "bytes", "O": "object", "c": "complex",
                   "V": "structured", "M": "datetime", "m": "timedelta"}


def as_array(data, dtype=None):
    """A fresh ndarray copy of ``data``; bool/int become float64 unless ``dtype``."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = np.dtype(dtype)
        _check_kind(dtype)
    array = np.array(data, dtype=dtype)
    _check_kind(array.dtype)
    if dtype is None and array.dtype.kind in "biu":
        array = array.astype(np.float64)
    return array


def _check_kind(dtype):
    kind = _REJECTED_KINDS.get(dtype.kind)
    if kind is not None:
        raise TypeError(f"Tensor data must be real numbers, got {kind} data (dtype {dtype})")


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    >>> import autonet
    >>> x = autonet.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([2., 4., 6.])

    ``Tensor(data)`` copies ``data`` (as ``np.array`` does). Python numbers,
    lists and ndarrays mix freely with Tensors in every operator.
    """

    __slots__ = ("data", "grad", "requires_grad", "name", "_node", "_retains_grad",
                 "_version", "_consumed", "__weakref__")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy's ufuncs on Tensors run autonet's differentiable ops.

        ``np.exp(t)``, ``np.maximum(t, 0)``, ``ndarray + t`` and the like return
        Tensors in the graph; comparisons return bool ndarrays. Ufuncs autonet
        cannot differentiate raise TypeError instead of dropping the graph.
        """
        function = _UFUNCS.get(ufunc)
        if method != "__call__" or function is None or kwargs:
            raise TypeError(
                f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} has no "
                f"differentiable autonet version{' with ' + str(sorted(kwargs)) if kwargs else ''}; "
                f"use the Tensor methods, or apply NumPy to t.data (outside the graph)")
        return function(*inputs)

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        tracer = autograd.state.tracer
        if tracer is not None and isinstance(data, np.ndarray):
            tracer.constant_arrays.append(data)   # compile checks it is no .grad
        self.data = as_array(data, dtype)
        self.grad = None
        self.requires_grad = False
        self.name = name
        self._node = None
        self._retains_grad = False
        self._version = [0]
        self._consumed = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, node):
        """Wrap an op's result without copying (the hot path of every op)."""
        tensor = object.__new__(cls)
        tensor.data = data
        tensor.grad = None
        tensor.requires_grad = node is not None
        tensor.name = None
        tensor._node = node
        tensor._retains_grad = False
        tensor._version = [0]   # a counter shared with views, bumped by in-place changes
        tensor._consumed = False   # set once a recorded op takes this tensor as input
        return tensor

    # ----------------------------------------------------------- attributes
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def is_leaf(self):
        """True for tensors made by the user rather than by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self):
        """The node of the op that made this tensor (None for leaves)."""
        return self._node

    @property
    def T(self):
        return self.transpose()

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    __hash__ = object.__hash__

    # ----------------------------------------------------------- autograd
    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` (ndarray, Tensor or number) is the upstream gradient; it may
        be omitted for a one-element tensor. The graph's saved arrays are
        freed afterwards unless ``retain_graph`` (default: ``create_graph``).
        With ``create_graph=True`` leaves get a ``.grad`` Tensor that is
        itself differentiable.
        """
        seed = autograd.initial_gradient(self, grad, create_graph, "backward")
        if retain_graph is None:
            retain_graph = create_graph
        autograd.run_backward((self,), (seed,), retain_graph, create_graph)

    def detach(self):
        """A new leaf sharing this tensor's data (and version counter), cut from the graph."""
        detached = Tensor._make(self.data, None)
        detached._version = self._version
        return detached

    def numpy(self):
        """The underlying ndarray (shared, not copied)."""
        _reading_value("numpy()")
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        _reading_value("item()")
        return self.data.item()

    def retain_grad(self):
        """Ask a non-leaf to keep its ``.grad`` after backward (leaves always do)."""
        if self._node is not None:
            self._retains_grad = True
        return self

    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` on a leaf, in place; returns self."""
        if self._node is not None:
            raise RuntimeError(
                "requires_grad_ can only change leaves; use detach() to get a leaf "
                "from a computed tensor")
        if flag and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require grad, not dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    @autograd.replayable
    def zero_grad(self):
        """Forget the accumulated gradient (sets ``grad`` to None)."""
        self.grad = None

    # ----------------------------------------------------------- arithmetic
    def __add__(self, other):
        return _ew.Add.apply(self, other)

    def __radd__(self, other):
        return _ew.Add.apply(other, self)

    def __sub__(self, other):
        return _ew.Sub.apply(self, other)

    def __rsub__(self, other):
        return _ew.Sub.apply(other, self)

    def __mul__(self, other):
        return _ew.Mul.apply(self, other)

    def __rmul__(self, other):
        return _ew.Mul.apply(other, self)

    def __truediv__(self, other):
        return _ew.Div.apply(self, other)

    def __rtruediv__(self, other):
        return _ew.Div.apply(other, self)

    def __pow__(self, other):
        return _ew.Pow.apply(self, other)

    def __rpow__(self, other):
        return _ew.Pow.apply(other, self)

    def __matmul__(self, other):
        return _linalg.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return _linalg.MatMul.apply(other, self)

    # In-place forms write into ``data`` and bump the version counter, so a
    # backward pass that saved the old values refuses instead of going wrong.
    def __iadd__(self, other):
        return self._in_place(_ew.Add, other)

    def __isub__(self, other):
        return self._in_place(_ew.Sub, other)

    def __imul__(self, other):
        return self._in_place(_ew.Mul, other)

    def __itruediv__(self, other):
        return self._in_place(_ew.Div, other)

    def __setitem__(self, index, value):
        index = _shape.normalize_index(index)
        self._in_place(_shape.SetItem, value, index=index)

    def _in_place(self, function, other, **kwargs):
        recording = autograd.state.grad_enabled and (
            self.requires_grad or (isinstance(other, Tensor) and other.requires_grad))
        tracer = autograd.state.tracer
        if recording and tracer is not None:
            raise autograd.CompileError("compiled steps support in-place updates only under no_grad()")
        if recording:
            if self._node is None and self.requires_grad:
                raise RuntimeError(
                    f"in-place {function.name} on a leaf that requires grad would rewrite an input "
                    f"of the graph; use `with autonet.no_grad():` to update it (as optimizers do)")
            if self._consumed:
                raise RuntimeError(
                    f"in-place {function.name} on a tensor that recorded ops already took as input "
                    f"would rewrite their history; compute out of place (y = y + ...) instead")
            if self.data.base is not None:
                raise RuntimeError(
                    f"in-place {function.name} on a view while recording gradients is not supported: "
                    f"the tensor it views would change behind the graph's back; compute out of place")
            # The tensor's history moves to a snapshot of its old values; the op
            # that made it now finds what it saved of its output there.
            before = Tensor._make(self.data.copy(), self._node)
            before.requires_grad = self.requires_grad
            before._version = [self._version[0]]
            result = function.apply(before, other, **kwargs)
        else:
            with autograd.no_grad():
                result = function.apply(self, other, **kwargs)
        if result.shape != self.shape:
            raise ValueError(
                f"{function.name}: an in-place result of shape {result.shape} does not fit the "
                f"tensor's shape {self.shape}")
        node = self._node
        if recording and node is not None and isinstance(node.saved, tuple):
            node.saved = tuple(before.data if s is self.data else s for s in node.saved)
        np.copyto(self.data, result.data, casting="same_kind")
        self._version[0] += 1
        if tracer is not None:
            tracer.record_copy(self, result)
        if recording:
            self._node = result._node
            self.requires_grad = True
        return self

    def __neg__(self):
        return _ew.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ew.Abs.apply(self)

    # Comparisons are not differentiable: they return bool ndarrays.
    def __lt__(self, other):
        _reading_value("a comparison")
        return self.data < _value(other)

    def __le__(self, other):
        _reading_value("a comparison")
        return self.data <= _value(other)

    def __gt__(self, other):
        _reading_value("a comparison")
        return self.data > _value(other)

    def __ge__(self, other):
        _reading_value("a comparison")
        return self.data >= _value(other)

    def __eq__(self, other):
        _reading_value("a comparison")
        return self.data == _value(other)

    def __ne__(self, other):
        _reading_value("a comparison")
        return self.data != _value(other)

    # ----------------------------------------------------------- reductions
    # ``out`` and ``dtype`` exist so np.sum(t), np.mean(t), ... reach these methods.
    def sum(self, axis=None, keepdims=False, *, out=None, dtype=None):
        _numpy_only(out, dtype)
        return _reduce.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, *, out=None, dtype=None):
        _numpy_only(out, dtype)
        return _reduce.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False, *, out=None):
        """Maximum; the gradient is split evenly between tied maxima."""
        _numpy_only(out, None)
        return _reduce.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False, *, out=None):
        """Minimum; the gradient is split evenly between tied minima."""
        _numpy_only(out, None)
        return _reduce.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims=False, ddof=0, *, out=None, dtype=None):
        _numpy_only(out, dtype)
        return _reduce.Var.apply(self, axis=axis, keepdims=keepdims, ddof=ddof)

    # ----------------------------------------------------------- elementwise
    def exp(self):
        return _ew.Exp.apply(self)

    def log(self):
        return _ew.Log.apply(self)

    def sqrt(self):
        return _ew.Sqrt.apply(self)

    def abs(self):
        return _ew.Abs.apply(self)

    def sigmoid(self):
        return _ew.Sigmoid.apply(self)

    def tanh(self):
        return _ew.Tanh.apply(self)

    def relu(self):
        return _ew.Relu.apply(self)

    def clip(self, lo, hi):
        """Limit values to [lo, hi] (None leaves a side open)."""
        return _ew.Clip.apply(self, lo=lo, hi=hi)

    def softmax(self, axis=-1):
        return _ew.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis=-1):
        return _ew.LogSoftmax.apply(self, axis=axis)

    # ----------------------------------------------------------- shape
    def reshape(self, *shape):
        """``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; one axis may be -1."""
        return _shape.Reshape.apply(self, shape=_varargs(shape))

    def transpose(self, *axes):
        """Reverse the axes, or permute them as given (varargs or one tuple)."""
        return _shape.Transpose.apply(self, axes=_varargs(axes) or None)

    def swapaxes(self, axis1, axis2):
        """Interchange two axes, as ``numpy.swapaxes``."""
        axes = list(range(self.data.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return _shape.Transpose.apply(self, axes=tuple(axes))

    def flatten(self):
        return _shape.Reshape.apply(self, shape=(-1,))

    def astype(self, dtype):
        """A differentiable cast to another float dtype."""
        return _shape.AsType.apply(self, dtype=np.dtype(dtype))

    def __getitem__(self, index):
        return _shape.GetItem.apply(self, index=_shape.normalize_index(index))

    # ----------------------------------------------------------- conversions
    def __array__(self, dtype=None, copy=None):
        _reading_value("np.asarray()")
        if copy:
            return np.array(self.data, dtype=dtype)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __float__(self):
        _reading_value("float()")
        return float(self.data)

    def __int__(self):
        _reading_value("int()")
        return int(self.data)

    def __bool__(self):
        _reading_value("bool()")
        return bool(self.data)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extras = []
        if self.data.dtype != np.float64:
            extras.append(f"dtype={self.data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name is not None:
            extras.append(f"name={self.name!r}")
        return "Tensor(" + ", ".join([body] + extras) + ")"


def as_tensor(x):
    """``x`` itself if it is a Tensor, else a constant Tensor of it."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _numpy_only(out, dtype):
    if out is not None or dtype is not None:
        raise TypeError("autonet reductions make new Tensors: out= and dtype= are not supported "
                        "(use .astype() on the result)")


def _reading_value(what):
    """Python is about to see a tensor's values: compile cannot replay that."""
    tracer = autograd.state.tracer
    if tracer is not None:
        tracer.refuse_value_read(what)


def _value(x):
    """The ndarray (or number) behind ``x``."""
    return x.data if isinstance(x, Tensor) else x


def _varargs(args):
    """Accept ``f(1, 2)`` and ``f((1, 2))`` alike."""
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        return tuple(args[0]) if args[0] is not None else ()
    return tuple(args)


# The ops need Tensor, so they are imported after it exists.
from .ops import elementwise as _ew  # noqa: E402
from .ops import linalg as _linalg  # noqa: E402
from .ops import reduce as _reduce  # noqa: E402
from .ops import shape as _shape  # noqa: E402


def _compare(numpy_comparison):
    def compare(a, b):
        _reading_value("a comparison")
        return numpy_comparison(_value(a), _value(b))

    return compare


_UFUNCS = {
    np.add: _ew.Add.apply, np.subtract: _ew.Sub.apply, np.multiply: _ew.Mul.apply,
    np.true_divide: _ew.Div.apply, np.power: _ew.Pow.apply, np.negative: _ew.Neg.apply,
    np.positive: lambda a: a, np.matmul: _linalg.MatMul.apply,
    np.exp: _ew.exp, np.log: _ew.log, np.sqrt: _ew.sqrt, np.absolute: _ew.abs, np.tanh: _ew.tanh,
    np.maximum: _ew.maximum, np.minimum: _ew.minimum, np.square: lambda a: _ew.Pow.apply(a, 2),
    np.less: _compare(np.less), np.less_equal: _compare(np.less_equal),
    np.greater: _compare(np.greater), np.greater_equal: _compare(np.greater_equal),
    np.equal: _compare(np.equal), np.not_equal: _compare(np.not_equal),
}
