"""Symbolic arrays: the ops' own formulas, run once to write a fused kernel's source.

The fused backend does not restate any op's forward or derivative. It calls
the op's ``Function.forward`` and ``Function.backward`` (and the engine's
``fit``, and an optimizer's own step) with :class:`Symbol` arguments instead
of ndarrays. A Symbol stands for one array of the kernel being written: each
NumPy operation on it (an operator, a ufunc, ``sum``, ``reshape``, ``@``...)
appends one line to the kernel and returns the Symbol of its result. Shapes
and dtypes come from NumPy itself, by running the same operation on
zero-strided stand-ins, so they follow NumPy's rules exactly (promotion
included). Numbers are spelled ``real(...)``, the program's floating dtype,
as NumPy 2 treats Python numbers (numba has no weak scalars).

What a formula does that a kernel cannot follow raises :class:`NotLowered`
with the reason, and the step stays on the NumPy replay: a branch on array
values, advanced indexing, a NumPy function without a lowering here.

A few operations a kernel could run but NumPy runs faster (matrix products
above ``LARGE_PRODUCT``, transcendentals of ``LARGE_TRANSCENDENTAL`` elements
and more) are written as :class:`PythonLine` s instead: they run between
kernels, on the values the kernels hand out.

0-d values are numba scalars in the kernel; writes into one (``out=``,
``+=``) rebind it, which is the same thing for a value nothing else views.
"""
import numbers
import re

import numpy as np

LARGE_PRODUCT = 2 ** 22
"""Matrix products of more multiply-adds than this run as NumPy's own matmul, in Python between
kernels (decided here, from the traced shapes): numba calls scipy's BLAS, measured 3-7% slower
than NumPy's on such products (512x1024x1024 float32: 16.0 against 14.9 ms, one thread), and
slower still when both libraries start threads. (Not from inside the kernel through numba's
object mode, as before: that leaves addresses in every kernel calling ``dot``, which, compiled
unoptimised, numba will not cache on disk.)"""


LARGE_TRANSCENDENTAL = 1024
"""``exp log tanh logaddexp sin cos log1p expm1`` of arrays of at least this many elements run as
NumPy's own, in Python between kernels: numba has no vectorised math library, so in a kernel
each element is a scalar call (about 17 ns, 10x NumPy's SIMD loops: the digits MLP's two tanh
layers, 12K elements, took 0.2 ms there), which outweighs the microsecond or two a Python
region costs; and NumPy's results are eager mode's, bit for bit."""
_TRANSCENDENTAL = {np.exp, np.log, np.tanh, np.logaddexp, np.sin, np.cos, np.log1p, np.expm1}


class NotLowered(Exception):
    """Why a program stays on the NumPy replay."""


class PythonLine(str):
    """A line of Python that runs between kernels (a region of its own), not in one: there a
    kernel's value ``t<n>`` is called ``w<n>`` (see :func:`python_name`)."""


def python_name(name):
    """What the Python between kernels calls the kernel's value ``name`` (``t<n>`` -> ``w<n>``:
    the NumPy replay's code binds ``t<n>`` to tensors)."""
    return "w" + name[1:]


class Writer:
    """The kernel's lines, and a fresh name for each new value."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)   # the program's one floating dtype, spelled `real`
        self.lines = []
        self.count = 0
        self.kinds = {}                # name -> (shape, dtype) of every Symbol made

    def fresh(self):
        """A new value's name, ``t<n>``."""
        self.count += 1
        return f"t{self.count - 1}"

    def emit(self, code, shape, dtype):
        """``t<n> = code``, and the Symbol of ``t<n>``."""
        name = self.fresh()
        self.lines.append(f"    {name} = {code}")
        return Symbol(self, name, shape, dtype)

    def in_python(self, code, shape, dtype):
        """``t<n> = code`` computed in Python between kernels (``code`` names values ``t<k>``),
        and the Symbol of ``t<n>``."""
        name = self.fresh()
        self.python_statement(f"{name} = {code}")
        return Symbol(self, name, shape, dtype)

    def python_statement(self, code):
        """``code`` (naming values ``t<k>``) run in Python between kernels."""
        self.lines.append(PythonLine(re.sub(r"\bt(\d+)\b", lambda match: python_name(match.group(0)), code)))

    def statement(self, code):
        self.lines.append(f"    {code}")

    def literal(self, value):
        """A Python number as kernel code: floats in the program's dtype."""
        if isinstance(value, (bool, np.bool_)):
            return repr(bool(value))
        if isinstance(value, numbers.Integral):
            return f"real({int(value)})" if self.dtype.kind == "f" else repr(int(value))
        if isinstance(value, numbers.Real):
            if not np.isfinite(value):
                raise NotLowered(f"the constant {value}")
            return f"real({float(value)!r})"
        raise NotLowered(f"a {type(value).__name__} in a formula")


