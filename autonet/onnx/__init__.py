"""ONNX export: ``autonet.onnx.export(model, example_inputs, path, ...)``.

The forward is traced once in eval mode on the example inputs (every op it
applies, with its settings: :mod:`.trace`), the ops that lead to the outputs
are written as ONNX operators (:mod:`.ops`, one mapping per autonet Function),
the model is checked with ``onnx.checker`` and written atomically. Parameters
and buffers become initializers named by their ``state_dict`` keys. Dynamic
axes are found by tracing again with those axes longer (:mod:`.dims`).

The ``onnx`` package is imported only here, when exporting: ``pip install
'autonet[onnx]'`` (``onnx`` and ``onnxruntime``).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..core import device as devices
from ..core.tensor import Tensor
from ..files import write_atomically
from ..nn.module import Module
from . import dims, trace
from .graph import Graph
from .ops import Call, mapping_of

DEFAULT_OPSET = 18
OPSETS = range(18, 22)   # the opsets the mappings are written (and tested) for
_INSTALL = "autonet.onnx.export needs the onnx package: pip install 'autonet[onnx]'"

__all__ = ["export", "DEFAULT_OPSET", "OPSETS"]


def export(model: Module, example_inputs: tuple, path: str | os.PathLike[str],
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           dynamic_axes: dict[str, Any] | None = None, opset: int | None = None) -> None:
    """Write ``model``'s forward, traced on ``example_inputs`` (a tuple, one entry per forward
    argument), as an ONNX model at ``path``.

    The forward runs once in eval mode (the model's train flags are restored
    after). ``input_names``/``output_names`` default to ``input`` (``input_0``,
    ``input_1``, ... for several) and ``output`` likewise; ``dynamic_axes``
    takes torch.onnx's form, ``{"input": {0: "batch"}}`` or ``{"input": [0]}``;
    ``opset`` defaults to ``DEFAULT_OPSET``. An op without an ONNX mapping,
    or anything else that cannot be exported, raises ``ValueError`` and
    writes no file.
    """
    if not isinstance(model, Module):
        raise TypeError(f"autonet.onnx.export: model must be an autonet.nn.Module, not "
                        f"{type(model).__name__}")
    arrays = _example_arrays(example_inputs)
    opset = _opset(opset)
    names = _names(input_names, len(arrays), "input")
    onnx = _onnx()
    first = trace.run(model, dict(zip(names, arrays)))
    for step in _needed(first):
        mapping_of(step.fn)   # an op without a mapping is named first
    _check_values_not_baked(model, names, arrays, first)
    outputs = _names(output_names, len(first.outputs), "output")
    _check_unique(names + outputs, model)
    axes = _dynamic_axes(dynamic_axes, names, outputs, arrays)
    symbols, traces = _traces_per_symbol(model, names, arrays, axes, first)
    merged = dims.merged(traces, symbols)
    proto = _model_proto(onnx, merged, _needed(merged), names, outputs, axes, opset)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:   # a bug here, not the user's: say so
        raise ValueError(f"autonet.onnx.export: the written model fails onnx.checker ({error}); "
                         f"please report it") from None
    data = proto.SerializeToString()
    write_atomically(path, lambda file: file.write(data))


# ------------------------------------------------------------------ arguments
def _onnx():
    try:
        import onnx
    except ImportError as missing:
        raise ImportError(_INSTALL) from missing
    return onnx


def _example_arrays(example_inputs) -> list[np.ndarray]:
    if not isinstance(example_inputs, tuple):
        raise TypeError(f"autonet.onnx.export: example_inputs must be a tuple with one entry per "
                        f"forward argument, not {type(example_inputs).__name__}; for one input "
                        f"write (x,)")
    arrays = []
    for position, value in enumerate(example_inputs):
        array = value.data if isinstance(value, Tensor) else value
        if devices.is_foreign(array):
            array = devices.to_host(array)   # traced on the model's device, written from the host
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            raise TypeError(f"autonet.onnx.export: example_inputs[{position}] must be a Tensor or a "
                            f"numeric ndarray (integers for indices), not {type(value).__name__}")
        arrays.append(np.array(array))
    return arrays


def _opset(opset) -> int:
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ValueError(f"autonet.onnx.export: opset must be one of {OPSETS.start}..{OPSETS.stop - 1}, "
                         f"not {opset!r}")
    return opset


def _names(given, count: int, kind: str) -> list[str]:
    if given is None:
        return [kind] if count == 1 else [f"{kind}_{i}" for i in range(count)]
    given = list(given) if isinstance(given, (list, tuple)) else given
    if not isinstance(given, list) or not all(isinstance(n, str) and n for n in given):
        raise TypeError(f"autonet.onnx.export: {kind}_names must be a list of strings, not {given!r}")
    if len(given) != count:
        raise ValueError(f"autonet.onnx.export: {kind}_names has {len(given)} names for {count} "
                         f"{kind}s")
    return given


def _check_unique(names: list[str], model: Module):
    state = {key for key, _ in model.named_parameters()} | {key for key, _ in model.named_buffers()}
    for name in names:
        if ":" in name or name in state or names.count(name) > 1:
            raise ValueError(f"autonet.onnx.export: the input/output name {name!r} is used twice, "
                             f"names a parameter or buffer, or has a ':'; choose another")


def _dynamic_axes(dynamic_axes, inputs: list[str], outputs: list[str], arrays) -> dict:
    """``{name: {axis: symbol}}`` from torch.onnx's forms, checked."""
    if dynamic_axes is None:
        return {}
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"autonet.onnx.export: dynamic_axes must be a dict such as "
                        f'{{"input": {{0: "batch"}}}}, not {type(dynamic_axes).__name__}')
    result = {}
    for name, axes in dynamic_axes.items():
        if name not in inputs and name not in outputs:
            raise ValueError(f"autonet.onnx.export: dynamic_axes names {name!r}, which is no input or "
                             f"output; the names are {inputs + outputs}")
        if isinstance(axes, (list, tuple)):
            axes = {axis: f"{name}_dynamic_axes_{i + 1}" for i, axis in enumerate(axes)}
        if not isinstance(axes, dict) or not all(isinstance(a, int) and not isinstance(a, bool)
                                                 and isinstance(s, str) and s for a, s in axes.items()):
            raise TypeError(f"autonet.onnx.export: dynamic_axes[{name!r}] must map axes (ints) to "
                            f"names, or list axes, not {axes!r}")
        if name in inputs:
            ndim = arrays[inputs.index(name)].ndim
            if any(not -ndim <= a < ndim for a in axes):
                raise ValueError(f"autonet.onnx.export: dynamic_axes[{name!r}] names axes {list(axes)} "
                                 f"of an input with {ndim} axes")
            axes = {a % ndim: s for a, s in axes.items()}
        result[name] = axes
    return result


