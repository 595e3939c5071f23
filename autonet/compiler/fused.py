"""The fused backend: a traced program's forward and backward passes as one numba kernel.

``autonet.compile(step, backend="fused")`` lowers what it can of a program
(see :mod:`.program`) into a single ``numba.njit`` function: the forward ops
and the backward pass run there without Python between them; side effects
(``zero_grad``, optimizer steps, delivering gradients to ``.grad``) run
around it exactly as in the NumPy replay. What this version lowers:
float64 or float32 programs (one dtype throughout; numbers take it, as in
NumPy) whose ops are elementwise arithmetic (with broadcasting), ``pow`` by
a number, ``exp log tanh sigmoid relu``, 2-d ``matmul``, ``linear``, ``sum``,
``mean`` and ``cross_entropy``, and ``Tensor(...)`` of an input, with one
backward pass after every op, and only ``zero_grad`` calls before it. Small
matrix products run as loops, larger ones through BLAS (see
:mod:`.kernels`). Any other program, or one numba cannot compile, runs the
NumPy replay, and ``Program.listing()`` says why. Results agree with eager
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
from ..core.tensor import Tensor
from .program import Backward, Call, Make, Op

_INSTALL = "the fused backend needs numba and scipy: pip install autonet[fast]"


def require_numba():
    """numba, or ``ImportError`` saying how to install it."""
    try:
        import numba
        import scipy  # noqa: F401 - numba's np.dot needs scipy's BLAS
    except ImportError as missing:
        raise ImportError(_INSTALL) from missing
    return numba


class NotLowered(Exception):
    """Why a program stays on the NumPy replay."""


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
        if type(returned[0]) is tuple or returned[0] != "value" or returned[1] not in kernel.contexts:
            raise NotLowered("the step returns something other than one value an op computed")
        kernel.returned_ctx = kernel.contexts[returned[1]]
    update = _plain_sgd_update(instructions[cut + 1:], leaves, kernel)
    source = kernel.source(returned, len(leaves), update)
    jitted = _compiled(source)
    return _wrapper(program, generator, kernel, jitted, leaves, cut, update), source


def cache_directory():
    """Where kernels' sources (and numba's compiled code, beside them) are kept:
    ``$AUTONET_CACHE_DIR``, else ``~/.cache/autonet/fused``."""
    return os.environ.get("AUTONET_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "autonet", "fused")


def _compiled(source):
    """The kernel, jitted with numba's on-disk cache: its source is written to a file named by
    its hash, so a later process (or trace) with the same program loads the compiled code.
    Where the cache cannot be written, the kernel is compiled in memory instead."""
    text = _KERNEL_MODULE.format(source=source, helpers=_helpers_digest())
    directory = cache_directory()
    path = os.path.join(directory, "kernel_" + hashlib.sha256(text.encode()).hexdigest()[:24] + ".py")
    try:
        if not os.path.exists(path):
            os.makedirs(directory, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(handle, "w") as file:
                file.write(text)
            os.replace(temporary, path)
        name = "autonet_fused_" + os.path.basename(path)[:-3]
        module = sys.modules.get(name)
        if module is None:   # registered first: numba's cache finds the module by name when loading
            spec = importlib.util.spec_from_file_location(name, path)
            module = sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        return module.kernel
    except OSError:
        namespace = {}
        exec(compile(text.replace("@numba.njit(cache=True)\n", ""), "<autonet.compile fused>", "exec"),
             namespace)
        return require_numba().njit(namespace["kernel"])


def _helpers_digest():
    """A digest of kernels.py, written into each kernel's file: numba's cache checks a kernel's
    own file only, so a changed helper must change the file's name (its hash) too."""
    with open(os.path.join(os.path.dirname(__file__), "kernels.py"), "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()[:16]


_KERNEL_MODULE = '''"""A fused training step, generated by autonet.compile (safe to delete)."""
# autonet/compiler/kernels.py: {helpers}
import numba
import numpy as np

from autonet.compiler.kernels import ce_backward, ce_forward, dot, linear, sgd_step, summed


@numba.njit(cache=True)
{source}'''


def _plain_sgd_update(after, leaves, kernel):
    """``(optimizer, [(group index, kernel input, leaf)])`` when the call right after backward is
    an SGD step over exactly the leaves, which the kernel may then apply itself (when, at
    call time, the step is plain: no momentum, no weight decay, gradients fresh)."""
    from ..optim.sgd import SGD

    if not after or after[0].method.__name__ != "step" or after[0].arguments[:1] == ():
        return None
    kind, optimizer = after[0].arguments[0]
    if kind != "const" or type(optimizer) is not SGD or after[0].settings:
        return None
    groups = {id(p): g for g, group in enumerate(optimizer.param_groups) for p in group["params"]}
    updates = []
    for number, (kind, leaf) in enumerate(leaves):
        name = kernel.input_names.get(("tensor", id(leaf))) if kind == "tensor" else None
        if name is None or id(leaf) not in groups or leaf.ndim == 0:
            return None
        updates.append((groups[id(leaf)], name, number))
    if len(updates) != len(groups):
        return None
    return optimizer, updates


def _wrapper(program, generator, kernel, jitted, leaves, cut, update):
    """The Python around the kernel: inputs in, calls before and after, gradients delivered.

    The kernel writes its results into arrays made here (a numba-made array returned to
    Python costs about a microsecond to box): fresh ones, so each gradient is handed over
    to ``.grad`` uncopied, as the NumPy replay hands over its own.
    """
    before = [i for i in program.instructions[:cut] if type(i) is Call]
    after = [i for i in program.instructions[cut + 1:] if type(i) is Call]
    lines = ["def replay(args):"]
    inputs = [generator.source(source) for source in kernel.inputs]
    body = [f"    {generator.call(call)}" for call in before]
    if program.returned is not None:
        ctx = kernel.returned_ctx
        body.append(f"    result = empty({tuple(ctx.shape)!r}, {generator.bind('dtype', ctx.dtype)})")
        inputs.append("result")
    buffers = ", ".join(f"{n}: {_buffer(leaf, generator)}" for n, leaf in enumerate(leaves))
    body.append(f"    grads = {{{buffers}}}")
    inputs += [f"grads[{n}]" for n in range(len(leaves))]
    if update is not None:
        optimizer, updates = update
        name = generator.bind("sgd", optimizer)
        traced = generator.bind("params", tuple(tuple(g["params"]) for g in optimizer.param_groups))
        body.append(f"    fuse_step = plain_step({name}, {traced})")   # decided before the kernel runs
        inputs.append("fuse_step")
        inputs += [f"{name}.param_groups[{group}]['lr']" for group, _, _ in updates]
        generator.namespace["plain_step"] = _plain_step
        generator.namespace["finish_step"] = _finish_step
    body.append(f"    kernel({', '.join(inputs)})")
    body += [f"    deliver(grads, {n}, {generator.destination(leaf)}, False)"   # claimed uncopied
             for n, leaf in enumerate(leaves)]
    if update is not None:   # the kernel took the SGD step if it was a plain one; else Python does
        body.append(f"    if fuse_step: finish_step({name})")
        body.append(f"    else: {generator.call(after[0])}")
        after = after[1:]
    body += [f"    {generator.call(call)}" for call in after]
    body.append("    return Tensor._make(result, None)" if program.returned is not None else "    return None")
    header = [f"    {name} = args{''.join(f'[{key!r}]' for key in path)}"
              f"{'.data' if path in generator.argument_tensors else ''}"
              for path, name in generator.arguments.items()]
    namespace = dict(generator.namespace, kernel=jitted, empty=np.empty, Tensor=Tensor,
                     deliver=ownership.deliver)
    exec(compile("\n".join(lines + header + body) + "\n", "<autonet.compile fused wrapper>", "exec"),
         namespace)
    return namespace["replay"]


def _buffer(leaf, generator):
    """Code making the fresh array a leaf's gradient is written into: the leaf's shape and dtype
    (fixed by the guards for lasting tensors, by the call signature for arguments)."""
    kind, where = leaf
    if kind == "tensor":
        return f"empty({where.shape!r}, {generator.bind('dtype', where.dtype)})"
    data = generator.source(leaf)
    return f"empty({data}.shape, {data}.dtype)"


def _plain_step(optimizer, traced):
    """True when the coming SGD step is ``p -= lr * grad`` over the kernel's parameters with
    this pass's gradients alone (the kernel's fused update): the groups still hold the
    parameters ``traced`` (not one added or removed since), no momentum, no weight decay, and
    no gradient accumulated before."""
    groups = optimizer.param_groups
    if len(groups) != len(traced):
        return False
    for group, params in zip(groups, traced):   # loops, not all(...): this runs on every call
        if group["momentum"] or group["weight_decay"] or len(group["params"]) != len(params):
            return False
        for p, kept in zip(group["params"], params):
            if p is not kept or p.grad is not None:
                return False
    return True


def _finish_step(optimizer):
    """What ``Optimizer.step`` does besides the arithmetic: state entries and versions."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            optimizer.state.setdefault(p, {})
            p._bump_version()


class _Kernel:
    """Writes the kernel's source: one local per value, formulas spelled for numba."""

    def __init__(self, generator):
        self.generator = generator
        self.inputs = []          # sources passed in, in order
        self.input_names = {}     # their keys -> kernel parameter names
        self.lines = []
        self.operands = {}        # slot -> the kernel's names for its op's inputs
        self.contexts = {}        # slot -> its op's context (shape and dtype of the value)
        self.returned_ctx = None
        self.dtype = None         # every value's: float64 or float32, spelled `real` in the kernel

    def _floating(self, dtype, what):
        """Check that ``what`` computes the program's one floating dtype (float64 or float32)."""
        if dtype not in (np.float64, np.float32):
            raise NotLowered(f"{what} computes {dtype}")
        if self.dtype is None:
            self.dtype = np.dtype(dtype)
        elif dtype != self.dtype:
            raise NotLowered(f"{what} computes {dtype} in a {self.dtype} program")

    def _input(self, source):
        kind, where = source
        if kind == "value":
            return f"v{where}"
        if kind == "const" and where is None:
            return "None"
        if kind == "const" and (type(where) in (int, float) or isinstance(where, np.floating)):
            if not np.isfinite(where):
                raise NotLowered(f"the constant {where}")
            return f"real({float(where)!r})"   # a number takes the program's dtype, as in NumPy
        if kind == "const":
            raise NotLowered(f"a constant {type(where).__name__}")
        if kind not in ("arg", "tensor", "state"):
            raise NotLowered(f"an input of kind {kind}")
        key = (kind, where) if kind == "arg" else (kind, id(where))   # tensors compare by value
        if key not in self.input_names:
            self.input_names[key] = f"i{len(self.inputs)}"
            self.inputs.append(source)
        return self.input_names[key]

    def make(self, instruction):
        self._floating(instruction.dtype, "Tensor(...)")
        if instruction.source[0] == "const":
            raise NotLowered("a tensor made from a Python value")
        # Tensor(x) copies, and makes bool and int data floating: astype does both
        self.lines.append(f"    v{instruction.slot} = {self._input(instruction.source)}.astype(real)")

    def forward(self, op):
        ctx = op.ctx
        self._floating(ctx.dtype, op.fn.name)
        names = [self._input(source) for source in op.inputs]
        if op.fn.name not in _FORWARD:
            raise NotLowered(f"no fused formula for {op.fn.name!r}")
        formula = _FORWARD[op.fn.name]
        if op.fn.name in ("matmul", "linear"):
            if len(ctx.shape) != 2 or getattr(ctx, "ndims", (2, 2)) != (2, 2):
                raise NotLowered(f"{op.fn.name} of other than 2-d operands")
            if any(dtype is not None and dtype != ctx.dtype for dtype in ctx.input_dtypes):
                raise NotLowered(f"{op.fn.name} of {' and '.join(str(d) for d in ctx.input_dtypes if d)}"
                                 f" operands")   # the kernel's loops would compute in the first's
        if op.fn.name == "cross_entropy":   # two results: the losses and the softmax, for backward
            if ctx.input_dtypes[1] is None or ctx.input_dtypes[1].kind not in "iu":
                raise NotLowered("cross_entropy with labels that are not integers")
            self.lines.append(f"    v{op.slot}, p{op.slot} = ce_forward({names[0]}, {names[1]})")
        else:
            self.lines.append(f"    v{op.slot} = {formula(names, op)}")
        self.operands[op.slot] = names
        self.contexts[op.slot] = ctx

    def backward(self, instruction):
        for slot, seed in instruction.seeds:
            if np.ndim(seed) != 0:
                raise NotLowered("a seed gradient with a shape")
            self.lines.append(f"    g{slot} = real({float(np.asarray(seed))!r})")
        assigned = {f"g{slot}" for slot, _ in instruction.seeds}
        leaves, leaf_names = [], {}
        for op, targets in instruction.steps:
            names = self.operands[op.slot]
            for position, target, like in targets:
                formula = _BACKWARD.get(op.fn.name)
                if formula is None:
                    raise NotLowered(f"no fused gradient for {op.fn.name!r}")
                value = formula(position, names, f"g{op.slot}", f"v{op.slot}", op)
                if like is not None:
                    value = _fit(value, op.ctx.shape, like[0])
                if type(target) is int:
                    variable = f"g{target}"
                else:
                    key = (target[0], target[1] if target[0] == "arg" else id(target[1]))
                    if key not in leaf_names:
                        leaf_names[key] = f"l{len(leaves)}"
                        leaves.append(target)
                    variable = leaf_names[key]
                if variable in assigned:
                    self.lines.append(f"    {variable} = {variable} + {value}")
                else:
                    self.lines.append(f"    {variable} = {value}")
                    assigned.add(variable)
        return leaves

    def source(self, returned, leaf_count, update):
        """The kernel: it writes the returned value into ``result`` and leaf ``n``'s gradient
        into ``grad{n}``, arrays its caller made, then takes SGD's step if asked."""
        parameters = [f"i{n}" for n in range(len(self.inputs))]
        lines = list(self.lines)
        if returned is not None:
            parameters.append("result")
            lines.append(f"    result[...] = v{returned[1]}")
        parameters += [f"grad{n}" for n in range(leaf_count)]
        lines += [f"    grad{n}[...] = l{n}" for n in range(leaf_count)]
        if update is not None:   # SGD's step, p -= lr * grad, as Optimizer.step spells it
            parameters += ["update"] + [f"lr{k}" for k in range(len(update[1]))]
            lines.append("    if update:")
            for k, (_, name, leaf) in enumerate(update[1]):
                lines.append(f"        if lr{k} == 1.0:")
                lines.append(f"            {name} -= grad{leaf}")
                lines.append("        else:")
                lines.append(f"            sgd_step({name}, grad{leaf}, real(lr{k}))")
        header = [f"def kernel({', '.join(parameters)}):", f"    real = np.{self.dtype or 'float64'}"]
        return "\n".join(header + lines) + "\n"


def _fit(value, shape, target):
    """Code summing a gradient of ``shape`` back to the broadcast input's ``target`` shape."""
    shape, target = tuple(shape), tuple(target)
    if shape == target:
        return value
    if not target:
        return f"summed({value}, None)"
    code, current = value, list(shape)
    while len(current) > len(target):
        code = f"summed({code}, 0)"
        current.pop(0)
    for axis in range(len(target) - 1, -1, -1):
        if target[axis] == 1 and current[axis] != 1:
            code = f"summed({code}, {axis})"
    return f"np.ascontiguousarray({code}).reshape({target!r})"


def _sum(names, op):
    ctx = op.ctx
    axes = sorted(ctx.axes, reverse=True)
    if len(axes) == len(ctx.in_shape):
        total = f"summed({names[0]}, None)"
        return f"np.full({ctx.shape!r}, {total}, real)" if ctx.keepdims and ctx.shape else total
    code = names[0]
    for axis in axes:
        code = f"summed({code}, {axis})"
    return f"np.ascontiguousarray({code}).reshape({ctx.shape!r})" if ctx.keepdims else code


def _spread(grad, op, divide=""):
    ctx = op.ctx
    kept = tuple(1 if i in ctx.axes else n for i, n in enumerate(ctx.in_shape))
    if not ctx.shape:
        return f"np.ones({ctx.in_shape!r}, real) * ({grad}{divide})"
    return f"np.ones({ctx.in_shape!r}, real) * np.ascontiguousarray({grad}{divide}).reshape({kept!r})"


def _power(names, op):
    exponent = names[1]
    return f"{names[0]} * {names[0]}" if exponent == "real(2.0)" else f"{names[0]} ** {exponent}"


_FORWARD = {
    "add": lambda n, op: f"{n[0]} + {n[1]}",
    "sub": lambda n, op: f"{n[0]} - {n[1]}",
    "mul": lambda n, op: f"{n[0]} * {n[1]}",
    "div": lambda n, op: f"{n[0]} / {n[1]}",
    "neg": lambda n, op: f"-{n[0]}",
    "pow": _power,
    "exp": lambda n, op: f"np.exp({n[0]})",
    "log": lambda n, op: f"np.log({n[0]})",
    "tanh": lambda n, op: f"np.tanh({n[0]})",
    "sigmoid": lambda n, op: f"np.exp(-np.logaddexp(real(0), -{n[0]}))",
    "relu": lambda n, op: f"np.maximum({n[0]}, real(0))",
    "matmul": lambda n, op: f"dot({n[0]}, {n[1]})",
    "linear": lambda n, op: f"linear({n[0]}, {n[1]}, {n[2]})" if n[2] != "None" else f"dot({n[0]}, {n[1]})",
    "sum": _sum,
    "mean": lambda n, op: f"({_sum(n, op)}) / real({op.ctx.count})",
    "cross_entropy": None,   # written by _Kernel.forward (two results)
}


_BACKWARD = {
    "add": lambda p, n, g, out, op: g,
    "sub": lambda p, n, g, out, op: g if p == 0 else f"(-{g})",
    "mul": lambda p, n, g, out, op: f"({g} * {n[1 - p]})",
    "div": lambda p, n, g, out, op: (f"({g} / {n[1]})" if p == 0
                                     else f"(-{g} * {n[0]} / ({n[1]} * {n[1]}))"),
    "neg": lambda p, n, g, out, op: f"(-{g})",
    "pow": lambda p, n, g, out, op: (_pow_grad(n, g) if p == 0 else _refuse("pow's exponent")),
    "exp": lambda p, n, g, out, op: f"({g} * {out})",
    "log": lambda p, n, g, out, op: f"({g} / {n[0]})",
    "tanh": lambda p, n, g, out, op: f"({g} * (real(1) - {out} * {out}))",
    "sigmoid": lambda p, n, g, out, op: f"({g} * {out} * (real(1) - {out}))",
    "relu": lambda p, n, g, out, op: f"np.where({n[0]} <= 0, real(0), {g})",   # as eager: a select
    "matmul": lambda p, n, g, out, op: f"dot({g}, {n[1]}.T)" if p == 0 else f"dot({n[0]}.T, {g})",
    "linear": lambda p, n, g, out, op: (f"dot({g}, {n[1]}.T)" if p == 0 else f"dot({n[0]}.T, {g})" if p == 1
                                        else g),   # the bias: summed by the fit, as in eager mode
    "cross_entropy": lambda p, n, g, out, op: (f"ce_backward({g}, p{op.slot}, {n[1]})" if p == 0
                                               else _refuse("labels")),
    "sum": lambda p, n, g, out, op: _spread(g, op),
    "mean": lambda p, n, g, out, op: _spread(g, op, f" / real({op.ctx.count})"),
}


def _pow_grad(names, grad):
    base, exponent = names
    if exponent == "real(2.0)":
        return f"({grad} * (real(2) * {base}))"
    if exponent == "real(0.0)":
        return f"({grad} * real(0))"
    if not exponent.startswith("real("):
        raise NotLowered("pow with a tensor exponent")
    return f"({grad} * {exponent} * {base} ** ({exponent} - real(1)))"


def _refuse(what):
    raise NotLowered(f"a gradient for {what}")
