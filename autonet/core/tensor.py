"""Tensor: an ndarray, the graph node that made it, and a version counter.

Operators and methods that run ops are bound by ``autonet._methods``; this
module holds only what the engine itself needs, so it imports nothing above
the core. Type checkers see the bound methods through ``TensorOps``, declared in
``tensor_ops.pyi`` (generated from the op registry by ``make ops-page``).
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeAlias, Union

import numpy as np
from numpy.typing import NDArray

from . import device as devices
from .state import notify, replayable, state
from .types import Array, DTypeLike

if TYPE_CHECKING:
    from .context import Context
    from .tensor_ops import TensorOps
else:
    TensorOps = object   # the ops are bound at import by autonet._methods

TensorLike: TypeAlias = Union["Tensor", float, "np.number[Any]", np.bool_, NDArray[Any], list[Any],
                              tuple[Any, ...]]
"""What ops take: a Tensor, a number, an ndarray, or (nested) lists and tuples of numbers. Narrower
than NumPy's ArrayLike, which also admits strings (refused at run time). Defined beside Tensor,
which it names (``core.types`` holds the aliases that need no Tensor)."""

_REJECTED_KINDS = {"U": "string", "S": "bytes", "O": "object", "c": "complex",
                   "V": "structured", "M": "datetime", "m": "timedelta"}


def as_array(data: Any, dtype: DTypeLike = None, device: str | None = None) -> Array:
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


def check_kind(dtype: np.dtype[Any]) -> None:
    """Refuse dtypes that are not real numbers (``TypeError``)."""
    kind = _REJECTED_KINDS.get(dtype.kind)
    if kind is not None:
        raise TypeError(f"Tensor data must be real numbers, got {kind} data (dtype {dtype})")


class ElementCount(int):
    """``Tensor.size``: an int in every respect, except that calling it (PyTorch's
    ``t.size()`` / ``t.size(d)``) raises a ``TypeError`` naming NumPy's meaning and the fix."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Tensor.size is NumPy's element count (the int {int(self)}), not PyTorch's "
                        "size(): use t.shape for the shape, t.shape[d] for one axis' length")

    def __reduce__(self):   # pickles as a plain int
        return int, (int(self),)


