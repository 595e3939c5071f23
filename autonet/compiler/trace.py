"""Tracing: one eager run of the step, with every input classified as it enters.

An op's input, a ``Tensor(...)``'s source and an op's settings (an index, a
bound) are each one of:

- ``("value", slot)``: computed by an op (or ``Tensor(...)``) of this step;
- ``("arg", path)``: an argument of this call (a Tensor's data, an ndarray);
- ``("tensor", t)``: a tensor that lives across calls (a parameter), read by
  reference (``t.data``) on every replay; its shape, dtype and
  ``requires_grad`` are guarded;
- ``("state", array)``: an ndarray that lives across calls (or a view of one,
  such as ``mask[:n]``), read by reference;
- ``("const", value)``: a Python value (number, list, slice, ``np.float64``);
- ``("saved", (op, index))``: what op ``op`` saved for its backward formula, as a
  ``create_graph`` pass (``autonet.grad(..., create_graph=True)``) reads it.

Everything else is refused, for a known reason: an array computed with NumPy
inside the step (it is marked, see :mod:`.marks`, or it was allocated during
the trace), a ``.grad`` array used as an operand, a leaf requiring grad made
inside the step.

Arrays on a device (CuPy's) cannot be marked, so NumPy's use of them cannot be
followed: on a device, the step's arguments must be Tensors, its code may not
read ``.data`` / ``.grad``, and a device array that is not a Tensor's own
reaching an op is refused. What is left (Tensors, autonet's ops, modules,
optimizers) is followed exactly as on the CPU.
"""
import contextlib
import tracemalloc
import types

import numpy as np

from ..core import device as devices
from ..core.context import Context
from ..core.state import Observer
from ..core.tensor import Tensor, watched
from .arguments import describe, leaves, rebuild
from .draws import GENERATORS
from .errors import CompileError
from .marks import Marked, mark
from .program import Backward, Call, Copy, Make, Op
from .severed import severed_node


def _root_origin(origin):
    """The input an origin reads, through any reshaping or slicing (``"part"``)."""
    while origin[0] == "part":
        origin = origin[1][0]
    return origin


def _scalar_output(ctx, output):
    """How a replay makes the op's 0-d output an array again, as ``as_output_array`` did:
    ``False`` (not 0-d), ``"array"`` (``np.asarray`` of NumPy's scalar is enough) or
    ``"saved"`` (the formula saved its output, or it lives on a device: ``as_output_array``)."""
    if output.ndim:
        return False
    saved = type(output) is not np.ndarray or any(value is output for value in ctx.saved)
    return "saved" if saved else "array"


@contextlib.contextmanager
def births():
    """Record allocations (``tracemalloc``) so that arrays made during the trace are known."""
    if tracemalloc.is_tracing():
        yield False         # someone else's trace: births cannot be told apart
        return
    tracemalloc.start()
    try:
        yield True
    finally:
        tracemalloc.stop()


class _CallResult(float):
    """A number a replayable call returned while tracing: any use of it raises (see call_result)."""

    def __new__(cls, value, who):
        number = super().__new__(cls, value)
        number.who = who
        return number

    def refuse(self, how, *args):
        raise CompileError(
            f"the step uses the number returned by a replayed call ({self.who}: clip_grad_norm_'s "
            f"total norm, say) ({how}); a replay would keep this call's value. Compute it outside "
            f"the compiled step, or leave it unused")


def _refusing(name):
    def refuse(self, *args):
        self.refuse(f"{name.strip('_')}")
    refuse.__name__ = name
    return refuse


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__",
              "__rpow__", "__neg__", "__pos__", "__abs__", "__float__", "__int__", "__bool__",
              "__round__", "__trunc__", "__floor__", "__ceil__", "__eq__", "__ne__", "__lt__",
              "__le__", "__gt__", "__ge__", "__str__", "__repr__", "__format__", "__hash__",
              "__divmod__", "__rdivmod__", "as_integer_ratio", "hex", "is_integer", "conjugate"):
    setattr(_CallResult, _name, _refusing(_name))
