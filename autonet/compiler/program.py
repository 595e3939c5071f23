"""A traced step as a program: a list of instructions, their inputs by class, and guards.

Instructions, in the order the step ran them:

- :class:`Op`: one op's forward formula on its inputs (sources, see
  :mod:`.trace`), with its settings, into value ``slot``;
- :class:`Make`: ``Tensor(source)``, a fresh copy on every call;
- :class:`Copy`: an in-place update (``t += u`` under ``no_grad``);
- :class:`Call`: a side effect replayed as a call (``zero_grad``, an
  optimizer step, gradient clipping);
- :class:`Backward`: a backward pass: formulas in the traced order, each
  gradient added where eager backward added it, leaves' gradients delivered.

The program is turned into one straight-line Python function (``source``)
that calls the same formulas in the same order, so a replay equals eager
mode bit for bit; ``listing()`` shows it with its inputs and guards. The
structure is meant to be lowered further (fused kernels) as well.
"""
import builtins
import collections
import itertools
import linecache
import math
import weakref

import numpy as np

from ..core import device as devices, ownership
from ..core.backward import accumulate, fit
from ..core.function import as_output_array
from ..core.state import state
from ..core.tensor import Tensor, as_array
from .arguments import describe
from .severed import severed


class Op:
    """``slot = fn.forward(ctx, *inputs, **settings)``; ``ctx`` is reused on every replay.
    ``scalar_output``: False, or how a 0-d result becomes an array (see ``trace._scalar_output``)."""

    __slots__ = ("slot", "fn", "inputs", "settings", "ctx", "scalar_output")

    def __init__(self, slot, fn, inputs, settings, ctx, scalar_output):
        self.slot, self.fn, self.inputs, self.settings = slot, fn, inputs, settings
        self.ctx, self.scalar_output = ctx, scalar_output


class Make:
    """``slot = Tensor(source)``: a fresh copy with ``dtype`` (the source's shape and dtype kept
    for lowering)."""

    __slots__ = ("slot", "source", "dtype", "shape", "source_dtype")

    def __init__(self, slot, source, dtype, shape, source_dtype):
        self.slot, self.source, self.dtype = slot, source, dtype
        self.shape, self.source_dtype = shape, source_dtype


class Copy:
    """``target[...] = source``: an in-place update outside the graph."""

    __slots__ = ("target", "source")

    def __init__(self, target, source):
        self.target, self.source = target, source


class Call:
    """``method(*arguments, **settings)`` replayed: a side effect (sources ``("const", value)``,
    or ``("object", path)`` for a Tensor passed to the step)."""

    __slots__ = ("method", "arguments", "settings")

    def __init__(self, method, arguments, settings):
        self.method, self.arguments, self.settings = method, arguments, settings


class Backward:
    """Seeds ``(slot, gradient)`` and steps ``(op, [(input position, target, fit_to)])``.
    ``results``: None for ``backward()`` (leaves' gradients go to ``.grad``), or, for
    ``autonet.grad``, ``(target, slot, copied)``: the gradient of a leaf or of an op's output
    (its slot) becomes value ``slot`` (a copy where the same input was asked for twice)."""

    __slots__ = ("seeds", "steps", "results")

    def __init__(self, seeds, steps, results=None):
        self.seeds, self.steps, self.results = seeds, steps, results


