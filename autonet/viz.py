"""Draw computation graphs with Graphviz.

>>> import autonet
>>> w = autonet.Tensor([[0.5], [-1.0]], requires_grad=True, name="w")
>>> loss = (autonet.Tensor([[1.0, 2.0]]) @ w).sigmoid().sum()
>>> graph = draw_graph(loss)          # a graphviz.Digraph: shows inline in Jupyter
>>> "matmul" in graph.source and "w" in graph.source
True

Tensors are boxes (name, shape, dtype; optionally values and gradients), ops
are ellipses. Parameters, constant inputs, intermediates and the root have
distinct shapes and colours from the Okabe-Ito palette, which stays readable
with colour-blindness; a legend explains them. Ops run inside a Module's call
are drawn in a cluster labelled with the module's path and repr.
"""
import collections
import os
import shutil

import numpy as np

from .core import device as devices
from .core.function import Context
from .core.tensor import Tensor

__all__ = ["draw_graph", "save_graph", "GraphvizNotFound"]

# Okabe-Ito colours; each kind also differs in outline, so colour is never the only cue.
_STYLES = {
    "parameter": dict(shape="box", style="filled,rounded", fillcolor="#E69F00"),
    "constant": dict(shape="box", style="filled,dashed", fillcolor="#EEEEEE"),
    "intermediate": dict(shape="box", style="filled", fillcolor="#56B4E9"),
    "root": dict(shape="box", style="filled,bold", fillcolor="#009E73", penwidth="2.5"),
    "input": dict(shape="box", style="filled", fillcolor="#CC79A7"),
    "op": dict(shape="ellipse", style="filled", fillcolor="#FFFFFF"),
    "module": dict(shape="box3d", style="filled", fillcolor="#F5F5F5"),
    "truncated": dict(shape="note", style="filled", fillcolor="#F0E442"),
}
_COMMUTATIVE = {"add", "mul", "maximum", "minimum"}
_SUMMARY_SIZE = 8   # arrays up to this size are shown in full
_PICTURE_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg"}
_SOURCE_SUFFIXES = {".gv", ".dot"}


class GraphvizNotFound(RuntimeError):
    """Graphviz's ``dot`` program, needed to draw pictures, is not installed."""


_INSTALL_HINT = (
    "Graphviz's 'dot' program is needed to draw pictures but was not found on PATH. "
    "Install Graphviz: 'sudo apt-get install graphviz' (Debian/Ubuntu), "
    "'brew install graphviz' (macOS) or 'conda install -c conda-forge graphviz'. "
    "Saving the graph's source ('.gv' or '.dot') works without it.")


def draw_graph(root, *, show_values=False, show_grads=True, group_modules=True, rankdir=None,
               max_nodes=500, depth=None):
    """The graph that produced ``root`` as a ``graphviz.Digraph``.

    Inputs are drawn first, ``root`` last. With ``show_grads`` tensors that
    hold a ``.grad`` show it (small arrays in full, large ones as
    norm/min/max); ``show_values`` adds their values. ``depth=N`` draws each
    module nested deeper than ``N`` levels (the model called first is level
    0) as one box, as torchview's ``depth``. ``rankdir`` is ``"LR"`` or
    ``"TB"``; by default ``"TB"`` for graphs longer than they are wide. Graphs
    of more than ``max_nodes`` nodes are cut around the root, and a note says
    how many were left out.
    """
    import graphviz   # only when drawing: everything else works without it

    items = _breadth_first(root)
    kept, left_out = _keep_near_root(items, max_nodes)
    graph = graphviz.Digraph("autonet", graph_attr=dict(rankdir=rankdir or _direction(kept),
                                                        fontname="Helvetica"),
                             node_attr=dict(fontname="Helvetica", fontsize="11"),
                             edge_attr=dict(fontname="Helvetica", fontsize="9"))
    clusters = _Clusters(graph) if group_modules else None
    kept_ids = {id(item) for item in kept}
    root_item = _root_item(root)
    boxes = _Boxes(graph, clusters, depth)
    cut_ops = []
    leaf_scopes = {}   # id(leaf) -> modules of the innermost module that owns it
    for item in kept:
        if type(item) is not Context:
            if item is root_item:   # a leaf root; other leaves are placed with their consumers
                graph.node(_tid(item), _label(item, root, show_values, show_grads), **_STYLES["root"])
            continue
        node = item
        modules = _modules(node)
        if boxes.collapsed(modules):
            boxes.enter(node, modules)
            continue
        kind = "root" if node is root_item else "intermediate"
        label = _label(node, root, show_values, show_grads)
        _target(clusters, graph, modules).node(_tid(node), label, **_STYLES[kind])
        _target(clusters, graph, modules).node(_oid(node), _op_label(node), **_STYLES["op"])
        graph.edge(_oid(node), _tid(node))
        boxes.done[id(node)] = _oid(node)
    for node in (item for item in kept if type(item) is Context):
        modules = _modules(node)
        inputs = node.inputs   # nodes, and leaf tensors as they were when the op ran
        label_positions = sum(i is not None for i in inputs) > 1 and node.name not in _COMMUTATIVE
        for position, parent in enumerate(inputs):
            if parent is None:
                continue
            if id(parent) not in kept_ids:
                cut_ops.append(node)
                continue
            if type(parent) is not Context and id(parent) not in leaf_scopes:
                leaf_scopes[id(parent)] = _owners(parent, modules)
            boxes.edge(parent, node, str(position) if label_positions else "")
    boxes.draw_leaves(leaf_scopes, root, show_values, show_grads)
    if left_out:
        graph.node("truncated", f"{left_out:,} more nodes\n(max_nodes={max_nodes})",
                   **_STYLES["truncated"])
        for node in dict.fromkeys(cut_ops):
            graph.edge("truncated", boxes.op_id(node), style="dashed")
    if clusters is not None:
        clusters.attach()
    _legend(graph)
    return graph


