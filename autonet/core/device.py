"""Devices: where a tensor's array lives.

NumPy arrays live on ``"cpu"``. A foreign array type that speaks NumPy's
dispatch protocols (``__array_ufunc__``, ``__array_function__``), as CuPy's
arrays on a GPU do, lives on its backend's device (``"cuda:0"``): op formulas
written with NumPy functions run on it unchanged, and what needs more (making
arrays, moving them) asks the backend registered here for its kind. The core
knows no backend by name; ``autonet.cuda`` registers CuPy's, the tests a double.
"""
from __future__ import annotations

from typing import Any

import numpy as np

_BACKENDS: "dict[str, Backend]" = {}   # device kind ("cuda") -> backend


class Backend:
    """What autonet needs of a device kind: recognise, move and name its arrays."""

    kind = ""

    def owns(self, array: Any) -> bool:
        """True for arrays of this backend."""
        raise NotImplementedError

    def device_of(self, array: Any) -> str:
        """The device name of one of its arrays, ``"<kind>:<index>"``."""
        raise NotImplementedError

    def to_device(self, array: Any, index: int) -> Any:
        """A copy of host or device ``array`` on device ``index``."""
        raise NotImplementedError

    def to_host(self, array: Any) -> np.ndarray[Any, Any]:
        """A NumPy copy of one of its arrays."""
        raise NotImplementedError

    def as_strided(self, array: Any, shape: tuple[int, ...], strides: tuple[int, ...]) -> Any:
        """A read-only strided view (``numpy.lib.stride_tricks.as_strided``'s, on the device)."""
        raise NotImplementedError

    def owns_its_memory(self, array: Any) -> bool:
        """True when ``array`` is no view and no view refers to it beyond its own holders."""
        return array.base is None

    def memory_root(self, array: Any) -> Any:
        """The object owning ``array``'s memory, the same one for all its views (by identity)."""
        while self.owns(array.base):
            array = array.base
        return array


def register(backend):
    """Make ``backend``'s device kind usable in ``Tensor(..., device=)`` and ``.to()``."""
    _BACKENDS[backend.kind] = backend


def is_host(array):
    """True for NumPy arrays and scalars (and Python numbers)."""
    return isinstance(array, (np.ndarray, np.generic, int, float, bool))


def is_foreign(array):
    """True for an array of a registered device backend (not NumPy's)."""
    return any(backend.owns(array) for backend in _BACKENDS.values())


def _backend_of(array):
    for backend in _BACKENDS.values():
        if backend.owns(array):
            return backend
    raise TypeError(f"autonet does not know where a {type(array).__name__} lives: not a NumPy "
                    f"array, nor one of a registered device ({sorted(_BACKENDS) or 'none'})")


def device_of(array):
    """``"cpu"`` for NumPy data, else the device its backend names."""
    return "cpu" if is_host(array) else _backend_of(array).device_of(array)


def parse(device):
    """``(kind, index)`` of a device name: ``"cpu"``, ``"cuda"`` (index 0), ``"cuda:1"``."""
    if not isinstance(device, str):
        device = str(device)
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return "cpu", 0
    if kind not in _BACKENDS:
        hint = " (pip install autonet[cuda], on a machine with an NVIDIA GPU)" if kind == "cuda" else ""
        raise RuntimeError(f"unknown device {device!r}: available are 'cpu' and "
                           f"{sorted(_BACKENDS) or 'no other'}{hint}")
    if index and not index.isdigit():
        raise ValueError(f"device {device!r}: the index after ':' must be a number")
    return kind, int(index or 0)


def name(device):
    """The canonical name of ``device``: ``"cuda"`` -> ``"cuda:0"``."""
    kind, index = parse(device)
    return "cpu" if kind == "cpu" else f"{kind}:{index}"


def to_device(array, device):
    """``array`` on ``device`` (a copy unless it is there already)."""
    kind, index = parse(device)
    if kind == "cpu":
        return to_host(array)
    if not is_host(array) and device_of(array) == f"{kind}:{index}":
        return array
    return _BACKENDS[kind].to_device(array if not is_host(array) else np.asarray(array), index)


def to_host(array):
    """A NumPy array of ``array``'s values (itself if it is one)."""
    if is_host(array):
        return np.asarray(array)
    return _backend_of(array).to_host(array)


def is_array(value):
    """True for a NumPy array or one of a registered device."""
    return isinstance(value, np.ndarray) or is_foreign(value)


def owns_its_memory(array):
    """True for a device array that is not a view (``ownership.claim`` counts its holders)."""
    return _backend_of(array).owns_its_memory(array)


def memory_root(array):
    """The object that owns ``array``'s memory: views of one buffer share it (by identity)."""
    if isinstance(array, np.ndarray):
        while isinstance(array.base, np.ndarray):
            array = array.base
        return array
    return _backend_of(array).memory_root(array)


def copy(array):
    """A copy on the same device."""
    return np.array(array, copy=True) if is_host(array) else array.copy()


def zeros(shape, dtype, like):
    """``np.zeros`` on ``like``'s device (NumPy's own call for NumPy arrays: the hot path)."""
    return np.zeros(shape, dtype) if type(like) is np.ndarray else np.zeros(shape, dtype, like=like)


def empty(shape, dtype, like):
    return np.empty(shape, dtype) if type(like) is np.ndarray else np.empty(shape, dtype, like=like)


def ones(shape, dtype, like):
    return np.ones(shape, dtype) if type(like) is np.ndarray else np.ones(shape, dtype, like=like)


def arange(n, like):
    return np.arange(n) if type(like) is np.ndarray else np.arange(n, like=like)


def as_strided(array, shape, strides):
    """A strided view of ``array`` on its device (NumPy's ``as_strided`` is not dispatched)."""
    if type(array) is np.ndarray:
        return np.lib.stride_tricks.as_strided(array, shape, strides, writeable=False)
    return _backend_of(array).as_strided(array, shape, strides)
