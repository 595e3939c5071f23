"""Tensor: an ndarray, the graph node that made it, and a version counter.

Operators and methods that run ops are bound by ``autonet._methods``; this
module holds only what the engine itself needs, so it imports nothing above
the core.
"""
import contextlib
import threading
import weakref

import numpy as np

from . import device as devices
from .state import notify, replayable, state

_REJECTED_KINDS = {"U": "string", "S": "bytes", "O": "object", "c": "complex",
                   "V": "structured", "M": "datetime", "m": "timedelta"}


def as_array(data, dtype=None, device=None):
    """A fresh array copy of ``data`` (on ``device``, else where ``data`` lives); bool/int
    become float64 unless ``dtype``."""
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        dtype = np.dtype(dtype)
        check_kind(dtype)
    if devices.is_foreign(data):   # stays on its device
        array = data.copy() if dtype is None else data.astype(dtype, copy=True)
    else:
        array = np.array(data, dtype=dtype)
    check_kind(array.dtype)
    if dtype is None and array.dtype.kind in "biu":
        array = array.astype(np.float64)
    if device is not None:
        array = devices.to_device(array, device)
    return array


def check_kind(dtype):
    """Refuse dtypes that are not real numbers (``TypeError``)."""
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

    ``_version`` is ``[writes, recorded_writes]``, shared by a tensor and its
    views: ``writes`` counts in-place changes (backward refuses to use arrays
    saved before one), ``recorded_writes`` counts those that gave the tensor a
    new history. A view remembers ``recorded_writes`` at its creation
    (``_view_of``); once they differ its own history is stale.
    """

    __slots__ = ("_data", "_grad", "requires_grad", "name", "_node", "_version", "_view_of",
                 "__weakref__")

    def __init__(self, data, requires_grad=False, dtype=None, name=None, device=None):
        self._data = as_array(data, dtype, device)
        self._grad = None
        self.requires_grad = False
        self.name = name
        self._node = None
        self._version = [0, 0]
        self._view_of = None
        if requires_grad:
            self.requires_grad_(True)
        if state.observers:
            notify("tensor_made", self, data)

    @classmethod
    def _make(cls, data, node):
        """Wrap an op's result without copying (the hot path of every op)."""
        tensor = object.__new__(cls)
        tensor._data = data
        tensor._grad = None
        tensor.requires_grad = node is not None
        tensor.name = None
        tensor._node = node
        tensor._version = [0, 0]
        tensor._view_of = None
        return tensor

    # ----------------------------------------------------------- attributes
    @property
    def data(self):
        """The ndarray (a device's array on a device); set it to replace the values."""
        if _traces_running:   # compile shows this thread's trace what the step's code reads
            return _watched_read(self, "data", self._data)
        return self._data

    @data.setter
    def data(self, value):
        if _traces_running:
            _watched_write(self, "data")
        self._data = value

    @property
    def grad(self):
        """The gradient a backward pass delivered (None before one); an ndarray, or a Tensor
        after ``backward(create_graph=True)``."""
        if _traces_running:
            return _watched_read(self, "grad", self._grad)
        return self._grad

    @grad.setter
    def grad(self, value):
        if _traces_running:
            _watched_write(self, "grad")
        self._grad = value

    @property
    def shape(self):
        return self._data.shape

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def size(self):
        return self._data.size

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        """``"cpu"``, or the device of a foreign array (``"cuda:0"``)."""
        return devices.device_of(self._data)

    @property
    def is_leaf(self):
        """True for tensors made by the user rather than by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self):
        """The node of the op that made this tensor (None for leaves)."""
        return self._node

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    __hash__ = object.__hash__

    # ----------------------------------------------------------- autograd
    def detach(self):
        """A new leaf sharing this tensor's data (and version counter), cut from the graph."""
        detached = Tensor._make(self._data, None)
        detached._version = self._version
        if state.observers:
            notify("detached", self, detached)
        return detached

    def numpy(self):
        """The underlying ndarray (shared, not copied); a host copy for a tensor on a device."""
        reading_value("numpy()")
        return self._data if devices.is_host(self._data) else devices.to_host(self._data)

    def item(self):
        """The value of a one-element tensor as a Python number (copied from its device)."""
        reading_value("item()")
        return devices.to_host(self._data).item()

    def retain_grad(self):
        """Ask a non-leaf to keep its ``.grad`` after backward (leaves always do)."""
        if self._node is not None:
            self._node.retained = weakref.ref(self)
        return self

    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` on a leaf, in place; returns self."""
        if self._node is not None:
            raise RuntimeError(
                "requires_grad_ can only change leaves; use detach() to get a leaf "
                "from a computed tensor")
        if flag and self._data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require grad, not dtype {self._data.dtype}")
        self.requires_grad = bool(flag)
        return self

    @replayable
    def zero_grad(self):
        """Forget the accumulated gradient (sets ``grad`` to None)."""
        self._grad = None

    def _bump_version(self):
        """Record that ``data`` was written in place (by init, load_state_dict, an optimizer)."""
        self._version[0] += 1

    # Comparisons are not differentiable: they return bool ndarrays.
    def __lt__(self, other):
        reading_value("a comparison")
        return self._data < value_of(other)

    def __le__(self, other):
        reading_value("a comparison")
        return self._data <= value_of(other)

    def __gt__(self, other):
        reading_value("a comparison")
        return self._data > value_of(other)

    def __ge__(self, other):
        reading_value("a comparison")
        return self._data >= value_of(other)

    def __eq__(self, other):
        reading_value("a comparison")
        return self._data == value_of(other)

    def __ne__(self, other):
        reading_value("a comparison")
        return self._data != value_of(other)

    # ----------------------------------------------------------- conversions
    def __array__(self, dtype=None, copy=None):
        """The data for NumPy; refused for tensors that require grad (as PyTorch).

        NumPy converts through here whenever it meets a Tensor it does not
        dispatch (``np.exp([t, u])``, ``np.array(t)``): for a tensor in a graph
        that would silently drop the graph.
        """
        reading_value("np.asarray()")
        if self.requires_grad:
            raise TypeError(
                "NumPy tried to convert a Tensor that requires grad into a plain array, which "
                "would leave the graph. Read values with t.data (or t.numpy(), t.detach()); "
                "combine Tensors with autonet.stack / autonet.concatenate.")
        if not devices.is_host(self._data):
            raise TypeError(f"the tensor lives on {self.device}; copy it to the host explicitly "
                            f"with t.numpy() (or t.to('cpu'))")
        if copy:
            return np.array(self._data, dtype=dtype)
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """The data as a DLPack capsule, shared (``np.from_dlpack(t)``, ``torch.from_dlpack(t)``);
        refused for tensors that require grad, as PyTorch."""
        if self.requires_grad:
            raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
        reading_value("DLPack export")
        given = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
        return _dlpack_array(self._data).__dlpack__(**{k: v for k, v in given.items() if v is not None})

    def __dlpack_device__(self):
        """``(device type, index)`` as DLPack numbers them: ``(1, 0)`` for the CPU."""
        return _dlpack_array(self._data).__dlpack_device__()

    def __float__(self):
        reading_value("float()")
        return float(self._data)

    def __int__(self):
        reading_value("int()")
        return int(self._data)

    def __bool__(self):
        reading_value("bool()")
        return bool(self._data)

    def __repr__(self):
        body = np.array2string(devices.to_host(self._data), separator=", ", prefix="Tensor(")
        extras = [] if devices.is_host(self._data) else [f"device={self.device!r}"]
        if self._data.dtype != np.float64:
            extras.append(f"dtype={self._data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name is not None:
            extras.append(f"name={self.name!r}")
        return "Tensor(" + ", ".join([body] + extras) + ")"


# ------------------------------------------------------------------ tracing .data and .grad
# The engine reads and writes the slots ``_data`` and ``_grad`` itself. ``.data`` and ``.grad``
# are what everyone else uses; while a trace (autonet.compile) runs in this thread, they show it
# the step's reads (it hands back marked arrays) and writes (it refuses them). Other threads, and
# every read while no trace runs anywhere, cost one test of ``_traces_running``.
class _Watch(threading.local):
    tracer = None   # this thread's: read_slot(tensor, name, value), write_slot(tensor, name)


_watch = _Watch()
_traces_running = 0   # in any thread
_traces_lock = threading.Lock()


@contextlib.contextmanager
def watched(tracer):
    """Within the block, this thread's reads and writes of ``.data`` and ``.grad`` outside the
    engine go through ``tracer.read_slot`` / ``tracer.write_slot``."""
    global _traces_running
    with _traces_lock:
        _traces_running += 1
    previous, _watch.tracer = _watch.tracer, tracer
    try:
        yield tracer
    finally:
        _watch.tracer = previous
        with _traces_lock:
            _traces_running -= 1


def _watched_read(tensor, name, value):
    tracer = _watch.tracer
    return value if tracer is None or value is None else tracer.read_slot(tensor, name, value)


def _watched_write(tensor, name):
    tracer = _watch.tracer
    if tracer is not None:
        tracer.write_slot(tensor, name)


def as_tensor(x):
    """``x`` itself if it is a Tensor, else a constant Tensor of it."""
    return x if isinstance(x, Tensor) else Tensor(x)


def value_of(x):
    """The ndarray (or number) behind ``x``."""
    return x._data if isinstance(x, Tensor) else x


def reading_value(what):
    """Python is about to see a tensor's values: observers (compile) may refuse."""
    if state.observers:
        notify("value_read", what)


def _dlpack_array(data):
    """``data`` as an array that speaks DLPack (a NumPy scalar some ops leave becomes 0-d)."""
    return np.asarray(data) if isinstance(data, np.generic) else data
