"""compile: trace one training step, then replay its NumPy work without building graphs.

>>> import numpy as np, autonet
>>> from autonet.optim import SGD
>>> w = autonet.Tensor([[0.5], [-0.5]], requires_grad=True)
>>> x = autonet.Tensor([[1.0, 2.0]])
>>> optimizer = SGD([w], lr=0.1)
>>> @autonet.compile
... def step():
...     loss = ((x @ w).sigmoid() - 1.0).sum() ** 2
...     optimizer.zero_grad()
...     loss.backward()
...     optimizer.step()
...     return loss
>>> first = step()            # traced: runs eagerly and records
>>> second = step()           # replayed: the same formulas, no graph
>>> bool(second.item() < first.item())
True

The first call runs the step eagerly and records what it did: every op's
forward, the order in which backward visited the nodes and where each
gradient went, optimizer steps, ``zero_grad`` calls and in-place tensor
updates. Later calls replay exactly that, calling the same forward and
backward formulas in the same order on reused contexts, so the results equal
eager mode's bit for bit; what is skipped is the bookkeeping: Tensor and
node creation, the backward heap, gradient dictionaries, version checks.

What a compiled step may do, and what it refuses (``CompileError``):

- Arguments must keep their shapes, dtypes and ``requires_grad``, and so must
  the tensors the step reads from outside (parameters, data); their *values*
  may change (that is the point). Anything else raises: compile a new step.
  Calls of one compiled step from several threads take turns.
- The step must do the same tensor work on every call. Python code that reads
  tensor values (``item()``, ``float()``, ``bool()``, comparisons,
  ``numpy()``) while tracing raises, since a branch on them could go the
  other way later. Other Python side effects (printing, counters) happen
  only while tracing. A step returns a Tensor, a tuple of Tensors, or None.
- Work done with NumPy directly on ``.data`` or ``.grad`` is not autonet's
  and is not replayed. Arrays that the step computes with NumPy and hands to
  autonet (``0.25 * w.grad``, ``np.ones(3)``), and ``.grad`` arrays used as
  operands, are refused: make constant arrays outside the step, or pass
  changing data as arguments.
- ``grad()``, ``create_graph``, ``retain_grad`` and backward passes that reach
  tensors made outside the step are refused.
"""
import builtins
import functools
import gc
import inspect
import math
import threading

import numpy as np

from .core import ownership
from .core.backward import fit
from .core.function import Context, as_output_array
from .core.state import Observer, observing, state
from .core.tensor import Tensor

__all__ = ["compile", "CompileError", "CompiledStep"]


class CompileError(RuntimeError):
    """A step cannot be traced by ``autonet.compile``, or a call does not fit its trace."""


def compile(step):  # noqa: A001 - autonet.compile, as torch.compile
    """Return a :class:`CompiledStep` that traces ``step`` on its first call."""
    return functools.wraps(step)(CompiledStep(step))


class CompiledStep:
    """A traced step: call it like the original."""

    MAX_PROGRAMS = 8
    """Traces kept per step, one per distinct set of number arguments."""

    def __init__(self, step):
        self.step = step
        self.programs = {}   # number arguments -> program traced with them
        self.lock = threading.Lock()   # replays reuse the traced contexts: one call at a time

    def __call__(self, *args):
        with self.lock:
            return self._call(args)

    def _call(self, args):
        if state.observers:
            if any(isinstance(observer, _Tracer) for observer in state.observers):
                raise CompileError("compiled steps cannot be traced inside another one")
            return self.step(*args)   # anomaly mode (or another observer): eager, checked
        key = _number_arguments(args)
        program = self.programs.get(key)
        if program is None:
            if len(self.programs) >= self.MAX_PROGRAMS:
                raise CompileError(
                    f"the step was traced for {self.MAX_PROGRAMS} different sets of number "
                    f"arguments already; pass numbers that change on every call as arrays or Tensors")
            tracer = _Tracer(args)
            with observing(tracer):
                result = self.step(*args)
            self.programs[key] = tracer.finish(result)
            return result
        return program.run(args)


