"""The fused backend: a traced program's forward and backward passes as one numba kernel.

``autonet.compile(step, backend="fused")`` lowers what it can of a program
(see :mod:`.program`) into a single ``numba.njit`` function: the forward ops
and the backward pass run there without Python between them; side effects
(``zero_grad``, optimizer steps, delivering gradients to ``.grad``) run
around it exactly as in the NumPy replay. What this first version lowers:
float64 programs whose ops are elementwise arithmetic (with broadcasting),
``pow`` by a number, ``exp log tanh sigmoid relu``, 2-d ``matmul``,
``linear``, ``sum`` and ``mean``, and ``Tensor(...)`` of an input, with one
backward pass after every op, and only ``zero_grad`` calls before it. Any
other program runs the NumPy replay, and ``Program.listing()`` says why.
Results agree with eager mode to rounding (the kernel's sums and products
may be ordered differently); the tests hold them to 1e-12. Kernels are
compiled once: their sources go to :func:`cache_directory` and numba caches
the machine code beside them, so later processes load it.

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
        program.replay, program.fused_source = lower(program, program.generator)
        program.backend = "fused"
    except NotLowered as reason:
        program.backend = f"NumPy replay (not fused: {reason})"


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
    if returned is not None and (type(returned[0]) is tuple or returned[0] != "value"):
        raise NotLowered("the step returns something other than one computed value")
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
    text = _KERNEL_MODULE.format(source=source)
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


_KERNEL_MODULE = '''"""A fused training step, generated by autonet.compile (safe to delete)."""
import numba
import numpy as np

from autonet.compiler.kernels import ce_backward, ce_forward


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
    """The Python around the kernel: inputs in, calls before and after, gradients delivered."""
    before = [i for i in program.instructions[:cut] if type(i) is Call]
    after = [i for i in program.instructions[cut + 1:] if type(i) is Call]
    lines = ["def replay(args):"]
    inputs = [generator.source(source) for source in kernel.inputs]
    body = [f"    {generator.call(call)}" for call in before]
    if update is not None:
        optimizer, updates = update
        name = generator.bind("sgd", optimizer)
        body.append(f"    fuse_step = plain_step({name})")   # decided once, before the kernel runs
        inputs.append("fuse_step")
        inputs += [f"{name}.param_groups[{group}]['lr']" for group, _, _ in updates]
        generator.namespace["plain_step"] = _plain_step
        generator.namespace["finish_step"] = _finish_step
    body.append(f"    out = kernel({', '.join(inputs)})")
    if program.returned is not None:
        body.append("    result = Tensor._make(np.asarray(out[0]), None)")
    targets = ", ".join(generator.destination(leaf) for leaf in leaves)
    pairs = ", ".join(f"{i}: out[{i + 1}]" for i in range(len(leaves)))
    body.append(f"    grads = {{{pairs}}}")
    body.append("    del out")
    body.append(f"    deliver(grads, [{targets}])")
    if update is not None:   # the kernel took the SGD step if it was a plain one; else Python does
        body.append(f"    if fuse_step: finish_step({name})")
        body.append(f"    else: {generator.call(after[0])}")
        after = after[1:]
    body += [f"    {generator.call(call)}" for call in after]
    body.append("    return result" if program.returned is not None else "    return None")
    header = [f"    {name} = args{''.join(f'[{key!r}]' for key in path)}"
              f"{'.data' if path in generator.argument_tensors else ''}"
              for path, name in generator.arguments.items()]
    namespace = dict(generator.namespace, kernel=jitted, np=np, Tensor=Tensor,
                     deliver=_deliver_all)
    exec(compile("\n".join(lines + header + body) + "\n", "<autonet.compile fused wrapper>", "exec"),
         namespace)
    return namespace["replay"]


def _plain_step(optimizer):
    """True when the coming SGD step is ``p -= lr * grad`` with this pass's gradient alone (the
    kernel's fused update): no momentum, no weight decay, and no gradient accumulated before."""
    return all(not group["momentum"] and not group["weight_decay"]
               and all(p.grad is None for p in group["params"]) for group in optimizer.param_groups)


