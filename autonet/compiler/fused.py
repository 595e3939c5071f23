"""The fused backend: a traced program's forward and backward passes as one numba kernel.

``autonet.compile(step, backend="fused")`` lowers what it can of a program
(see :mod:`.program`) into a single ``numba.njit`` function: the forward ops
and the backward pass run there without Python between them; side effects
(``zero_grad``, optimizer steps, delivering gradients to ``.grad``) run
around it exactly as in the NumPy replay. The kernel is written by running
each op's own ``forward`` and ``backward`` (and the engine's ``fit``, and the
optimizer's own step) on symbolic arrays (:mod:`.symbolic`): no formula is
restated here. What lowers: float64 or float32 programs (one dtype
throughout; numbers take it, as in NumPy) whose formulas use elementwise
arithmetic and ufuncs, sums and extremes, reshapes, basic indexing and 2-d
matrix products (elementwise ops, ``pow``, ``exp log tanh sigmoid relu``,
``matmul``, ``linear``, ``sum``, ``mean``, ``cross_entropy``, and more), and
``Tensor(...)`` of an input, with one backward pass after every op, and
only ``zero_grad`` calls before it. Small matrix products run as loops,
larger ones through BLAS (see :mod:`.kernels`), the largest as NumPy's
matmul between kernels. Any other program, or one numba cannot compile,
runs the NumPy replay, and ``Program.listing()`` says why. Results agree with eager
mode to rounding (the kernel's sums and products may be ordered
differently); the tests hold them to 1e-12 (float64) and 1e-5 (float32).
The kernel writes its results into fresh arrays the wrapper makes, which
become ``.grad`` uncopied. Kernels are compiled once: their sources go to
:func:`cache_directory` and numba caches the machine code beside them, so
later processes load it. Over its first calls a fused program times its
kernels against the NumPy replay and keeps the faster (:class:`_Choice`).

numba (and scipy, for its matrix products) come with ``pip install
autonet[fast]``; without them ``backend="fused"`` raises ``ImportError``.
"""
import hashlib
import importlib.util
import os
import re
import sys
import tempfile
import time

import numpy as np

from ..core import device as devices, ownership
from ..core.backward import fit
from ..core.context import Context
from ..core.tensor import Tensor
from .program import Backward, Call, Copy, Make, Op
from .severed import severed
from .symbolic import NotLowered, PythonLine, Symbol, Writer, python_name as _py

_INSTALL = "the fused backend needs numba and scipy: pip install autonet[fast]"


def require_numba():
    """numba, or ``ImportError`` saying how to install it."""
    try:
        import numba
        import scipy  # noqa: F401 - numba's np.dot needs scipy's BLAS
    except ImportError as missing:
        raise ImportError(_INSTALL) from missing
    return numba


def attach(program):
    """Run ``program`` through fused kernels from now on, or record why it cannot."""
    try:
        fused_replay, program.fused_source, kernel = lower(program, program.generator)
    except NotLowered as reason:
        program.backend, program.choice = f"NumPy replay (not fused: {reason})", None
        return
    numpy_replay = program.replay
    errors, config = require_numba().core.errors, require_numba().core.config
    optimisation = type(config.OPT)(kernel_optimisation())
    backend = _described(kernel)
    effects = kernel.side_effects

    def replay(args):
        """numba compiles each kernel for each new kind of argument (dtype, layout) on the call
        that first brings it; where it cannot, the NumPy replay runs from then on (what ran
        before the kernel, ``zero_grad`` alone, then runs twice; what Python regions changed
        before it, random generators' states and in-place updates, is put back first)."""
        kept = _snapshot(effects, args) if effects else None
        level, config.OPT = config.OPT, optimisation   # numba reads it as it compiles
        try:
            return fused_replay(args)
        except errors.NumbaError as error:
            if kept is not None:
                _put_back(kept)
            reason = str(error).strip().splitlines()[0]
            program.replay, program.backend = numpy_replay, f"NumPy replay (not fused: numba: {reason})"
            return numpy_replay(args)
        finally:
            config.OPT = level

    program.replay, program.backend, program.choice = _Choice(program, replay, numpy_replay), backend, None


WARM_CALLS = 3
"""Calls of a fused program before its kernels are timed against the NumPy replay (the first
compiles them, or loads them from the cache)."""

TIMED_CALLS = 5
"""Calls of each, alternating, that :class:`_Choice` times; 0: no choice, the kernels run."""

clock = time.perf_counter   # what _Choice times calls with (a test may put another in)


