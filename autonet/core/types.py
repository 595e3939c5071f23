"""The type aliases public signatures share (type checkers and editors read them; nothing checks
them at run time), except ``TensorLike``, which names Tensor and lives beside it in
``core.tensor``: ``from autonet.core.tensor import TensorLike`` in annotated user code."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NoReturn, Optional, Sequence, SupportsIndex, Union

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from typing import TypeAlias

Axis: TypeAlias = Union[int, tuple[int, ...], None]
"""NumPy's ``axis``: one axis, several, or None for all."""

ShapeLike: TypeAlias = Union[SupportsIndex, Sequence[SupportsIndex]]
"""A shape, as NumPy takes it: ``3`` or ``(2, 3)``."""

IntOrTuple: TypeAlias = Union[int, tuple[int, ...]]
"""A window setting (``kernel_size``, ``stride``, ``padding``...): one int for every spatial axis,
or one per axis."""

Index: TypeAlias = Any
"""What ``t[index]`` takes: NumPy's basic and advanced indices (ints, slices, None, ``...``,
integer or bool arrays, Tensors), too varied for a useful static type."""

Array: TypeAlias = NDArray[Any]
"""A tensor's data: an ndarray (or, on a device, an array type with the same interface)."""

DTypeLike: TypeAlias = Optional[npt.DTypeLike]
"""A dtype as NumPy takes it (``np.float32``, ``"float32"``), or None for the default."""

Seed: TypeAlias = Union[int, np.random.Generator, None]
"""An ``rng`` argument: a seed, a Generator, or None for autonet's default generator."""

PathLike: TypeAlias = Union[str, "os.PathLike[str]"]
"""A file path: a string or a ``pathlib.Path``."""

Generator: TypeAlias = np.random.Generator

__all__ = ["Axis", "ShapeLike", "Index", "IntOrTuple", "Array", "DTypeLike", "ArrayLike", "Seed",
           "PathLike", "Generator"]


def __getattr__(name: str) -> NoReturn:
    """``TensorLike`` moved to ``core.tensor`` (it names Tensor): say so, not just "cannot import"."""
    if name == "TensorLike":
        raise ImportError("TensorLike lives beside Tensor now: from autonet.core.tensor import TensorLike")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
