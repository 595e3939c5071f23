"""save / load of state dicts as ``.npz`` files: plain arrays, never pickle."""
import os

import numpy as np

from .core.tensor import Tensor


def save(state_dict, path):
    """Write ``{name: array}`` to exactly ``path`` as an ``.npz`` archive.

    The file is written to a temporary name and moved into place, so an
    interrupted save never leaves a truncated file behind.
    """
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r}")
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"save: {name!r} holds {array.dtype} data; only numeric arrays are saved "
                            f"(an optimizer's nested state_dict must be flattened first)")
        arrays[name] = array
    path = os.fspath(path)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load(path):
    """Read a file written by :func:`save`: a ``dict[str, ndarray]``.

    Object arrays are refused (``ValueError``): loading never runs pickle.
    """
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        result = {}
        for name in archive.files:
            try:
                result[name] = archive[name]
            except ValueError as error:
                raise ValueError(
                    f"load: {name!r} in {os.fspath(path)!r} is an object array, which would need "
                    f"pickle; autonet files hold numeric arrays only") from error
        return result
