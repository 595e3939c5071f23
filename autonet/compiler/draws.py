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

NumPy Generators (the kind ops take) are compared after every op. Python's
``random`` generators and legacy ``RandomState`` s, which no autonet op takes,
are compared after ops that take a generator, around replayed calls and at the
end: a move between two of those is refused all the same. Their states are
hundreds of numbers, and a trace runs under ``tracemalloc`` (see ``trace``),
which makes every allocation slow: reading them after every op made the trace
of a 151-op step take 154 ms instead of 23 ms.
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
        self.after_every_op = [k for k, (generator, _) in enumerate(self.watched)
                               if isinstance(generator, np.random.Generator)]

    def check(self):
        """Refuse if any generator moved since it was last compared; take the states as they are now."""
        self._compare(range(len(self.watched)), ())

    def after_op(self, drawn_by_op):
        """As ``check`` after an op, whose generators (``drawn_by_op``, those it took) may have
        moved; after an op that took none, only NumPy Generators are compared (module doc)."""
        self._compare(range(len(self.watched)) if drawn_by_op else self.after_every_op, drawn_by_op)

    def _compare(self, which, drawn_by_op):
        allowed = {id(generator) for generator in drawn_by_op}
        for k in which:
            generator, description = self.watched[k]
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
