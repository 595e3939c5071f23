"""Function, the base of every differentiable op, and Context, its graph node.

An op is a subclass with two static methods::

    class Cube(autonet.Function):
        @staticmethod
        def forward(ctx, x):             # ndarrays in, ndarray out
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):         # one gradient per forward input
            (x,) = ctx.saved
            return grad * 3 * x ** 2

``Cube.apply(t)`` runs ``forward`` on plain NumPy and, when grad mode is on and
an input requires grad, returns a Tensor whose ``grad_fn`` is a
:class:`Context`. ``backward`` is written once: it normally receives
ndarrays; under ``create_graph=True`` it receives Tensors (``ctx.saved`` then
holds tensors standing for the saved arrays), so its operations are recorded
and the gradient can be differentiated again. Save inputs and the output
through ``save_for_backward`` for that to work; other attributes of ``ctx`` are
treated as constants.

The graph is made of nodes, not tensors: a node's ``inputs`` are the nodes
that made its inputs (or the leaf tensors themselves), so an intermediate
tensor is referenced by the graph only through the arrays its consumers saved,
and those are freed by ``backward()``.
"""
from __future__ import annotations

import itertools
from typing import Any
import weakref

import numpy as np

from . import device as devices
from .context import Context
from .state import notify, state
from .tensor import Tensor

RELEASED = object()
"""``ctx.saved`` of a node whose saved arrays were freed by a backward pass."""

sequence = itertools.count()
"""Every recorded op takes the next number: consumers are always numbered after their inputs."""

_new_tensor = Tensor._make   # bound once: Tensor._make(...) makes a method object per call


class Function:
    """Base class for differentiable ops: subclass with ``forward`` and ``backward``."""

    name = "function"
    # Optional ``backward_into(ctx, grad, out)``: add the one input's gradient into ``out`` in
    # place, where the engine owns that sum already (a slice's gradient costs the slice, not
    # a zero-filled copy of the whole input; see ``ops.shape.GetItem``).
    backward_into = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        raise NotImplementedError("a Function subclass must define backward(ctx, grad)")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        """Run the op on Tensors (or arrays and numbers), recorded when a gradient will be
        wanted: read the arguments, make the node, run the forward formula, finish the output.

        The common case is read here in one pass: grad mode on, no observers, every argument
        a Tensor on the host that is not a view, or a number, settings that hold no arrays,
        and an input that wants a gradient. Anything else (and any argument that needs a
        check) goes to :func:`_apply_general`, which makes the same node
        (tests/test_engine_fast_path.py holds the two to it)."""
        if state.observers or not state.grad_enabled:
            return _apply_general(cls, args, kwargs)
        for value in kwargs.values():
            if type(value) not in _PLAIN:   # arrays in settings: the node must own copies
                return _apply_general(cls, args, kwargs)
        arrays: list[Any] = []
        edges: list[Any] = []
        needs: list[bool] = []
        numbers = constant = False
        for arg in args:
            if isinstance(arg, Tensor):
                data = arg._data
                if type(data) is not np.ndarray or arg._view_of is not None:
                    return _apply_general(cls, args, kwargs)   # a device's array, a view
                node = arg._node
                wanted = node is not None or arg.requires_grad
                constant = constant or not wanted
                arrays.append(data)
                edges.append(node if node is not None else arg)
                needs.append(wanted)
            elif type(arg) in _NUMBERS or arg is None:
                numbers = numbers or arg is not None
                arrays.append(arg)
                edges.append(None)
                needs.append(False)
            else:
                return _apply_general(cls, args, kwargs)
        if True not in needs:   # nothing to record
            return _apply_general(cls, args, kwargs)
        if constant:   # drawn, but not kept alive (a loop: a comprehension costs a call)
            for i, need in enumerate(needs):
                if not need and edges[i] is not None:
                    edges[i] = ConstantInput(edges[i])
        ctx = Context(cls, tuple(edges), tuple(needs))
        if numbers:
            ctx.constants = _numbers_in(arrays)
        try:
            out = cls.forward(ctx, *arrays, **kwargs)
        except ValueError as error:
            raise _shape_error(cls, arrays, error) from None
        return _recorded_output(ctx, out, args, arrays)


