"""A compiled step's arguments: their signature (what a trace is valid for) and paths.

Arguments may be Tensors, ndarrays, Python or NumPy numbers, strings, None, and
tuples, lists or dicts of these; anything else (a module, a function) is
taken as that very object. The signature holds every leaf's type, shape,
dtype and ``requires_grad``, the *values* of numbers and strings, how many
elements a boolean ndarray selects (indexing with it returns that many), and
the identity of other objects: two calls with equal signatures take the same
path through the step's Python code, as far as the arguments can steer it.
"""
import inspect

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


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def positional(step, args, kwargs):
    """The call ``step(*args, **kwargs)`` as positional arguments alone: each keyword put at
    its parameter's position, the defaults of parameters before it filling the gaps (a trace
    and its guards follow positions). ``TypeError`` for a call ``step`` itself would refuse,
    and for a keyword that has no position (keyword-only, or taken by ``**kwargs``)."""
    name = getattr(step, "__name__", "step")
    try:
        parameters = inspect.signature(step).parameters
    except (TypeError, ValueError):
        raise TypeError(f"compile: {name} was called with keyword arguments but its parameters "
                        f"cannot be read; pass its arguments by position") from None
    try:
        bound = inspect.Signature(list(parameters.values())).bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{name}() {error}") from None
    named = [p for p in parameters.values() if p.kind in _POSITIONAL]
    for keyword in kwargs:
        if keyword not in [p.name for p in named]:
            raise TypeError(f"compile: {name}'s argument {keyword!r} is keyword-only (or taken by "
                            f"**kwargs); a compiled step's arguments are traced by position: make "
                            f"{keyword!r} a positional parameter, or pass it in a dict argument")
    last = max(i for i, p in enumerate(named) if p.name in bound.arguments)
    return tuple(bound.arguments.get(p.name, p.default) for p in named[:last + 1])
