"""A compiled step's arguments: their signature (what a trace is valid for) and paths.

Arguments may be Tensors, ndarrays, Python or NumPy numbers, strings, None, and
tuples, lists or dicts of these; anything else (a module, a function) is
taken as that very object. The signature holds every leaf's type, shape,
dtype and ``requires_grad``, the *values* of numbers and strings, how many
elements a boolean ndarray selects (indexing with it returns that many), and
the identity of other objects: two calls with equal signatures take the same
path through the step's Python code, as far as the arguments can steer it.
"""
import numpy as np

from ..core.tensor import Tensor

_CONTAINERS = (tuple, list, dict)


def signature(value):
    """A hashable summary of ``value`` that a trace is valid for (see the module doc)."""
    kind = type(value)
    if kind is tuple or kind is list:   # first: every call's arguments are a tuple
        return (kind,) + tuple([signature(part) for part in value])
    if kind is Tensor or isinstance(value, Tensor):
        data = value._data
        return (kind, data.shape, data.dtype, value.requires_grad)
    if isinstance(value, np.ndarray):
        if value.dtype == bool:   # a mask: how many it selects shapes what indexing returns
            return (kind, value.shape, value.dtype, int(np.count_nonzero(value)))
        return (kind, value.shape, value.dtype)
    if kind is float:
        return (kind, value.hex())            # -0.0 and nan are values too
    if kind in (int, bool, str, bytes, type(None)):
        return (kind, value)
    if isinstance(value, np.generic):
        return (kind, value.tobytes())
    if kind is dict:
        return (kind,) + tuple((key, signature(part)) for key, part in value.items())
    return (kind, id(value))   # the program keeps the object alive, so its id stays its own


def leaves(value, path=()):
    """``(path, leaf)`` for every Tensor and ndarray inside ``value``, and every other object."""
    if type(value) in (tuple, list):
        for index, part in enumerate(value):
            yield from leaves(part, path + (index,))
    elif type(value) is dict:
        for key, part in value.items():
            yield from leaves(part, path + (key,))
    else:
        yield path, value


def rebuild(value, replace, path=()):
    """``value`` with each leaf replaced by ``replace(path, leaf)`` (containers copied)."""
    if type(value) in (tuple, list):
        return type(value)(rebuild(part, replace, path + (i,)) for i, part in enumerate(value))
    if type(value) is dict:
        return {key: rebuild(part, replace, path + (key,)) for key, part in value.items()}
    return replace(path, value)


def describe(path):
    """``argument 0[1]['x']`` for a path."""
    return f"argument {path[0]}" + "".join(f"[{key!r}]" for key in path[1:])