def _direction(items):
    """Top to bottom for a graph longer than it is wide, else left to right."""
    levels = {}
    for item in reversed(items):   # inputs before their consumers
        parents = [levels.get(id(p), 0) for p in getattr(item, "inputs", ()) if p is not None]
        levels[id(item)] = 1 + max(parents, default=0)
    length = max(levels.values(), default=1)
    widths = collections.Counter(levels.values())
    return "TB" if length > 2 * max(widths.values(), default=1) + 4 else "LR"


class _Boxes:
    """Where each item is drawn: its own node, or the box of a module collapsed by ``depth``."""

    def __init__(self, graph, clusters, depth):
        self.graph, self.clusters, self.depth = graph, clusters, depth
        self.done = {}        # id(node) -> the id of its op node
        self.groups = {}      # id(item) -> the id of the box it is drawn in
        self.drawn_boxes = set()
        self.edges = set()
        self.pending_leaves = []

    def collapsed(self, modules):
        return self.depth is not None and len(modules) > self.depth

    def enter(self, item, modules):
        group = modules[:self.depth + 1]
        box = f"module{id(group[-1])}"
        self.groups[id(item)] = box
        if box not in self.drawn_boxes:
            self.drawn_boxes.add(box)
            _target(self.clusters, self.graph, group[:-1]).node(
                box, _module_label(group[-1]), **_STYLES["module"])

    def op_id(self, node):
        return self.groups.get(id(node)) or _oid(node)

    def edge(self, parent, node, label):
        if type(parent) is not Context:
            self.pending_leaves.append((parent, node, label))
            return
        source = self.groups.get(id(parent)) or _tid(parent)
        self._edge(source, self.op_id(node), label)

    def _edge(self, source, target, label):
        if source != target and (source, target) not in self.edges:
            self.edges.add((source, target))
            self.graph.edge(source, target, label=label if not target.startswith("module") else "")

    def draw_leaves(self, leaf_scopes, root, show_values, show_grads):
        """Leaves are placed once their owners are known; those inside a collapsed module vanish."""
        for parent, node, label in self.pending_leaves:
            modules = leaf_scopes.get(id(parent), ())
            if self.collapsed(modules):
                self.enter(parent, modules)
                self._edge(self.groups[id(parent)], self.op_id(node), label)
                continue
            if id(parent) not in self.done:
                self.done[id(parent)] = True
                kind = _kind(parent, modules)
                _target(self.clusters, self.graph, modules).node(
                    _tid(parent), _label(parent, root, show_values, show_grads), **_STYLES[kind])
            self._edge(_tid(parent), self.op_id(node), label)


