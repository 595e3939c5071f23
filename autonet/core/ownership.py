"""Handing gradients over to ``.grad`` without copies, when that is safe.

A backward pass makes fresh arrays for most gradients; copying each into
``.grad`` would cost as much as a matrix product for large layers. But some
gradients are shared: ``add`` returns the upstream array to both inputs, a
reshape returns a view, a custom formula may return an array it saved, and
the user's seed passed to ``backward(grad=...)`` is theirs. Handing any of
those over would let one ``.grad`` change another array.

The invariant, kept by :func:`claim` alone: an array is handed over as it is
only if it owns its memory (``base is None``), is writeable, and nothing but
the mapping it is popped from refers to it. ``sys.getrefcount`` counts every
holder (other dict entries, saved tuples, frames, views through ``.base``), so
after the pop a count of 2 (our local and getrefcount's own argument) proves
that nobody else can see it (a device's array asks its backend whether it owns
its memory). Anything else is copied. Callers need do nothing
but keep gradients in the mapping until they claim them.
"""
import sys

import numpy as np

from . import device as devices
from .state import notify, state


def _alone(array, holders):
    """Whether ``array`` owns its memory, is writeable, and has ``holders`` references in all:
    the callers' own, this argument and ``getrefcount``'s (see the module doc)."""
    if type(array) is np.ndarray:
        return array.base is None and array.flags.writeable and sys.getrefcount(array) == holders
    return devices.is_foreign(array) and sys.getrefcount(array) == holders and devices.owns_its_memory(array)


def claim(mapping, key):
    """Pop ``mapping[key]`` as an ndarray the caller may keep as its own (see the module doc)."""
    array = mapping.pop(key)
    if _alone(array, 3):   # this local, the argument, getrefcount's
        return array
    return array.copy() if devices.is_foreign(array) else np.array(array, copy=True)


def deliver(mapping, key, tensor, create_graph):
    """Add the gradient ``mapping[key]`` to ``tensor.grad`` (popping it from ``mapping``).

    ``.grad`` is always a fresh array of the tensor's own (never a view), or,
    with ``create_graph``, a Tensor in the gradient's graph.
    """
    if create_graph:
        grad = mapping.pop(key)
        tensor._grad = _claim_tensor(grad) if tensor._grad is None else tensor._grad + grad
    elif tensor._grad is None:
        tensor._grad = claim(mapping, key)
    elif isinstance(tensor._grad, np.ndarray):
        tensor._grad += mapping.pop(key)
    else:
        tensor._grad = tensor._grad + mapping.pop(key)
    if state.observers:
        notify("delivered", tensor)


def _claim_tensor(grad):
    """:func:`claim` for a gradient Tensor (``create_graph``): ``grad`` itself where it alone
    holds an array it owns, else a copy in its graph (``grad * 1``, as ``ops.copy``; PyTorch
    clones too). ``add`` hands one Tensor to both inputs, ``sum`` a read-only broadcast: kept
    as they were, two leaves shared one ``.grad``, and clipping one scaled both."""
    # holders of grad: the caller's local, this argument, getrefcount's; of its array: the slot,
    # _alone's argument, getrefcount's
    return grad if sys.getrefcount(grad) == 3 and _alone(grad._data, 3) else grad * 1
