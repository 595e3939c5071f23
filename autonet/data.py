"""DataLoader: mini-batches of arrays that share a first axis.

>>> import numpy as np
>>> from autonet.data import DataLoader
>>> X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
>>> [batch_y.tolist() for _, batch_y in DataLoader(X, y, batch_size=2)]
[[0, 1], [2, 3], [4]]
"""
from __future__ import annotations

from typing import Iterator, cast

import numpy as np

from .core import device as devices
from .core.tensor import Tensor, TensorLike
from .core.types import Array, Seed
from .random import generator


class DataLoader:
    """Iterate over ``arrays`` in batches: one tuple of ndarrays per batch, in the arrays' order
    (arrays of a device, and Tensors on one, give that device's arrays).

    With ``shuffle``, each pass draws a new order from ``rng`` (a Generator, an
    int seed, or None for autonet.random's default generator); ``drop_last`` leaves out a
    last, smaller batch. Both flags are bools (``drop_last="no"`` is refused, not truthy).
    """

    arrays: list[Array]
    size: int

    def __init__(self, *arrays: TensorLike, batch_size: int = 32, shuffle: bool = False,
                 drop_last: bool = False, rng: Seed = None) -> None:
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        self.arrays = [_array(a) for a in arrays]
        lengths = [len(a) if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            raise ValueError(f"DataLoader: the arrays' first axes differ (or are missing): "
                             f"shapes {[a.shape for a in self.arrays]}")
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, not {batch_size!r}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):   # drop_last="no" would be truthy
                raise ValueError(f"DataLoader: {name} must be True or False, not {flag!r}")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        self.rng = generator(rng)
        self.size = lengths[0]  # type: ignore[assignment]  # None refused above

    def __len__(self) -> int:
        whole, rest = divmod(self.size, self.batch_size)
        return whole + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[Array, ...]]:
        order = self.rng.permutation(self.size) if self.shuffle else None
        for number in range(len(self)):
            start = number * self.batch_size
            if order is None:   # copies, as shuffled batches are: never views of the dataset
                yield tuple(a[start:start + self.batch_size].copy() for a in self.arrays)
            else:
                yield tuple(a[order[start:start + self.batch_size]] for a in self.arrays)

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.arrays)} arrays of {self.size}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")


def _array(given: TensorLike) -> Array:
    """A Tensor's array, a device's array as it is (CuPy refuses np.asarray), else an ndarray."""
    if isinstance(given, Tensor):
        return given.data
    return cast(Array, given) if devices.is_foreign(given) else np.asarray(given)


__all__ = ["DataLoader"]
