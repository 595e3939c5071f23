"""compile: trace one training step, then replay its NumPy work without building graphs.

>>> import numpy as np, autonet
>>> from autonet.optim import SGD
>>> w = autonet.Tensor([[0.5], [-0.5]], requires_grad=True)
>>> optimizer = SGD([w], lr=0.1)
>>> @autonet.compile
... def step(x):
...     loss = ((x @ w).sigmoid() - 1.0).sum() ** 2
...     optimizer.zero_grad()
...     loss.backward()
...     optimizer.step()
...     return loss
>>> first = step(np.array([[1.0, 2.0]]))     # traced: runs eagerly and records
>>> second = step(np.array([[1.0, 2.0]]))    # replayed: the same formulas, no graph
>>> bool(second.item() < first.item())
True

The first call runs the step eagerly and records what it did (a
:class:`~autonet.compiler.program.Program`, readable with ``listing()``):
every op's forward, ``Tensor(...)`` calls, the order in which backward
visited the nodes and where each gradient went, optimizer steps, ``zero_grad``,
gradient clipping and in-place tensor updates. Later calls replay exactly
that, calling the same formulas in the same order, so the results equal eager
mode's bit for bit; what is skipped is the bookkeeping.

Every input of the trace is classified when it enters (see
:mod:`autonet.compiler.trace`): an argument of this call (Tensors, ndarrays,
index arrays and op settings taken from them, at any depth in tuples, lists
and dicts), a tensor or array that lives across calls (read by reference),
or a Python constant (a constructor's tensor made from Python values too).
Anything else raises ``CompileError``.

Guards (:mod:`autonet.compiler.guards`): everything the step's code could
read besides its arguments (globals, closure cells, attributes of the
objects and modules reached, container entries, methods and functions) is
recorded before the trace runs: numbers, strings and bools by value,
containers and functions by identity and their entries, ndarrays by identity,
shape and dtype (and, where the step took Python values from them, their
contents), tensors the trace reads by shape, dtype and ``requires_grad``,
modules by ``train()``/``eval()`` mode; the call's arguments by signature.
A call that differs is traced again (up to ``CompiledStep.MAX_PROGRAMS``
traces per step), then ``CompileError`` names the first difference.

Refused (``CompileError``) because a replay could not follow:

- data-dependent Python while tracing: ``item()``, ``float()``, ``bool()``,
  comparisons and ``numpy()`` of tensors, any Python value of an ndarray
  argument or of ``.data`` / ``.grad`` read by the step's code, and the
  number a replayed call returned (``clip_grad_norm_``'s norm) put to use;
- NumPy results handed to autonet: arrays computed from an argument,
  ``.data`` or ``.grad``, or made with NumPy inside the step (a dropout mask);
- NumPy writes into an argument, ``.data`` or ``.grad``, and setting them;
- random numbers drawn in the step's own Python (:mod:`.draws`), and a result
  left in a graph no backward of the step ran through while an argument
  requires grad (a replay returns results outside any graph);
- ``backward(create_graph=True)`` (``autonet.grad`` compiles, with
  ``create_graph`` too: gradient penalties, Hessian-vector products), ``retain_grad``,
  backward passes reaching tensors computed outside the step, leaves
  requiring grad made in it, and in-place updates recorded in the graph
  (outside ``no_grad``).

On a device (CuPy), where arrays cannot be marked, also refused: arguments
that are device arrays rather than Tensors, reads of ``.data`` / ``.grad``
in the step's code, and device arrays that are no Tensor's reaching an op.

Python side effects of the step (printing) happen only while tracing (a
counter or list it changes makes the next call trace again). Under
``detect_anomaly()`` a compiled step runs eagerly, checked; inside another
step's trace it is inlined. Calls of one compiled step from several threads
take turns.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable

import numpy as np

from ..core.state import observing, state
from ..core.tensor import Tensor
from . import fused
from .arguments import leaves, positional, signature
from .draws import Draws
from .errors import CompileError
from .program import Program
from .guards import World
from .trace import Tracer, births

__all__ = ["compile", "CompileError", "CompiledStep"]


def compile(step: Callable[..., Any],  # noqa: A001 - as torch.compile
            backend: str = "numpy") -> CompiledStep:
    """Return a :class:`CompiledStep` that traces ``step`` on its first call.

    ``backend="numpy"`` replays the traced formulas; ``backend="fused"`` runs
    what it can lower as one numba kernel (:mod:`autonet.compiler.fused`,
    ``pip install autonet[fast]``), the rest as the NumPy replay.
    """
    if backend not in ("numpy", "fused"):
        raise ValueError(f"compile: backend must be 'numpy' or 'fused', not {backend!r}")
    if backend == "fused":
        fused.require_numba()
    return functools.wraps(step)(CompiledStep(step, backend))


class CompiledStep:
    """A traced step: call it like the original; ``programs`` holds its traces."""

    MAX_PROGRAMS = 8
    """Traces kept per step, one per call signature and Python world (see the guards); set it
    on a step (``step.MAX_PROGRAMS = 32``) to allow more."""

    def __init__(self, step: Callable[..., Any], backend: str = "numpy") -> None:
        self.step = step
        self.backend = backend
        self.programs = []       # every trace, oldest first
        self.by_signature = {}   # call signature -> its traces (one per set of module modes)
        self.lock = threading.Lock()   # replays reuse the traced contexts: one call at a time

    @property
    def source(self) -> str | None:
        """The generated Python of the latest trace's replay (``None`` before the first call);
        each of ``programs`` has its own ``source``, and ``listing()`` shows it with its
        inputs and guards."""
        return self.programs[-1].source if self.programs else None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:   # traced by position: step(x, lr=0.1) is step(x, 0.1)
            args = positional(self.step, args, kwargs)
        with self.lock:
            return self._call(args)

    def _call(self, args):
        if state.observers:   # inside another step's trace (inlined there), or anomaly mode
            return self.step(*args)   # (eager, checked)
        key = (signature(args), state.grad_enabled)   # no_grad() changes what ops record
        changes = []
        for program in self.by_signature.get(key, ()):
            change = program.fits(args)
            if change is None:
                return program.run(args)
            changes.append(change)
        if len(self.programs) >= self.MAX_PROGRAMS:
            raise CompileError(
                f"the step was traced for {self.MAX_PROGRAMS} different call signatures and Python "
                f"worlds already (CompiledStep.MAX_PROGRAMS), and this call fits none: "
                + (f"{changes[0]}" if changes else "its arguments differ (types, shapes, dtypes, "
                   "requires_grad, values of numbers and strings, identity of other objects)")
                + ". Pass numbers that change on every call as arrays or Tensors, keep values the "
                  "step reads outside it fixed, or compile a new step")
        objects = [(path, leaf) for path, leaf in leaves(args)
                   if not isinstance(leaf, (Tensor, np.ndarray, np.generic, *_VALUES))]
        world = World(self.step, objects)
        draws = Draws(world.generators)   # before tracemalloc starts: reading states allocates
        with births() as know_births:
            tracer = Tracer(args, know_births, draws)
            with observing(tracer), tracer.running():
                result = self.step(*tracer.args)
            instructions, guards, returned, modes = tracer.finish(result)
        program = Program(getattr(self.step, "__name__", "step"), instructions, guards, modes,
                          returned, frozenset(tracer.argument_tensors.values()),
                          [leaf for _, leaf in objects] + world.keep,
                          world.finish(tracer.whole_arrays, modes, guards), world.source)
        if self.backend == "fused" and tracer.second_order:
            program.backend = "NumPy replay (not fused: autonet.grad passes stay on the replay)"
        elif self.backend == "fused":
            fused.attach(program)
        self.programs.append(program)
        self.by_signature.setdefault(key, []).append(program)
        return result


_VALUES = (int, float, str, bytes, bool, type(None))