# ------------------------------------------------------------------ tracing
def _traces_per_symbol(model: Module, names: list[str], arrays: list, axes: dict, first: trace.Trace) -> tuple:
    """The symbols that input axes carry, and one more trace per symbol with its axes longer."""
    places: dict[str, list] = {}
    for name, array in zip(names, arrays):
        for axis, symbol in axes.get(name, {}).items():
            places.setdefault(symbol, []).append((names.index(name), axis))
    symbols, traces = [], [first]
    for symbol, where in places.items():
        sizes = {arrays[i].shape[axis] for i, axis in where}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"autonet.onnx.export: the example inputs' axes named {symbol!r} have "
                             f"sizes {sorted(sizes)}; they must share one size, at least 1")
        size = sizes.pop()
        grown = list(arrays)
        for i, axis in where:
            grown[i] = np.concatenate([grown[i], np.take(grown[i], [0], axis=axis)], axis=axis)
        try:
            traces.append(trace.run(model, dict(zip(names, grown))))
        except Exception as error:   # noqa: BLE001 - any failure means the axis cannot vary
            raise ValueError(f"autonet.onnx.export: the forward fails when dynamic axis {symbol!r} "
                             f"has size {size + 1} instead of {size} ({type(error).__name__}: "
                             f"{error}); that axis cannot be dynamic") from error
        symbols.append(dims.Symbol(symbol, size, size + 1))
    return symbols, traces