def _finish_step(optimizer):
    """What ``Optimizer.step`` does besides the arithmetic: state entries and versions."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            optimizer.state.setdefault(p, {})
            p._bump_version()


def _deliver_all(grads, tensors):
    for index, tensor in enumerate(tensors):
        ownership.deliver(grads, index, tensor, False)


class _Kernel:
    """Writes the kernel's source: one local per value, formulas spelled for numba."""

    def __init__(self, generator):
        self.generator = generator
        self.inputs = []          # sources passed in, in order
        self.input_names = {}     # their keys -> kernel parameter names
        self.lines = []
        self.operands = {}        # slot -> the kernel's names for its op's inputs

    def _input(self, source):
        kind, where = source
        if kind == "value":
            return f"v{where}"
        if kind == "const" and where is None:
            return "None"
        if kind == "const" and (type(where) in (int, float) or isinstance(where, np.floating)):
            return repr(float(where))
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
        if instruction.dtype != np.float64:
            raise NotLowered(f"a {instruction.dtype} tensor")
        if instruction.source[0] == "const":
            raise NotLowered("a tensor made from a Python value")
        # Tensor(x) copies, and makes bool and int data float64: astype does both
        self.lines.append(f"    v{instruction.slot} = {self._input(instruction.source)}.astype(np.float64)")

    def forward(self, op):
        ctx = op.ctx
        if ctx.dtype != np.float64:
            raise NotLowered(f"{op.fn.name} computes {ctx.dtype}")
        names = [self._input(source) for source in op.inputs]
        if op.fn.name not in _FORWARD:
            raise NotLowered(f"no fused formula for {op.fn.name!r}")
        formula = _FORWARD[op.fn.name]
        if op.fn.name in ("matmul", "linear") and (len(ctx.shape) != 2 or getattr(ctx, "ndims", (2, 2)) != (2, 2)):
            raise NotLowered(f"{op.fn.name} of other than 2-d operands")
        if op.fn.name == "cross_entropy":   # two results: the losses and the softmax, for backward
            if ctx.input_dtypes[1] is None or ctx.input_dtypes[1].kind not in "iu":
                raise NotLowered("cross_entropy with labels that are not integers")
            self.lines.append(f"    v{op.slot}, p{op.slot} = ce_forward({names[0]}, {names[1]})")
        else:
            self.lines.append(f"    v{op.slot} = {formula(names, op)}")
        self.operands[op.slot] = names

    def backward(self, instruction):
        seeds = {}
        for slot, seed in instruction.seeds:
            seeds[slot] = seed
            value = float(np.asarray(seed)) if np.ndim(seed) == 0 else None
            if value is None:
                raise NotLowered("a seed gradient with a shape")
            self.lines.append(f"    g{slot} = {value!r}")
        assigned = {f"g{slot}" for slot in seeds}
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
        parameters = [f"i{n}" for n in range(len(self.inputs))]
        lines = list(self.lines)
        if update is not None:   # SGD's step, p -= lr * grad, as Optimizer.step spells it
            parameters += ["update"] + [f"lr{k}" for k in range(len(update[1]))]
            lines.append("    if update:")
            for k, (_, name, leaf) in enumerate(update[1]):
                lines.append(f"        if lr{k} == 1.0:")
                lines.append(f"            {name} -= l{leaf}")
                lines.append("        else:")
                lines.append(f"            {name} -= lr{k} * l{leaf}")
        first = f"v{returned[1]}" if returned is not None else "0.0"
        results = ", ".join([first] + [f"l{n}" for n in range(leaf_count)])
        return "\n".join([f"def kernel({', '.join(parameters)}):"] + lines +
                         [f"    return ({results},)"]) + "\n"