def _apply_general(cls, args, kwargs):
    """``Function.apply`` for any arguments, in any mode, observers told."""
    arrays, edges, needs, numbers = _read_arguments(cls, args)
    observers = state.observers
    settings = _plain(kwargs) if observers else kwargs   # as given, for the observers
    if edges is None:
        ctx = Context(cls)
    else:   # the node; its settings' arrays copied: it must not read the caller's later
        ctx = Context(cls, edges, needs)
        if numbers:
            ctx.constants = _numbers_in(arrays)
        if settings:
            settings = _owned(settings)
    try:   # the forward formula
        if observers and any(o.quiet_numpy for o in observers):
            with np.errstate(all="ignore"):   # the observer reports bad values itself
                out = cls.forward(ctx, *arrays, **settings)
        else:
            out = cls.forward(ctx, *arrays, **settings)
    except ValueError as error:
        raise _shape_error(cls, arrays, error) from None
    if edges is not None:
        result = _recorded_output(ctx, out, args, arrays)
    else:
        if type(out) is not np.ndarray and isinstance(out, _SCALARS):
            out = as_output_array(ctx, out)
        result = _new_tensor(out, None)
        if out.base is not None:   # a view shares its base's version counter
            share_version_with_base(result, args)
        if state.grad_enabled:   # a constant a recorded op may read: its Origin, for drawings
            result._origin = Origin.of(cls, args)
    if observers:
        notify("applied", cls, args, kwargs, ctx, arrays, result)
    return result


def _numbers_in(arrays):
    """``(position, number)`` of the numbers among an op's arguments (a loop: a generator
    expression costs more on the hot path)."""
    found = []
    position = 0
    for value in arrays:
        if type(value) in _NUMBERS:
            found.append((position, value))
        position += 1
    return tuple(found)


def _recorded_output(ctx, out, args, arrays):
    """The Tensor of a recorded op's output ``out``; the node learns its number in the
    sequence, its output's shape and dtype, and the versions of what it saved."""
    if type(out) is not np.ndarray and isinstance(out, _SCALARS):
        out = as_output_array(ctx, out)
    result = _new_tensor(out, ctx)
    if out.base is not None:   # a view shares its base's version counter
        share_version_with_base(result, args)
    ctx.seq = next(sequence)
    ctx.shape = out.shape
    ctx.dtype = out.dtype
    if ctx.saved:
        _own_saved(ctx, args, arrays, result)
    return result


def _read_arguments(cls, args):
    """Each argument's array (what ``forward`` gets) and, when the op is recorded (grad mode
    is on and an input requires grad), each one's edge in the graph (the node that made it, a
    leaf that wants a gradient, a ``ConstantInput``, or None) and whether it wants a gradient
    (else None, None); and whether there are numbers (drawn as constants). Devices must
    agree; a stale view is refused in grad mode."""
    arrays = []
    edges = []
    needs = []
    wanted = constant = numbers = foreign = False
    for arg in args:
        if isinstance(arg, Tensor):
            data = arg._data
            arrays.append(data)
            if arg._node is not None:
                edges.append(arg._node)
                needs.append(True)
                wanted = True
            elif arg.requires_grad:
                edges.append(arg)
                needs.append(True)
                wanted = True
            else:   # a constant: becomes a ConstantInput if the op is recorded
                edges.append(arg)
                needs.append(False)
                constant = True
            if type(data) is not np.ndarray:
                foreign = True
            if arg._view_of is not None and arg._view_of != arg._version[1]:
                _refuse_stale_view(cls, arg)   # (only in grad mode: see there)
        else:
            kind = type(arg)
            if kind in _NUMBERS:
                numbers = True
            elif kind is not np.ndarray and arg is not None:   # an ndarray subclass, a device's
                if isinstance(arg, np.ndarray):
                    arg = arg.view(np.ndarray)   # formulas run on plain arrays (not np.matrix)
                elif not devices.is_host(arg):
                    foreign = True
            arrays.append(arg)
            edges.append(None)
            needs.append(False)
    if foreign:
        _check_one_device(cls, arrays)
    if not (wanted and state.grad_enabled):
        return arrays, None, None, numbers
    if constant:   # drawn, but not kept alive
        edges = [edge if need or edge is None else ConstantInput(edge)
                 for edge, need in zip(edges, needs)]
    return arrays, tuple(edges), tuple(needs), numbers


