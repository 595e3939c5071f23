"""Draw computation graphs: static pictures with Graphviz, or an interactive explorer.

>>> import autonet
>>> w = autonet.Tensor([[0.5], [-1.0]], requires_grad=True, name="w")
>>> loss = (autonet.Tensor([[1.0, 2.0]]) @ w).sigmoid().sum()
>>> graph = draw_graph(loss)          # a graphviz.Digraph: shows inline in Jupyter
>>> "@" in graph.source and "w" in graph.source
True

Tensors and ops are boxes: an op says what it did (``x[:, 3]``, ``1 - x``,
``@``) and its result's shape and dtype. Parameters, inputs, constants,
intermediates and the root have distinct outlines and colours from the
Okabe-Ito palette, which stays readable with colour-blindness; a legend
explains them. Each call of a Module is drawn as a cluster labelled with the
module's path, which call it is and what it is (``pool #2: maxpool2d 2x2 s2 p0``).
:func:`explore` writes the same graph as one interactive HTML page.
"""
from .draw import GraphvizNotFound, draw_graph, save_graph
from .explorer import Explorer, explore

__all__ = ["draw_graph", "save_graph", "GraphvizNotFound", "explore", "Explorer"]