def _fit(value, shape, target):
    """Code summing a gradient of ``shape`` back to the broadcast input's ``target`` shape."""
    shape, target = tuple(shape), tuple(target)
    if shape == target:
        return value
    if not target:
        return f"np.sum({value})"
    code, current = value, list(shape)
    while len(current) > len(target):
        code = f"np.sum({code}, axis=0)"
        current.pop(0)
    for axis in range(len(target) - 1, -1, -1):
        if target[axis] == 1 and current[axis] != 1:
            code = f"np.sum({code}, axis={axis})"
    return f"np.ascontiguousarray({code}).reshape({target!r})"


def _sum(names, op):
    ctx = op.ctx
    axes = sorted(ctx.axes, reverse=True)
    if len(axes) == len(ctx.in_shape):
        total = f"np.sum({names[0]})"
        return f"np.full({ctx.shape!r}, {total})" if ctx.keepdims and ctx.shape else total
    code = names[0]
    for axis in axes:
        code = f"np.sum({code}, axis={axis})"
    return f"np.ascontiguousarray({code}).reshape({ctx.shape!r})" if ctx.keepdims else code


def _spread(grad, op, divide=""):
    ctx = op.ctx
    kept = tuple(1 if i in ctx.axes else n for i, n in enumerate(ctx.in_shape))
    if not ctx.shape:
        return f"np.ones({ctx.in_shape!r}) * ({grad}{divide})"
    return f"np.ones({ctx.in_shape!r}) * np.ascontiguousarray({grad}{divide}).reshape({kept!r})"


def _power(names, op):
    exponent = names[1]
    return f"{names[0]} * {names[0]}" if exponent == "2.0" else f"{names[0]} ** {exponent}"


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
    "sigmoid": lambda n, op: f"np.exp(-np.logaddexp(0.0, -{n[0]}))",
    "relu": lambda n, op: f"np.maximum({n[0]}, 0.0)",
    "matmul": lambda n, op: f"np.dot(np.ascontiguousarray({n[0]}), np.ascontiguousarray({n[1]}))",
    "linear": lambda n, op: (f"np.dot(np.ascontiguousarray({n[0]}), np.ascontiguousarray({n[1]}))"
                             + (f" + {n[2]}" if n[2] != "None" else "")),
    "sum": _sum,
    "mean": lambda n, op: f"({_sum(n, op)}) / {float(op.ctx.count)!r}",
    "cross_entropy": None,   # written by _Kernel.forward (two results)
}


def _t(name):
    return f"np.ascontiguousarray({name}.T)"


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
    "tanh": lambda p, n, g, out, op: f"({g} * (1 - {out} * {out}))",
    "sigmoid": lambda p, n, g, out, op: f"({g} * {out} * (1 - {out}))",
    "relu": lambda p, n, g, out, op: f"({g} * ({n[0]} > 0))",
    "matmul": lambda p, n, g, out, op: (f"np.dot(np.ascontiguousarray({g}), {_t(n[1])})" if p == 0
                                        else f"np.dot({_t(n[0])}, np.ascontiguousarray({g}))"),
    "linear": lambda p, n, g, out, op: (f"np.dot(np.ascontiguousarray({g}), {_t(n[1])})" if p == 0
                                        else f"np.dot({_t(n[0])}, np.ascontiguousarray({g}))" if p == 1
                                        else g),   # the bias: summed by the fit, as in eager mode
    "cross_entropy": lambda p, n, g, out, op: (f"ce_backward({g}, p{op.slot}, {n[1]})" if p == 0
                                               else _refuse("labels")),
    "sum": lambda p, n, g, out, op: _spread(g, op),
    "mean": lambda p, n, g, out, op: _spread(g, op, f" / {float(op.ctx.count)!r}"),
}


def _pow_grad(names, grad):
    base, exponent = names
    if exponent == "2.0":
        return f"({grad} * (2 * {base}))"
    if exponent == "0.0":
        return f"({grad} * 0.0)"
    if not exponent.replace(".", "").replace("-", "").replace("e", "").isdigit():
        raise NotLowered("pow with a tensor exponent")
    return f"({grad} * {exponent} * {base} ** ({exponent} - 1))"


def _refuse(what):
    raise NotLowered(f"a gradient for {what}")