class OpRefusal(ValueError):
    """A refusal an op's formula raises itself, its message naming the op and what is wrong
    (``"cross_entropy: labels must lie in [0, 3), got 0..5"``): ``Function.apply`` passes it on
    as it is, where it names NumPy's own ``ValueError`` with the op and the shapes it got."""


def _shape_error(cls, arrays, error):
    """NumPy's shape error, naming the op and the shapes it was given (an ``OpRefusal`` as it is)."""
    if isinstance(error, OpRefusal):
        return error
    shapes = " and ".join(str(np.shape(a)) for a in arrays if a is not None)
    return ValueError(f"{cls.name}: cannot apply to shapes {shapes}: {error}")


class ConstantInput(Tensor):
    """How a node keeps an input that needed no gradient: its name, shape and dtype, and a weak
    reference to the tensor, so the graph never keeps a batch alive (as PyTorch's does not),
    and the tensor's ``Origin``.
    ``data`` is the tensor's while it lives; afterwards a stand-in of NaN (zeros for other
    dtypes) that takes no memory."""

    __slots__ = ("_source", "_shape_and_dtype")

    def __init__(self, tensor):   # noqa: super().__init__ would copy the data
        self._source = weakref.ref(tensor)
        array = tensor._data
        self._shape_and_dtype = (array.shape, array.dtype)
        self._grad, self.requires_grad, self.name = None, False, tensor.name
        self._node, self._version, self._view_of = None, tensor._version, None
        self._origin = tensor._origin

    @property
    def _data(self):
        source = self._source()
        return _placeholder(*self._shape_and_dtype) if source is None else source._data


class Origin:
    """What an op that recorded nothing because no input wanted a gradient made its output
    from: its one Tensor input, held weakly so that no batch outlives its step, with that
    input's shape, dtype, name and own origin (at most ``DEPTH`` ops back). Under ``no_grad``
    (inference, optimizer updates) none is made: it would cost every op there.

    A constant that a recorded op then reads keeps its origin (``ConstantInput``), so viz can
    draw a convolution's im2col copy, freed since, as the image that was passed, joined to it
    by the ops in between (``pad``, ``windows``, ``reshape``). A deep copy or an unpickled
    tensor has no origin.
    """

    __slots__ = ("source", "shape", "dtype", "name", "op", "parent", "depth")
    DEPTH = 16

    def __init__(self, source: Tensor, op: str) -> None:
        self.source = weakref.ref(source)   # the same object as other weak references to it
        array = source._data
        self.shape, self.dtype, self.name, self.op = array.shape, array.dtype, source.name, op
        parent = source._origin
        self.parent = parent if parent is not None and parent.depth < Origin.DEPTH else None
        self.depth = 1 if self.parent is None else parent.depth + 1

    @staticmethod
    def of(fn: type[Function], args: tuple[Any, ...]) -> Origin | None:
        """The origin of ``fn``'s unrecorded output: None unless exactly one argument is a Tensor."""
        source = None
        for arg in args:
            if isinstance(arg, Tensor):
                if source is not None:
                    return None
                source = arg
        return None if source is None else Origin(source, fn.name)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return type(None), ()   # weak references do not pickle: a copy is a tensor made anew


def _placeholder(shape, dtype):
    """An array of ``shape`` and ``dtype`` holding no memory (zero strides)."""
    fill = np.nan if dtype.kind in "fc" else 0
    return np.broadcast_to(np.asarray(fill, dtype=dtype), shape)


