"""What a picture of a graph shows, shared by the static drawing and the explorer.

A :class:`Scene` walks the graph behind a tensor once and answers: which items
are drawn (nodes, the ops; leaves, the tensors the graph holds), within which
module *call* each op ran (every call of a module apart: ``pool #1``,
``pool #2``), what each op did (``x[:, 3]``, ``1 - x``, ``@``), and which
tensor the user passed where the graph only holds a constant made from it
without recording (the image, not a convolution's im2col copy of it).
"""
import collections
import weakref

import numpy as np

from ..core import device as devices
from ..core.context import Context
from ..core.tensor import Tensor

_SUMMARY_SIZE = 8   # arrays up to this size are shown in full
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}
COMMUTATIVE = {"add", "mul", "maximum", "minimum"}


class Passed:
    """A tensor (or array) that was passed but that the graph does not hold, drawn instead of
    the constants made from it without recording: the image instead of a convolution's im2col
    copy. Held weakly, as the graph holds its constants: ``array()`` is None once freed."""

    def __init__(self, reference, shape, dtype, name):
        self.reference = reference
        self.shape, self.dtype, self.name = tuple(shape), np.dtype(dtype), name

    def array(self):
        argument = self.reference()
        return None if argument is None else _array(argument)


class Scene:
    """The items of ``root``'s graph nearest the root (at most ``max_nodes`` drawn), with
    their module calls."""

    def __init__(self, root, max_nodes=500):
        if not isinstance(root, Tensor):
            raise TypeError(f"viz: root must be a Tensor, not {type(root).__name__}")
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, (int, np.integer)) or max_nodes < 1:
            raise ValueError(f"viz: max_nodes must be a positive int, not {max_nodes!r}")
        self.root, self.max_nodes = root, max_nodes
        self.root_item = root._node if root._node is not None else root
        self.items, self.left_out = _keep_near_root(_breadth_first(self.root_item), max_nodes)
        self.kept = {id(item) for item in self.items}
        self.nodes = sorted((i for i in self.items if type(i) is Context), key=lambda n: n.seq)
        self.calls = {id(node): _live_calls(node) for node in self.nodes}
        self.numbers = _call_numbers(self.nodes, self.calls)
        self.made_by = {}   # id(constant leaf drawn as a Passed) -> the ops that made it from it
        self.alias = {}     # id(constant leaf) -> the leaf drawn for it (the same tensor)
        self.passed = self._passed_arguments()
        self.owned = set()   # ids of leaves a module holds
        self.leaf_calls = self._leaf_calls()

    # ------------------------------------------------------------ module calls
    def call_label(self, call):
        """``pool #2: maxpool2d 2x2 s2 p0``: the module's path, which call, what it is."""
        module = call()
        number = self.numbers.get(id(call))
        count = f" #{number}" if number else ""
        if not module._path:
            return describe_module(module) + count
        return f"{module._path}{count}: {describe_module(module)}"

    def _leaf_calls(self):
        """Each leaf's place: the calls all its consumers share, cut at the innermost module
        that holds it (a weight shared by ``cell #1`` and ``cell #2`` sits in their parent's),
        or at the call that made it; the user's own tensors stay outside every frame."""
        consumers = {}
        for node in self.nodes:
            for parent in node.inputs:
                if parent is not None and type(parent) is not Context:
                    parent = self.alias.get(id(parent), parent)
                    consumers.setdefault(id(parent), (parent, []))[1].append(self.calls[id(node)])
        places = {}
        for key, (leaf, calls) in consumers.items():
            held = _held_depth(leaf, calls[0])
            if held:
                self.owned.add(key)
            else:   # a constant made inside a call (h0 = zeros) sits in that call's frame
                maker = _made_inside(leaf, calls[0])
                held = next((depth + 1 for depth, call in enumerate(calls[0]) if call is maker), 0)
            places[key] = calls[0][:min(held, _shared_length(calls))]
        return places

    def _passed_arguments(self):
        """id(constant leaf) -> the :class:`Passed` tensor it was made from without recording,
        and, in ``made_by``, the ops in between (``pad``, ``windows``, ``reshape``): found by the
        engine's ``Origin`` (by identity, even once freed), else for a wrap made inside a call
        by its values (a ``Tensor(x)`` of an ndarray argument; not zeros made anew). A constant
        that is such a tensor itself shares its box."""
        drawn_leaves = {id(p) for n in self.nodes for p in n.inputs
                        if p is not None and type(p) is not Context}
        passed, found, themselves = {}, {}, []   # found: id(weak reference) -> its Passed
        for node in self.nodes:
            calls = self.calls[id(node)]
            for leaf in node.inputs:
                if leaf is None or type(leaf) is Context or leaf.requires_grad or id(leaf) in passed:
                    continue
                origin, ops = _passed_origin(leaf, calls)
                if origin is not None:
                    reference, shape, dtype, name = origin.source, origin.shape, origin.dtype, origin.name
                else:
                    argument = _passed_by_value(leaf, calls, drawn_leaves)
                    if argument is None:
                        themselves.append(leaf)
                        continue
                    reference, shape, dtype, name = (weakref.ref(argument), np.shape(_array(argument)),
                                                     _array(argument).dtype, getattr(argument, "name", None))
                living = reference()
                name = living.name if isinstance(living, Tensor) else name
                passed[id(leaf)] = found.setdefault(id(reference), Passed(reference, shape, dtype, name))
                self.made_by[id(leaf)] = ops
        readers = {}   # id(weak reference) -> the constants standing for that one tensor
        for leaf in themselves:
            same = found.get(id(_reference_of(leaf)))
            if same is not None:
                passed[id(leaf)], self.made_by[id(leaf)] = same, ()
            else:   # each op reading it as it is keeps its own stand-in: drawn as the first
                first = readers.setdefault(id(_reference_of(leaf)), leaf)
                if first is not leaf:
                    self.alias[id(leaf)] = first
        return passed

    def kind(self, item):
        """parameter, input, constant, intermediate or root."""
        if item is self.root_item:
            return "root"
        if type(item) is Context:
            return "intermediate"
        if not (item.requires_grad and item.is_leaf):
            return "constant"
        owned = id(item) in self.owned
        return "parameter" if owned or type(item).__name__ == "Parameter" else "input"

    def tensor_of(self, item):
        """The Tensor behind an item where it is still at hand (leaves, the root, retained;
        a constant the graph holds weakly while it lives)."""
        if isinstance(item, Tensor):
            return _source_of(item)
        if item is self.root_item:
            return self.root
        return item.retained() if item.retained is not None else None


