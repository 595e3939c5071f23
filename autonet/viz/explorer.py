"""An interactive explorer of a graph: one self-contained HTML page.

Graphviz lays out the graph once per view (each module call open or closed),
here in Python; the page carries those SVG layouts, the facts about every
item as JSON and a small script shipped in ``assets/`` (no network access
when the page is viewed). It shows module boxes that open and close, an op's
or tensor's details on hover, a search over parameter and module names, and
a walk through the backward pass in the engine's order.
"""
from __future__ import annotations

import html
import importlib.resources
import json
import os
import shutil
import uuid

import numpy as np

from ..core import backward as engine, device as devices
from ..core.context import Context
from ..core.function import RELEASED
from ..core.tensor import Tensor
from ..core.types import PathLike
from . import scene as scenes
from .draw import INSTALL_HINT, Drawing, GraphvizNotFound, legend, render

_MAX_CALL_VIEWS = 40   # beyond this many module calls, only the whole-graph views are laid out


def explore(root: Tensor, *, depth: int = 1, max_nodes: int = 500) -> Explorer:
    """An :class:`Explorer` of the graph that produced ``root``, its module calls open to
    ``depth`` levels at first (``depth=1``: the model's layers as boxes).

    Call it before ``backward()`` (or after ``backward(retain_graph=True)``) to see
    the gradient arriving at every op: the explorer runs its own backward pass
    from ``root`` (seeded with ones), which changes no ``.grad``. After a
    ``backward()`` that freed the graph, leaves still show their ``.grad``.
    Needs Graphviz's ``dot``.
    """
    return Explorer(root, depth=depth, max_nodes=max_nodes)


class Explorer:
    """Shows inline in Jupyter (``_repr_html_``); ``save(path)`` writes one HTML file."""

    def __init__(self, root: Tensor, depth: int = 1, max_nodes: int = 500) -> None:
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
            raise ValueError(f"explore: depth must be an int >= 0 (0: every module closed), "
                             f"not {depth!r}")
        if shutil.which("dot") is None:
            raise GraphvizNotFound(INSTALL_HINT)
        import graphviz

        self.scene = scene = scenes.Scene(root, max_nodes)
        order, arrived = _backward_pass(root, scene)
        values = _values_at_hand(scene)
        self.data = {
            "items": _items(scene, values, arrived),
            "calls": _calls(scene),
            "steps": [f"op{id(node)}" for node in order],
            "walked": arrived is not None,
            "truncated": scene.left_out,
        }
        self.data.update(_views(scene, graphviz, depth))

    def html(self, full_page: bool = False) -> str:
        """The explorer as HTML: a ``<div>`` (or a whole page) with its script and style."""
        element = f"autonet-explorer-{uuid.uuid4().hex[:12]}"
        data = json.dumps(self.data).replace("</", "<\\/")
        body = (f'<div class="autonet-explorer" id="{element}">'
                f"<style>{_asset('explorer.css')}</style>"
                f'<script type="application/json" class="ae-data">{data}</script>'
                f"<script>{_asset('explorer.js')}\nautonetExplorer(document.getElementById("
                f'"{element}"));</script></div>')
        if not full_page:
            return body
        title = html.escape(f"autonet graph of {self.data['items'][self.data['root']]['title']}")
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}'
                f"</title></head><body>{body}</body></html>\n")

    def _repr_html_(self):
        return self.html()

    def save(self, path: PathLike) -> str:
        """Write the explorer to ``path`` as one self-contained HTML file; returns the path."""
        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as file:
            file.write(self.html(full_page=True))
        return path


def _asset(name):
    return importlib.resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


# ----------------------------------------------------------------- views
def _views(scene, graphviz, depth):
    """SVG layouts by the set of open calls, and which layout each action shows."""
    calls = _all_calls(scene)
    levels = {id(call): level for call, level in calls.values()}
    parents = _parents(scene)
    base = frozenset(c for c, level in levels.items() if level < depth)
    named = {"none": frozenset(), "base": base, "all": frozenset(levels)}
    if len(calls) <= _MAX_CALL_VIEWS:
        for key in levels:
            ancestors = _ancestors(key, parents)
            named[f"open:{key}"] = base | ancestors | {key}
            named[f"close:{key}"] = frozenset(c for c in base | ancestors
                                              if c != key and key not in _ancestors(c, parents))
    layouts, keys = {}, {}
    for name, open_calls in named.items():
        key = ",".join(sorted(map(str, open_calls))) or "-"
        if key not in layouts:
            layouts[key] = _layout(scene, graphviz, open_calls)
        if layouts[key] is not None:   # else the page says this view could not be laid out
            keys[name] = key
    return {"layouts": {k: v for k, v in layouts.items() if v is not None}, "views": keys,
            "root": _item_id(scene.root_item)}


def _layout(scene, graphviz, open_calls):
    """The SVG of the view with ``open_calls`` open, or None where dot fails on it."""
    drawing = Drawing(scene, graphviz, lambda call, level: id(call) in open_calls)
    drawing.graph.attr(rankdir="TB")
    legend(drawing.graph)
    try:
        return _svg_body(render(drawing.graph, "svg").decode("utf-8"))
    except graphviz.CalledProcessError:
        return None


def _svg_body(svg):
    """The ``<svg>`` element alone (no XML prolog or doctype)."""
    return svg[svg.index("<svg"):]


