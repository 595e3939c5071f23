"""The default random generator: what every initialiser, ``Dropout`` and ``DataLoader`` draw from
when given ``rng=None``.

``seed(n)`` (``autonet.manual_seed(n)``) makes seeded runs repeat bit for bit;
``get_state()`` is a dict that ``autonet.save``/``load`` round-trip, and
``set_state(state)`` restores it.

>>> import autonet
>>> autonet.random.seed(0)
>>> first = autonet.nn.Linear(2, 2).weight.data
>>> state = autonet.random.get_state()
>>> second = autonet.nn.Linear(2, 2).weight.data
>>> autonet.random.set_state(state)
>>> bool((autonet.nn.Linear(2, 2).weight.data == second).all())
True
>>> autonet.random.seed(0)
>>> bool((autonet.nn.Linear(2, 2).weight.data == first).all())
True

The generator is one object for the life of the process (``seed`` and
``set_state`` change its state in place), so a layer that keeps it, such as
``Dropout(rng=None)``, follows a later ``seed`` as PyTorch's global one does.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .core.types import Seed

_DEFAULT = np.random.Generator(np.random.PCG64())
_STATE_KEYS = {"bit_generator", "state", "has_uint32", "uinteger"}


def generator(rng: Seed = None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator (itself), a seed (a new one, as
    ``numpy.random.default_rng(rng)``), or None (the default generator)."""
    if rng is None:
        return _DEFAULT
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def seed(n: int) -> None:
    """Seed the default generator with the int ``n`` >= 0 (as ``numpy.random.default_rng(n)``)."""
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
        raise TypeError(f"seed: n must be an int >= 0, not {n!r}")
    _DEFAULT.bit_generator.state = np.random.PCG64(int(n)).state


manual_seed = seed


def get_state() -> dict[str, Any]:
    """The default generator's state: a dict of strings and ints (``autonet.save`` writes it)."""
    state = _DEFAULT.bit_generator.state
    inner = state["state"]   # PCG64's 128-bit numbers, as decimal strings: any file keeps them
    return {"bit_generator": state["bit_generator"],
            "state": {"state": str(inner["state"]), "inc": str(inner["inc"])},
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def set_state(state: dict[str, Any]) -> None:
    """Restore a state from ``get_state()`` (``ValueError`` for anything else; nothing changes)."""
    try:
        if set(state) != _STATE_KEYS or state["bit_generator"] != "PCG64":
            raise ValueError
        restored: Any = {"bit_generator": "PCG64",
                    "state": {"state": int(state["state"]["state"]), "inc": int(state["state"]["inc"])},
                    "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}
        probe = np.random.PCG64()
        probe.state = restored   # checked on a scratch generator first
    except (TypeError, ValueError, KeyError):
        raise ValueError("set_state: state must be a dict from autonet.random.get_state()") from None
    _DEFAULT.bit_generator.state = restored


__all__ = ["seed", "manual_seed", "get_state", "set_state", "generator"]