class _Choice:
    """A fused program's replay that keeps whichever of its kernels and the NumPy replay runs
    it faster here: after ``WARM_CALLS`` calls, it runs the two in turn for ``TIMED_CALLS``
    calls each, timed with ``clock``, then keeps the one of the lower median (both give eager
    mode's results; the kernels to rounding). Per-region kernels can lose to the replay: each
    Python region boxes arrays out of a kernel and back into the next. ``program.choice``
    says what was measured; where the replay won, ``program.backend`` says so too."""

    def __init__(self, program, fused, numpy):
        self.program = program
        self.runs = {"fused": fused, "replay": numpy}
        self.times = {"fused": [], "replay": []}
        self.calls = 0

    def __call__(self, args):
        self.calls += 1
        if TIMED_CALLS <= 0:
            self.program.replay = self.runs["fused"]
        if self.calls <= WARM_CALLS or TIMED_CALLS <= 0:
            return self.runs["fused"](args)
        times = self.times
        which = "replay" if len(times["replay"]) <= len(times["fused"]) else "fused"
        started = clock()
        result = self.runs[which](args)
        times[which].append(clock() - started)
        if self.program.replay is self and len(times["fused"]) >= TIMED_CALLS:
            self._choose()
        return result

    def _choose(self):
        fused, numpy = (float(np.median(self.times[which])) for which in ("fused", "replay"))
        measured = (f"fused {fused * 1e6:.1f} us a call against the NumPy replay's {numpy * 1e6:.1f} us "
                    f"(medians of {TIMED_CALLS} calls each, after {WARM_CALLS})")
        program = self.program
        if numpy < fused:
            program.replay, program.choice = self.runs["replay"], f"NumPy replay: {measured}"
            program.backend = f"NumPy replay (faster here than {program.backend}: {measured})"
        else:
            program.replay, program.choice = self.runs["fused"], f"fused: {measured}"


KERNEL_OPTIMISATION = 2
"""numba's optimisation level for the kernels (``NUMBA_OPT`` where lower): LLVM's -O3 compiled
a 4-d broadcasting kernel of the CNN step in 36.6 s against 1.2 s at -O2, to code of the same
speed (1131 against 1182 us a call, one run each); the CNN step's first call was 20 minutes at
-O3 on a loaded machine. Set while a fused program runs (numba reads it as it compiles), so
another thread's numba compiles at that moment would take it too."""


def kernel_optimisation():
    """The optimisation level the kernels are compiled at: ``KERNEL_OPTIMISATION``, or numba's
    own ``NUMBA_OPT`` where that is lower."""
    return min(int(require_numba().core.config.OPT), KERNEL_OPTIMISATION)


def _described(kernel):
    """The program's backend as ``listing()`` shows it: ``fused``, or which ops run in Python."""
    if not kernel.reasons:
        return "fused"
    more = f"; and {len(kernel.reasons) - 1} more" if len(kernel.reasons) > 1 else ""
    return (f"fused, {len(kernel.in_python)} of {kernel.op_count} ops not fused (run in Python "
            f"between kernels): {kernel.reasons[0]}{more}")


def _snapshot(effects, args):
    """What Python regions may change, kept: generators' states and arrays' values (an
    argument's, ``("arg", path)``, found in this call's ``args``)."""
    things = [_argument(args, effect[1]) if type(effect) is tuple else effect for effect in effects]
    return [(thing, thing.bit_generator.state) if isinstance(thing, np.random.Generator)
            else (thing, thing.data.copy() if isinstance(thing, Tensor) else thing.copy())
            for thing in things]


def _argument(args, path):
    """The Tensor or ndarray at ``path`` in a call's arguments."""
    for key in path:
        args = args[key]
    return args


def _put_back(kept):
    for thing, value in kept:
        if isinstance(thing, np.random.Generator):
            thing.bit_generator.state = value
        else:
            np.copyto(thing.data if isinstance(thing, Tensor) else thing, value)