def _all_calls(scene):
    """id(call) -> (call, level) for every call that recorded a kept op."""
    found = {}
    for node in scene.nodes:
        for level, call in enumerate(scene.calls[id(node)]):
            found.setdefault(id(call), (call, level))
    return found


def _parents(scene):
    parents = {}
    for node in scene.nodes:
        calls = scene.calls[id(node)]
        for outer, inner in zip(calls, calls[1:]):
            parents[id(inner)] = id(outer)
    return parents


def _ancestors(key, parents):
    found = set()
    while key in parents:
        key = parents[key]
        found.add(key)
    return frozenset(found)


# ----------------------------------------------------------------- facts
def _item_id(item):
    return f"op{id(item)}" if type(item) is Context else f"t{id(item)}"


def _items(scene, values, arrived):
    """What the page shows about every drawn box, by the node name Graphviz gives it."""
    items = {}
    for item in scene.items:
        if id(item) in scene.alias:   # drawn as another stand-in of the same tensor
            continue
        calls = scene.calls[id(item)] if type(item) is Context else scene.leaf_calls.get(id(item), ())
        tensor = scene.tensor_of(item)
        if type(item) is Context:
            facts = dict(title=scenes.op_label(item), op=item.name, shape=list(item.shape),
                         dtype=str(item.dtype), value=_stats(values.get(id(item))))
        else:
            facts = dict(title=item.name or "tensor", op=None, shape=list(item.shape), dtype=str(item.dtype),
                         value=_stats(tensor.data if tensor is not None else None))   # None once freed
        facts.update(kind=scene.kind(item), name=tensor.name if tensor is not None else None,
                     calls=[str(id(call)) for call in calls],
                     path=" › ".join(scene.call_label(call) for call in calls))
        grad = arrived.get(id(item)) if arrived is not None else None
        if grad is None and tensor is not None and tensor.grad is not None:
            grad = scenes.grad_array(tensor)
        facts["grad"] = _stats(grad)
        passed = scene.passed.get(id(item))
        if passed is not None:   # one box for the tensor passed, outside every module
            key = f"p{id(passed)}"
            made = items[key]["made"] if key in items else None
            ops = scene.made_by[id(item)]
            if ops or tuple(item.shape) != passed.shape:   # what was made of it (not read as it is)
                made = (made or []) + [f"{tuple(item.shape)}" + (f" by {' → '.join(ops)}" if ops else "")]
            facts.update(title=passed.name or "argument", name=passed.name, shape=list(passed.shape),
                         dtype=str(passed.dtype), value=_stats(passed.array()), calls=[], path="",
                         made=made)
            items[key] = facts
        else:
            items[_item_id(item)] = facts
    return items


def _calls(scene):
    """What the page shows about every module call: its label, path and parameters."""
    calls = {}
    for key, (call, level) in _all_calls(scene).items():
        module = call()
        calls[str(key)] = dict(label=scene.call_label(call), level=level, path=module._path,
                               type=type(module).__name__,
                               parameters=[name for name, _ in module.named_parameters(module._path)])
    return calls


def _stats(array):
    """Shape-free statistics of an array (or None), with small arrays in full."""
    if array is None:
        return None
    array = devices.to_host(array)
    if array.dtype.kind not in "fiub" or array.size == 0:
        return {"summary": scenes.summary(array)} if array.size else {"summary": "empty"}
    values = array.astype(np.float64)
    with np.errstate(all="ignore"):
        stats = {"mean": values.mean(), "std": values.std(), "min": values.min(), "max": values.max(),
                 "norm": np.linalg.norm(values)}
    # JSON has no NaN or inf: those are given as text ("nan", "inf", "-inf")
    return {"summary": scenes.summary(array),
            **{key: float(v) if np.isfinite(v) else str(float(v)) for key, v in stats.items()}}


def _values_at_hand(scene):
    """id(node) -> its output array where the graph still holds it: saved by the op itself or
    by a consumer that saved that input (unchanged since), or the root's and retained data."""
    values = {}
    for node in scene.nodes:
        if node.saved is RELEASED or not node.saved:
            continue
        for array, entry in zip(node.saved, node.saved_versions):
            if entry is None or not entry[3] or (entry[1] is not None and entry[1][0] != entry[2]):
                continue
            source = node if entry[0] < 0 else node.inputs[entry[0]]
            if type(source) is Context:
                values.setdefault(id(source), array)
    for node in scene.nodes:
        tensor = scene.tensor_of(node)
        if tensor is not None:
            values[id(node)] = tensor.data
    return values


def _backward_pass(root, scene):
    """The engine's order over the drawn ops, and the gradient arriving at each item (None if
    the graph's saved arrays were freed). Runs a pass of its own: no ``.grad`` changes."""
    drawn = {id(node) for node in scene.nodes}
    if root._node is None:
        return [], None
    try:
        plan = engine.plan((root._node,))
        seed = engine.initial_gradient(root, None if root.data.size == 1 else 1.0, False, "explore")
        grads, _, captured = engine.execute(plan, {root._node: seed}, retain_graph=True,
                                            capture=set(plan.nodes))
    except RuntimeError:   # freed by an earlier backward(): the order is still known
        return sorted(scene.nodes, key=lambda node: -node.seq), None
    arrived = {id(node): grad for node, grad in captured.items()}
    arrived.update((id(leaf), grad) for leaf, grad in grads.items() if not isinstance(leaf, Context))
    return [node for node in plan.nodes if id(node) in drawn], arrived
