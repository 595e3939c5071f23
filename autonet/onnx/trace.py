"""Tracing a model's forward for export: every op it applies, in order, with its settings.

An :class:`Observer` sees each ``Function.apply`` with its arguments and
keyword settings (which the graph nodes do not keep), each in-place write and
each ``detach``. Every Tensor gets a value name the moment it is made:
inputs by their given names, parameters and buffers by their ``state_dict``
keys, op results ``t:0``, ``t:1``, ... in order, and any other Tensor an op reads
(a constant made in the forward) ``constant:0``, ... with its values copied.
The names only depend on the order of the ops, so two traces of the same
forward with different input sizes can be compared step by step.
"""
from __future__ import annotations

import numpy as np

from ..core import device as devices
from ..core.state import Observer, enable_grad, observing
from ..core.tensor import Tensor


class Ref:
    """A traced value read by an op, by name."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __eq__(self, other):
        return isinstance(other, Ref) and other.name == self.name

    def __repr__(self):
        return f"Ref({self.name!r})"


class Step:
    """One op application: its Function class, arguments (Refs, numbers or None), keyword
    settings, and the name, shape and dtype of its result."""

    __slots__ = ("fn", "args", "settings", "out", "shape", "dtype")

    def __init__(self, fn, args, settings, out, shape, dtype):
        self.fn, self.args, self.settings = fn, args, settings
        self.out, self.shape, self.dtype = out, shape, dtype


class Trace:
    """What one run of the forward did: steps, the values it read, and its outputs."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.shapes: dict[str, tuple] = {}       # every value's shape
        self.dtypes: dict[str, np.dtype] = {}    # and dtype
        self.initializers: dict[str, np.ndarray] = {}   # parameters, buffers, constants
        self.outputs: list[str] = []


class _Recorder(Observer):
    """Names every Tensor the forward touches and records every op."""

    def __init__(self, inputs: dict[str, Tensor], state: dict[str, Tensor]):
        self.trace = Trace()
        self.names: dict[int, str] = {}
        self.arrays: dict[int, str] = {}         # a named Tensor's array, passed as it is (indices)
        self.alive: list = []                    # keeps ids unique while tracing
        self.state = {id(tensor): key for key, tensor in state.items()}
        self.constants = 0
        for name, tensor in inputs.items():
            self._name(tensor, name)

    def _name(self, tensor, name):
        self.names[id(tensor)] = name
        self.arrays[id(tensor.data)] = name
        self.alive.append(tensor)
        self.trace.shapes[name] = tuple(tensor.shape)
        self.trace.dtypes[name] = tensor.dtype

    def value(self, tensor: Tensor) -> str:
        """The name of a Tensor an op reads; a parameter, buffer or constant on first sight."""
        name = self.names.get(id(tensor))
        if name is None:
            name = self.state.get(id(tensor))
            if name is None:
                name, self.constants = f"constant:{self.constants}", self.constants + 1
            self._name(tensor, name)
            self.trace.initializers[name] = np.array(devices.to_host(tensor.data))
        return name

    def argument(self, arg):
        if isinstance(arg, Tensor):
            return Ref(self.value(arg))
        if isinstance(arg, np.ndarray):
            name = self.arrays.get(id(arg))
            return Ref(name) if name else Ref(self.value(Tensor(arg, dtype=arg.dtype)))
        return arg

    def applied(self, fn, args, kwargs, ctx, arrays, result):
        refs = tuple(self.argument(arg) for arg in args)
        name = f"t:{len(self.trace.steps)}"
        self._name(result, name)
        self.trace.steps.append(Step(fn, refs, dict(kwargs), name, tuple(result.shape), result.dtype))

    def in_place(self, tensor, result, recording):
        self.names[id(tensor)] = self.arrays[id(tensor.data)] = self.names[id(result)]
        self.alive.append(tensor)

    def detached(self, tensor, result):
        if id(tensor) in self.names:
            self.names[id(result)] = self.names[id(tensor)]
            self.alive.append(result)

    def value_read(self, what):
        raise ValueError(
            f"autonet.onnx.export: the forward reads a tensor's values ({what}); an ONNX graph "
            f"cannot repeat a decision Python took on them. Keep the forward in tensor ops "
            f"(e.g. autonet.where instead of if/item())")


def run(model, inputs: dict[str, np.ndarray]) -> Trace:
    """Trace ``model``'s forward on ``inputs`` (name -> host array, made Tensors on the model's
    device): eval mode, graph recording on, the model's train flags restored afterwards."""
    state = dict(model.named_parameters())
    state.update(model.named_buffers())
    device = next((devices.device_of(t.data) for t in state.values()), "cpu")   # the model's
    tensors = {name: Tensor(array, dtype=array.dtype, device=device) for name, array in inputs.items()}
    modes = [(module, module.training) for module in model.modules()]
    recorder = _Recorder(tensors, state)
    model.eval()
    try:
        with enable_grad(), observing(recorder):
            result = model(*tensors.values())
    finally:
        for module, training in modes:
            object.__setattr__(module, "training", training)   # as Module.train sets it
    recorder.trace.outputs = [recorder.value(tensor) for tensor in _flat_outputs(result)]
    return recorder.trace


def _flat_outputs(result) -> list[Tensor]:
    """The Tensors the forward returned, nested tuples and lists flattened in order."""
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [tensor for part in result for tensor in _flat_outputs(part)]
    raise ValueError(f"autonet.onnx.export: the forward returned a {type(result).__name__}; "
                     f"it must return Tensors (one, or tuples/lists of them)")
