"""A test double for a GPU array type (CuPy's), so device code is tested on a CPU-only machine.

``DeviceArray`` wraps an ndarray and behaves as CuPy's arrays do where it
matters: it is not an ``np.ndarray``; NumPy's functions and ufuncs dispatch to
it (``__array_ufunc__``, ``__array_function__``, ``like=``) and return
DeviceArrays; implicit conversion to NumPy (``np.asarray``, ``np.array``)
raises ``TypeError``; mixing it with NumPy arrays in one call raises too. Any
host conversion autonet forgot is therefore an error here. The values are
NumPy's own, so results must equal the CPU's bit for bit.
"""
import contextlib
import os
import sys

import numpy as np
import numpy.lib.mixins

import autonet
from autonet.core import device as devices

DEVICE = "double"
_AUTONET = os.path.dirname(autonet.__file__) + os.sep
_PASSED_OVER = (os.path.dirname(np.__file__) + os.sep, __file__)
_lenient = False   # True inside ``default_device()``: the tests' own code may convert


def _asked_by_the_tests():
    """True when ``_lenient`` and the code asking for a host array is not autonet's.

    The nearest caller outside NumPy and this module asked: autonet must never
    convert (CuPy would refuse); a test comparing results may.
    """
    if not _lenient:
        return False
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PASSED_OVER):
        frame = frame.f_back
    return frame is None or not frame.f_code.co_filename.startswith(_AUTONET)


def _unwrap(value, allow_host=False):
    if isinstance(value, DeviceArray):
        return value.array
    if isinstance(value, np.ndarray) and value.ndim and not allow_host and not _asked_by_the_tests():
        raise TypeError("DeviceArray: a NumPy array mixed with device arrays (as CuPy refuses)")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, allow_host) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, allow_host) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return DeviceArray(value)
    if isinstance(value, np.generic):
        return DeviceArray(np.asarray(value))   # CuPy returns 0-d arrays, not scalars
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class DeviceArray(numpy.lib.mixins.NDArrayOperatorsMixin):
    """An array on the pretend device ``"double:0"`` (see the module doc)."""

    __slots__ = ("array", "__weakref__")

    def __init__(self, array):
        self.array = array

    # NumPy's protocols
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(hasattr(type(i), "__array_ufunc__") and not isinstance(i, (DeviceArray, np.ndarray, np.generic))
               for i in inputs):
            return NotImplemented   # a Tensor's own operator takes over, as with CuPy
        out = kwargs.pop("out", None)
        kwargs = _unwrap(kwargs)
        if out:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        if out and method == "__call__":
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        if not all(issubclass(t, (DeviceArray, np.ndarray)) for t in types):
            return NotImplemented
        _refuse_what_cupy_lacks(func.__name__, kwargs)
        host_ok = func in (np.pad, np.broadcast_to, np.take_along_axis, np.put_along_axis, np.asarray,
                           np.array)   # np.asarray(host, like=device_array) is a transfer, as in CuPy
        return _wrap(func(*_unwrap(args, host_ok), **_unwrap(kwargs, host_ok)))

    def __array__(self, dtype=None, copy=None):
        if _asked_by_the_tests():
            return self.array if dtype is None else self.array.astype(dtype)
        raise TypeError("implicit conversion of a DeviceArray to NumPy (use .get(), as in CuPy)")

    # what CuPy's arrays have
    def get(self):
        return self.array.copy()

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)
    size = property(lambda self: self.array.size)
    T = property(lambda self: DeviceArray(self.array.T))
    base = property(lambda self: None if self.array.base is None else self.array.base)
    strides = property(lambda self: self.array.strides)
    flags = property(lambda self: self.array.flags)
    device = property(lambda self: DEVICE + ":0")

    def __len__(self):
        return len(self.array)

    def __getitem__(self, index):
        return _wrap(self.array[_unwrap(index, allow_host=True)])

    def __setitem__(self, index, value):
        self.array[_unwrap(index, allow_host=True)] = _unwrap(value, allow_host=np.ndim(value) == 0)

    def __repr__(self):
        return f"DeviceArray({self.array!r})"

    def __float__(self):
        return float(self.array)

    def __int__(self):
        return int(self.array)

    def __bool__(self):
        return bool(self.array)

    def __index__(self):
        return self.array.__index__()

    def item(self):
        return self.array.item()

    def tolist(self):
        return self.array.tolist()

    def copy(self):
        return DeviceArray(self.array.copy())

    def astype(self, dtype, copy=True):
        return DeviceArray(self.array.astype(dtype, copy=copy))

    def view(self, *args):
        return DeviceArray(self.array.view(*args))