def lower(program, generator):
    """``(replay, kernels' source, the _Kernel)`` running ``program`` through numba kernels,
    or ``NotLowered``. Ops whose formulas do not lower run in Python between kernels (a
    region each); an op whose forward lowers but whose backward does not is lowered again
    with both in Python."""
    require_numba()
    instructions = program.instructions
    backwards = [i for i, instruction in enumerate(instructions) if type(instruction) is Backward]
    if len(backwards) != 1:
        raise NotLowered(f"{len(backwards)} backward passes (one is lowered)")
    cut = backwards[0]
    if any(devices.is_foreign(seed) for _, seed in instructions[cut].seeds):
        raise NotLowered(f"the step runs on {devices.device_of(instructions[cut].seeds[0][1])}; "
                         f"the fused kernel runs on the CPU")
    for instruction in instructions[:cut]:
        if type(instruction) is Call and instruction.method.__name__ != "zero_grad":
            raise NotLowered(f"{instruction.method.__qualname__} runs before backward")
        if type(instruction) not in (Op, Make, Call, Copy):
            raise NotLowered(f"a {type(instruction).__name__} instruction before backward")
    if any(type(i) in (Op, Make, Backward) for i in instructions[cut + 1:]):
        raise NotLowered("ops after the backward pass")
    generators = [value for op in instructions[:cut] if type(op) is Op
                  for kind, value in list(op.settings.values()) + list(op.inputs)
                  if kind == "const" and isinstance(value, np.random.Generator)]
    kept = _snapshot(generators, ())   # a formula run on symbols may draw (dropout) before it fails
    try:
        kernel, leaves = _lowered(instructions, cut, generator)
    finally:
        _put_back(kept)
    if len(kernel.in_python) == kernel.op_count:
        raise NotLowered(kernel.reasons[0] if kernel.reasons else "no op to lower")
    returned = _returned_value(program)
    if returned is not None:
        if type(returned[0]) is tuple or returned[0] != "value" or returned[1] not in kernel.values:
            raise NotLowered("the step returns something other than one value an op computed")
    step = _optimizer_step(instructions[cut + 1:], leaves)
    segments = kernel.segments(returned, leaves, step)
    compiled = [_compiled(code) for python, code, _, _ in segments if not python]
    replay, wrapper = _wrapper(program, generator, kernel, compiled, segments, leaves, cut, step)
    kernels = [f"# kernel{n}\n{code}" for n, code in enumerate(c for python, c, _, _ in segments if not python)]
    kernels += [f"# step kernel\n{code}" for code in dict.fromkeys(code for code, _ in kernel.step_calls)]
    return replay, "\n".join([wrapper] + kernels), kernel


def _lowered(instructions, cut, generator):
    """``(kernel, leaves)``: the instructions before ``cut`` and its backward pass written out."""
    in_python = set()
    while True:
        kernel = _Kernel(generator, in_python)
        try:
            for instruction in instructions[:cut]:
                if type(instruction) is Op:
                    kernel.forward(instruction)
                elif type(instruction) is Make:
                    kernel.make(instruction)
                elif type(instruction) is Copy:
                    kernel.copy(instruction)
            leaves = kernel.backward(instructions[cut])
        except _Retry as retry:
            in_python.add(retry.slot)
            continue
        return kernel, leaves