def _number_arguments(args):
    """The Python numbers among the arguments, by position: a trace is valid for these values only."""
    return tuple((i, type(a), a) for i, a in enumerate(args) if isinstance(a, (bool, int, float)))


# ------------------------------------------------------------------ sources
# Where an op's input comes from at replay time.
_ARG, _TENSOR, _VALUE, _CONST = range(4)


class _Tracer(Observer):
    """Collects the events of one eager run of the step (it observes the engine)."""

    def __init__(self, args):
        self.args = args
        self.events = []          # ("op", _Op) | ("call", fn) | ("backward", ...) | ("copy", ...)
        self.slots = {}           # id(op output Tensor) -> slot index
        self.node_slots = {}      # id(op node) -> slot index
        self.slot_tensors = []    # keeps traced outputs alive until finish (ids stay unique)
        self.externals = {}       # id(Tensor read from outside) -> (tensor, shape, dtype, requires_grad)
        self.constant_arrays = []  # arrays baked into the replay (op operands, Tensor(...) sources)
        self.delivered_arrays = []  # every array delivered as a .grad while tracing
        self.ops = []              # by slot

    # -------------------------------------------------------------- recording
    def source(self, value):
        """How to find ``value`` again at replay time."""
        for position, arg in enumerate(self.args):   # numbers are constants: their values key the trace
            if isinstance(arg, (Tensor, np.ndarray)) and (value is arg or (
                    isinstance(arg, Tensor) and value is arg.data)):
                return (_ARG, position)
        if isinstance(value, Tensor):
            slot = self.slots.get(id(value))
            if slot is not None:
                return (_VALUE, slot)
            self.externals[id(value)] = (value, value.shape, value.dtype, value.requires_grad)
            return (_TENSOR, value)
        if isinstance(value, np.ndarray):
            self.constant_arrays.append(value)
        return (_CONST, value)

    # -------------------------------------------------------------- events
    def tensor_made(self, data):
        for position, arg in enumerate(self.args):
            if data is arg and isinstance(arg, (np.ndarray, Tensor)):
                raise CompileError(
                    f"the step makes a new Tensor from argument {position} (Tensor(x), or a layer "
                    f"given an ndarray); the replay would keep the traced values. Pass a Tensor "
                    f"as the argument and use it directly.")
        if isinstance(data, np.ndarray):
            self.constant_arrays.append(data)   # finish() checks it is no .grad

    def applied(self, fn, args, kwargs, ctx, arrays, result):
        sources = [self.source(arg) for arg in args]
        slot = len(self.slot_tensors)
        self.slots[id(result)] = slot
        self.node_slots[id(ctx)] = slot
        self.slot_tensors.append(result)
        op = _Op(fn, sources, kwargs, ctx, slot, result.data.ndim == 0)
        self.ops.append(op)
        self.events.append(("op", op))

    def called(self, method, args, kwargs):
        self.events.append(("call", functools.partial(method, *args, **kwargs)))

    def in_place(self, tensor, result, recording):
        if recording:
            raise CompileError("compiled steps support in-place updates only under no_grad()")
        self.events.append(("copy", self.source(tensor), self.source(result)))

    def delivered(self, tensor):
        self.delivered_arrays.append(tensor.grad)

    def backward_ran(self, plan, seeds, fitted, create_graph, into_grad):
        """Record the plan: which formula runs when, and where each gradient goes."""
        if create_graph or not into_grad:
            raise CompileError("compiled steps support backward(), not grad() or create_graph=True")
        if any(id(key) not in self.node_slots for key in seeds):
            raise CompileError("backward() of a tensor the step did not compute")
        fitted = {(id(node), position) for node, position in fitted}
        steps = []
        for node, routes in zip(plan.nodes, plan.routes):
            if node.retained is not None:
                raise CompileError("compiled steps do not support retain_grad()")
            targets = []
            for position, key, shape, dtype in routes:
                # an op output of this step (its slot), a leaf argument, or another leaf (its .grad)
                target = self._slot_of(key) if type(key) is Context else self._leaf(key)
                like = (shape, dtype) if (id(node), position) in fitted else None
                targets.append((position, target, like))
            steps.append((self.ops[self._slot_of(node)], targets))
        seeds = [(self.node_slots[id(key)], seed) for key, seed in seeds.items()]
        self.events.append(("backward", seeds, steps))

    def _leaf(self, tensor):
        """A leaf passed as an argument is found in the call's arguments at replay."""
        for position, arg in enumerate(self.args):
            if arg is tensor:
                return _ArgumentLeaf(position)
        return tensor

    def _slot_of(self, node):
        slot = self.node_slots.get(id(node))
        if slot is None:
            raise CompileError(
                "the step's backward pass reaches a tensor computed outside the step; "
                "compute everything inside it, or detach() what comes from outside")
        return slot

    def detached(self, tensor):
        raise CompileError(
            "detach() inside a compiled step would replay the traced values; detach outside "
            "the step and pass the result as an argument")

    def value_read(self, what):
        raise CompileError(
            f"the step reads a tensor's value in Python ({what}) while being traced; a branch on "
            f"it could go another way on a later call, which a replay cannot follow. Keep value "
            f"reads outside the compiled step (use the tensor it returns).")

    # -------------------------------------------------------------- finishing
    def finish(self, result):
        if isinstance(result, Tensor):
            returned = self.source(result)
        elif result is None:
            returned = None
        elif isinstance(result, tuple) and all(isinstance(r, Tensor) for r in result):
            returned = tuple(self.source(r) for r in result)
        else:
            raise CompileError("a compiled step may return a Tensor, a tuple of Tensors or None")
        for op in self.ops:
            op.strip()
        delivered = {id(g) for g in self.delivered_arrays}
        for array in self.constant_arrays:
            if id(array) in delivered:
                raise CompileError(
                    "the step uses a .grad array as an operand or to make a Tensor; the replay "
                    "would keep using the traced values. Update parameters with an optimizer.")
        ours = self._own_containers()
        for array in self.constant_arrays:
            if not _held_elsewhere(array, ours):
                raise CompileError(
                    f"the step computes an array with NumPy (shape {array.shape}, e.g. from .data or "
                    f".grad) and passes it to autonet; the replay would reuse its traced values. Make "
                    f"such arrays outside the step or pass them as arguments, and compute with "
                    f"Tensors inside it.")
        guards = list(self.externals.values())
        arg_guards = [(type(arg), np.shape(arg), getattr(arg, "dtype", None),
                       getattr(arg, "requires_grad", False)) for arg in self.args]
        return _Program(self.events, guards, arg_guards, returned)

    def _own_containers(self):
        """Ids of the trace's own objects that may refer to a constant array."""
        ours = {id(self.constant_arrays), id(self.delivered_arrays), id(self.__dict__)}
        for op in self.ops:
            ours.update((id(op.sources), id(op.kwargs), id(op.ctx.__dict__)))
            ours.update(id(source) for source in op.sources)
        for event in self.events:
            ours.add(id(event))
            ours.update(id(part) for part in event[1:] if isinstance(part, tuple))
        return ours


