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
larger ones through BLAS (see :mod:`.kernels`). Any other program, or one
numba cannot compile, runs the NumPy replay, and ``Program.listing()`` says
why. Results agree with eager
mode to rounding (the kernel's sums and products may be ordered
differently); the tests hold them to 1e-12 (float64) and 1e-5 (float32).
The kernel writes its results into fresh arrays the wrapper makes, which
become ``.grad`` uncopied. Kernels are compiled once: their sources go to
:func:`cache_directory` and numba caches the machine code beside them, so
later processes load it.

numba (and scipy, for its matrix products) come with ``pip install
autonet[fast]``; without them ``backend="fused"`` raises ``ImportError``.
"""
import hashlib
import importlib.util
import os
import sys
import tempfile

import numpy as np

from ..core import device as devices, ownership
from ..core.backward import fit
from ..core.function import Context
from ..core.tensor import Tensor
from .program import Backward, Call, Make, Op
from .symbolic import NotLowered, Symbol, Writer

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
    """Run ``program`` through a fused kernel from now on, or record why it cannot."""
    try:
        fused_replay, program.fused_source = lower(program, program.generator)
    except NotLowered as reason:
        program.backend = f"NumPy replay (not fused: {reason})"
        return
    numpy_replay = program.replay
    errors = require_numba().core.errors

    def replay(args):
        """numba compiles the kernel for each new kind of argument (dtype, layout) on the call
        that first brings it; where it cannot, the NumPy replay runs from then on (what ran
        before the kernel, ``zero_grad`` alone, then runs twice)."""
        try:
            return fused_replay(args)
        except errors.NumbaError as error:
            reason = str(error).strip().splitlines()[0]
            program.replay, program.backend = numpy_replay, f"NumPy replay (not fused: numba: {reason})"
            return numpy_replay(args)

    program.replay, program.backend = replay, "fused"


def lower(program, generator):
    """``(replay, kernel source)`` running ``program`` through one numba kernel, or ``NotLowered``."""
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
        if type(instruction) not in (Op, Make, Call):
            raise NotLowered(f"a {type(instruction).__name__} instruction before backward")
    if any(type(i) in (Op, Make, Backward) for i in instructions[cut + 1:]):
        raise NotLowered("ops after the backward pass")
    kernel = _Kernel(generator)
    for instruction in instructions[:cut]:
        if type(instruction) is Op:
            kernel.forward(instruction)
        elif type(instruction) is Make:
            kernel.make(instruction)
    leaves = kernel.backward(instructions[cut])
    returned = program.returned
    if returned is not None:
        if type(returned[0]) is tuple or returned[0] != "value" or returned[1] not in kernel.values:
            raise NotLowered("the step returns something other than one value an op computed")
    step = _optimizer_step(instructions[cut + 1:], leaves)
    source = kernel.source(returned, leaves, step)
    jitted = _compiled(source)
    return _wrapper(program, generator, kernel, jitted, leaves, cut, step), source


def cache_directory():
    """Where kernels' sources (and numba's compiled code, beside them) are kept:
    ``$AUTONET_CACHE_DIR``, else ``~/.cache/autonet/fused``."""
    return os.environ.get("AUTONET_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "autonet", "fused")


def _compiled(source):
    """The kernel, jitted with numba's on-disk cache: its source is written to a file named by
    its hash, so a later process (or trace) with the same program loads the compiled code.

    The file is trusted only when its content is exactly the source it should hold (a
    truncated, edited or foreign file is written anew, atomically), and only in a directory
    that is this user's alone (created 0700). Where the cache cannot be used, the kernel is
    compiled in memory instead."""
    text = _KERNEL_MODULE.format(source=source, helpers=_helpers_digest())
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


def _wrapper(program, generator, kernel, jitted, leaves, cut, step):
    """The Python around the kernel: inputs in, calls before and after, gradients delivered.

    The kernel writes its results into arrays made here (a numba-made array returned to
    Python costs about a microsecond to box): fresh ones, so each gradient is handed over
    to ``.grad`` uncopied, as the NumPy replay hands over its own.
    """
    first_op = next(i for i, instruction in enumerate(program.instructions)
                    if type(instruction) in (Op, Make, Backward))
    before = [i for i in program.instructions[:cut] if type(i) is Call]
    late = any(type(i) is Call for i in program.instructions[first_op:cut])
    after = [i for i in program.instructions[cut + 1:] if type(i) is Call]
    lines = ["def replay(args):"]
    inputs = [generator.source(source) for source in kernel.inputs]
    body = []
    if late:   # a zero_grad after forward ops runs before the kernel: where the kernel raises,
        body.append("    kept = grads_of([" + ", ".join(   # the gradients eager mode left are back
            generator.destination(call.arguments[0]) if call.arguments[0][0] == "object"
            else generator.source(call.arguments[0]) for call in before if call.arguments) + "])")
    body += [f"    {generator.call(call)}" for call in before]
    if program.returned is not None:
        value = kernel.values[program.returned[1]]
        body.append(f"    result = empty({value.shape!r}, {generator.bind('dtype', value.dtype)})")
        inputs.append("result")
    buffers = ", ".join(f"{n}: {_buffer(leaf, generator)}" for n, leaf in enumerate(leaves))
    body.append(f"    grads = {{{buffers}}}")
    inputs += [f"grads[{n}]" for n in range(len(leaves))]
    if step is not None:
        name = generator.bind("step", step)
        body.append(f"    fuse_step = {name}.applies()")   # decided before the kernel runs
        inputs.append("fuse_step")
        optimizer = generator.bind("optimizer", step.optimizer)
        inputs += [f"{optimizer}.param_groups[{group}][{setting!r}]" for group, setting in step.settings]
    if late:
        body += ["    try:", f"        kernel({', '.join(inputs)})",
                 "    except BaseException:", "        restore(kept)", "        raise"]
    else:
        body.append(f"    kernel({', '.join(inputs)})")
    body += [f"    deliver(grads, {n}, {generator.destination(leaf)}, False)"   # claimed uncopied
             for n, leaf in enumerate(leaves)]
    if step is not None:   # the kernel took the step if it applied; else Python does
        body.append(f"    if fuse_step: {name}.finish()")
        body.append(f"    else: {generator.call(after[0])}")
        after = after[1:]
    body += [f"    {generator.call(call)}" for call in after]
    body.append("    return Tensor._make(result, None)" if program.returned is not None else "    return None")
    header = [f"    {name} = args{''.join(f'[{key!r}]' for key in path)}"
              f"{'.data' if path in generator.argument_tensors else ''}"
              for path, name in generator.arguments.items()]
    namespace = dict(generator.namespace, kernel=jitted, empty=np.empty, Tensor=Tensor,
                     deliver=ownership.deliver, grads_of=_grads_of, restore=_restore)
    exec(compile("\n".join(lines + header + body) + "\n", "<autonet.compile fused wrapper>", "exec"),
         namespace)
    return namespace["replay"]


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


class _Kernel:
    """Writes the kernel's source by running the ops' formulas on symbolic arrays."""

    def __init__(self, generator):
        self.generator = generator
        self.inputs = []          # sources passed in, in order
        self.symbols = {}         # their keys -> the kernel parameter's Symbol
        self.values = {}          # slot -> the Symbol of that value
        self.contexts = {}        # slot -> the symbolic run's Context (what backward reads)
        self.writer = None        # made with the program's dtype, at the first value

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

    def make(self, instruction):
        self._floating(instruction.dtype, "Tensor(...)")
        if instruction.source[0] == "const":
            raise NotLowered("a tensor made from a Python value")
        source = self._input(instruction.source, instruction.shape, instruction.source_dtype)
        # Tensor(x) copies, and makes bool and int data floating: astype does both
        self.values[instruction.slot] = self.writer.emit(f"{source.name}.astype(real)", source.shape,
                                                         self.writer.dtype)

    def forward(self, op):
        """``op``'s own forward formula, on Symbols."""
        traced = op.ctx
        self._floating(traced.dtype, op.fn.name)
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

    def backward(self, instruction):
        """Each op's own backward formula on Symbols, gradients fitted and summed as the engine
        does; returns the leaves, in the order their gradients are written out."""
        grads = {}
        for slot, seed in instruction.seeds:
            if np.ndim(seed) != 0:
                raise NotLowered("a seed gradient with a shape")
            grads[slot] = self.writer.emit(self.writer.literal(float(np.asarray(seed))), (),
                                           self.writer.dtype)
        leaves, leaf_keys = [], {}
        for op, targets in instruction.steps:
            with _formula(op.fn.name, "backward"):
                results = op.fn.backward(self.contexts[op.slot], grads[op.slot])
                if type(results) is not tuple:
                    results = (results,)
                for position, target, like in targets:
                    value = results[position]
                    if like is not None:
                        value = fit(value, tuple(like[0]), like[1])
                    if type(target) is not int:
                        key = (target[0], target[1] if target[0] == "arg" else id(target[1]))
                        if key not in leaf_keys:
                            leaf_keys[key] = ("leaf", len(leaves))
                            leaves.append(target)
                        target = leaf_keys[key]
                    grads[target] = grads[target] + value if target in grads else value
        self.leaf_grads = [grads[("leaf", n)] for n in range(len(leaves))]
        return leaves

    def source(self, returned, leaves, step):
        """The kernel: it writes the returned value into ``result`` and leaf ``n``'s gradient
        into ``grad{n}``, arrays its caller made, then, if asked, the optimizer's step."""
        writer = self.writer
        parameters = [f"i{n}" for n in range(len(self.inputs))]
        if returned is not None:
            parameters.append("result")
            writer.statement(f"result[...] = {self.values[returned[1]].name}")
        parameters += [f"grad{n}" for n in range(len(leaves))]
        for n, grad in enumerate(self.leaf_grads):
            writer.statement(f"grad{n}[...] = {grad.name}")
        if step is not None:   # the optimizer's own formula, on the kernel's arrays
            parameters += ["update"] + [f"h{k}" for k in range(len(leaves))]
            writer.statement("if update:")
            first = len(writer.lines)
            params = [self.symbols.get(("tensor", id(leaf))) for _, leaf in leaves]
            if any(p is None for p in params):
                raise NotLowered("the optimizer steps a parameter the kernel does not read")
            buffers = [Symbol(writer, f"grad{n}", leaf.shape, leaf.dtype) for n, (_, leaf) in enumerate(leaves)]
            with _formula(type(step.optimizer).__name__, "fused step"):
                step.formula(params, buffers, [Symbol(writer, f"h{k}", (), np.float64) for k in range(len(leaves))])
            writer.lines[first:] = ["    " + line for line in writer.lines[first:]] or ["        pass"]
        header = [f"def kernel({', '.join(parameters)}):", f"    real = np.{writer.dtype}"]
        return "\n".join(header + writer.lines) + "\n"


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