def _example(value):
    """What NumPy computes shapes and dtypes with: a zero-strided stand-in for a Symbol."""
    if isinstance(value, Symbol):
        return np.broadcast_to(np.zeros((), value.dtype), value.shape)
    return value


def _code(writer, value):
    if isinstance(value, Symbol):
        return value.name
    if value is None:
        return "None"
    if isinstance(value, (numbers.Number, np.generic)):
        return writer.literal(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return writer.literal(value.item())
    raise NotLowered(f"a {type(value).__name__} operand in a formula")


def _square_root(exponent, dtype):
    """True where NumPy computes ``array ** exponent`` as ``sqrt`` (its scalar exponent 0.5):
    at -inf and -0.0 that differs from ``pow``, which numba calls (``NotLowered`` where the
    exponent is only known when the kernel runs)."""
    if isinstance(exponent, Symbol):
        if exponent.ndim == 0:
            raise NotLowered("a power with a 0-d exponent array (NumPy takes the square root "
                             "where it is 0.5, numba's pow does not)")
        return False
    if isinstance(exponent, np.ndarray) and exponent.ndim:
        return False
    if float(exponent) != 0.5:
        return False
    if np.dtype(dtype).kind != "f":
        raise NotLowered(f"a square root giving {dtype}")
    return True


def _infer(operation, *args, **kwargs):
    """The shape and dtype of NumPy's result for these operands."""
    with np.errstate(all="ignore"):
        result = operation(*(_example(a) for a in args), **kwargs)
    return np.shape(result), np.result_type(result)


def _writer_of(values):
    for value in values:
        if isinstance(value, Symbol):
            return value.writer
    raise NotLowered("a formula without symbolic operands")


_UFUNCS = {   # ufuncs numba compiles as NumPy's
    np.add: "+", np.subtract: "-", np.multiply: "*", np.true_divide: "/", np.power: "**",
    np.greater: ">", np.less: "<", np.greater_equal: ">=", np.less_equal: "<=", np.equal: "==",
    np.not_equal: "!=", np.logical_and: "&", np.bitwise_and: "&", np.logical_or: "|",
    np.bitwise_or: "|",
}
_CALLED = {np.exp, np.log, np.tanh, np.sqrt, np.negative, np.logaddexp, np.maximum, np.minimum,
           np.sign, np.absolute, np.sin, np.cos, np.log1p, np.expm1, np.logical_not, np.invert,
           np.square}
_REDUCERS = {np.add: "summed", np.maximum: "maxed", np.minimum: "mined"}


class Symbol:
    """One array (or scalar) of the kernel being written: its name, shape and dtype."""

    __array_priority__ = 1000   # ndarray <op> Symbol defers to the Symbol

    def __init__(self, writer, name, shape, dtype):
        self.writer = writer
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        writer.kinds[name] = (self.shape, self.dtype)

    def __repr__(self):
        return f"<Symbol {self.name} {self.shape} {self.dtype}>"

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape))

    def __len__(self):
        return self.shape[0]

    def __bool__(self):
        raise NotLowered("a formula branches on array values")

    # -------------------------------------------------------------- operators
    def _binary(self, ufunc, left, right):
        shape, dtype = _infer(ufunc, left, right)
        writer = self.writer
        if ufunc is np.power and isinstance(left, Symbol) and _square_root(right, dtype):
            if left.dtype != dtype:
                raise NotLowered(f"a square root of {left.dtype} giving {dtype}")
            return writer.emit(f"np.sqrt({left.name})", shape, dtype)
        code = f"({_code(writer, left)} {_UFUNCS[ufunc]} {_code(writer, right)})"
        return writer.emit(code, shape, dtype)

    def __add__(self, other): return self._binary(np.add, self, other)
    def __radd__(self, other): return self._binary(np.add, other, self)
    def __sub__(self, other): return self._binary(np.subtract, self, other)
    def __rsub__(self, other): return self._binary(np.subtract, other, self)
    def __mul__(self, other): return self._binary(np.multiply, self, other)
    def __rmul__(self, other): return self._binary(np.multiply, other, self)
    def __truediv__(self, other): return self._binary(np.true_divide, self, other)
    def __rtruediv__(self, other): return self._binary(np.true_divide, other, self)
    def __pow__(self, other): return self._binary(np.power, self, other)
    def __rpow__(self, other): return self._binary(np.power, other, self)
    def __gt__(self, other): return self._binary(np.greater, self, other)
    def __lt__(self, other): return self._binary(np.less, self, other)
    def __ge__(self, other): return self._binary(np.greater_equal, self, other)
    def __le__(self, other): return self._binary(np.less_equal, self, other)
    def __eq__(self, other): return self._binary(np.equal, self, other)  # noqa: E704
    def __ne__(self, other): return self._binary(np.not_equal, self, other)
    def __and__(self, other): return self._binary(np.bitwise_and, self, other)
    def __rand__(self, other): return self._binary(np.bitwise_and, other, self)
    def __or__(self, other): return self._binary(np.bitwise_or, self, other)

    __hash__ = object.__hash__

    def __neg__(self):
        return self.writer.emit(f"(-{self.name})", self.shape, self.dtype)

    def __invert__(self):
        if self.dtype != np.bool_:
            raise NotLowered(f"~ of {self.dtype}")
        return self.writer.emit(f"(~{self.name})", self.shape, self.dtype)

    def _in_place(self, ufunc, other):
        """``self op= other``: written into the kernel's array (a 0-d value is rebound)."""
        shape, dtype = _infer(ufunc, self, other)
        if shape != self.shape or np.result_type(dtype, self.dtype) != self.dtype:
            raise NotLowered(f"an in-place {ufunc.__name__} that changes shape or dtype")
        code = _code(self.writer, other)
        if self.shape:
            self.writer.statement(f"{self.name} {_UFUNCS[ufunc]}= {code}")
        else:
            self.writer.statement(f"{self.name} = {self.name} {_UFUNCS[ufunc]} {code}")
        return self

    def __iadd__(self, other): return self._in_place(np.add, other)
    def __isub__(self, other): return self._in_place(np.subtract, other)
    def __imul__(self, other): return self._in_place(np.multiply, other)
    def __itruediv__(self, other): return self._in_place(np.true_divide, other)

    def __matmul__(self, other):
        return _matmul(self, other)

    def __rmatmul__(self, other):
        return _matmul(other, self)

    # -------------------------------------------------------------- shapes
    @property
    def T(self):  # noqa: N802 - ndarray's name
        if self.ndim < 2:
            return self
        if self.ndim > 2:
            raise NotLowered("a transpose of more than 2 axes")
        return self.writer.emit(f"{self.name}.T", self.shape[::-1], self.dtype)

    def swapaxes(self, first, second):
        if self.ndim == 2 and {first % 2, second % 2} == {0, 1}:
            return self.T
        raise NotLowered(f"swapaxes of a {self.ndim}-d array")

    def transpose(self, axes=None):
        if axes is None or tuple(a % max(self.ndim, 1) for a in axes) == tuple(range(self.ndim))[::-1]:
            return self.T
        raise NotLowered(f"transpose {axes}")

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape
        new_shape, _ = _infer(np.reshape, self, shape)
        if new_shape == self.shape:
            return self
        if not self.shape:   # a scalar in the kernel
            return self.writer.emit(f"np.full({new_shape!r}, {self.name}, real)", new_shape, self.dtype)
        if not new_shape:
            return self.writer.emit(f"np.ascontiguousarray({self.name}).reshape(-1)[0]", (), self.dtype)
        return self.writer.emit(f"np.ascontiguousarray({self.name}).reshape({new_shape!r})",
                                new_shape, self.dtype)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if dtype.kind == "f" and dtype != self.writer.dtype:
            raise NotLowered(f"a cast to {dtype} in a {self.writer.dtype} program")
        spelled = "real" if dtype.kind == "f" else f"np.{dtype.name}"
        if not self.shape:
            return self.writer.emit(f"{spelled}({self.name})", (), dtype)
        return self.writer.emit(f"{self.name}.astype({spelled})", self.shape, dtype)

    def copy(self):
        return self.writer.emit(f"{self.name}.copy()" if self.shape else self.name, self.shape, self.dtype)

    def __getitem__(self, index):
        parts = index if isinstance(index, tuple) else (index,)
        if not all(p is None or p is Ellipsis or isinstance(p, (slice, numbers.Integral)) for p in parts):
            raise NotLowered("advanced indexing")
        shape, dtype = _infer(lambda a: a[index], self)
        return self.writer.emit(f"{self.name}[{_index_code(parts)}]", shape, dtype)

    def __setitem__(self, index, value):
        parts = index if isinstance(index, tuple) else (index,)
        if not self.shape and index is Ellipsis:   # a scalar in the kernel: rebound
            if getattr(value, "shape", ()) != ():
                raise NotLowered("a write of an array into a 0-d array")
            self.writer.statement(f"{self.name} = {_code(self.writer, value)}")
            return
        if not self.shape or not all(p is None or p is Ellipsis or isinstance(p, (slice, numbers.Integral))
                                     for p in parts):
            raise NotLowered("a write through advanced indexing")
        _infer(lambda a, v: np.copyto(np.array(a)[index], v), self, value)   # NumPy's rules, or its error
        self.writer.statement(f"{self.name}[{_index_code(parts)}] = {_code(self.writer, value)}")

    # -------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims=False):
        return _reduce(np.add, self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _reduce(np.maximum, self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return _reduce(np.minimum, self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        total = _reduce(np.add, self, axis, keepdims)
        return total / (self.size // max(total.size, 1))

    # -------------------------------------------------------------- NumPy's protocols
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if method == "reduce":
            axis, keepdims = kwargs.pop("axis", 0), kwargs.pop("keepdims", False)
            if kwargs or out is not None:
                raise NotLowered(f"numpy.{ufunc.__name__}.reduce with {sorted(kwargs)}")
            return _reduce(ufunc, inputs[0], axis, keepdims)
        if kwargs:
            raise NotLowered(f"numpy.{ufunc.__name__} with {sorted(kwargs)}")
        if method != "__call__":
            raise NotLowered(f"numpy.{ufunc.__name__}.{method}")
        writer = _writer_of(inputs)
        if ufunc in _UFUNCS and out is None:
            return inputs[0]._binary(ufunc, *inputs) if isinstance(inputs[0], Symbol) \
                else inputs[1]._binary(ufunc, *inputs)
        if ufunc not in _CALLED:
            raise NotLowered(f"numpy.{ufunc.__name__}")
        shape, dtype = _infer(ufunc, *inputs)
        code = f"np.{ufunc.__name__}({', '.join(_code(writer, a) for a in inputs)})"
        in_python = ufunc in _TRANSCENDENTAL and int(np.prod(shape)) >= LARGE_TRANSCENDENTAL
        if out is None:
            return writer.in_python(code, shape, dtype) if in_python else writer.emit(code, shape, dtype)
        (target,) = out
        if not isinstance(target, Symbol) or (shape, dtype) != (target.shape, target.dtype):
            raise NotLowered(f"numpy.{ufunc.__name__} into another shape or dtype")
        if in_python:
            writer.python_statement(f"{code[:-1]}, {target.name})")
        elif target.shape:   # in place, as NumPy writes it
            writer.statement(f"{code[:-1]}, {target.name})")
        else:
            writer.statement(f"{target.name} = {code}")
        return target

    def __array_function__(self, func, types, args, kwargs):
        lowering = _FUNCTIONS.get(func)
        if lowering is None:
            raise NotLowered(f"numpy.{func.__name__}")
        return lowering(self.writer, *args, **kwargs)

    def __array__(self, dtype=None, copy=None):
        raise NotLowered("a formula converts an array with np.asarray")

    def __lower__(self, name, function, args):
        """A call of a helper marked ``ops.generic.lowerable``: the kernel calls
        ``kernels.<name>`` instead; the result's shape and dtype are the helper's on stand-ins."""
        with np.errstate(all="ignore"):
            result = function(*(np.zeros(a.shape, a.dtype) if isinstance(a, Symbol) else a for a in args))
        code = ", ".join(repr(a) if isinstance(a, str) else _code(self.writer, a) for a in args)
        return self.writer.emit(f"{name}({code})", np.shape(result), np.result_type(result))


def _index_code(parts):
    def one(part):
        if part is None:
            return "None"
        if part is Ellipsis:
            return "..."
        if isinstance(part, slice):
            return ":".join("" if v is None else str(int(v)) for v in (part.start, part.stop, part.step))
        return str(int(part))
    return ", ".join(one(p) for p in parts)


def _matmul(a, b):
    if not (isinstance(a, Symbol) and isinstance(b, Symbol)) or a.ndim != 2 or b.ndim != 2:
        raise NotLowered("a matrix product of other than two 2-d arrays")
    if a.dtype != b.dtype:
        raise NotLowered(f"a matrix product of {a.dtype} and {b.dtype} operands")   # loops compute in one
    shape, dtype = _infer(np.matmul, a, b)
    if a.shape[0] * a.shape[1] * b.shape[1] > LARGE_PRODUCT:
        return a.writer.in_python(f"matmul({a.name}, {b.name})", shape, dtype)
    return a.writer.emit(f"dot({a.name}, {b.name})", shape, dtype)


def _reduce(ufunc, a, axis, keepdims):
    """``ufunc.reduce(a, axis, keepdims)`` through the kernel helpers (numba's own sums drift in
    float32 and take one axis at a time)."""
    if ufunc not in _REDUCERS:
        raise NotLowered(f"numpy.{ufunc.__name__}.reduce")
    shape, dtype = _infer(lambda x: ufunc.reduce(x, axis=axis, keepdims=keepdims), a)
    ndim = a.ndim
    axes = tuple(range(ndim)) if axis is None else tuple(
        sorted(x % ndim for x in ((axis,) if isinstance(axis, numbers.Integral) else axis)))
    helper = _REDUCERS[ufunc]
    writer = a.writer
    if not a.shape:
        return a
    if len(axes) == ndim:
        whole = writer.emit(f"{helper}({a.name}, None)", (), dtype)
        return whole.reshape(shape) if keepdims else whole
    if helper != "summed" and ndim != 2:
        raise NotLowered(f"numpy.{ufunc.__name__}.reduce over some axes of a {ndim}-d array")
    code = a.name
    for x in reversed(axes):
        code = f"{helper}({code}, {x})"
    reduced = writer.emit(code, tuple(n for i, n in enumerate(a.shape) if i not in axes), dtype)
    return reduced.reshape(shape) if keepdims else reduced


def _spelled_dtype(writer, dtype):
    dtype = np.dtype(dtype if dtype is not None else writer.dtype)
    if dtype.kind == "f" and dtype != writer.dtype:
        raise NotLowered(f"a {dtype} array in a {writer.dtype} program")
    return ("real" if dtype.kind == "f" else f"np.{dtype.name}"), dtype


def _filled(fill):
    def lowering(writer, shape, dtype=None, like=None):
        shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
        spelled, dtype = _spelled_dtype(writer, dtype)
        if not shape:
            return writer.emit(f"{spelled}({fill})" if fill != "empty" else f"{spelled}(0)", (), dtype)
        return writer.emit(f"np.{fill}({shape!r}, {spelled})", shape, dtype)
    return lowering


def _filled_like(fill):
    def lowering(writer, a, dtype=None):
        return _filled(fill)(writer, a.shape, a.dtype if dtype is None else dtype)
    return lowering


def _where(writer, condition, a, b):
    shape, dtype = _infer(np.where, condition, a, b)
    code = f"np.where({_code(writer, condition)}, {_code(writer, a)}, {_code(writer, b)})"
    return writer.emit(code, shape, dtype)


_FUNCTIONS = {
    np.empty: _filled("empty"), np.zeros: _filled("zeros"), np.ones: _filled("ones"),
    np.zeros_like: _filled_like("zeros"), np.ones_like: _filled_like("ones"),
    np.empty_like: _filled_like("empty"), np.where: _where,
    np.sum: lambda writer, a, axis=None, keepdims=False: _reduce(np.add, a, axis, keepdims),
    np.max: lambda writer, a, axis=None, keepdims=False: _reduce(np.maximum, a, axis, keepdims),
}