def _held_elsewhere(array, ours):
    """True when something outside the trace (user data, a module, a closure) holds ``array``."""
    for referrer in gc.get_referrers(array):
        if id(referrer) in ours:
            continue
        if inspect.isframe(referrer) and referrer.f_code.co_filename == __file__:
            continue
        return True
    return False


class _ArgumentLeaf:
    """A gradient's destination: the leaf Tensor passed as argument ``position``."""

    __slots__ = ("position",)

    def __init__(self, position):
        self.position = position


class _Op:
    """One recorded op: its Function, input sources, settings and a reused context."""

    __slots__ = ("fn", "sources", "kwargs", "ctx", "slot", "scalar_output")

    def __init__(self, fn, sources, kwargs, ctx, slot, scalar_output):
        self.fn, self.sources, self.kwargs, self.ctx, self.slot = fn, sources, kwargs, ctx, slot
        self.scalar_output = scalar_output

    def strip(self):
        """After tracing: keep what formulas ask of their inputs (needs_input_grad), not the traced arrays."""
        ctx = self.ctx
        ctx.inputs = (None,) * len(ctx.inputs)   # formulas ask needs_input_grad, kept
        ctx.saved = ()
        ctx.saved_versions = ()


# ------------------------------------------------------------------ replay
class _Program:
    """The trace turned into one straight-line Python function.

    Each value gets a local variable, each op one call of its own forward or
    backward formula, and each gradient a local that is assigned on first
    arrival and added to afterwards, exactly as eager backward accumulates.
    """

    def __init__(self, events, guards, arg_guards, returned):
        self.guards = guards
        self.arg_guards = arg_guards
        self.source, namespace = _generate(events, returned)
        code = builtins.compile(self.source, "<autonet.compile>", "exec")
        exec(code, namespace)
        self.replay = namespace["replay"]

    def check(self, args):
        if len(args) != len(self.arg_guards):
            raise CompileError(f"traced with {len(self.arg_guards)} argument(s), called with {len(args)}")
        for position, (arg, (kind, shape, dtype, wants_grad)) in enumerate(zip(args, self.arg_guards)):
            if type(arg) is not kind or np.shape(arg) != shape or getattr(arg, "dtype", None) != dtype:
                raise CompileError(
                    f"argument {position} is {type(arg).__name__} {np.shape(arg)} "
                    f"{getattr(arg, 'dtype', '')}, but the step was traced with {kind.__name__} "
                    f"{shape} {dtype or ''}; compile a new step for new shapes or dtypes")
            if getattr(arg, "requires_grad", False) != wants_grad:
                raise CompileError(f"argument {position}'s requires_grad changed since tracing; "
                                   f"compile a new step")
        for tensor, shape, dtype, wants_grad in self.guards:
            data = tensor.data
            if data.shape != shape or data.dtype != dtype or tensor.requires_grad != wants_grad:
                label = repr(tensor.name) if tensor.name else "a tensor"
                raise CompileError(
                    f"{label} read by the step is now {data.shape} {data.dtype} with "
                    f"requires_grad={tensor.requires_grad}; it was {shape} {dtype} with "
                    f"requires_grad={wants_grad} when traced; compile a new step")

    def run(self, args):
        self.check(args)
        previous_mode = state.grad_enabled
        state.grad_enabled = False
        try:
            return self.replay([a.data if isinstance(a, Tensor) else a for a in args], args)
        finally:
            state.grad_enabled = previous_mode