class Program:
    """A traced step, runnable (``run``) and readable (``listing``)."""

    def __init__(self, name, instructions, guards, modes, returned, argument_tensors, keep,
                 world=None, world_source=""):
        self.name = name
        self.world = world            # guards on the Python world (see .guards), or None
        self.world_source = world_source
        self.instructions = instructions
        self.guards = guards          # (tensor, shape, dtype, requires_grad) read by reference
        self.modes = modes            # (module, training): the train()/eval() mode it ran in
        self.returned = returned
        self.keep = keep              # objects whose identity the call signature relies on
        for instruction in instructions:
            if type(instruction) is Op:   # keep what formulas ask (needs_input_grad), not arrays
                ctx = instruction.ctx
                ctx.inputs = (None,) * len(ctx.inputs)
                ctx.saved = ()
                ctx.saved_versions = ()
        self.generator = _Generator(argument_tensors)
        self.function_name = f"replay_{_identifier(name)}"
        self.source, namespace, self.names = self.generator.generate(instructions, returned,
                                                                     self.function_name)
        self.backend = "NumPy replay"
        self.fused_source = None
        filename = _remember_source(name, self.source)
        weakref.finalize(self, linecache.cache.pop, filename, None)
        exec(builtins.compile(self.source, filename, "exec"), namespace)
        self.replay = namespace[self.function_name]

    def fits(self, args):
        """None when this call may replay the program, else what changed (the call retraces):
        the guards of :mod:`.guards`, modules' modes and lasting tensors' metadata included."""
        return self.world(args)

    def run(self, args):
        previous_mode = state.grad_enabled
        state.grad_enabled = False
        try:
            return self.replay(args)
        finally:
            state.grad_enabled = previous_mode

    def listing(self):
        """The program as text: inputs by class, guards, then the replay's code."""
        counts = {kind.__name__: sum(type(i) is kind for i in self.instructions)
                  for kind in (Op, Make, Copy, Call, Backward)}
        lines = [f"program of {self.name!r}: {counts['Op']} ops, {counts['Make']} tensors made, "
                 f"{counts['Copy']} in-place updates, {counts['Call']} calls, "
                 f"{counts['Backward']} backward passes; runs as: {self.backend}",
                 "inputs:"]
        lines += [f"  {name} = {what}" for name, what in self.names]
        lines.append("guards: the call's arguments match the traced signature (types, shapes, "
                     "dtypes, requires_grad, values of numbers and strings, identity of other "
                     "objects); and")
        lines += [f"  {tensor.name or 'tensor'}: shape {shape}, {dtype}, requires_grad={wants}"
                  for tensor, shape, dtype, wants in self.guards]
        lines += [f"  {type(module).__name__} is in {'train' if training else 'eval'} mode"
                  for module, training in self.modes]
        lines += ["  the Python world the step reads (see autonet.compiler.guards):",
                  self.world_source]
        code = ["code:", self.source] + (["fused kernel:", self.fused_source] if self.fused_source else [])
        return "\n".join(lines + code)

    def __repr__(self):
        return self.listing()