def _refuse_what_cupy_lacks(name, kwargs):
    """CuPy's reductions take no ``initial=`` or ``where=`` (``cupy.amax(a, axis, out, keepdims)``):
    NumPy underneath would accept them, so the double refuses them as CuPy does."""
    lacking = sorted({"initial", "where"} & set(kwargs))
    if lacking:
        raise TypeError(f"{name}() got an unexpected keyword argument {lacking[0]!r} (CuPy has none)")


def _method(name):
    def method(self, *args, **kwargs):
        _refuse_what_cupy_lacks(name, kwargs)
        return _wrap(getattr(self.array, name)(*_unwrap(args, True), **_unwrap(kwargs, True)))

    method.__name__ = name
    return method


for _name in ("reshape", "transpose", "swapaxes", "sum", "mean", "max", "min", "var", "std",
              "argmax", "argmin", "all", "any", "ravel", "squeeze", "fill", "prod", "cumsum",
              "round", "clip", "nonzero", "repeat", "dot"):
    setattr(DeviceArray, _name, _method(_name))


class DoubleBackend(devices.Backend):
    kind = DEVICE

    def owns(self, array):
        return isinstance(array, DeviceArray)

    def device_of(self, array):
        return array.device

    def to_device(self, array, index):
        if isinstance(array, DeviceArray):
            return array.copy()
        return DeviceArray(np.array(array, copy=True))

    def to_host(self, array):
        return array.get()

    def as_strided(self, array, shape, strides):
        return DeviceArray(np.lib.stride_tricks.as_strided(array.array, shape, strides, writeable=False))

    def memory_root(self, array):
        return devices.memory_root(array.array)   # views wrap views of one ndarray

    def owns_its_memory(self, array):   # views of the ndarray inside refer to it, not to the wrapper
        return (array.array.base is None and array.array.flags.writeable
                and sys.getrefcount(array.array) == 2)   # the wrapper's reference and this call's


devices.register(DoubleBackend())


@contextlib.contextmanager
def default_device():
    """Tensors made from host data (``Tensor(array)``, parameters, constructors) land on the
    double, as ``torch.set_default_device`` would put them; the tests' own conversions of
    results (``np.testing``, comparisons with host arrays) are allowed, autonet's are not."""
    global _lenient
    made = autonet.Tensor.__init__

    def on_the_double(self, data, requires_grad=False, dtype=None, name=None, device=None):
        if device is None and not isinstance(data, autonet.Tensor) and not devices.is_foreign(data):
            device = DEVICE
        made(self, data, requires_grad, dtype, name, device)

    autonet.Tensor.__init__, _lenient = on_the_double, True
    try:
        yield
    finally:
        autonet.Tensor.__init__, _lenient = made, False


def passed(array):
    """An ndarray argument for a compiled step: itself on the CPU; under ``default_device()``
    a Tensor on the double (a step on a device takes its data as Tensors only)."""
    return autonet.Tensor(array, dtype=array.dtype) if _lenient else array


def here(array):
    """``array`` where the test's tensors are: itself on the CPU, a copy on the double under
    ``default_device()`` (for tests that mix arrays of their own into ops)."""
    return devices.to_device(array, DEVICE) if _lenient else array