def save_graph(root, path, **kwargs):
    """Draw ``root``'s graph to ``path``; the format comes from the suffix.

    ``.svg``, ``.png``, ``.pdf`` (and ``.jpg``) need Graphviz's ``dot`` and
    raise :class:`GraphvizNotFound`, before writing anything, without it;
    ``.gv`` / ``.dot`` write the DOT source and need nothing. Returns the path.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _PICTURE_FORMATS and suffix not in _SOURCE_SUFFIXES:
        raise ValueError(f"save_graph: unknown suffix {suffix!r}; use one of "
                         f"{sorted(_PICTURE_FORMATS) + sorted(_SOURCE_SUFFIXES)}")
    if suffix in _PICTURE_FORMATS and shutil.which("dot") is None:
        raise GraphvizNotFound(_INSTALL_HINT)
    graph = draw_graph(root, **kwargs)
    if suffix in _SOURCE_SUFFIXES:
        content = graph.source.encode()
    else:
        content = graph.pipe(format=_PICTURE_FORMATS[suffix])
    with open(path, "wb") as file:
        file.write(content)
    return path


# ----------------------------------------------------------------- walking
# The graph holds nodes (each drawn as its op and its output) and the leaf
# tensors themselves; intermediate tensors are not kept alive by it, so their
# boxes show what the node records: shape, dtype, and a retained gradient.
def _root_item(root):
    """The root is drawn as the node that made it (or itself, if a leaf)."""
    return root._node if root._node is not None else root


def _breadth_first(root):
    """Every node and leaf that ``root`` depends on, nearest first (iterative)."""
    first = _root_item(root)
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


def _cost(item):
    """Drawn nodes per item: a node is its op and its output, a leaf one box."""
    return 2 if type(item) is Context else 1


def _keep_near_root(items, max_nodes):
    """The items to draw and how many drawn nodes are left out."""
    total = sum(_cost(item) for item in items)
    kept = []
    drawn = 0
    for item in items:
        if drawn + _cost(item) > max_nodes:
            break
        kept.append(item)
        drawn += _cost(item)
    return kept, total - drawn


# ----------------------------------------------------------------- labels
def _tid(item):
    return f"t{id(item)}"


def _oid(node):
    return f"op{id(node)}"


def _kind(item, modules=()):
    """Parameters belong to a module (or are Parameters); other leaves that require grad
    are inputs; the rest are constants."""
    if type(item) is Context:
        return "intermediate"
    if not (item.requires_grad and item.is_leaf):
        return "constant"
    return "parameter" if modules or type(item).__name__ == "Parameter" else "input"


def _op_label(node):
    """The op's name, with its number arguments (``mul`` of ``x`` and 2.0 reads ``mul 2.0``)."""
    if not node.constants:
        return node.name
    return node.name + " " + ", ".join(f"{value:.4g}" if isinstance(value, float) else repr(value)
                                       for _, value in node.constants)


def _label(item, root, show_values, show_grads):
    """Name, shape and dtype; values and gradient where the tensor is at hand."""
    tensor = item if isinstance(item, Tensor) else None
    if tensor is None and (root._node is item):
        tensor = root
    elif tensor is None and item.retained is not None:
        tensor = item.retained()
    lines = []
    if tensor is not None and tensor.name:
        lines.append(tensor.name)
    shape, dtype = (item.shape, item.dtype) if type(item) is Context else (tensor.shape, tensor.dtype)
    lines.append(f"{shape} {dtype}")
    if show_values and tensor is not None:
        lines.append("value " + _summary(tensor.data))
    if show_grads and tensor is not None and tensor.grad is not None:
        grad = tensor.grad.data if isinstance(tensor.grad, Tensor) else tensor.grad
        lines.append("grad " + _summary(grad))
    return "\n".join(lines)


def _summary(array):
    """Small arrays in full, large ones as norm/min/max; 3 significant digits either way,
    so the tiny gradients of a trained network do not print as 0 (a device's values are
    copied to the host to be printed)."""
    array = devices.to_host(array)
    if array.size <= _SUMMARY_SIZE:
        text = np.array2string(array, separator=", ", formatter={"float_kind": _significant})
        return text.replace("\n", "")
    return (f"norm {_significant(np.linalg.norm(array))}, min {_significant(array.min())}, "
            f"max {_significant(array.max())}")


def _significant(value):
    return f"{value:.3g}"


def _legend(graph):
    with graph.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", fontsize="10", style="dashed", color="#999999")
        for kind in ("parameter", "input", "constant", "intermediate", "root", "op"):
            legend.node(f"legend_{kind}", kind if kind != "op" else "operation", **_STYLES[kind])


# ----------------------------------------------------------------- module clusters
def _modules(node):
    """The live modules whose ``__call__`` recorded ``node``, outermost first."""
    return tuple(m for m in (ref() for ref in node.scope) if m is not None)


def _owners(leaf, modules):
    """The prefix of ``modules`` ending at the innermost one that holds ``leaf`` itself."""
    for depth in range(len(modules), 0, -1):
        if any(value is leaf for _, value in modules[depth - 1]._members()):
            return modules[:depth]
    return ()


def _target(clusters, graph, modules):
    return clusters.get(modules) if clusters is not None and modules else graph


class _Clusters:
    """Nested ``cluster_*`` subgraphs, one per module path, attached at the end."""

    def __init__(self, graph):
        self.graph = graph
        self.subgraphs = {}

    def get(self, modules):
        if modules not in self.subgraphs:
            module = modules[-1]
            subgraph = type(self.graph)(name=f"cluster_{len(self.subgraphs)}")
            subgraph.attr(label=_module_label(module), style="rounded", color="#0072B2",
                          fontcolor="#0072B2", fontsize="11")
            self.subgraphs[modules] = subgraph
            if len(modules) > 1:
                self.get(modules[:-1])
        return self.subgraphs[modules]

    def attach(self):
        """Put each cluster inside its parent's, innermost first."""
        for modules in sorted(self.subgraphs, key=len, reverse=True):
            parent = self.subgraphs[modules[:-1]] if len(modules) > 1 else self.graph
            parent.subgraph(self.subgraphs[modules])


def _module_label(module):
    text = f"{type(module).__name__}({module.extra_repr()})"
    return f"{module._path}: {text}" if module._path else text