# ------------------------------------------------------------------ code generation
class _Generator:
    """Binds objects to readable names and writes the replay function."""

    def __init__(self, argument_tensors):
        self.argument_tensors = argument_tensors   # paths of the arguments that are Tensors
        self.namespace = {"deliver": ownership.deliver, "claim": ownership.claim,
                          "copy": devices.copy, "fit": fit, "accumulate": accumulate,
                          "as_output_array": as_output_array, "asarray": np.asarray,
                          "as_array": as_array, "copyto": np.copyto, "Tensor": Tensor,
                          "severed": severed}
        self.bound = {}            # (prefix, id) -> name
        self.counts = collections.Counter()   # prefix -> names made with it
        self.names = []            # (name, description) of the inputs, for the listing
        self.arguments = {}        # path -> local name

    def bind(self, prefix, value, description=None):
        key = (prefix, id(value))
        if key not in self.bound:
            name = f"{prefix}{self.counts[prefix]}"
            self.counts[prefix] += 1
            self.bound[key] = name
            self.namespace[name] = value
            if description is not None:
                self.names.append((name, description))
        return self.bound[key]

    def function(self, fn, which):
        return self.bind(f"{fn.name.replace('.', '_')}_{which}", getattr(fn, which))

    def source(self, source):
        """The expression for a source (see :mod:`.trace`)."""
        kind, where = source
        if kind == "value":
            return f"v{where}"
        if kind == "arg":
            if where not in self.arguments:
                name = f"a{len(self.arguments)}"
                self.arguments[where] = name
                self.names.append((name, describe(where) + (
                    " (a Tensor: its data)" if where in self.argument_tensors else " (an ndarray)")))
            return self.arguments[where]
        if kind == "tensor":
            label = repr(where.name) if where.name else "a tensor"
            return self.bind("t", where, f"{label} {where.shape} {where.dtype}, read by reference") + "._data"
        if kind == "state":
            return self.bind("s", where, f"an ndarray {where.shape} {where.dtype}, read by reference")
        if kind == "tuple":
            return "(" + "".join(self.source(part) + ", " for part in where) + ")"
        if kind == "saved":          # what an op saved, read by a create_graph pass's ops
            op, index = where
            return f"{self.bind('c', op.ctx)}.saved[{index}]"
        if kind == "part":           # an input reshaped or sliced by constants
            parent, method, args, kwargs = where
            if method == "__getitem__":
                return f"{self.source(parent)}[{self.bind('k', args[0], repr(args[0]))}]"
            arguments = [self.bind("k", a, repr(a)) for a in args]
            arguments += [f"{k}={self.bind('k', v, repr(v))}" for k, v in kwargs.items()]
            return f"{self.source(parent)}.{method}({', '.join(arguments)})"
        if where is None or type(where) in (bool, int) or (type(where) is float and math.isfinite(where)):
            return repr(where)
        return self.bind("k", where, f"the constant {where!r}")   # by name, not by spelling

    def returned(self, source):
        """The expression for a returned Tensor: an argument or a lasting tensor itself, or a
        new Tensor over a value's array."""
        if source[0] == "object":
            return self.destination(source)
        if source[0] == "itself":
            return self.destination(("tensor", source[1]))
        if source[0] == "severed":   # from a graph the step did not differentiate
            return f"severed({self.source(source[1])})"
        return f"Tensor._make({self.source(source)}, None)"

    def destination(self, target):
        """A leaf receiving a gradient: the Tensor passed as an argument, or a lasting one."""
        kind, where = target
        if kind in ("arg", "object"):
            return "args" + "".join(f"[{key!r}]" for key in where)
        return self.bind("t", where, f"{where.name!r} {where.shape} {where.dtype}, read by reference")

    def generate(self, instructions, returned, function_name):
        body = []
        passes = []
        dead = _dead_after(instructions, returned)
        later = _used_by_later_passes(instructions)
        for index, instruction in enumerate(instructions):
            kind = type(instruction)
            if kind is Op:
                body += self.forward(instruction)
            elif kind is Make:
                body.append(f"    v{instruction.slot} = as_array({self.source(instruction.source)}, "
                            f"{self.bind('dtype', instruction.dtype)})")
            elif kind is Copy:
                body.append(f"    copyto({self.source(instruction.target)}, "
                            f"{self.source(instruction.source)}, casting='same_kind')")
            elif kind is Call:
                body.append(f"    {self.call(instruction)}")
            else:
                pass_name = f"{function_name}_backward{len(passes)}"
                function, leaves = self.backward(instruction, pass_name, later[index])
                passes.append(function)
                body.append(f"    grads = {pass_name}()")
                if instruction.results is None:
                    body += [f"    deliver(grads, {i}, {leaf}, False)" for i, leaf in enumerate(leaves)]
                else:
                    body += self.results(instruction.results, leaves)
            if index in dead:
                body.append(f"    del {', '.join(f'v{slot}' for slot in dead[index])}")
        if returned is None:
            body.append("    return None")
        elif type(returned) is tuple and type(returned[0]) is tuple:
            body.append(f"    return ({''.join(self.returned(r) + ', ' for r in returned)})")
        else:
            body.append(f"    return {self.returned(returned)}")
        header = [f"def {function_name}(args):"]
        header += [f"    {name} = args{''.join(f'[{key!r}]' for key in path)}"
                   f"{'._data' if path in self.argument_tensors else ''}"
                   for path, name in self.arguments.items()]
        return "\n".join(passes + header + body) + "\n", self.namespace, self.names

    def results(self, results, leaves):
        """``autonet.grad``'s results taken from a pass's gradients, as ``grad()`` takes them."""
        lines = []
        for target, slot, copied in results:
            key = f"'g{target}'" if type(target) is int else leaves.index(self.destination(target))
            taken = f"copy(grads[{key}])" if copied else f"claim(grads, {key})"
            lines.append(f"    v{slot} = {taken}")
        return lines

    def call(self, instruction):
        method = instruction.method
        name = self.bind(method.__name__.strip("_") + "_", method)
        arguments = [self.destination(a) if a[0] == "object" else self.source(a)
                     for a in instruction.arguments]
        arguments += [f"{key}={self.destination(a) if a[0] == 'object' else self.source(a)}"
                      for key, a in instruction.settings.items()]
        return f"{name}({', '.join(arguments)})"

    def forward(self, op):
        ctx = self.bind("c", op.ctx)
        arguments = [ctx] + [self.source(s) for s in op.inputs]
        arguments += [f"{key}={self.source(value)}" for key, value in op.settings.items()]
        lines = [f"    v{op.slot} = {self.function(op.fn, 'forward')}({', '.join(arguments)})"]
        if op.scalar_output == "saved":   # NumPy's 0-d scalar as an array, in ctx.saved too
            lines.append(f"    v{op.slot} = as_output_array({ctx}, v{op.slot})")
        elif op.scalar_output:
            lines.append(f"    v{op.slot} = asarray(v{op.slot})")
        return lines

    def backward(self, instruction, function_name, kept):
        """A backward pass as a function returning ``{leaf index: gradient}``; the saved arrays
        of the ops in ``kept`` (ids of contexts a later pass uses: ``retain_graph=True``) stay.

        Its locals (the formulas' results) are gone once it returns, so each leaf
        gradient's only holder is the dict, and ownership can hand it over uncopied.
        """
        lines = [f"def {function_name}():"]
        for slot, seed in instruction.seeds:
            lines.append(f"    g{slot} = {self.source(('const', seed))}")
        assigned = {f"g{slot}" for slot, _ in instruction.seeds}
        summed = set()   # variables holding a sum this pass made: added into in place, as eager
        leaves = {}
        returned = {target for target, _, _ in instruction.results or () if type(target) is int}

        def consumed(slot):   # an op's output gradient, read by its formula only: freed there
            return [] if slot in returned else [f"    del g{slot}"]

        def variable_of(target):
            if type(target) is int:
                return f"g{target}"
            return leaves.setdefault(self.destination(target), f"l{len(leaves)}")

        for op, targets in instruction.steps:
            ctx = self.bind("c", op.ctx)
            free = f"    {ctx}.saved = ()   # freed as soon as used, as in eager backward"
            into = op.fn.backward_into
            if (into is not None and len(targets) == 1 and targets[0][2] is None
                    and variable_of(targets[0][1]) in summed):   # x[t]'s gradient: O(slice)
                lines.append(f"    {self.function(op.fn, 'backward_into')}({ctx}, g{op.slot}, "
                             f"{variable_of(targets[0][1])})")
                lines += consumed(op.slot) + ([free] if id(op.ctx) not in kept else [])
                continue
            lines.append(f"    r = {self.function(op.fn, 'backward')}({ctx}, g{op.slot})")
            lines += consumed(op.slot) + ([free] if id(op.ctx) not in kept else [])
            lines.append("    if type(r) is not tuple: r = (r,)")
            for position, target, like in targets:
                value = f"r[{position}]"
                if like is not None:
                    value = f"fit({value}, {like[0]!r}, {self.bind('dtype', like[1])})"
                variable = variable_of(target)
                if variable in summed:
                    lines.append(f"    {variable} += {value}")
                elif variable in assigned:
                    lines.append(f"    {variable} = accumulate({variable}, {value})")
                    summed.add(variable)
                else:
                    lines.append(f"    {variable} = {value}")
                    assigned.add(variable)
        pairs = ", ".join([f"{i}: {variable}" for i, variable in enumerate(leaves.values())] +
                          [f"'g{target}': g{target}" for target, _, _ in instruction.results or ()
                           if type(target) is int])
        lines.append(f"    return {{{pairs}}}")
        return "\n".join(lines) + "\n", list(leaves)


