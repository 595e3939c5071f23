"""Static drawings with Graphviz: one box per op (what it did, its result's shape and dtype)
and per leaf tensor, each module call in a labelled cluster."""
from __future__ import annotations

import collections
import os
import shutil
from typing import Any

from ..core.context import Context
from ..core.tensor import Tensor
from ..core.types import PathLike
from . import scene as scenes

# Okabe-Ito colours; each kind also differs in outline, so colour is never the only cue.
STYLES = {
    "parameter": dict(shape="box", style="filled,rounded", fillcolor="#E69F00"),
    "constant": dict(shape="box", style="filled,dashed", fillcolor="#EEEEEE"),
    "intermediate": dict(shape="box", style="filled", fillcolor="#56B4E9"),
    "root": dict(shape="box", style="filled,bold", fillcolor="#009E73", penwidth="2.5"),
    "input": dict(shape="box", style="filled", fillcolor="#CC79A7"),
    "module": dict(shape="box3d", style="filled", fillcolor="#F5F5F5"),
    "truncated": dict(shape="note", style="filled", fillcolor="#F0E442"),
}
_LEGEND = {"parameter": "parameter", "input": "input", "constant": "constant",
           "intermediate": "op: what it did,\nits result", "root": "root"}
_PICTURE_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg"}
_SOURCE_SUFFIXES = {".gv", ".dot"}
WIDTH_PX = 1600        # the default layout aims to fit this width
_CHAR_PX, _BOX_PADDING_PX, _RANK_GAP_PX = 7.5, 24, 40   # for choosing the direction
_ALIGNED_NODES = 200   # repeated calls are lined up in one column up to this many boxes


class GraphvizNotFound(RuntimeError):
    """Graphviz's ``dot`` program, needed to draw pictures, is not installed."""


INSTALL_HINT = (
    "Graphviz's 'dot' program is needed to draw pictures but was not found on PATH. "
    "Install Graphviz: 'sudo apt-get install graphviz' (Debian/Ubuntu), "
    "'brew install graphviz' (macOS) or 'conda install -c conda-forge graphviz'. "
    "Saving the graph's source ('.gv' or '.dot') works without it.")


def draw_graph(root: Tensor, *, show_values: bool = False, show_grads: bool = True,
               group_modules: bool = True, rankdir: str | None = None, max_nodes: int = 500,
               depth: int | None = None) -> Any:
    """The graph that produced ``root`` as a ``graphviz.Digraph``.

    Each op is one box saying what it did (``x[:, 3]``, ``1 - x``, ``@``) and
    its result's shape and dtype; leaf tensors are boxes too. With
    ``show_grads`` tensors that hold a ``.grad`` show it (small arrays in full,
    large ones as norm/min/max); ``show_values`` adds their values. Each call
    of a module is a cluster of its own (``pool #1``, ``pool #2``); ``depth=N``
    draws each call nested deeper than ``N`` levels (the model called first is
    level 0) as one box, as torchview's ``depth``. A constant made without
    recording from a tensor that was passed (a convolution's im2col copy of
    its input) is drawn as that tensor, even once freed, with the ops in
    between on its edge (``pad → windows → reshape → (512, 9)``).
    ``rankdir`` is ``"LR"`` or ``"TB"``; by default ``"LR"`` where that fits
    1,600 px, else ``"TB"``. Graphs of more than ``max_nodes`` nodes are cut
    around the root, and a note says how many were left out.
    """
    import graphviz   # only when drawing: everything else works without it

    scene = scenes.Scene(root, max_nodes)
    drawing = Drawing(scene, graphviz, lambda call, level: depth is None or level < depth,
                      group_modules, show_values, show_grads)
    graph = drawing.graph
    graph.attr(rankdir=rankdir or _direction(drawing))
    legend(graph)
    return graph


def _direction(drawing):
    """Left to right where the widest box of each rank, side by side, fits the width; else
    top to bottom (the width then grows with the graph's breadth, not its length)."""
    widest = collections.defaultdict(int)
    for name, rank in _ranks(drawing.edges).items():
        widest[rank] = max(widest[rank], drawing.widths.get(name, 0))
    return "LR" if sum(widest.values()) + _RANK_GAP_PX * len(widest) <= WIDTH_PX else "TB"