del _name


# ------------------------------------------------------------------ the tracer
class Tracer(Observer):
    """Collects the events of one eager run of the step (it observes the engine)."""

    marks_arrays = True   # marked arrays refuse value reads while it traces (see .marks)

    def __init__(self, args, know_births, draws=None):
        self.know_births = know_births
        self.draws = draws       # the random generators watched for draws in the step's Python
        self.instructions = []
        self.known = {}          # id(Tensor or array) -> its source
        self.alive = [args]      # keeps every id in `known` unique until the trace ends
        self.externals = {}      # id(tensor) -> (tensor, shape, dtype, requires_grad)
        self.contexts = {}       # id(op node) -> slot
        self.ops = {}            # slot -> its Op
        self.argument_tensors = {}   # id(Tensor argument) -> path
        self.differentiable_arguments = []   # paths of Tensor arguments that require grad
        self.differentiated = set()  # ids of the nodes a backward pass of the step ran
        self.modes = {}          # id(module) -> (module, its training flag when first called)
        self.whole_arrays = set()    # ids of the lasting arrays (and their memory) ops read whole
        self.not_constant = set()    # ids of constructors' arrays made from arrays or tensors
        self.depth = 0           # replayable calls running: what happens inside them, they redo
        self.second_order = False    # an autonet.grad pass ran (the program stays on the replay)
        self.slots = 0
        self.args = rebuild(args, self._enter)

    def _enter(self, path, leaf):
        """An argument as the step sees it: ndarrays become marked views of themselves."""
        source = ("arg", path)
        if isinstance(leaf, Tensor):
            self.argument_tensors[id(leaf)] = path
            if leaf.requires_grad:
                self.differentiable_arguments.append(path)
            self.known[id(leaf)] = self.known[id(leaf._data)] = source
            return leaf
        if isinstance(leaf, np.ndarray):
            view = mark(leaf, describe(path), origin=source)
            self.known[id(view)] = source
            self.alive.append(view)
            return view
        if devices.is_foreign(leaf):
            raise CompileError(
                f"{describe(path)} is a {devices.device_of(leaf)} array; NumPy's work on device "
                f"arrays cannot be followed by a trace, so pass it as a Tensor (Tensor(array) "
                f"keeps it on its device)")
        return leaf

    def running(self):
        """The block in which the step runs: its reads of ``.data`` / ``.grad`` come here."""
        return watched(self)

    def read_slot(self, tensor, name, value):
        """The step's code reads ``tensor.data`` or ``tensor.grad`` (``value``, not None): a
        marked view (see :meth:`seen`); inside a replayable call (an optimizer step), the array."""
        return value if self.depth else self.seen(tensor, name, value)

    def write_slot(self, tensor, name):
        """The step's code sets ``tensor.data`` or ``tensor.grad``: refused, as a replay would not
        (a replayable call, ``zero_grad`` say, does it again when replayed)."""
        if not self.depth:
            raise CompileError(
                f"the step sets a tensor's .{name} while being traced; a replay would not. "
                f"Use optimizer.zero_grad() and optimizer steps, autonet ops under no_grad(), or "
                f"do it outside the step.")

    # -------------------------------------------------------------- classifying
    def born(self, thing):
        """True when ``thing`` was allocated while the step was being traced."""
        return tracemalloc.get_object_traceback(thing) is not None

    def source(self, value):
        """Where ``value`` comes from on every replay (see the module doc), or refuse."""
        if isinstance(value, Marked):
            if value.origin is None:
                raise CompileError(
                    f"the step computes an array with NumPy from {value.what} and passes it to "
                    f"autonet; a replay would not recompute it. Compute with Tensors inside the "
                    f"step (Tensor(x) of an argument x is fine), or pass the array as an argument.")
            if _root_origin(value.origin)[0] == "grad":
                raise CompileError(
                    "the step uses a .grad array as an operand; a replay would keep its traced "
                    "values. Update parameters with an optimizer, clip gradients with "
                    "nn.utils.clip_grad_norm_ / clip_grad_value_.")
            return value.origin
        known = self.known.get(id(value))
        if known is not None:
            return known
        if isinstance(value, Tensor):
            made_here = not self.know_births or self.born(value)
            saved = self._saved(value) if made_here else None
            if saved is not None:
                return saved
            if self.know_births and made_here:
                raise CompileError(
                    "the step uses a tensor made inside it other than by autonet's ops, "
                    "constructors and Tensor(...); a replay would keep its traced values")
            self._guard(value)
            return ("tensor", value)
        if isinstance(value, np.ndarray):
            if not self.know_births:
                raise CompileError(
                    "tracemalloc is tracing memory, so compile cannot tell whether this array "
                    "was made inside the step; trace the step (its first call) with tracemalloc "
                    "stopped, or pass the array as an argument")
            if self.born(value) and self.born(devices.memory_root(value)):   # a view of lasting
                raise CompileError(                                       # memory reads it afresh
                    f"the step computes an array with NumPy (shape {value.shape}) and passes it to "
                    f"autonet; a replay would reuse its traced values. Make such arrays outside "
                    f"the step or pass them as arguments, and compute with Tensors inside it "
                    f"(Python lists and numbers are taken by value: t[[0, 2]] is fine).")
            self.whole_arrays.update((id(value), id(devices.memory_root(value))))
            return ("state", value)
        if isinstance(value, _CallResult):
            value.refuse("passed to autonet")
        if devices.is_foreign(value):
            raise CompileError(
                f"the step passes a {devices.device_of(value)} array (shape {value.shape}) that is "
                f"no Tensor's to autonet; a trace cannot tell where a device array comes from. "
                f"Wrap it in a Tensor outside the step, or pass that Tensor as an argument.")
        if type(value) in (list, tuple) and any(
                isinstance(leaf, (np.ndarray, Tensor)) for _, leaf in leaves(value)):
            raise CompileError("the step passes arrays inside a list to autonet; stack them with "
                               "autonet.stack, or pass them separately")
        return ("const", value)

    def setting(self, value):
        """An op's keyword argument: a constant, or built from sources (an index tuple)."""
        if isinstance(value, (np.ndarray, Tensor)):
            return self.source(value)
        if type(value) is tuple and any(isinstance(p, (np.ndarray, Tensor)) for p in value):
            return ("tuple", tuple(self.setting(part) for part in value))
        return ("const", value)

    def seen(self, tensor, name, value):
        """The step's code reads ``tensor.data`` or ``tensor.grad``: a marked view of it."""
        if devices.is_foreign(value):
            raise CompileError(
                f"the step reads .{name} of a tensor on {devices.device_of(value)}; NumPy's work "
                f"on device arrays cannot be followed by a trace. Use autonet's ops on the "
                f"tensor itself (and optimizers for updates), or read it outside the step.")
        origin = ("grad", tensor) if name == "grad" else self.source(tensor)
        label = f"{tensor.name!r}" if tensor.name else "a tensor"
        return mark(value, f"the .{name} of {label}", origin=origin)

    def _guard(self, tensor):
        data = tensor._data
        self.externals.setdefault(id(tensor), (tensor, data.shape, data.dtype, tensor.requires_grad))

    def _new_slot(self, tensor):
        slot = self.slots
        self.slots += 1
        self.known[id(tensor)] = self.known[id(tensor._data)] = ("value", slot)
        self.alive.append(tensor)
        return slot

    # -------------------------------------------------------------- engine events
    def applied(self, fn, args, kwargs, ctx, arrays, result):
        if self.depth:
            return
        inputs = tuple(self.source(arg) for arg in args)
        settings = {key: self.setting(value) for key, value in kwargs.items()}
        if self.draws is not None:   # after the inputs: an array drawn with NumPy is refused there
            self.draws.after_op([a for a in (*args, *kwargs.values()) if isinstance(a, GENERATORS)])
        slot = self._new_slot(result)
        if not hasattr(ctx, "dtype"):   # an op outside the graph: its output, for lowering
            ctx.shape, ctx.dtype = result._data.shape, result._data.dtype
        ctx.input_dtypes = tuple(getattr(array, "dtype", None) for array in arrays)   # likewise
        ctx.input_shapes = tuple(getattr(array, "shape", None) for array in arrays)
        self.contexts[id(ctx)] = slot
        self.ops[slot] = Op(slot, fn, inputs, settings, ctx, _scalar_output(ctx, result._data))
        self.instructions.append(self.ops[slot])

    def tensor_made(self, tensor, data):
        if self.depth:
            return
        if tensor.requires_grad:
            raise CompileError(
                "the step makes a leaf tensor that requires grad; a replay would deliver its "
                "gradient to the traced one. Make parameters outside the step.")
        source = self.source(data)
        if source[0] == "const" and isinstance(data, np.ndarray):   # a constructor's: as made,
            source = ("const", devices.copy(tensor._data))   # on its device, kept
        self.instructions.append(Make(self._new_slot(tensor), source,
                                      tensor._data.dtype, getattr(data, "shape", None),
                                      getattr(data, "dtype", None)))

    def module_called(self, module):
        if self.depth:
            return
        self.modes.setdefault(id(module), (module, module.training))

    def detached(self, tensor, result):
        if self.depth:
            return
        self.known[id(result)] = self.source(tensor)
        self.alive.append(result)

    def in_place(self, tensor, result, recording):
        if self.depth:
            return
        if recording:
            raise CompileError("compiled steps support in-place updates only under no_grad()")
        self.instructions.append(Copy(self.source(tensor), self.source(result)))

    def called(self, method, args, kwargs):
        """A replayable side effect; a Tensor argument of the step is found in each call's.
        A call inside another (``super().step()`` in a subclass's ``step``) is the outer one's."""
        self.depth += 1
        if self.depth > 1:
            return
        if self.draws is not None:
            self.draws.check()
        def part(value):
            path = self.argument_tensors.get(id(value))
            if path is not None:
                return ("object", path)
            for _, leaf in leaves(value):
                if isinstance(leaf, (types.GeneratorType, map, filter, zip)):
                    raise CompileError(f"{method.__qualname__} was given an iterator, which a "
                                       f"replay would find exhausted; pass a list")
                if isinstance(leaf, (types.FunctionType, types.MethodType)):   # step(closure)
                    raise CompileError(
                        f"{method.__qualname__} was given a function, which runs inside the call, "
                        f"unseen by the trace: a replay would run it again, apart from the step "
                        f"(optimizer.step(closure) runs its forward and backward so). Compute the "
                        f"loss and call loss.backward() in the step itself, then the call")
                if id(leaf) in self.argument_tensors:
                    raise CompileError(f"{method.__qualname__} was given an argument of the step "
                                       f"inside a container; pass it directly")
            return ("const", value)

        self.instructions.append(Call(method, tuple(part(a) for a in args),
                                      {key: part(value) for key, value in kwargs.items()}))

    def call_returned(self, method):
        self.depth -= 1
        if self.depth == 0 and self.draws is not None:
            self.draws.skip()

    def call_result(self, method, result):
        """A number returned by a replayed call (clip_grad_norm_'s norm) would be this call's
        forever: the step gets a stand-in that refuses to be used."""
        if result is None or self.depth:
            return result
        if type(result) is float:
            return _CallResult(result, method.__qualname__)
        raise CompileError(f"{method.__qualname__} returned a {type(result).__name__} inside the "
                           f"compiled step; a replay would not recompute it. Return None from it, "
                           f"or call it outside the step")

    def constructed(self, array, inputs):
        """A constructor's array is a constant where its inputs are Python values (guarded, or
        the call signature's); one made from arrays or tensors is not (it is refused where used)."""
        if self.depth or id(array) in self.not_constant:
            return
        if self.refused_constant(inputs):
            self.not_constant.add(id(array))   # whatever wraps it later (full's fill)
            self.alive.append(array)
            return
        self.known[id(array)] = ("const", array)
        self.alive.append(array)

    def refused_constant(self, inputs):
        for _, leaf in leaves(inputs):
            if isinstance(leaf, (np.ndarray, Tensor, _CallResult)) or devices.is_foreign(leaf):
                return True
            if isinstance(leaf, Marked) or self.known.get(id(leaf)):
                return True
        return False

    def value_read(self, what):
        if self.depth:
            return
        raise CompileError(
            f"the step reads a tensor's value in Python ({what}) while being traced: "
            f"data-dependent Python cannot be replayed (a branch on it could go another way on a "
            f"later call). Keep value reads outside the compiled step (use the tensor it returns), "
            f"or compute with tensor ops (autonet.where instead of if, clamp instead of min/max)")

    def seeded(self, seed, given):
        """A ``create_graph`` pass starts from ``seed``: ones (no gradient given) or a number are
        constants; a Tensor given is the seed itself, so another array is refused."""
        if self.depth:
            return
        if given is not None and not isinstance(given, (int, float)):
            raise CompileError(
                "autonet.grad(..., create_graph=True) in a compiled step was given grad_outputs "
                "as an array; pass them as Tensors (or omit them for a one-element output)")
        self.known[id(seed)] = ("const", seed._data)
        self.alive.append(seed)

    def backward_ran(self, plan, seeds, fitted, create_graph, into_grad):
        """Record the plan: which formula runs when, and where each gradient goes. A
        ``create_graph`` pass ran as recorded ops already (its formulas on Tensors)."""
        self.differentiated.update(id(node) for node in plan.nodes)
        if create_graph and into_grad:
            raise CompileError(
                "compile does not replay backward(create_graph=True), which sets .grad to "
                "Tensors in a graph; use autonet.grad(..., create_graph=True) inside the compiled "
                "step (a gradient penalty, a Hessian-vector product), then backward()")
        if create_graph:
            self.second_order = True
            return
        self.second_order |= not into_grad
        if any(id(key) not in self.contexts for key in seeds):
            raise CompileError("backward() of a tensor the step did not compute")
        fitted = {(id(node), position) for node, position in fitted}
        steps = []
        for node, routes in zip(plan.nodes, plan.routes):
            if node.retained is not None:
                raise CompileError("compiled steps do not support retain_grad()")
            targets = []
            for position, key, shape, dtype in routes:
                # an op output of this step (its slot), a leaf argument, or another leaf
                target = self._slot_of(key) if type(key) is Context else self._leaf(key)
                like = (shape, dtype) if (id(node), position) in fitted else None
                targets.append((position, target, like))
            steps.append((self.ops[self._slot_of(node)], targets))
        seeds = tuple((self.contexts[id(key)], seed) for key, seed in seeds.items())
        self.instructions.append(Backward(seeds, tuple(steps)))

    def grad_returned(self, wanted, results):
        """``autonet.grad`` returned ``results``: a ``create_graph`` pass's are its ops' outputs
        (known already); a first-order pass's become values of its Backward instruction."""
        if self.depth or not self.instructions or type(self.instructions[-1]) is not Backward \
                or self.instructions[-1].results is not None:
            return
        pass_ = self.instructions[-1]
        outputs = []
        for key, result in zip(wanted, results):
            if result is None or id(result) in self.known:
                continue
            target = self._slot_of(key) if type(key) is Context else self._leaf(key)
            shared = sum(k is key for k in wanted) > 1   # each result its own copy, as in eager
            outputs.append((target, self._new_slot(result), shared))
        pass_.results = tuple(outputs)

    def _saved(self, tensor):
        """``("saved", (op, index))`` for a Tensor a ``create_graph`` pass made of what an op of
        this step saved (it stands in ``op.ctx.saved`` while the op's formula runs), else None."""
        for op in reversed(list(self.ops.values())):
            for index, value in enumerate(op.ctx.saved):
                if value is tensor:
                    data = tensor._data
                    known = self.known.get(id(data))
                    return known if known is not None and known[0] == "value" else ("saved", (op, index))
        return None

    def _leaf(self, tensor):
        """Where a leaf's gradient goes: the tensor passed in this call, or a lasting one."""
        path = self.argument_tensors.get(id(tensor))
        if path is not None:
            return ("arg", path)
        if self.know_births and self.born(tensor):
            raise CompileError("backward() reaches a leaf made inside the step")
        return ("tensor", tensor)

    def _slot_of(self, node):
        slot = self.contexts.get(id(node))
        if slot is None:
            raise CompileError(
                "the step's backward pass reaches a tensor computed outside the step; "
                "compute everything inside it, or detach() what comes from outside")
        return slot

    # -------------------------------------------------------------- finishing
    def _returned(self, tensor):
        """Where a returned Tensor comes from: a Tensor argument or a lasting tensor returned
        itself is ``("object", path)`` / ``("itself", tensor)``, so that a replay returns that
        very object, as eager mode does (not a new Tensor over its array)."""
        if id(tensor) in self.argument_tensors:
            return ("object", self.argument_tensors[id(tensor)])
        source = self.source(tensor)
        return ("itself", tensor) if source[0] == "tensor" and source[1] is tensor else source

    def _in_live_graph(self, tensor):
        """Whether ``tensor`` is in a graph of the step that no backward pass of it ran through."""
        return (tensor is not None and tensor.requires_grad and type(tensor._node) is Context
                and id(tensor._node) not in self.differentiated)

    def _refuse_live_graphs(self, live):
        """A replay returns no graph reaching into the step: refuse a result in one while a
        Tensor argument requires grad (the caller means to differentiate through the step:
        ``func.grad(step)``); without one, such results are severed (see ``severed``)."""
        if live and self.differentiable_arguments:
            raise CompileError(
                f"the step returns a tensor in a graph (it requires grad, as "
                f"{describe(self.differentiable_arguments[0])} does) and runs no backward "
                f"pass through it; a replay returns results outside any graph, so gradients "
                f"taken through the step later (backward, autonet.func transforms) would be "
                f"lost. Call backward inside the step, return result.detach(), or leave "
                f"this function uncompiled")

    def finish(self, result):
        """The program: ``result`` is what the step returned. A returned tensor in a live
        graph is ``("severed", source)``: the replay returns it with a node that refuses
        backward, and so does this call (the trace has cut its graph's inputs)."""
        if self.draws is not None:
            self.draws.check()
        results = result if isinstance(result, tuple) else (result,)
        if not (result is None or isinstance(result, Tensor)
                or (isinstance(result, tuple) and all(isinstance(r, Tensor) for r in result))):
            raise CompileError("a compiled step may return a Tensor, a tuple of Tensors or None")
        live = {id(t) for t in results if self._in_live_graph(t)}
        self._refuse_live_graphs(live)
        sources = [None if t is None else
                   ("severed", self._returned(t)) if id(t) in live else self._returned(t) for t in results]
        for tensor in results:
            if id(tensor) in live:
                tensor._node = severed_node(tensor._data)
        returned = tuple(sources) if isinstance(result, tuple) else sources[0]
        return (tuple(self.instructions), tuple(self.externals.values()), returned,
                tuple(self.modes.values()))
