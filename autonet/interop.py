"""Arrays across libraries: DLPack (zero copy) and the safetensors file format.

``autonet.from_dlpack(x)`` shares the memory of any array with ``__dlpack__``
(NumPy, PyTorch, CuPy, JAX), on its device; a Tensor exports itself the same
way (``Tensor.__dlpack__``). ``autonet.save`` / ``autonet.load`` send paths
ending in ``.safetensors`` here: a flat dict of arrays, in the format PyTorch
and Hugging Face read, through the ``safetensors`` package (``pip install
autonet[interop]``), imported only when such a file is written or read.

>>> import numpy as np, autonet
>>> array = np.zeros(3)
>>> t = autonet.from_dlpack(array)
>>> array[0] = 5.0          # one memory: the tensor sees the write
>>> t
Tensor([5., 0., 0.])
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .cuda import _cupy as cupy_or_install_hint
from .files import write_atomically
from .core import device as devices
from .core.tensor import Tensor, check_kind
from .core.types import PathLike

_CPU, _CUDA = 1, 2   # DLPack's device types
_NOT_IN_NUMPY = {"BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"}
_INSTALL = ".safetensors files need the safetensors package: pip install autonet[interop]"


# ------------------------------------------------------------------ DLPack
def from_dlpack(x: Any) -> Tensor:
    """A Tensor sharing ``x``'s memory (no copy) and dtype: NumPy, PyTorch, CuPy or JAX
    arrays, on their device (CPU, or CUDA through CuPy). The result is a leaf that does
    not require grad; writes through either side are seen by the other, as with
    ``t.numpy()``."""
    if not hasattr(x, "__dlpack__") or not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"from_dlpack takes an array with __dlpack__ and __dlpack_device__ "
                        f"(NumPy, PyTorch, CuPy, JAX), not {type(x).__name__}")
    kind, index = x.__dlpack_device__()
    if kind == _CPU:
        try:
            array = np.from_dlpack(x)
        except RuntimeError as error:   # NumPy's "Unsupported dtype in DLTensor": bfloat16, float8
            if "dtype" not in str(error):
                raise
            raise TypeError(f"from_dlpack: NumPy cannot take this array ({error}); a dtype NumPy "
                            f"lacks (bfloat16, float8)? convert it first (PyTorch: "
                            f"tensor.float())") from None
    elif kind == _CUDA:
        array = cupy_or_install_hint().from_dlpack(x)
    else:
        raise ValueError(f"from_dlpack: the array lives on DLPack device type {int(kind)} "
                         f"(index {index}); autonet takes CPU (1) and CUDA (2) arrays")
    check_kind(array.dtype)
    return Tensor._make(array, None)


# ------------------------------------------------------------------ safetensors
def is_safetensors(path: PathLike) -> bool:
    """Whether ``save``/``load`` should use the safetensors format for ``path``."""
    return os.fsdecode(os.fspath(path)).lower().endswith(".safetensors")


def save_safetensors(obj: Any, path: PathLike) -> None:
    """Write the flat dict ``obj`` (string keys; Tensor or ndarray values) to ``path``.

    Everything is checked first: anything else raises ``ValueError`` and no
    file is made or changed. The file is written beside ``path`` and moved
    over it, so readers never see half of it.
    """
    arrays = _flat_arrays(obj)
    data = _safetensors().save(arrays)
    write_atomically(path, lambda file: file.write(data))


def load_safetensors(path: PathLike, max_bytes: int) -> Any:
    """The dict of ndarrays in the safetensors file ``path``, by name (the format keeps no
    order); ``ValueError`` for a file that is not one (or is larger than ``max_bytes``)."""
    size = os.path.getsize(path)
    if size > max_bytes:
        raise ValueError(f"load: {os.fspath(path)!r} is {size} bytes, more than max_bytes={max_bytes}")
    numpy_api = _safetensors()
    with open(path, "rb") as file:
        data = file.read()
    try:
        arrays = numpy_api.load(data)
    except Exception as error:   # noqa: BLE001 - safetensors' own error types vary by version
        raise ValueError(f"load: {os.fspath(path)!r} {_why_unreadable(data, error)}") from None
    return dict(sorted(arrays.items()))   # the format keeps no order: by name, every time


def _why_unreadable(data, error):
    """Name an entry of a dtype NumPy lacks (bfloat16, float8, as PyTorch writes), else the error."""
    if data[:4] == b"PK\x03\x04":   # a zip archive: what save writes to other paths
        return "is a zip archive, not a safetensors file (an .npz? give its name the .npz suffix)"
    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + size])
        dtype, key = next((entry["dtype"], key) for key, entry in sorted(header.items())
                          if key != "__metadata__" and entry["dtype"] in _NOT_IN_NUMPY)
    except Exception:   # noqa: BLE001 - a broken header: the package's own words say why
        return f"is not a readable safetensors file: {error}"
    return (f"holds {dtype} data (key {key!r}), which NumPy has no dtype for; convert it to "
            f"float32 where it is saved (PyTorch: tensor.float())")


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError as missing:
        raise ImportError(_INSTALL) from missing
    return safetensors.numpy


def _flat_arrays(obj):
    """``obj`` as ``{name: ndarray}`` on the host, or ``ValueError`` saying what is not."""
    if not isinstance(obj, dict):
        raise ValueError(f"save: a .safetensors file holds a flat dict of arrays, not a "
                         f"{type(obj).__name__}; use a .npz path for other values")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not _is_utf8(key):
            raise ValueError(f"save: .safetensors keys must be strings (UTF-8: the header is "
                             f"JSON text), got {key!r}")
        if key == "__metadata__":   # the format's own header entry: the file would not load
            raise ValueError("save: the key '__metadata__' is reserved by the safetensors format; "
                             "rename it")
        array = value.data if isinstance(value, Tensor) else value
        if isinstance(value, Tensor) and isinstance(array, np.generic):
            array = np.asarray(array)        # a 0-d result some ops leave as a NumPy scalar
        if devices.is_foreign(array):
            array = devices.to_host(array)   # saved from its device to the host, explicitly
        if not isinstance(array, np.ndarray):
            raise ValueError(f"save: obj[{key!r}] is a {type(value).__name__}; a .safetensors file "
                             f"holds only Tensors and ndarrays (a flat dict: use a .npz path for "
                             f"nested state or other values)")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"save: obj[{key!r}] holds {array.dtype} data; .safetensors stores "
                             f"numeric arrays")
        # the package writes the raw buffer as if in C order
        arrays[key] = array if array.flags.c_contiguous else np.array(array, order="C")
    return arrays


def _is_utf8(key):
    """Whether ``key`` can be written as UTF-8 (a lone surrogate cannot)."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