def describe_module(module):
    """``conv2d 3x3 s1 p1`` for convolutions and pools, else ``Type(settings)``."""
    kernel = getattr(module, "kernel_size", None)
    if kernel is None:
        return f"{type(module).__name__}({module.extra_repr()})"
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    stride = getattr(module, "stride", None)
    stride = kernel[0] if stride is None else stride
    return (f"{type(module).__name__.lower()} {'x'.join(map(str, kernel))} "
            f"s{_one(stride)} p{_one(getattr(module, 'padding', 0))}")


def _one(value):
    """2 for 2 or (2, 2); 'same' stays."""
    if isinstance(value, (tuple, list)) and len(set(value)) == 1:
        return value[0]
    return value if not isinstance(value, (tuple, list)) else "x".join(map(str, value))


# ----------------------------------------------------------------- walking
def _breadth_first(first):
    """Every node and leaf that ``first`` depends on, nearest first (iterative)."""
    order = [first]
    seen = {id(first)}
    queue = collections.deque([first])
    while queue:
        item = queue.popleft()
        if type(item) is not Context:
            continue
        for parent in item.inputs:
            if parent is not None and id(parent) not in seen:
                seen.add(id(parent))
                order.append(parent)
                queue.append(parent)
    return order


def _keep_near_root(items, max_nodes):
    """The items to draw (one drawn node each) and how many are left out."""
    return items[:max_nodes], max(0, len(items) - max_nodes)


