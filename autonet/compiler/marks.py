"""Marked arrays: what the step's own Python code gets from its inputs while it is traced.

An ndarray argument, and a tensor's ``.data`` or ``.grad`` read by the step's
code (not by autonet's), reach the step as a :class:`Marked` view. NumPy
works on it as usual and its results stay marked, so when an array is handed
to autonet the tracer knows where it came from: an input as it is (its
``origin``, read afresh on every replay), an input reshaped, transposed or
sliced by constants (``y.reshape(-1)``, ``x[:, 0]``: replayed the same way),
or something else computed from one with NumPy (``origin`` None: the replay
would not recompute it, so it is refused).
Python reading a marked value (``bool``, ``float``, ``item()``, ...) raises:
a branch on it could go another way on a later call. Writing into an input
with NumPy raises too: the replay would not write.
"""
import numpy as np

from ..core.state import state
from ..core.tensor import Tensor
from .errors import CompileError

_METADATA = {np.shape, np.ndim, np.size, np.result_type}   # answers about shapes, not values
_WRITERS = {np.copyto, np.put, np.place, np.putmask, np.fill_diagonal, np.put_along_axis}


def _reading(name):
    """An ndarray method that hands Python a value: refused while tracing."""
    method = getattr(np.ndarray, name)

    def read(self, *args, **kwargs):
        _refuse_read(self, "a Python value")
        return method(self.view(np.ndarray), *args, **kwargs)

    return read


def _writing(name):
    """An ndarray method that writes into the array, refused on an input."""
    method = getattr(np.ndarray, name)

    def write(self, *args, **kwargs):
        _refuse_write(self)
        return method(self, *args, **kwargs)

    return write


class Marked(np.ndarray):
    """A view that NumPy computes with and Python may not read (see the module doc)."""

    origin = None
    what = "an input"

    def __array_finalize__(self, obj):
        self.origin = None          # views and results are computed, not the input itself
        self.what = getattr(obj, "what", "an input")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(isinstance(x, Tensor) for x in inputs):
            return NotImplemented   # Tensor's own dispatch puts it in the graph
        out = kwargs.get("out")
        if out:
            for target in out:
                _refuse_write(target)
            kwargs["out"] = tuple(plain(target) for target in out)
        return mark(getattr(ufunc, method)(*plain(inputs), **kwargs), self.what)

    def __array_function__(self, func, types, args, kwargs):
        if any(issubclass(t, Tensor) for t in types):
            return NotImplemented
        if func in _WRITERS:
            _refuse_write(args[0])
        if "out" in kwargs:
            _refuse_write(kwargs["out"])
        result = func(*plain(args), **plain(kwargs))
        if type(result) in (bool, int, float) and func not in _METADATA:
            _refuse_read(self, f"numpy.{func.__name__}")
        return mark(result, self.what)

    def __getitem__(self, index):
        result = mark(super().__getitem__(plain(index)), self.what)
        if _constant(index):   # x[1:, 0] of an input: the replay takes the same part
            return _reshaped(self, result, "__getitem__", (index,), {})
        return result

    def reshape(self, *args, **kwargs):
        return _reshaped(self, super().reshape(*args, **kwargs), "reshape", args, kwargs)

    def transpose(self, *args):
        return _reshaped(self, super().transpose(*args), "transpose", args, {})

    def swapaxes(self, *args):
        return _reshaped(self, super().swapaxes(*args), "swapaxes", args, {})

    def squeeze(self, *args, **kwargs):
        return _reshaped(self, super().squeeze(*args, **kwargs), "squeeze", args, kwargs)

    def ravel(self, *args):
        return _reshaped(self, super().ravel(*args), "ravel", args, {})

    @property
    def T(self):  # noqa: N802 - ndarray's name
        return _reshaped(self, super().T, "transpose", (), {})

    def __setitem__(self, index, value):
        _refuse_write(self)
        super().__setitem__(plain(index), plain(value))

    (__bool__, __int__, __float__, __complex__, __index__, item, tolist, tobytes) = (
        _reading(name) for name in ("__bool__", "__int__", "__float__", "__complex__", "__index__",
                                    "item", "tolist", "tobytes"))

    fill, sort, put, partition = (_writing(name) for name in ("fill", "sort", "put", "partition"))


def _constant(value):
    """True for indices and settings made of Python constants (ints, slices, None, ...)."""
    if type(value) in (tuple, list):
        return all(_constant(part) for part in value)
    if type(value) is slice:
        return all(_constant(part) for part in (value.start, value.stop, value.step))
    return value is None or value is Ellipsis or type(value) in (int, bool, str)


def _reshaped(source, result, method, args, kwargs):
    """``result = source.method(*args, **kwargs)``: an input reshaped or sliced by constants
    is read the same way from each call's input (``origin`` says how)."""
    if source.origin is not None and _constant(args) and _constant(list(kwargs.values())):
        result = mark(result, source.what, origin=("part", (source.origin, method, args, kwargs)))
    return result


def mark(value, what, origin=None):
    """``value`` (an array, a NumPy scalar, or a tuple or list of them) as marked views."""
    if isinstance(value, np.ndarray):
        marked = value.view(Marked)
        marked.origin, marked.what = origin, what
        return marked
    if isinstance(value, np.generic):
        return mark(np.asarray(value), what, origin)
    if type(value) in (tuple, list):
        return type(value)(mark(part, what) for part in value)
    return value


def plain(value):
    """``value`` with marked views as plain ndarrays (in tuples, lists and dicts too)."""
    if isinstance(value, Marked):
        return value.view(np.ndarray)
    if type(value) in (tuple, list):
        return type(value)(plain(part) for part in value)
    if type(value) is dict:
        return {key: plain(part) for key, part in value.items()}
    return value


def _tracing():
    """True while this thread traces a step: outside, marked arrays kept by the step (a list
    it appended to) behave as plain arrays."""
    return any(getattr(observer, "marks_arrays", False) for observer in state.observers)


def _refuse_read(array, how):
    if not _tracing():
        return
    raise CompileError(
        f"the step reads {how} of {array.what} while being traced; a branch on it could go "
        f"another way on a later call, which a replay cannot follow. Keep value reads outside "
        f"the compiled step (use the tensors it returns), or pass the value as a Python number "
        f"argument (a trace is kept per value).")


def _refuse_write(array):
    if isinstance(array, Marked) and array.origin is not None and _tracing():
        raise CompileError(
            f"the step writes into {array.what} with NumPy; a replay would not. Change tensors "
            f"with autonet ops (under no_grad() for parameters), gradients with an optimizer or "
            f"nn.utils.clip_grad_norm_ / clip_grad_value_, or do it outside the step.")
