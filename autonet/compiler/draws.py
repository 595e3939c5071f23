"""Random numbers drawn in the step's own Python while it is traced: refused.

A replay runs the traced formulas, not the step's Python, so a number the step
drew itself (``random.random()``, ``np.random.uniform()``, ``rng.normal()`` of
a generator it reads) would be the traced one on every replay, silently unlike
eager mode. The generators the step could draw from (Python's ``random``,
NumPy's global ``np.random``, autonet's default generator, and every generator
the guards' walk reaches) are watched: between two events of the trace, a
generator whose state moved, other than one the op just applied took as an
input (dropout's ``rng``, drawn inside the op, which a replay draws again), was
drawn from by the step's Python. Replayed calls (an optimizer's ``step``) may
draw: they run again on every replay.
"""
import pickle
import random

import numpy as np

from ..random import generator as default_generator
from .errors import CompileError

GENERATORS = (np.random.Generator, np.random.RandomState, random.Random)


def _global_generators():
    return [(random._inst, "Python's random module"),                      # noqa: SLF001
            (np.random.mtrand._rand, "NumPy's global np.random functions"),
            (default_generator(None), "autonet's default generator")]


def _state(generator):
    state = generator.getstate() if isinstance(generator, random.Random) else \
        generator.bit_generator.state if isinstance(generator, np.random.Generator) else \
        generator.get_state(legacy=False)
    return pickle.dumps(state)


class Draws:
    """The states of the generators a step could draw from, checked at each event of its trace."""

    def __init__(self, reached):
        """``reached``: ``(generator, description)`` found by the guards' walk."""
        seen, self.watched = set(), []
        for generator, description in _global_generators() + list(reached):
            if id(generator) not in seen:
                seen.add(id(generator))
                self.watched.append((generator, description))
        self.states = [_state(generator) for generator, _ in self.watched]

    def check(self, drawn_by_op=()):
        """Refuse if a generator moved since the last check, other than those in ``drawn_by_op``
        (the op just applied drew from them); then take the states as they are now."""
        allowed = {id(generator) for generator in drawn_by_op}
        for k, (generator, description) in enumerate(self.watched):
            now = _state(generator)
            if now != self.states[k] and id(generator) not in allowed:
                raise CompileError(
                    f"the step draws random numbers in Python ({description}) while being traced; "
                    f"a replay would reuse the numbers drawn then. Draw them outside the step and "
                    f"pass them in as arrays or Tensors, or let an op draw them (Dropout with "
                    f"rng=...)")
            self.states[k] = now

    def skip(self):
        """Take the states as they are now (what a replayed call drew, a replay draws again)."""
        self.states = [_state(generator) for generator, _ in self.watched]