def _live_calls(node):
    """The calls (outermost first) that recorded ``node``, of modules still alive."""
    return tuple(call for call in node.scope if call() is not None)


def _call_numbers(nodes, calls):
    """id(call) -> 1, 2, ... for modules called more than once, in the order they ran."""
    order = collections.defaultdict(list)   # id(module) -> its calls
    for node in nodes:
        for call in calls[id(node)]:
            made = order[id(call())]
            if all(c is not call for c in made):
                made.append(call)
    return {id(call): number for made in order.values() if len(made) > 1
            for number, call in enumerate(made, 1)}


def _held_depth(leaf, calls):
    """How many of ``calls`` lead to the innermost one whose module holds ``leaf`` (0: none)."""
    for depth in range(len(calls), 0, -1):
        if any(value is leaf for _, value in calls[depth - 1]()._members()):
            return depth
    return 0


def _shared_length(call_lists):
    """The length of the prefix that all of ``call_lists`` share (the same calls)."""
    length = min(len(calls) for calls in call_lists)
    for calls in call_lists[1:]:
        length = next((i for i in range(length) if calls[i] is not call_lists[0][i]), length)
    return length


def _made_inside(leaf, calls):
    """The innermost call that made ``leaf`` from its arguments, or None (the user made it,
    or a module holds it)."""
    source, reference = _source_of(leaf), _reference_of(leaf)
    for call in reversed(calls):
        if not hasattr(call, "constants") or any(value is source for _, value in call()._members()):
            return None
        if not any(argument is reference for argument in _arguments(call)):
            return call
    return None


def _reference_of(leaf):
    """The weak reference through which the graph holds a constant (the leaf's own if none)."""
    reference = getattr(leaf, "_source", None)
    return weakref.ref(leaf) if reference is None else reference


def _arguments(call):
    """Weak references to the call's constant arguments, freed ones too: CPython hands out one
    weak reference per object, so they are the very ones a graph's constants and origins hold."""
    return getattr(call, "_constants", ())


def _passed_origin(leaf, calls):
    """The ``Origin`` to draw the constant ``leaf`` as, and the ops from there to it (first to
    last), or (None, ()). Inside module calls: the farthest tensor back that was passed to one
    of them (the model's input, not a layer's reshaped copy of it). Outside every module, where
    ``leaf`` itself is freed: the nearest tensor back still alive (what the caller holds, ``x``
    of ``F.conv2d(x, w)``), else the first, unless the values began as an op's own
    (``constant``: interpolation weights, pooling divisors), which are no tensor's."""
    if not calls and _source_of(leaf) is not None:
        return None, ()   # the caller's own tensor: drawn as itself
    links, origin = [], leaf._origin
    while origin is not None and origin.op not in _NEW_VALUES:
        links.append(origin)
        origin = origin.parent
    if calls:
        arguments = {id(reference) for call in calls for reference in _arguments(call)}
        found = [i for i, link in enumerate(links) if id(link.source) in arguments]
        index = found[-1] if found else None
    else:
        first = len(links) - 1 if links and origin is None else None
        index = next((i for i, link in enumerate(links) if link.source() is not None), first)
    if index is None:
        return None, ()
    return links[index], tuple(link.op for link in reversed(links[:index + 1]))


_NEW_VALUES = {"constant"}   # ops whose output holds values of their own, not their input's


def _passed_by_value(leaf, calls, drawn_leaves):
    """The one constant argument of the call that made ``leaf`` that the graph does not hold,
    when ``leaf`` was made from it (its values are the argument's); else None."""
    call = _made_inside(leaf, calls)
    if call is None:
        return None
    candidates = [a for a in call.constants if id(a) not in drawn_leaves]
    if len(candidates) != 1 or not _made_from(leaf, candidates[0]):
        return None
    return candidates[0]


def _source_of(leaf):
    """The tensor a graph's constant stands for (the graph holds constants weakly: see
    ``core.function.ConstantInput``), or the leaf itself; None once freed."""
    reference = getattr(leaf, "_source", None)
    return leaf if reference is None else reference()


