"""The ONNX graph being written: nodes, initializers, fresh names, shape vectors.

Plain Python and NumPy until :meth:`Graph.proto` hands everything to the
``onnx`` package, so the op table can be read (and tested) without it.
"""
from __future__ import annotations

import numpy as np

from .dims import Dim

INT64_MAX, INT64_MIN = 2 ** 63 - 1, -2 ** 63   # Slice's "to the end" (forward / backward)


class Node:
    __slots__ = ("op", "inputs", "outputs", "attributes")

    def __init__(self, op, inputs, outputs, attributes):
        self.op, self.inputs, self.outputs, self.attributes = op, inputs, outputs, attributes


class Graph:
    """Collects nodes and initializers; ``sizes`` says where each dynamic symbol's size is
    read: ``{symbol: (input name, axis)}``."""

    def __init__(self, sizes: dict[str, tuple[str, int]]):
        self.nodes: list[Node] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.sizes = sizes
        self.count = 0
        self.cache: dict = {}

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}:{self.count}"   # a colon: no user or state_dict name has one

    def node(self, op: str, inputs, out: str | None = None, **attributes) -> str:
        """Add one node with one output (named ``out``, or fresh); returns the output's name."""
        out = out or self.fresh(op.lower())
        self.nodes.append(Node(op, ["" if i is None else i for i in inputs], [out], attributes))
        return out

    def constant(self, array, dtype=None, hint: str = "const") -> str:
        """An initializer holding ``array`` (as ``dtype``); equal small constants are shared."""
        array = np.asarray(array, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self.cache:
            return self.cache[key]
        name = self.fresh(hint)
        self.initializers[name] = array
        if key is not None:
            self.cache[key] = name
        return name

    def ints(self, values) -> str:
        """A 1-D int64 tensor of ``values``: ints, or ``Dim`` entries read from the input shapes
        at run time."""
        values = list(values)
        if not any(isinstance(v, Dim) for v in values):
            return self.constant(np.array(values, dtype=np.int64).reshape(-1), hint="ints")
        parts = [self._dim(v) if isinstance(v, Dim) else self.constant([v], np.int64, "ints")
                 for v in values]
        return parts[0] if len(parts) == 1 else self.node("Concat", parts, axis=0)

    def _dim(self, dim: Dim) -> str:
        key = ("dim", dim)
        if key not in self.cache:
            value = self.size(dim.symbols[0])
            for symbol in dim.symbols[1:]:
                value = self.node("Mul", [value, self.size(symbol)])
            if dim.coefficient != 1:
                value = self.node("Mul", [value, self.constant([dim.coefficient], np.int64, "ints")])
            self.cache[key] = value
        return self.cache[key]

    def size(self, symbol: str) -> str:
        """``[size]`` of a dynamic symbol, read from its input's shape."""
        key = ("size", symbol)
        if key not in self.cache:
            name, axis = self.sizes[symbol]
            self.cache[key] = self.node("Shape", [name], start=axis, end=axis + 1)
        return self.cache[key]