class _Names:
    """Binds Python objects to names in the generated code's namespace."""

    def __init__(self):
        self.namespace = {"deliver": _deliver_all, "fit": fit,
                          "as_array": as_output_array, "copyto": np.copyto, "Tensor": Tensor}
        self.ids = {}

    def bind(self, prefix, value):
        key = (prefix, id(value))
        if key not in self.ids:
            name = f"{prefix}{len(self.ids)}"
            self.ids[key] = name
            self.namespace[name] = value
        return self.ids[key]

    def source(self, source):
        kind, where = source
        if kind == _VALUE:
            return f"v{where}"
        if kind == _TENSOR:
            return f"{self.bind('t', where)}.data"
        if kind == _ARG:
            return f"a[{where}]"
        if where is None or type(where) in (bool, int) or (type(where) is float and math.isfinite(where)):
            return repr(where)
        return self.bind("k", where)   # np.float64(...), inf, arrays: by name, not by spelling


def _deliver_all(grads, tensors):
    """Hand each leaf gradient of a replayed backward pass to its tensor's ``.grad``."""
    for index, tensor in enumerate(tensors):
        ownership.deliver(grads, index, tensor, False)


def _dead_after(events, returned):
    """Event index -> the value slots last used there: freed at once, as eager mode frees them."""
    last = {}
    for index, event in enumerate(events):
        sources = ()
        if event[0] == "op":
            last[event[1].slot] = index
            sources = event[1].sources
        elif event[0] == "copy":
            sources = event[1:]
        for kind, where in sources:
            if kind == _VALUE:
                last[where] = index
    kept = returned if isinstance(returned, tuple) and isinstance(returned[0], tuple) else (returned,)
    for source in kept:
        if source is not None and source[0] == _VALUE:
            last.pop(source[1], None)
    dead = {}
    for slot, index in last.items():
        dead.setdefault(index, []).append(slot)
    return dead


