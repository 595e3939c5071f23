"""NVIDIA GPUs through CuPy: ``Tensor(x, device="cuda")``, ``t.to("cuda:1")``, ``model.to("cuda")``.

CuPy is an optional extra (``pip install autonet[cuda]``, which installs
``cupy-cuda12x``; pick the wheel matching your CUDA version). Nothing imports
it until a CUDA device is asked for; ``is_available()`` says whether one can be.
"""
from __future__ import annotations

from typing import Any

from .core import device as devices

_INSTALL = ("CuPy is needed for device 'cuda': pip install autonet[cuda] (cupy-cuda12x; use the "
            "cupy wheel that matches your CUDA version)")


def _cupy():
    try:
        import cupy
    except ImportError as missing:
        raise RuntimeError(_INSTALL) from missing
    return cupy


def is_available() -> bool:
    """True when CuPy is installed and sees at least one GPU."""
    try:
        return _cupy().cuda.runtime.getDeviceCount() > 0
    except Exception:   # noqa: BLE001 - no CuPy, no driver, no device: not available
        return False


class CudaBackend(devices.Backend):
    """CuPy's arrays on ``cuda:N``."""

    kind = "cuda"

    def owns(self, array: Any) -> bool:
        return type(array).__module__.startswith("cupy")

    def device_of(self, array: Any) -> str:
        return f"cuda:{array.device.id}"

    def to_device(self, array: Any, index: int) -> Any:
        cupy = _cupy()
        with cupy.cuda.Device(index):
            return cupy.array(array, copy=True)

    def to_host(self, array: Any) -> Any:
        return array.get()

    def as_strided(self, array: Any, shape: tuple[int, ...], strides: tuple[int, ...]) -> Any:
        return _cupy().lib.stride_tricks.as_strided(array, shape, strides)


devices.register(CudaBackend())