def _owned(kwargs):
    """Settings with arrays copied (in index tuples too): a recorded op must not read the
    caller's arrays later."""
    for value in kwargs.values():
        kind = type(value)
        if kind in _CONTAINERS or (kind not in _PLAIN and devices.is_foreign(value)):
            return {key: _copied(value) for key, value in kwargs.items()}
    return kwargs


_CONTAINERS = (np.ndarray, tuple, list)
_PLAIN = (int, float, bool, str, type(None))   # settings that hold no array
_SCALARS = (np.generic, int, float, bool)   # what NumPy returns for 0-d results on the CPU
_NUMBERS = (int, float, np.float64, np.float32, np.int64)   # shown in drawings


def _copied(value):
    if type(value) is np.ndarray or devices.is_foreign(value):
        return value.copy()
    if type(value) in (tuple, list):
        return type(value)(_copied(part) for part in value)
    return value


def _plain(kwargs):
    """Settings with ndarray subclasses (an observer's views) as plain arrays."""
    return {key: _plain_value(value) for key, value in kwargs.items()}


def _plain_value(value):
    if isinstance(value, np.ndarray):
        return value.view(np.ndarray)
    if type(value) is tuple:
        return tuple(_plain_value(part) for part in value)
    return value


def _own_saved(ctx, args, arrays, result):
    """Make every saved array safe to read at backward time.

    An array saved from an input or the output Tensor gets a version check
    (``saved_versions``: ``(position, counter, version, exact)``, position -1
    for the output; ``exact`` when it is that tensor's array itself rather than
    another view of its memory; counter None once the array is a private
    snapshot). One saved from a plain ndarray argument is copied, since nothing
    would tell if its owner changed it.
    """
    versions = []
    out = result._data
    copied = False
    for value in ctx.saved:
        if value is None or type(value) in _PLAIN:
            versions.append(None)   # nothing, a number or a setting
            continue
        if value is out:
            counter = result._version
            versions.append((-1, counter, counter[0], True))
            continue
        if type(value) is not np.ndarray and not devices.is_foreign(value):
            versions.append(None)   # a NumPy scalar or another setting
            continue
        exact = True
        position = 0
        for array in arrays:   # inline, not a helper: this runs for every saved array
            if value is array:
                break
            position += 1
        else:   # not an input's array itself: perhaps another view of one's memory
            exact = False
            position = _root_source(value, arrays, out)
            if position is None:
                versions.append(None)       # computed in forward: the node's own
                continue
            if position == -1:
                counter = result._version
                versions.append((-1, counter, counter[0], False))
                continue
        source = args[position]
        if isinstance(source, Tensor):
            counter = source._version
            versions.append((position, counter, counter[0], exact))
        else:
            copied = True               # the caller's array: own a copy (below)
            versions.append(position)
    if copied:
        ctx.saved = tuple(value.copy() if type(entry) is int else value
                          for value, entry in zip(ctx.saved, versions))
        versions = [None if type(entry) is int else entry for entry in versions]
    ctx.saved_versions = tuple(versions)


def _root_source(value, arrays, out):
    """-1 if ``value`` shares the output's memory, else the input whose memory it shares, or None."""
    root = devices.memory_root(value)
    if devices.is_array(out) and root is devices.memory_root(out):
        return -1
    for position, array in enumerate(arrays):
        if devices.is_array(array) and devices.memory_root(array) is root:
            return position
    return None


def _refuse_stale_view(fn, view):
    """A view whose base got a new history since it was taken cannot be recorded (PyTorch
    would rebase it); under no_grad its values are simply current."""
    if not state.grad_enabled:
        return
    raise RuntimeError(
        f"{fn.name}: this tensor is a view of a tensor that was since modified in place by a "
        f"recorded op, so the view's history no longer says where its values come from. "
        f"Take the view again after the in-place operation (or clone before writing).")


