"""Dynamic axes: which recorded integers follow an input axis's size, found by tracing again.

The forward is traced once as given, then once more per dynamic symbol with
that symbol's axes one longer. An integer (a shape entry, a slice bound) that
is the same in every trace is a constant; one that changes is written as
``coefficient * size(symbol) * ...``, which covers batch-times-positions
reshapes; anything else (an offset, a value that changes in another way) is
refused: the exported graph would be right for one size only.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .trace import Ref, Step, Trace


class Dim:
    """An integer that depends on dynamic axes: ``coefficient`` times the sizes of ``symbols``."""

    __slots__ = ("coefficient", "symbols")

    def __init__(self, coefficient: int, symbols: tuple):
        self.coefficient, self.symbols = coefficient, symbols

    def __eq__(self, other):
        return isinstance(other, Dim) and (other.coefficient, other.symbols) == (
            self.coefficient, self.symbols)

    def __hash__(self):
        return hash((self.coefficient, self.symbols))

    def __repr__(self):
        return " * ".join([str(self.coefficient)] * (self.coefficient != 1) + list(self.symbols))


class Symbol:
    """A dynamic axis name, its size in the first trace and in its own trace."""

    def __init__(self, name: str, size: int, grown: int):
        self.name, self.size, self.grown = name, size, grown


def merged(traces: list[Trace], symbols: list[Symbol]) -> Trace:
    """The first trace, with every setting and shape that follows a symbol as a ``Dim``;
    ``ValueError`` when the traces differ in any other way."""
    if not symbols:
        return traces[0]
    first = traces[0]
    for trace, symbol in zip(traces[1:], symbols):
        _same_structure(first, trace, symbol)
    out = Trace()
    out.outputs, out.dtypes, out.initializers = first.outputs, first.dtypes, first.initializers
    made = {step.out for step in first.steps}
    for name in first.shapes:
        if name not in made:   # inputs, parameters, constants
            out.shapes[name] = _merge([t.shapes[name] for t in traces], symbols, f"the value {name}")
    for steps in zip(*(t.steps for t in traces)):
        step = steps[0]
        where = f"{step.fn.name} (step {step.out})"
        out.shapes[step.out] = _merge([s.shape for s in steps], symbols, where)
        settings = _merge([s.settings for s in steps], symbols, where)
        args = _merge([s.args for s in steps], symbols, where)
        out.steps.append(Step(step.fn, args, settings, step.out, out.shapes[step.out], step.dtype))
    return out


def _same_structure(first: Trace, other: Trace, symbol: Symbol):
    why = difference(first, other)
    if why:
        raise ValueError(
            f"autonet.onnx.export: the forward changes with the size of dynamic axis "
            f"{symbol.name!r} ({symbol.size} -> {symbol.grown}): {why}; export with that axis "
            f"fixed (leave it out of dynamic_axes)")


def difference(first: Trace, other: Trace, settings: bool = False) -> str | None:
    """How two traces differ in their ops, outputs or constants (and, with ``settings``, in
    the ops' settings and shapes), or None."""
    if len(first.steps) != len(other.steps):
        return f"it runs {len(first.steps)} ops, then {len(other.steps)}"
    for a, b in zip(first.steps, other.steps):
        if a.fn is not b.fn:
            return f"step {a.out} is {a.fn.name}, then {b.fn.name}"
        if settings:
            try:
                _merge([(a.args, a.settings, a.shape), (b.args, b.settings, b.shape)], [], a.fn.name)
            except ValueError:
                return f"step {a.out} ({a.fn.name}) gets other settings"
    if first.outputs != other.outputs:
        return "it returns other values"
    for name, array in first.initializers.items():
        again = other.initializers.get(name)
        if again is None or again.shape != array.shape or not np.array_equal(again, array, equal_nan=True):
            return (f"the constant {name} it makes ({array.shape}) changes; make it inside an op "
                    f"from the input instead")
    return None


def _merge(values: list, symbols: list[Symbol], where: str):
    base = values[0]
    if isinstance(base, numbers.Integral) and not isinstance(base, (bool, np.bool_)):
        return _fit([int(v) for v in values], symbols, where)
    if isinstance(base, (tuple, list)):
        if any(type(v) is not type(base) or len(v) != len(base) for v in values):
            raise _changes(where, values)
        return type(base)(_merge(list(parts), symbols, where) for parts in zip(*values))
    if isinstance(base, dict):
        if any(v.keys() != base.keys() for v in values):
            raise _changes(where, values)
        return {key: _merge([v[key] for v in values], symbols, where) for key in base}
    if isinstance(base, slice):
        return slice(*(_merge([getattr(v, part) for v in values], symbols, where)
                       for part in ("start", "stop", "step")))
    if isinstance(base, np.ndarray):
        if any(v.shape != base.shape or not np.array_equal(v, base) for v in values):
            raise _changes(where, values)
        return base
    if any(not _same(v, base) for v in values):
        raise _changes(where, values)
    return base


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, (Ref, str, float, complex, bool, type(None), np.dtype, type)):
        return type(a) is type(b) and a == b
    return False


def _fit(values: list[int], symbols: list[Symbol], where: str):
    """``values[0]`` as an int or a ``Dim``; ``values[k]`` is its value in symbol k's trace."""
    base = values[0]
    if all(v == base for v in values):
        return base
    if len(values) != len(symbols) + 1:   # no symbol to explain the change
        raise _changes(where, values)
    follows = []
    for symbol, value in zip(symbols, values[1:]):
        if value == base:
            continue
        if base * symbol.grown != value * symbol.size:
            raise _changes(where, values)
        follows.append(symbol)
    product = math.prod(symbol.size for symbol in follows)
    if base % product:
        raise _changes(where, values)
    return Dim(base // product, tuple(symbol.name for symbol in follows))


def _changes(where: str, values: list) -> ValueError:
    return ValueError(
        f"autonet.onnx.export: {where} has a shape or settings that change with the dynamic "
        f"axes' sizes in a way the export cannot write down (seen: {_short(values)}); export "
        f"with those axes fixed (leave them out of dynamic_axes)")


def _short(values: list) -> str:
    text = ", ".join(map(repr, values))
    return text if len(text) < 200 else text[:200] + " ..."