def _check_values_not_baked(model, names, arrays, first):
    """Trace again on the inputs' values rearranged (the same values, so still valid indices):
    the same ops and constants must come out, or the graph would hold values the forward took
    from its inputs outside autonet's ops (``x.data``), or Python branched on them."""
    rolled = [np.roll(array.reshape(-1), 1).reshape(array.shape) for array in arrays]
    try:
        again = trace.run(model, dict(zip(names, rolled)))
    except Exception as error:   # noqa: BLE001 - the forward depends on the values: say so
        raise ValueError(f"autonet.onnx.export: the forward fails on the example inputs with their "
                         f"values rearranged ({type(error).__name__}: {error}); it depends on the "
                         f"values in a way an ONNX graph cannot follow") from error
    why = dims.difference(first, again, settings=True)
    if why:
        raise ValueError(f"autonet.onnx.export: the forward depends on the input values outside "
                         f"autonet's ops (through .data, or a Python branch): {why}; compute it "
                         f"with tensor ops so the graph can follow")


def _needed(traced: trace.Trace) -> list:
    """The steps the outputs depend on, in order."""
    producer = {step.out: step for step in traced.steps}
    wanted, stack = set(), list(traced.outputs)
    while stack:
        name = stack.pop()
        step = producer.get(name)
        if step is None or name in wanted:
            continue
        wanted.add(name)
        stack.extend(arg.name for arg in step.args if isinstance(arg, trace.Ref))
    return [step for step in traced.steps if step.out in wanted]


# ------------------------------------------------------------------ the model
def _model_proto(onnx, traced, steps, inputs, outputs, axes, opset):
    from onnx import helper, numpy_helper
    sizes = {}
    for name in inputs:
        for axis, symbol in axes.get(name, {}).items():
            sizes.setdefault(symbol, (name, axis))
    g = Graph(sizes)
    alias = {name: name for name in list(traced.shapes)}
    for step in steps:
        refs = [arg.name if isinstance(arg, trace.Ref) else None for arg in step.args]
        call = Call(step, [alias[r] if r else arg for r, arg in zip(refs, step.args)],
                    [traced.shapes[r] if r else None for r in refs],
                    [np.dtype(traced.dtypes[r]) if r else None for r in refs])
        alias[step.out] = mapping_of(step.fn)(g, call)
    for name, value in zip(outputs, traced.outputs):
        g.node("Identity", [alias[value]], name)
    used = {i for node in g.nodes for i in node.inputs}
    initializers = {**{k: v for k, v in traced.initializers.items() if k in used}, **g.initializers}
    graph = helper.make_graph(
        [helper.make_node(n.op, n.inputs, n.outputs, **n.attributes) for n in g.nodes], "autonet",
        [_value_info(helper, name, traced.shapes[name], traced.dtypes[name], axes.get(name, {}))
         for name in inputs],
        [_value_info(helper, name, traced.shapes[value], traced.dtypes[value], axes.get(name, {}))
         for name, value in zip(outputs, traced.outputs)],
        [numpy_helper.from_array(np.asarray(array), name) for name, array in initializers.items()])
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="autonet",
                             ir_version=helper.find_min_ir_version_for(opsets))


def _value_info(helper, name, shape, dtype, named_axes):
    """A graph input or output: its element type and shape, dynamic axes by name."""
    if any(not -len(shape) <= axis < len(shape) for axis in named_axes):
        raise ValueError(f"autonet.onnx.export: dynamic_axes[{name!r}] names axes {list(named_axes)} "
                         f"of a value with {len(shape)} axes")
    entries = []
    for axis, size in enumerate(shape):
        if axis in named_axes or (axis - len(shape)) in named_axes:
            if not isinstance(size, dims.Dim):
                raise ValueError(f"autonet.onnx.export: dynamic_axes names axis {axis} of {name!r}, "
                                 f"whose size ({size}) follows no dynamic input axis")
            entries.append(named_axes.get(axis, named_axes.get(axis - len(shape))))
        elif isinstance(size, dims.Dim):
            plain = size.coefficient == 1 and len(size.symbols) == 1
            entries.append(size.symbols[0] if plain else None)
        else:
            entries.append(int(size))
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), entries)