def _ranks(edges):
    """The longest path from a source to each drawn node (the drawing is acyclic)."""
    successors, incoming = collections.defaultdict(list), collections.Counter()
    for source, target in edges:
        successors[source].append(target)
        incoming[target] += 1
    rank = {name: 0 for name in successors if incoming[name] == 0}
    ready = list(rank)
    while ready:
        name = ready.pop()
        for target in successors[name]:
            rank[target] = max(rank.get(target, 0), rank[name] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return rank


def _width_px(label):
    """About how wide Graphviz draws a box with this label (10 pt Helvetica)."""
    return _CHAR_PX * max(len(line) for line in label.split("\n")) + _BOX_PADDING_PX


class Drawing:
    """Places every kept item: its own box, or the box of the outermost closed call around it
    (``is_open(call, level)`` says which calls are drawn open, as clusters)."""

    def __init__(self, scene, graphviz, is_open, group_modules=True, show_values=False,
                 show_grads=True):
        self.scene, self.is_open = scene, is_open
        self.show = (show_values, show_grads)
        self.graph = graphviz.Digraph(
            "autonet", graph_attr=dict(fontname="Helvetica", nodesep="0.15", ranksep="0.3"),
            node_attr=dict(fontname="Helvetica", fontsize="10", margin="0.08,0.03", height="0.3"),
            edge_attr=dict(fontname="Helvetica", fontsize="9", arrowsize="0.6"))
        self.clusters = _Clusters(self.graph, scene, graphviz) if group_modules else None
        self.drawn, self.edges, self.order, self.widths = set(), set(), {}, {}
        cut = []
        for node in scene.nodes:
            target = self.place(node)
            self.order[target] = node.seq
            for position, parent in enumerate(node.inputs):
                if parent is None:
                    continue
                if id(parent) not in scene.kept:
                    cut.append(target)
                    continue
                source = self.place(parent)
                self.edge(source, target, self._edge_label(node, position, parent, source, target))
        if type(scene.root_item) is not Context:
            self.place(scene.root_item)   # a leaf root
        if scene.left_out:
            self.graph.node("truncated", f"{scene.left_out:,} more nodes not drawn\n"
                                         f"(max_nodes={scene.max_nodes})", **STYLES["truncated"])
            for target in dict.fromkeys(cut):
                self.edge("truncated", target, "", style="dashed", constraint="false")
        self._stack_repeated_calls()
        if self.clusters is not None:
            self.clusters.attach()

    def _stack_repeated_calls(self):
        """Draw ``cell #2`` after ``cell #1`` ends (an unrolled loop reads top to bottom, not
        zig-zag): invisible edges from the last op of each call to the first ops of the next."""
        spans = {}   # id(call) -> (the ops drawn in it, in order)
        for node in self.scene.nodes:
            for call in self.scene.calls[id(node)]:
                if id(call) in self.scene.numbers:
                    spans.setdefault(id(call), (call, []))[1].append(node)
        # Heavy edges also line the calls up in one column, but dot's placement then takes
        # minutes on hundreds of nodes (shared weights' edges span every step).
        heavy = {"weight": "10"} if len(self.drawn) <= _ALIGNED_NODES else {}
        runs = {}
        for call, nodes in sorted(spans.values(), key=lambda span: span[1][0].seq):
            runs.setdefault(id(call()), []).append(nodes)
        for calls in runs.values():
            for before, after in zip(calls, calls[1:]):
                last = f"op{id(before[-1])}"
                if before[-1].seq > after[0].seq or last not in self.drawn:
                    continue
                inside = {id(node) for node in after}
                for node in after:
                    first = f"op{id(node)}"
                    if first in self.drawn and not any(id(p) in inside for p in node.inputs):
                        self.graph.edge(last, first, style="invis", **heavy)

    def place(self, item):
        """Draw ``item`` (once) and return the id its edges attach to."""
        scene = self.scene
        item = scene.alias.get(id(item), item)
        passed = scene.passed.get(id(item))
        if passed is not None:
            return self._place_passed(passed)
        calls = scene.calls[id(item)] if type(item) is Context else scene.leaf_calls.get(id(item), ())
        closed = next((level for level, call in enumerate(calls) if not self.is_open(call, level)), None)
        if closed is not None:
            return self._box(calls[:closed + 1])
        name = f"op{id(item)}" if type(item) is Context else f"t{id(item)}"
        if name not in self.drawn:
            self.drawn.add(name)
            self._node(self._target(calls), name, self._label(item), scene.kind(item))
        return name

    def _place_passed(self, passed):
        name = f"p{id(passed)}"
        if name not in self.drawn:
            self.drawn.add(name)
            lines = [passed.name] if passed.name else []
            lines.append(f"{passed.shape} {passed.dtype}")
            values = passed.array()
            if self.show[0] and values is not None:
                lines.append("value " + scenes.summary(values))
            self._node(self.graph, name, "\n".join(lines), "constant")
        return name

    def _node(self, graph, name, label, kind, **attributes):
        graph.node(name, label, **STYLES[kind], **attributes)
        self.widths[name] = _width_px(label)

    def _box(self, calls):
        name = f"module{id(calls[-1])}"
        if name not in self.drawn:
            self.drawn.add(name)
            self._node(self._target(calls[:-1]), name, self.scene.call_label(calls[-1]), "module",
                       tooltip=_full_repr(calls[-1]()))
        return name

    def _target(self, calls):
        return self.clusters.get(calls) if self.clusters is not None and calls else self.graph

    def _edge_label(self, node, position, parent, source, target):
        """Operand positions where order matters and the op is drawn itself; the shape of
        what leaves a closed module's box (its boxes say no shapes themselves); from a passed
        tensor into an op, the unrecorded ops that made what the op read (``pad → windows →
        reshape → (512, 9)``: a convolution's im2col)."""
        tensors = sum(p is not None for p in node.inputs)
        into_op = not target.startswith("module")
        parts = [str(position)] if tensors > 1 and node.name not in scenes.COMMUTATIVE and into_op else []
        if source.startswith("module") and type(parent) is Context:
            parts.append(str(parent.shape))
        passed = self.scene.passed.get(id(parent))
        if into_op and passed is not None:
            ops = self.scene.made_by[id(parent)]
            if ops or parent.shape != passed.shape:   # not read as it was passed
                parts.append(" → ".join(ops + (str(parent.shape),)))
        return ": ".join(parts)

    def edge(self, source, target, label, **style):
        if source != target and (source, target) not in self.edges:
            self.edges.add((source, target))
            self.graph.edge(source, target, label=label, **style)

    def _label(self, item):
        """What the op did, or the leaf's name; shape and dtype; values and gradient at hand."""
        scene = self.scene
        show_values, show_grads = self.show
        tensor = scene.tensor_of(item)
        lines = [scenes.op_label(item)] if type(item) is Context else []
        named = tensor if tensor is not None or type(item) is Context else item   # a freed constant's own
        if named is not None and named.name:
            lines.append(named.name)
        lines.append(f"{item.shape} {item.dtype}")
        if show_values and tensor is not None:
            lines.append("value " + scenes.summary(tensor.data))
        if show_grads and tensor is not None and tensor.grad is not None:
            lines.append("grad " + scenes.summary(scenes.grad_array(tensor)))
        return "\n".join(lines)


class _Clusters:
    """Nested ``cluster_*`` subgraphs, one per module call, attached at the end."""

    def __init__(self, graph, scene, graphviz):
        self.graph, self.scene, self.graphviz = graph, scene, graphviz
        self.subgraphs = {}

    def get(self, calls):
        key = tuple(id(call) for call in calls)
        if key not in self.subgraphs:
            subgraph = self.graphviz.Digraph(name=f"cluster_{id(calls[-1])}")
            subgraph.attr(label=self.scene.call_label(calls[-1]), style="rounded", color="#0072B2",
                          fontcolor="#0072B2", fontsize="11", tooltip=_full_repr(calls[-1]()))
            self.subgraphs[key] = subgraph
            if len(calls) > 1:
                self.get(calls[:-1])
        return self.subgraphs[key]

    def attach(self):
        """Put each cluster inside its parent's, innermost first."""
        for key in sorted(self.subgraphs, key=len, reverse=True):
            parent = self.subgraphs[key[:-1]] if len(key) > 1 else self.graph
            parent.subgraph(self.subgraphs[key])


def _full_repr(module):
    """The module's one-line repr, shown when the pointer rests on its box or frame."""
    return f"{type(module).__name__}({module.extra_repr()})"


def legend(graph):
    """One compact table, so the key adds little to the picture's width."""
    rows = "".join(
        f'<TR><TD BGCOLOR="{STYLES[kind]["fillcolor"]}" STYLE="{_CELL_STYLE.get(kind, "")}">'
        f'{text.replace(chr(10), "<BR/>")}</TD></TR>' for kind, text in _LEGEND.items())
    graph.node("legend_key", f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2">'
                             f'<TR><TD BORDER="0">legend</TD></TR>{rows}</TABLE>>',
               shape="plaintext", fontsize="9")


_CELL_STYLE = {"parameter": "rounded", "constant": "dashed"}


def render(graph, format):
    """``graph.pipe(format)``; where dot's ranking fails on nested clusters (Graphviz 2.43:
    "trouble in init_rank"), once more with its newer ranking (``newrank=true``)."""
    import graphviz

    try:
        return graph.pipe(format=format, quiet=True)
    except graphviz.CalledProcessError:
        graph.attr(newrank="true")
        return graph.pipe(format=format)


def save_graph(root: Tensor, path: PathLike, **kwargs: Any) -> str:
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
        raise GraphvizNotFound(INSTALL_HINT)
    graph = draw_graph(root, **kwargs)
    if suffix in _SOURCE_SUFFIXES:
        content = graph.source.encode()
    else:
        content = render(graph, _PICTURE_FORMATS[suffix])
    with open(path, "wb") as file:
        file.write(content)
    return path