def _check_one_device(cls, arrays):
    """Refuse an op whose array inputs live on different devices (Python numbers mix freely)."""
    places = {devices.device_of(a) for a in arrays
              if isinstance(a, np.ndarray) or not (a is None or devices.is_host(a))}
    if len(places) > 1:
        raise RuntimeError(f"{cls.name}: inputs on different devices {sorted(places)}; move them "
                           f"to one with t.to(device) (autonet does not copy between devices "
                           f"behind your back)")


def as_output_array(ctx, out):
    """NumPy returns scalars for 0-d results: make an array, and point ``ctx.saved`` at it."""
    if not isinstance(out, _SCALARS) and not devices.is_host(out):
        return out   # device arrays stay 0-d arrays
    scalar, out = out, np.asarray(out)
    saved = ctx.saved
    for value in saved:   # a loop, not a generator, unless the scalar was saved
        if value is scalar:
            ctx.saved = tuple(out if value is scalar else value for value in saved)
            break
    return out


def share_version_with_base(view, args):
    """A view shares its base's version counter, so in-place changes to either are seen."""
    if type(view._data) is np.ndarray:
        base = view._data.base
        source = next((a for a in args if isinstance(a, Tensor) and (a._data is base or a._data.base is base)),
                      None)
    else:   # on a device: its backend says which memory the view is of
        root = devices.memory_root(view._data)
        source = next((a for a in args if isinstance(a, Tensor) and devices.is_foreign(a._data)
                       and devices.memory_root(a._data) is root), None)
    if source is not None:
        view._version = source._version
        view._view_of = source._version[1]


def apply_in_place(tensor, function, *args, **kwargs):
    """``tensor <- function(tensor, *args)``, written into ``tensor.data``.

    The op runs out of place, as recorded; its result is copied into the
    tensor's array and, when recorded, the tensor takes the op's node as its
    history. Nodes that saved the overwritten array (the op itself, or the one
    that made the tensor) keep a copy of the old values instead, so their
    gradients stay right; any other node that saved it refuses at backward
    through the version counter. Views taken before become stale.
    """
    recording = state.grad_enabled and (tensor.requires_grad or any(
        isinstance(a, Tensor) and a.requires_grad for a in args))
    if recording:
        if tensor._node is None and tensor.requires_grad:
            raise RuntimeError(
                f"in-place {function.name} on a leaf that requires grad would rewrite an input "
                f"of the graph; use `with autonet.no_grad():` to update it (as optimizers do)")
        if tensor._data.base is not None:
            raise RuntimeError(
                f"in-place {function.name} on a view while recording gradients is not supported: "
                f"the tensor it views would change behind the graph's back; compute out of place")
    before = tensor._node
    result = function.apply(tensor, *args, **kwargs)
    if result.shape != tensor.shape:
        raise ValueError(
            f"{function.name}: an in-place result of shape {result.shape} does not fit the "
            f"tensor's shape {tensor.shape}")
    if recording:
        _keep_old_values(tensor._data, (before, result._node))
    np.copyto(tensor._data, result._data, casting="same_kind")
    tensor._version[0] += 1
    if recording:
        tensor._version[1] += 1
        if before is not None and before.retained is not None:   # retain_grad() carries over
            before.retained, result._node.retained = None, before.retained
        tensor._node = result._node
        tensor._node.dtype = tensor._data.dtype
        tensor.requires_grad = True
    if state.observers:
        notify("in_place", tensor, result, recording)
    return tensor


def _keep_old_values(array, nodes):
    """Point the saved arrays of ``nodes`` that are ``array`` at one copy of its current values."""
    snapshot = None
    for node in nodes:
        if node is None or node.saved is RELEASED:
            continue
        if any(value is array for value in node.saved):
            if snapshot is None:
                snapshot = array.copy()
            old = node.saved
            node.saved = tuple(snapshot if value is array else value for value in old)
            node.saved_versions = tuple(   # still that input's value; owned now, so unchecked
                (entry[0], None, None, entry[3]) if value is array and entry is not None else entry
                for value, entry in zip(old, node.saved_versions))