def _identifier(name):
    """``name`` as a Python identifier, for the generated functions' names."""
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_")
    return cleaned if cleaned.isidentifier() else f"step_{cleaned}"


_sources = itertools.count()


def _remember_source(name, source):
    """A file name for a generated replay, its lines in ``linecache`` (while its program
    lives) so that tracebacks and profilers show the generated code."""
    filename = f"<autonet.compile {name} #{next(_sources)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return filename


def _used_by_later_passes(instructions):
    """Instruction index of each backward pass -> ids of the contexts a later pass uses."""
    later, used = {}, set()
    for index in range(len(instructions) - 1, -1, -1):
        instruction = instructions[index]
        if type(instruction) is Backward:
            later[index] = frozenset(used)
            used |= {id(op.ctx) for op, _ in instruction.steps}
        elif type(instruction) is Op:   # a create_graph pass's op reads what an op saved
            used |= {id(source[1][0].ctx) for source in instruction.inputs if source[0] == "saved"}
    return later


def _dead_after(instructions, returned):
    """Instruction index -> the value slots last used there: freed at once, as eager mode frees them."""
    last = {}

    def use(source, index):
        if source[0] == "value":
            last[source[1]] = index
        elif source[0] == "tuple":
            for part in source[1]:
                use(part, index)
        elif source[0] == "part":
            use(source[1][0], index)

    for index, instruction in enumerate(instructions):
        kind = type(instruction)
        if kind is Op:
            last[instruction.slot] = index
            for source in instruction.inputs + tuple(instruction.settings.values()):
                use(source, index)
        elif kind is Make:
            last[instruction.slot] = index
            use(instruction.source, index)
        elif kind is Copy:
            use(instruction.target, index)
            use(instruction.source, index)
        elif kind is Backward:
            for _, slot, _ in instruction.results or ():
                last[slot] = index
    kept = returned if type(returned) is tuple and type(returned[0]) is tuple else (returned,)
    for source in kept:
        if source is not None and source[0] == "severed":
            source = source[1]
        if source is not None and source[0] == "value":
            last.pop(source[1], None)
    dead = {}
    for slot, index in last.items():
        dead.setdefault(index, []).append(slot)
    return dead