def _check_assigned_grad(tensor, value):
    """PyTorch's rule for ``t.grad = value``: an array or Tensor of ``t``'s shape and dtype (a
    gradient of another shape reached an optimizer's in-place update, which broadcast it)."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"grad must be an array, a Tensor or None, not {type(value).__name__}")
    if tuple(shape) != tensor._data.shape or dtype != tensor._data.dtype:
        raise ValueError(
            f"grad must have the tensor's shape {tensor._data.shape} and dtype {tensor._data.dtype}, "
            f"not shape {tuple(shape)} and dtype {dtype}; convert it first (np.broadcast_to(g, "
            f"t.shape).astype(t.dtype))")


class Tensor(TensorOps):
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
    (``_view_of``); once they differ its own history is stale. ``_origin`` says
    what a tensor made by an op that recorded nothing was made from
    (``core.function.Origin``), for drawings.
    """

    __slots__ = ("_data", "_grad", "requires_grad", "name", "_node", "_version", "_view_of",
                 "_origin", "__weakref__")

    def __init__(self, data: TensorLike, requires_grad: bool = False, dtype: DTypeLike = None,
                 name: str | None = None, device: str | None = None) -> None:
        self._data = as_array(data, dtype, device)
        self._grad = None
        self.requires_grad = False
        self.name = name
        self._node = None
        self._version = [0, 0]
        self._view_of = None
        self._origin = None
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
        tensor._origin = None   # see core.function.Origin
        return tensor

    # ----------------------------------------------------------- attributes
    _data: Array
    _grad: Array | Tensor | None   # a Tensor after backward(create_graph=True)
    requires_grad: bool
    name: str | None
    __array_ufunc__: Callable[..., Any]   # the NumPy protocol, bound by autonet._numpy
    __array_function__: Callable[..., Any]

    @property
    def data(self) -> Array:
        """The ndarray (a device's array on a device); set it to replace the values."""
        if _traces_running:   # compile shows this thread's trace what the step's code reads
            return _watched_read(self, "data", self._data)
        return self._data

    @data.setter
    def data(self, value: Array) -> None:
        if _traces_running:
            _watched_write(self, "data")
        self._data = value

    @property
    def grad(self) -> Array | Tensor | None:
        """The gradient a backward pass delivered (None before one); an ndarray, or a Tensor
        after ``backward(create_graph=True)``."""
        if _traces_running:
            return _watched_read(self, "grad", self._grad)
        return self._grad

    @grad.setter
    def grad(self, value: Array | Tensor | None) -> None:
        if value is not None:
            _check_assigned_grad(self, value)
        if _traces_running:
            _watched_write(self, "grad")
        self._grad = value

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        """The number of elements, NumPy's ``size`` (an int; calling it explains PyTorch's ``size()``)."""
        return ElementCount(self._data.size)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def device(self) -> str:
        """``"cpu"``, or the device of a foreign array (``"cuda:0"``)."""
        return devices.device_of(self._data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self) -> Context | None:
        """The node of the op that made this tensor (None for leaves)."""
        return self._node

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    __hash__ = object.__hash__

    # ----------------------------------------------------------- autograd
    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data (and version counter), cut from the graph."""
        detached = Tensor._make(self._data, None)
        detached._version = self._version
        if state.observers:
            notify("detached", self, detached)
        return detached

    def numpy(self) -> Array:
        """The underlying ndarray (shared, not copied); a host copy for a tensor on a device."""
        reading_value("numpy()")
        return self._data if devices.is_host(self._data) else devices.to_host(self._data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number (copied from its device)."""
        reading_value("item()")
        return devices.to_host(self._data).item()

    def retain_grad(self) -> Tensor:
        """Ask a non-leaf to keep its ``.grad`` after backward (leaves always do)."""
        if not self.requires_grad:   # PyTorch's refusal: no gradient will ever reach it
            raise RuntimeError(
                "retain_grad: this tensor does not require grad (it was computed under no_grad() "
                "or from tensors that do not require grad), so no gradient reaches it")
        if self._node is not None:
            self._node.retained = weakref.ref(self)
        return self

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf, in place; returns self. A computed tensor already
        requires grad: ``requires_grad_(True)`` leaves it so (as PyTorch), False is refused."""
        if self._node is not None:
            if flag:
                return self
            raise RuntimeError(
                "requires_grad_ can only change leaves; use detach() to get a leaf "
                "from a computed tensor")
        if flag and self._data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require grad, not dtype {self._data.dtype}")
        self.requires_grad = bool(flag)
        return self

    @replayable
    def zero_grad(self) -> None:
        """Forget the accumulated gradient (sets ``grad`` to None)."""
        self._grad = None

    def _bump_version(self):
        """Record that ``data`` was written in place (by init, load_state_dict, an optimizer)."""
        self._version[0] += 1

    # Comparisons are not differentiable: they return bool ndarrays.
    def __lt__(self, other: TensorLike) -> NDArray[np.bool_]:
        reading_value("a comparison")
        return self._data < value_of(other)

    def __le__(self, other: TensorLike) -> NDArray[np.bool_]:
        reading_value("a comparison")
        return self._data <= value_of(other)

    def __gt__(self, other: TensorLike) -> NDArray[np.bool_]:
        reading_value("a comparison")
        return self._data > value_of(other)

    def __ge__(self, other: TensorLike) -> NDArray[np.bool_]:
        reading_value("a comparison")
        return self._data >= value_of(other)

    def __eq__(self, other: object) -> NDArray[np.bool_]:  # type: ignore[override]
        reading_value("a comparison")
        return self._data == value_of(other)

    def __ne__(self, other: object) -> NDArray[np.bool_]:  # type: ignore[override]
        reading_value("a comparison")
        return self._data != value_of(other)

    # ----------------------------------------------------------- conversions
    def __array__(self, dtype: DTypeLike = None, copy: bool | None = None) -> Array:
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

    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
        """The data as a DLPack capsule, shared (``np.from_dlpack(t)``, ``torch.from_dlpack(t)``);
        refused for tensors that require grad, as PyTorch."""
        if self.requires_grad:
            raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
        reading_value("DLPack export")
        given = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
        return _dlpack_array(self._data).__dlpack__(**{k: v for k, v in given.items() if v is not None})

    def __dlpack_device__(self) -> tuple[int, int]:
        """``(device type, index)`` as DLPack numbers them: ``(1, 0)`` for the CPU."""
        return _dlpack_array(self._data).__dlpack_device__()

    def __float__(self) -> float:
        reading_value("float()")
        return float(self._data)

    def __int__(self) -> int:
        reading_value("int()")
        return int(self._data)

    def __bool__(self) -> bool:
        reading_value("bool()")
        return bool(self._data)

    def __repr__(self) -> str:
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
def watched(tracer: Any) -> Iterator[Any]:
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


def as_tensor(x: TensorLike) -> Tensor:
    """``x`` itself if it is a Tensor, else a constant Tensor of it."""
    return x if isinstance(x, Tensor) else Tensor(x)


def value_of(x: Any) -> Any:
    """The ndarray (or number) behind ``x``."""
    return x._data if isinstance(x, Tensor) else x


def reading_value(what: str) -> None:
    """Python is about to see a tensor's values: observers (compile) may refuse."""
    if state.observers:
        notify("value_read", what)


def _dlpack_array(data):
    """``data`` as an array that speaks DLPack (a NumPy scalar some ops leave becomes 0-d)."""
    return np.asarray(data) if isinstance(data, np.generic) else data