def cache_directory():
    """Where kernels' sources (and numba's compiled code, beside them) are kept:
    ``$AUTONET_CACHE_DIR``, else ``~/.cache/autonet/fused``."""
    return os.environ.get("AUTONET_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "autonet", "fused")


def _compiled(source):
    """The kernel in ``source``, jitted with numba's on-disk cache: the source
    is written to a file named by its hash, so a later process (or trace) with the same
    program loads the compiled code. The hash covers the optimisation level
    (:func:`kernel_optimisation`): numba's cache does not, and would hand a kernel compiled
    unoptimised (8x slower on the XOR step) to a later process that optimises.

    The file is trusted only when its content is exactly the source it should hold (a
    truncated, edited or foreign file is written anew, atomically), and only in a directory
    that is this user's alone (created 0700). Where the cache cannot be used, the kernel is
    compiled in memory instead."""
    text = _KERNEL_MODULE.format(source=source, helpers=_helpers_digest(),
                                 optimisation=kernel_optimisation())
    directory = cache_directory()
    name = "kernel_" + hashlib.sha256(text.encode()).hexdigest()[:24]
    try:
        path = _cached_file(directory, name + ".py", text)
        module = sys.modules.get("autonet_fused_" + name)   # loaded from the same text before
        if module is None:
            module = _load(path, text, "autonet_fused_" + name)
        return module.kernel
    except OSError:
        namespace = {}
        exec(compile(text.replace("@numba.njit(cache=True)\n", ""), "<autonet.compile fused>", "exec"),
             namespace)
        return require_numba().njit(namespace["kernel"])


def _cached_file(directory, filename, text):
    """The path of ``filename`` in the private ``directory``, holding exactly ``text``."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    status = os.stat(directory)
    if status.st_mode & 0o022 or (hasattr(os, "getuid") and status.st_uid != os.getuid()):
        raise PermissionError(f"{directory} is not private to this user; kernels are not cached there")
    path = os.path.join(directory, filename)
    try:
        with open(path, encoding="utf-8") as file:
            if file.read() == text:
                return path
    except (OSError, UnicodeDecodeError):
        pass   # missing or unreadable: written below
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def _load(path, text, name):
    """The kernel module from ``text`` (checked to be ``path``'s content), registered first:
    numba's cache finds the module by name, and the file by the code's file name."""
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    module.__file__ = path
    sys.modules[name] = module
    try:
        exec(compile(text, path, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _helpers_digest():
    """A digest of kernels.py, written into each kernel's file: numba's cache checks a kernel's
    own file only, so a changed helper must change the file's name (its hash) too."""
    with open(os.path.join(os.path.dirname(__file__), "kernels.py"), "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()[:16]


_KERNEL_MODULE = '''"""A fused training step, generated by autonet.compile (safe to delete)."""
# autonet/compiler/kernels.py: {helpers}
# numba's optimisation level: {optimisation}
import numba
import numpy as np

from autonet.compiler.kernels import check_labels, dot, maxed, mined, one_hot, pick, summed


@numba.njit(cache=True)
{source}'''


def _optimizer_step(after, leaves):
    """The optimizer's own in-kernel step (``Optimizer.fused_step``) when the call right after
    backward is that optimizer's ``step`` over exactly the leaves; else None."""
    if not after or after[0].method.__name__ != "step" or not after[0].arguments or after[0].settings:
        return None
    kind, optimizer = after[0].arguments[0]
    if kind != "const" or not hasattr(optimizer, "fused_step"):
        return None
    if any(kind != "tensor" for kind, _ in leaves):
        return None
    return optimizer.fused_step([leaf for _, leaf in leaves])


def _returned_value(program):
    """The source of what the step returns, a severed result's own (``severed``), or None."""
    returned = program.returned
    return returned[1] if returned is not None and returned[0] == "severed" else returned


def _wrapper(program, generator, kernel, compiled, segments, leaves, cut, step):
    """The Python around the kernels: inputs in, calls before and after, the Python regions
    between kernels, gradients delivered.

    The last kernel writes its results into arrays made here (a numba-made array returned to
    Python costs about a microsecond to box): fresh ones, so each gradient is handed over
    to ``.grad`` uncopied, as the NumPy replay hands over its own.
    """
    first_op = next(i for i, instruction in enumerate(program.instructions)
                    if type(instruction) in (Op, Make, Copy, Backward))
    before = [i for i in program.instructions[:cut] if type(i) is Call]
    late = any(type(i) is Call for i in program.instructions[first_op:cut])
    after = [i for i in program.instructions[cut + 1:] if type(i) is Call]
    body = [f"    i{n} = {generator.source(source)}" for n, source in enumerate(kernel.inputs)]
    if late:   # a zero_grad after forward ops runs before the kernel: where the kernel raises,
        body.append("    kept = grads_of([" + ", ".join(   # the gradients eager mode left are back
            generator.destination(call.arguments[0]) if call.arguments[0][0] == "object"
            else generator.source(call.arguments[0]) for call in before if call.arguments) + "])")
    body += [f"    {generator.call(call)}" for call in before]
    if program.returned is not None:
        value = kernel.values[_returned_value(program)[1]]
        body.append(f"    result = empty({value.shape!r}, {generator.bind('dtype', value.dtype)})")
    buffers = ", ".join(f"{n}: {_buffer(leaf, generator)}" for n, leaf in enumerate(leaves))
    body.append(f"    grads = {{{buffers}}}")
    arguments = {"result": "result", "update": "fuse_step"}
    arguments.update({f"grad{n}": f"grads[{n}]" for n in range(len(leaves))})
    arguments.update({f"i{n}": f"i{n}" for n in range(len(kernel.inputs))})
    if step is not None:
        name = generator.bind("step", step)
        body.append(f"    fuse_step = {name}.applies()")   # decided before the kernel runs
        if step.settings:   # read inline: a list a call costs a microsecond on an XOR step
            optimizer = generator.bind("optimizer", step.optimizer)
            arguments.update({f"h{k}": f"{optimizer}.param_groups[{group}][{setting!r}]"
                              for k, (group, setting) in enumerate(step.settings)})
        else:
            body.append(f"    numbers = {name}.numbers()")
            arguments.update({f"h{k}": f"numbers[{k}]" for k in range(step.count)})
        if step.arrays_like:
            body.append(f"    arrays = {name}.arrays()")
            arguments.update({f"m{k}": f"arrays[{k}]" for k in range(len(step.arrays_like))})
    calls, kernels = [], {}
    for python, code, parameters, outputs in segments:
        if python:
            calls += ["    " + line for line in code.splitlines()]
            continue
        passed = ", ".join(arguments.get(p) or (_py(p) + "[()]" if not kernel.writer.kinds[p][0] else _py(p))
                           for p in parameters)
        target = "".join(_py(o) + ", " for o in outputs)
        calls.append(f"    {target + '= ' if target else ''}kernel{len(kernels)}({passed})")
        kernels[f"kernel{len(kernels)}"] = compiled[len(kernels)]
        calls += [f"    {_py(o)} = asarray({_py(o)}, {generator.bind('dtype', kernel.writer.kinds[o][1])})"
                  for o in outputs if not kernel.writer.kinds[o][0]]   # numba's scalars: 0-d arrays
    if kernel.step_calls:   # the optimizer's step, a kernel per parameter (one per layout compiled)
        calls.append("    if fuse_step:")
        calls += [f"        {generator.bind('step_kernel', _compiled(code))}({', '.join(arguments[p] for p in passed)})"
                  for code, passed in kernel.step_calls]
    if late:
        body += ["    try:"] + ["    " + line for line in calls] + [
                 "    except BaseException:", "        restore(kept)", "        raise"]
    else:
        body += calls
    body += [f"    deliver(grads, {n}, {generator.destination(leaf)}, False)"   # claimed uncopied
             for n, leaf in enumerate(leaves)]
    if step is not None:   # the kernel took the step if it applied; else Python does
        body.append(f"    if fuse_step: {name}.finish()")
        body.append(f"    else: {generator.call(after[0])}")
        after = after[1:]
    body += [f"    {generator.call(call)}" for call in after]
    body.append("    return None" if program.returned is None else "    return severed(result)"
                if program.returned[0] == "severed" else "    return Tensor._make(result, None)")
    header = [f"    {name} = args{''.join(f'[{key!r}]' for key in path)}"
              f"{'.data' if path in generator.argument_tensors else ''}"
              for path, name in generator.arguments.items()]
    namespace = dict(generator.namespace, empty=np.empty, Tensor=Tensor, asarray=np.asarray, severed=severed,
                     deliver=ownership.deliver, grads_of=_grads_of, restore=_restore, matmul=np.matmul,
                     real=kernel.writer.dtype.type, np=np,
                     **kernels)
    text = "\n".join(["def replay(args):"] + header + body) + "\n"
    exec(compile(text, "<autonet.compile fused wrapper>", "exec"), namespace)
    return namespace["replay"], text


def _grads_of(owners):
    """``(tensor, its .grad)`` for every tensor a ``zero_grad`` of ``owners`` (optimizers,
    modules, tensors) clears."""
    kept = []
    for owner in owners:
        if isinstance(owner, Tensor):
            tensors = [owner]
        elif hasattr(owner, "param_groups"):
            tensors = [p for group in owner.param_groups for p in group["params"]]
        else:
            tensors = list(owner.parameters())
        kept += [(tensor, tensor.grad) for tensor in tensors]
    return kept


def _restore(kept):
    for tensor, grad in kept:
        tensor.grad = grad


def _buffer(leaf, generator):
    """Code making the fresh array a leaf's gradient is written into: the leaf's shape and dtype
    (fixed by the guards for lasting tensors, by the call signature for arguments)."""
    kind, where = leaf
    if kind == "tensor":
        return f"empty({where.shape!r}, {generator.bind('dtype', where.dtype)})"
    data = generator.source(leaf)
    return f"empty({data}.shape, {data}.dtype)"


class _Retry(Exception):
    """An op whose forward lowered and whose backward does not: lowered again, both in Python."""

    def __init__(self, slot):
        super().__init__(slot)
        self.slot = slot


_KERNEL_NAMES = re.compile(r"\b(t\d+|i\d+|grad\d+|h\d+|m\d+|result|update)\b")
_PYTHON_NAMES = re.compile(r"\bw(\d+)\b")
_ASSIGNED = re.compile(r"^\s*(t\d+) = ")


STEP_LINES_IN_KERNEL = 4
"""An optimizer's step of at most this many lines a parameter (SGD's 3) is written into the last
kernel; a longer one (Adam's 15) gets a kernel per parameter layout: a kernel call costs about a
microsecond, which a small step would notice, and numba's build time grows with a kernel's
length."""


class _Kernel:
    """Writes the kernels' source by running the ops' formulas on symbolic arrays; the ops in
    ``in_python`` (and those whose forward does not lower) run in Python between kernels."""

    def __init__(self, generator, in_python):
        self.generator = generator
        self.in_python = in_python  # slots of ops run in Python (grows as forward formulas fail)
        self.inputs = []          # sources passed in, in order
        self.symbols = {}         # their keys -> the kernel parameter's Symbol
        self.values = {}          # slot -> the Symbol of that value
        self.contexts = {}        # slot -> the symbolic run's Context (what backward reads)
        self.writer = None        # made with the program's dtype, at the first value
        self.reasons = []         # why each op in Python is there
        self.op_count = 0
        self.side_effects = []    # generators and arrays Python regions change
        self.step_calls = []      # (source, arguments) of each parameter's own step kernel

    def _floating(self, dtype, what):
        """Check that ``what`` computes the program's one floating dtype (float64 or float32)."""
        if dtype not in (np.float64, np.float32):
            raise NotLowered(f"{what} computes {dtype}")
        if self.writer is None:
            self.writer = Writer(dtype)
        elif dtype != self.writer.dtype:
            raise NotLowered(f"{what} computes {dtype} in a {self.writer.dtype} program")

    def _input(self, source, shape, dtype):
        """What a formula gets for a source: a Symbol, a number, or None."""
        kind, where = source
        if kind == "value":
            return self.values[where]
        if kind == "const" and (where is None or type(where) in (int, float, bool)
                                or isinstance(where, (np.floating, np.integer))):
            return where
        if kind not in ("arg", "tensor", "state"):
            raise NotLowered(f"an input of kind {kind} ({type(where).__name__})")
        key = (kind, where) if kind == "arg" else (kind, id(where))   # tensors compare by value
        if key not in self.symbols:
            if dtype is None or dtype.kind not in "fiub":
                raise NotLowered(f"an input of dtype {dtype}")
            self.symbols[key] = Symbol(self.writer, f"i{len(self.inputs)}", shape, dtype)
            self.inputs.append(source)
        return self.symbols[key]

    def _python(self, source):
        """A source as the wrapper's Python spells it."""
        if source[0] == "value":
            return _py(self.values[source[1]].name)
        code = self.generator.source(source)
        return re.sub(r"\bv(\d+)\b", lambda match: _py(self.values[int(match.group(1))].name), code)

    def _run_in_python(self, line):
        self.writer.lines.append(PythonLine(line))

    def make(self, instruction):
        self._floating(instruction.dtype, "Tensor(...)")
        if instruction.source[0] == "const":   # Tensor(a Python value): made in Python
            name = self.writer.fresh()
            self._run_in_python(f"{_py(name)} = as_array({self._python(instruction.source)}, "
                                f"{self.generator.bind('dtype', instruction.dtype)})")
            self.values[instruction.slot] = Symbol(self.writer, name, instruction.shape, instruction.dtype)
            return
        source = self._input(instruction.source, instruction.shape, instruction.source_dtype)
        # Tensor(x) copies, and makes bool and int data floating: astype does both
        self.values[instruction.slot] = self.writer.emit(f"{source.name}.astype(real)", source.shape,
                                                         self.writer.dtype)

    def copy(self, instruction):
        """An in-place update outside the graph (BatchNorm's running statistics): in Python."""
        if self.writer is None:
            raise NotLowered("an in-place update before any op")
        kind, where = instruction.target
        if kind not in ("value", "arg", "tensor", "state"):
            raise NotLowered(f"an in-place update of an input of kind {kind}")
        self._run_in_python(f"copyto({self._python(instruction.target)}, "
                            f"{self._python(instruction.source)}, casting='same_kind')")
        if kind != "value":   # a value of this call is made afresh by a fallback replay
            self.side_effects.append(instruction.target if kind == "arg" else where)

    def forward(self, op):
        """``op``'s own forward formula, on Symbols (or, where it does not lower, in Python)."""
        traced = op.ctx
        self.op_count += 1
        if traced.dtype.kind != "f" and self.writer is not None:   # a count (BatchNorm's): Python's
            return self._python_forward(op, f"{op.fn.name} computes {traced.dtype}")
        self._floating(traced.dtype, op.fn.name)
        if op.slot in self.in_python:
            return self._python_forward(op, f"{op.fn.name} (backward) does not lower")
        mark = len(self.writer.lines)
        try:
            self._symbolic_forward(op)
        except NotLowered as reason:
            del self.writer.lines[mark:]
            self._python_forward(op, str(reason))

    def _symbolic_forward(self, op):
        traced = op.ctx
        inputs = [self._input(source, shape, dtype) for source, shape, dtype
                  in zip(op.inputs, traced.input_shapes, traced.input_dtypes)]
        settings = {}
        for key, (kind, value) in op.settings.items():
            if kind != "const":
                raise NotLowered(f"{op.fn.name} with a {kind} setting {key}=")
            settings[key] = value
        ctx = Context(op.fn, (None,) * len(inputs), traced.needs_input_grad)
        with _formula(op.fn.name, "forward"):
            out = op.fn.forward(ctx, *inputs, **settings)
        if not isinstance(out, Symbol) or (out.shape, out.dtype) != (traced.shape, traced.dtype):
            raise NotLowered(f"{op.fn.name}'s formula gives {out!r}, not {traced.shape} {traced.dtype}")
        self.values[op.slot] = out
        self.contexts[op.slot] = ctx

    def _python_forward(self, op, reason):
        """``op``'s forward as the NumPy replay runs it, with the replay's Context."""
        self.in_python.add(op.slot)
        self.reasons.append(reason)
        ctx = self.generator.bind("c", op.ctx)
        arguments = [ctx] + [self._python(source) for source in op.inputs]
        arguments += [f"{key}={self._python(value)}" for key, value in op.settings.items()]
        name = self.writer.fresh()
        self._run_in_python(f"{_py(name)} = {self.generator.function(op.fn, 'forward')}({', '.join(arguments)})")
        if op.scalar_output:
            self._run_in_python(f"{_py(name)} = as_output_array({ctx}, {_py(name)})")
        self.values[op.slot] = Symbol(self.writer, name, op.ctx.shape, op.ctx.dtype)
        self.side_effects += [value for kind, value in list(op.settings.values()) + list(op.inputs)
                              if kind == "const" and isinstance(value, np.random.Generator)]

    def backward(self, instruction):
        """Each op's own backward formula on Symbols (in Python for ops run there), gradients
        fitted and summed as the engine does; returns the leaves, in the order their gradients
        are written out."""
        grads = {}
        for slot, seed in instruction.seeds:
            if np.ndim(seed) != 0:
                raise NotLowered("a seed gradient with a shape")
            grads[slot] = self.writer.emit(self.writer.literal(float(np.asarray(seed))), (),
                                           self.writer.dtype)
        leaves, leaf_keys = [], {}
        for op, targets in instruction.steps:
            python = op.slot in self.in_python
            results = (self._python_backward(op, grads[op.slot], targets) if python
                       else self._symbolic_backward(op, grads[op.slot], targets))
            for value, (_, target, _) in zip(results, targets):
                if type(target) is not int:
                    key = (target[0], target[1] if target[0] == "arg" else id(target[1]))
                    if key not in leaf_keys:
                        leaf_keys[key] = ("leaf", len(leaves))
                        leaves.append(target)
                    target = leaf_keys[key]
                if target not in grads:
                    grads[target] = value
                elif python:   # summed where the value is, as the replay sums (accumulate)
                    grads[target] = self._in_python(f"accumulate({_py(grads[target].name)}, {_py(value.name)})",
                                                    value.shape, value.dtype)
                else:
                    grads[target] = grads[target] + value
        self.leaf_grads = [grads[("leaf", n)] for n in range(len(leaves))]
        return leaves

    def _symbolic_backward(self, op, grad, targets):
        """The op's backward formula on Symbols, each result fitted as the engine fits it."""
        try:
            with _formula(op.fn.name, "backward"):
                results = op.fn.backward(self.contexts[op.slot], grad)
                if type(results) is not tuple:
                    results = (results,)
                return [results[position] if like is None else fit(results[position], tuple(like[0]), like[1])
                        for position, _, like in targets]
        except NotLowered:
            raise _Retry(op.slot) from None

    def _python_backward(self, op, grad, targets):
        """The op's backward as the NumPy replay runs it (its saved arrays freed after)."""
        ctx = self.generator.bind("c", op.ctx)
        self._run_in_python(f"r = {self.generator.function(op.fn, 'backward')}({ctx}, {_py(grad.name)})")
        self._run_in_python(f"{ctx}.saved = ()")
        self._run_in_python("if type(r) is not tuple: r = (r,)")
        results = []
        for position, _, like in targets:
            if like is None:
                results.append(self._in_python(f"r[{position}]", op.ctx.input_shapes[position],
                                               op.ctx.input_dtypes[position]))
            else:
                results.append(self._in_python(f"fit(r[{position}], {tuple(like[0])!r}, "
                                               f"{self.generator.bind('dtype', like[1])})", like[0], like[1]))
        return results

    def _in_python(self, code, shape, dtype):
        """``w<n> = code`` in the wrapper's Python, and the Symbol of its value."""
        name = self.writer.fresh()
        self._run_in_python(f"{_py(name)} = {code}")
        return Symbol(self.writer, name, shape, dtype)

    def _write_step(self, step, leaves):
        """The optimizer's own formula on the kernel's arrays, one parameter at a time: written
        into the last kernel (``if update:``) where it is a few lines a parameter (SGD's), else
        as a kernel of its own per parameter, called when ``update`` (``step_calls``): those
        of parameters of one layout share one source, which numba compiles once (Adam's formula
        unrolled over a CNN's 12 parameters was 5.6 MB of machine code and most of the CNN's
        first call)."""
        each, width = step.count // len(leaves), len(step.state)
        params = [self._input(("tensor", leaf), leaf.shape, leaf.dtype) for _, leaf in leaves]
        alone = [self._step_kernel(step, k, leaf, each, width) for k, (_, leaf) in enumerate(leaves)]
        if max(lines for _, lines in alone) > STEP_LINES_IN_KERNEL:
            self.step_calls = [(code, [params[k].name, f"grad{k}"] + [f"h{k * each + j}" for j in range(each)]
                                + [f"m{k * width + j}" for j in range(width)]) for k, (code, _) in enumerate(alone)]
            return
        writer = self.writer
        writer.statement("if update:")
        first = len(writer.lines)
        for k, (_, leaf) in enumerate(leaves):
            with _formula(type(step.optimizer).__name__, "fused step"):
                step.formula(k, params[k], Symbol(writer, f"grad{k}", leaf.shape, leaf.dtype),
                             [Symbol(writer, f"h{k * each + j}", (), np.float64) for j in range(each)],
                             [Symbol(writer, f"m{k * width + j}", *step.arrays_like[k * width + j])
                              for j in range(width)])
        writer.lines[first:] = ["    " + line for line in writer.lines[first:]] or ["        pass"]

    def _step_kernel(self, step, k, leaf, each, width):
        """``(source, lines)``: a kernel taking parameter ``k``'s step alone, its arguments named
        for their role only (``param, grad, h<j>..., m<j>...``), so parameters of one layout get
        one source."""
        writer = Writer(self.writer.dtype)
        names = ["param", "grad"] + [f"h{j}" for j in range(each)] + [f"m{j}" for j in range(width)]
        with _formula(type(step.optimizer).__name__, "fused step"):
            step.formula(k, Symbol(writer, "param", leaf.shape, leaf.dtype),
                         Symbol(writer, "grad", leaf.shape, leaf.dtype),
                         [Symbol(writer, name, (), np.float64) for name in names[2:2 + each]],
                         [Symbol(writer, name, *step.arrays_like[k * width + j])
                          for j, name in enumerate(names[2 + each:])])
        if any(type(line) is PythonLine for line in writer.lines):
            raise NotLowered(f"{type(step.optimizer).__name__}'s fused step leaves the kernel")
        code = [f"def kernel({', '.join(names)}):", f"    real = np.{writer.dtype}"] + writer.lines
        return "\n".join(code) + "\n", len(writer.lines)

    def segments(self, returned, leaves, step):
        """The kernels and the Python regions between them, in order: ``(python, code,
        parameters, outputs)``; a kernel's parameters and outputs are the names of the values
        it takes and hands on (the last kernel writes the returned value into ``result`` and
        leaf ``n``'s gradient into ``grad<n>``, arrays its caller made, then, if asked, takes
        the optimizer's step)."""
        writer = self.writer
        if returned is not None:
            writer.statement(f"result[...] = {self.values[returned[1]].name}")
        for n, grad in enumerate(self.leaf_grads):
            writer.statement(f"grad{n}[...] = {grad.name}")
        if step is not None:
            self._write_step(step, leaves)
        runs = []
        for line in writer.lines:
            python = type(line) is PythonLine
            if runs and runs[-1][0] == python:
                runs[-1][1].append(line)
            else:
                runs.append((python, [line]))
        used = [set(_KERNEL_NAMES.findall("\n".join(lines))) if not python else
                {"t" + n for n in _PYTHON_NAMES.findall("\n".join(lines))} for python, lines in runs]
        segments, made = [], set()
        for index, (python, lines) in enumerate(runs):
            if python:
                segments.append((True, "\n".join(lines), (), ()))
                made |= used[index]
                continue
            assigned = [match.group(1) for match in map(_ASSIGNED.match, lines) if match]
            later = set().union(*used[index + 1:])
            parameters = [n for n in dict.fromkeys(_KERNEL_NAMES.findall("\n".join(lines)))
                          if not n.startswith("t") or n in made]
            outputs = [n for n in dict.fromkeys(assigned) if n in later]
            made |= set(assigned)
            code = [f"def kernel({', '.join(parameters)}):",
                    f"    real = np.{writer.dtype}"] + lines
            if outputs:
                code.append(f"    return ({''.join(o + ', ' for o in outputs)})")
            segments.append((False, "\n".join(code) + "\n", parameters, outputs))
        return segments


class _formula:
    """Names the op (and which formula) in the reason a program is not lowered."""

    def __init__(self, op, which):
        self.op, self.which = op, which

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is NotLowered:
            raise NotLowered(f"{self.op} ({self.which}): {error}") from None
        if kind is not None and issubclass(kind, (TypeError, ValueError, AttributeError, IndexError)):
            raise NotLowered(f"{self.op} ({self.which}) does not run on symbolic arrays: "
                             f"{kind.__name__}: {error}") from None
        return False