def _generate(events, returned):
    names = _Names()
    lines = ["def replay(a, tensors):"]   # a: the arguments' arrays; tensors: the arguments
    passes = []
    dead = _dead_after(events, returned)
    for index, event in enumerate(events):
        kind = event[0]
        if kind == "op":
            lines += _forward_lines(names, event[1])
        elif kind == "backward":
            function, leaves = _backward_function(names, event, len(passes))
            passes.append(function)
            targets = ", ".join(f"tensors[{leaf.position}]" if type(leaf) is _ArgumentLeaf
                                else names.bind("t", leaf) for leaf in leaves)
            lines.append(f"    deliver(backward{len(passes) - 1}(), [{targets}])")
        elif kind == "call":
            lines.append(f"    {names.bind('call', event[1])}()")
        else:
            lines.append(f"    copyto({names.source(event[1])}, {names.source(event[2])}, "
                         f"casting='same_kind')")
        if index in dead:
            lines.append(f"    del {', '.join(f'v{slot}' for slot in dead[index])}")
    if returned is None:
        lines.append("    return None")
    elif isinstance(returned, tuple) and isinstance(returned[0], tuple):
        parts = ", ".join(f"Tensor._make({names.source(r)}, None)" for r in returned)
        lines.append(f"    return ({parts},)")
    else:
        lines.append(f"    return Tensor._make({names.source(returned)}, None)")
    return "\n".join(passes + lines) + "\n", names.namespace


def _forward_lines(names, op):
    function = names.bind("forward", op.fn.forward)
    ctx = names.bind("ctx", op.ctx)
    arguments = [ctx] + [names.source(s) for s in op.sources]
    arguments += [f"{key}={names.source((_CONST, value))}" for key, value in op.kwargs.items()]
    lines = [f"    v{op.slot} = {function}({', '.join(arguments)})"]
    if op.scalar_output:
        lines.append(f"    v{op.slot} = as_array({ctx}, v{op.slot})")
    return lines


def _backward_function(names, event, number):
    """A backward pass as a function returning ``{leaf index: gradient}``.

    Its locals (the formulas' results) are gone once it returns, so each leaf
    gradient's only holder is the dict, and ownership can hand it over uncopied.
    """
    _, seeds, steps = event
    lines = [f"def backward{number}():"]
    for slot, seed in seeds:
        lines.append(f"    g{slot} = {names.source((_CONST, seed))}")
    assigned = {f"g{slot}" for slot, _ in seeds}
    leaves = {}
    for op, targets in steps:
        ctx = names.bind('ctx', op.ctx)
        lines.append(f"    r = {names.bind('backward', op.fn.backward)}({ctx}, g{op.slot})")
        lines.append(f"    {ctx}.saved = ()   # freed as soon as used, as in eager backward")
        lines.append("    if type(r) is not tuple: r = (r,)")
        for position, target, like in targets:
            value = f"r[{position}]"
            if like is not None:
                value = f"fit({value}, {like[0]!r}, {names.bind('dtype', like[1])})"
            if type(target) is int:
                variable = f"g{target}"
            else:
                variable = leaves.setdefault(id(target), (f"l{len(leaves)}", target))[0]
            if variable in assigned:
                lines.append(f"    {variable} = {variable} + {value}")
            else:
                lines.append(f"    {variable} = {value}")
                assigned.add(variable)
    pairs = ", ".join(f"{i}: {variable}" for i, (variable, _) in enumerate(leaves.values()))
    lines.append(f"    return {{{pairs}}}")
    return "\n".join(lines) + "\n", [tensor for _, tensor in leaves.values()]