def _made_from(leaf, argument):
    """True when the constant ``leaf`` was made inside a call from its ``argument``: its nonzero
    values are values of the argument while it lives; once freed (the graph holds constants
    weakly, so no batch outlives its step), only a wrap of the same shape and dtype is."""
    if _source_of(leaf) is not None:
        return _values_from(leaf.data, _array(argument))
    return tuple(leaf.shape) == tuple(np.shape(_array(argument))) and leaf.dtype == _array(argument).dtype


def _array(value):
    """A Tensor's data, or the array itself (an ndarray's own ``.data`` is a memoryview)."""
    return value.data if isinstance(value, Tensor) else value


_SAMPLE = 256   # values of a constant checked against the argument it may come from


def _values_from(made, argument):
    """True when ``made`` has nonzero values and a sample of them are all values of ``argument``."""
    made, argument = devices.to_host(made).ravel(), devices.to_host(argument).ravel()
    nonzero = made[made != 0]
    if nonzero.size == 0 or argument.size == 0:
        return False
    sample = nonzero[:: max(1, nonzero.size // _SAMPLE)]
    return bool(np.isin(sample, argument).all())


# ----------------------------------------------------------------- labels
def op_label(node, names=None):
    """What the op did: ``x[:, 3]``, ``1 - x``, ``x ** 2``, ``@``, ``transpose (1, 0)``."""
    name = node.name
    tensors = [i for i, parent in enumerate(node.inputs) if parent is not None]
    if name == "getitem":
        return "x" + index_text(getattr(node, "index", ()))
    if name in _SYMBOLS:
        if len(tensors) == 1 and node.constants:
            parts = {tensors[0]: "x"}
            parts.update((p, number_text(v)) for p, v in node.constants)
            return f" {_SYMBOLS[name]} ".join(parts[p] for p in sorted(parts))
        if len(tensors) == 2:
            return _SYMBOLS[name]
    settings = [number_text(value) for _, value in node.constants]
    axes = next((node.__dict__[a] for a in ("axes", "axis") if node.__dict__.get(a) is not None), None)
    if axes is not None:   # NumPy's argument name: transpose's axes, a reduction's axis
        settings.append(f"{'axes' if name == 'transpose' else 'axis'}={axes}")
    if name == "windows":
        settings.append(f"{'x'.join(map(str, node.kernel))} s{_one(node.stride)}")
    return " ".join([name] + settings)


def number_text(value):
    """As Python writes it (``2.0``, ``0.5``), cut to 4 significant digits when longer."""
    if isinstance(value, (float, np.floating)):
        text = repr(float(value))
        return text if len(text) <= 7 else f"{value:.4g}"
    return repr(value)


def index_text(index):
    """``[:, 3]`` for ``(slice(None), 3)``; arrays as ``[array (4,)]``."""
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(_index_part(p) for p in parts) + "]"


def _index_part(part):
    if isinstance(part, slice):
        text = ":".join("" if v is None else str(v) for v in (part.start, part.stop))
        return text + (f":{part.step}" if part.step is not None else "")
    if part is Ellipsis:
        return "..."
    if part is None:
        return "None"
    if hasattr(part, "shape") and np.ndim(part):
        return f"array{tuple(part.shape)}"
    return str(part)


def summary(array):
    """Small arrays in full, large ones as norm/min/max; 3 significant digits either way,
    so the tiny gradients of a trained network do not print as 0 (a device's values are
    copied to the host to be printed)."""
    array = devices.to_host(array)
    if array.size <= _SUMMARY_SIZE:
        text = np.array2string(array, separator=", ", formatter={"float_kind": significant})
        return text.replace("\n", "")
    return (f"norm {significant(np.linalg.norm(array))}, min {significant(array.min())}, "
            f"max {significant(array.max())}")


def significant(value):
    return f"{value:.3g}"


def grad_array(tensor):
    """``tensor.grad`` as an array, or None."""
    grad = tensor.grad
    return grad.data if isinstance(grad, Tensor) else grad
