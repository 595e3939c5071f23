"""Module and Parameter: models as trees of layers that own their weights.

A Module finds its parameters and submodules by looking at its attributes, in
the order they were assigned, including lists and tuples of them. Parameters
learn their dotted names (``hidden.weight``) when a module adopts them; the
names appear in drawn graphs and in ``state_dict()``.
"""
from __future__ import annotations

import collections
import copy
import weakref
from typing import Any, Iterable, Iterator, Mapping, ParamSpec, Protocol, TypeVar, overload

import numpy as np

from ..core import device as devices
from ..core.state import no_grad, notify, replayable, state
from ..core.tensor import Tensor, TensorLike
from ..core.types import Array, DTypeLike

IncompatibleKeys = collections.namedtuple("IncompatibleKeys", "missing_keys unexpected_keys")

_M = TypeVar("_M", bound="Module")
_P = ParamSpec("_P")
_R = TypeVar("_R", covariant=True)


class _Forward(Protocol[_P, _R]):
    """What calling a module runs: its ``forward`` (so ``Linear(2, 3)(x)`` is typed as a Tensor)."""

    def forward(self, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...


class Parameter(Tensor):
    """A leaf Tensor that requires grad: the trainable weights of a Module."""

    __slots__ = ()

    def __init__(self, data: TensorLike, requires_grad: bool = True, dtype: DTypeLike = None,
                 name: str | None = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, name=name)


class ModuleCall:
    """One call of a module, as the ops recorded during it remember it: viz draws each call
    apart (``pool #1``, ``pool #2``) and shows the arguments as they were passed.

    Calling it returns the module (None once freed), like the weak reference it stands for;
    ``constants`` gives the array arguments that needed no gradient, while they live: they
    are held weakly, as the graph holds its other constants, so a graph never keeps a batch
    alive.
    """

    __slots__ = ("module", "_constants")

    def __init__(self, module, args):
        self.module = module
        constants = []   # a loop, not a generator: this runs on every module call
        for a in args:
            if isinstance(a, (Tensor, np.ndarray)) and not getattr(a, "requires_grad", False):
                constants.append(weakref.ref(a))
        self._constants = constants

    @property
    def constants(self):
        return tuple(a for a in (ref() for ref in self._constants) if a is not None)

    def __call__(self):
        return self.module()


class Module:
    """Base class of layers and models: subclass, call ``super().__init__()``, define ``forward``.

    >>> import autonet.nn as nn
    >>> class TwoLayer(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = nn.Linear(3, 4, rng=0)
    ...         self.out = nn.Linear(4, 1, rng=1)
    ...     def forward(self, x):
    ...         return self.out(self.hidden(x).sigmoid()).sigmoid()
    >>> [name for name, _ in TwoLayer().named_parameters()]
    ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    """

    training: bool
    _buffers: dict[str, bool]
    _optional_in_state_dicts: tuple[str, ...] = ()
    """State a loaded dict may lack, each kept as it is (BatchNorm's ``num_batches_tracked``,
    which PyTorch's checkpoints without version metadata lack too)."""

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_path", "")
        object.__setattr__(self, "_weak_self", weakref.ref(self))
        object.__setattr__(self, "_buffers", {})   # buffer name -> persistent (in state_dict)

    _INTERNAL = frozenset({"training", "_path", "_weak_self", "_buffers"})   # bookkeeping

    def __setattr__(self, name: str, value: Any) -> None:
        if "_weak_self" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() ran: call "
                f"super().__init__() first in {type(self).__name__}.__init__")
        _refuse_unregistrable(name, value)
        _refuse_replacing_a_parameter(self, name, value)
        _refuse_a_cycle(self, name, value)
        if name in self._buffers:
            _replace_buffer(self, name, value)
        if name not in Module._INTERNAL:
            _adopt(value, name)
        object.__setattr__(self, name, value)

    def __deepcopy__(self: _M, memo: dict[int, Any]) -> _M:
        """A copy whose own bookkeeping refers to itself (not to the original), as
        ``TransformerEncoder``'s copies of its layer need."""
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for name, value in vars(self).items():
            value = weakref.ref(clone) if name == "_weak_self" else copy.deepcopy(value, memo)
            object.__setattr__(clone, name, value)
        return clone

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self: _Forward[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        # Ops recorded during forward remember the module stack, for viz.
        outer = state.scope
        state.scope = outer + (ModuleCall(self._weak_self, args),)  # type: ignore[attr-defined]
        if state.observers:
            notify("module_called", self)   # compile guards on its train()/eval() mode
        try:
            return self.forward(*args, **kwargs)
        finally:
            state.scope = outer

    # ------------------------------------------------------------ discovery
    def _members(self):
        """(name, value) for attributes (``_``-prefixed ones too), lists and tuples flattened."""
        for name, value in vars(self).items():
            if name in Module._INTERNAL:
                continue
            if isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    yield f"{name}.{i}", item
            else:
                yield name, value

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in self._members():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        """The direct submodules, in assignment order."""
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every one below it, each once
        (a module registered twice appears under its first name, as PyTorch)."""
        return self._walk(prefix, set())

    def _walk(self, prefix, seen):
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child._walk(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, depth first."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter): this module's own first, then (``recurse``) its children's."""
        seen = set()
        for path, module in self._scope(prefix, recurse):
            for name, value in module._members():
                if isinstance(value, Parameter) and value not in seen:
                    seen.add(value)
                    yield (f"{path}.{name}" if path else name), value

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """An iterator over the Parameters (each once, even when shared)."""
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    def _scope(self, prefix, recurse):
        """(path, module) for this module and, with ``recurse`` (PyTorch's word), every one below."""
        if not isinstance(recurse, bool):
            raise ValueError(f"recurse must be True or False, not {recurse!r}")
        return self.named_modules(prefix) if recurse else iter([(prefix, self)])

    def register_buffer(self, name: str, value: TensorLike | None, persistent: bool = True) -> None:
        """Keep ``value`` (a Tensor, an array, or None) as state that is not trained:
        running statistics, counters. Persistent buffers are saved in ``state_dict()``."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: {name!r} is not a valid buffer name")
        if name in vars(self) and name not in self._buffers:
            raise KeyError(f"register_buffer: {type(self).__name__} already has an attribute {name!r}")
        if isinstance(value, Parameter):
            raise TypeError(f"register_buffer: {name!r} is a Parameter; assign it as an attribute")
        if value is not None and not isinstance(value, Tensor):
            value = Tensor(value, dtype=np.asarray(value).dtype)
        self._buffers[name] = bool(persistent)
        object.__setattr__(self, name, value)

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, Tensor) of every buffer, this module's first, then (``recurse``) its
        children's; each once, under its first name, even when modules share it (as PyTorch)."""
        seen = set()
        for path, module in self._scope(prefix, recurse):
            for name in module._buffers:
                value = getattr(module, name)
                if value is not None and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{path}.{name}" if path else name), value

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def _state_tensors(self, prefix=""):
        """Name -> the parameters and persistent buffers: what ``state_dict()`` holds, in
        PyTorch's order (each module's own parameters, then its own buffers, then its
        children's) and, as PyTorch, under every name a shared one is reachable by."""
        state = {}
        for name, value in self._members():
            if isinstance(value, Parameter):
                state[prefix + name] = value
        for name, persistent in self._buffers.items():
            value = getattr(self, name)
            if persistent and value is not None:
                state[prefix + name] = value
        for name, child in self.named_children():
            state.update(child._state_tensors(f"{prefix}{name}."))
        return state

    def to(self: _M, device: str) -> _M:
        """Move parameters (with their gradients) and buffers to ``device``, in place; returns
        the module. Make optimizers after moving (their state stays where it was made)."""
        target = devices.name(device)
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.device != target:
                tensor.data = devices.to_device(tensor.data, target)
                if tensor.grad is not None:
                    tensor.grad = devices.to_device(tensor.grad, target)
                tensor._bump_version()
        return self

    def astype(self: _M, dtype: DTypeLike) -> _M:
        """Convert parameters (and their gradients) and floating buffers to ``dtype``, in place;
        returns the module. Make optimizers after converting (their state keeps its dtype)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Module.astype: parameters must stay floating point, not {dtype}")
        floating = [b for b in self.buffers() if b.dtype.kind == "f"]
        for tensor in list(self.parameters()) + floating:
            tensor.data = tensor.data.astype(dtype)
            if tensor.grad is not None:
                tensor.grad = tensor.grad.astype(dtype)
            tensor._bump_version()
        return self

    # ------------------------------------------------------------ training
    @replayable
    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to None."""
        for parameter in self.parameters():
            parameter.grad = None

    def train(self: _M, mode: bool = True) -> _M:
        """Put this module and its children in training mode; returns self."""
        if not isinstance(mode, bool):   # train("eval") would be truthy: PyTorch refuses it too
            raise ValueError(f"train: training mode is expected to be boolean, not {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self: _M) -> _M:
        """Put this module and its children in evaluation mode; returns self."""
        return self.train(False)

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Array]:
        """A dict of dotted name -> copy of the array of each parameter and persistent buffer."""
        return {name: t.data.copy() if devices.is_host(t.data) else devices.to_host(t.data)
                for name, t in self._state_tensors().items()}   # on the host, always

    def _optional_keys(self, prefix=""):
        """The keys of ``_optional_in_state_dicts`` below this module, under every name."""
        keys = {prefix + name for name in self._optional_in_state_dicts}
        for name, child in self.named_children():
            keys |= child._optional_keys(f"{prefix}{name}.")
        return keys

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters and persistent buffers; everything is checked
        before anything is written.

        With ``strict``, missing or unexpected keys raise KeyError naming them (a BatchNorm's
        ``num_batches_tracked`` may be missing and is then kept, as PyTorch loads a dict
        without version metadata). A shape that does not fit raises ValueError naming the key
        and both shapes.
        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):   # a path with strict=False loaded nothing, silently
            raise TypeError(f"load_state_dict: expected a dict of name -> array (as state_dict() "
                            f"returns), not {type(state_dict).__name__}; for a file, pass "
                            f"autonet.load(path)")
        own = self._state_tensors()
        optional = self._optional_keys()
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        staged = []
        for name, parameter in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name].data if isinstance(state_dict[name], Tensor) else state_dict[name]
            value = devices.to_host(value) if devices.is_foreign(value) else np.asarray(value)
            if value.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: {name!r} holds {value.dtype} data, not numbers")
            if value.shape != parameter.shape:
                raise ValueError(
                    f"load_state_dict: {name!r} has shape {value.shape} in the state dict but "
                    f"{parameter.shape} in the module")
            if not getattr(getattr(parameter.data, "flags", None), "writeable", True):
                raise ValueError(f"load_state_dict: {name!r} holds a read-only array (shared "
                                 f"through from_dlpack or a memory map?); assign it a copy first")
            staged.append((parameter, value))
        with no_grad():
            for parameter, value in staged:
                parameter.data[...] = devices.to_device(value, parameter.device)
                parameter._bump_version()   # graphs that saved the old values now refuse
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ display
    def extra_repr(self) -> str:
        """The part inside the parentheses of this module's one-line repr."""
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


def _refuse_unregistrable(name, value):
    """Modules or Parameters inside a dict or set would be silently ignored: refuse them."""
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (set, frozenset)):
        items = list(value)
    else:
        return
    if any(isinstance(item, (Module, Parameter)) for item in items):
        raise TypeError(
            f"{name!r}: a {type(value).__name__} of Modules or Parameters is not registered (their "
            f"parameters would be silently left out); use nn.ModuleDict (or nn.ModuleList, or a list)")


def _refuse_replacing_a_parameter(module, name, value):
    """As PyTorch: a registered Parameter is replaced by a Parameter or None only (a plain
    Tensor would silently drop out of ``parameters()`` and the optimizer's view)."""
    if isinstance(module.__dict__.get(name), Parameter) and not (
            value is None or isinstance(value, Parameter)):
        raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} (a Parameter or "
                        f"None expected); wrap it: nn.Parameter(value), or delete the attribute first")


def _replace_buffer(module, name, value):
    """As PyTorch: a buffer takes a Tensor or None; a Parameter or Module assigned over it
    replaces it (it is a buffer no more)."""
    if isinstance(value, (Parameter, Module)):
        del module._buffers[name]
    elif value is not None and not isinstance(value, Tensor):
        raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (a Tensor or None "
                        f"expected); wrap it: autonet.Tensor(value)")


def _refuse_a_cycle(module, name, value):
    """A module inside itself would make every walk over the tree endless."""
    items = value if isinstance(value, (list, tuple)) else (value,)
    for item in items:
        if isinstance(item, Module) and any(inner is module for inner in item.modules()):
            raise ValueError(f"cannot assign {name!r}: a module cannot contain itself")


def _adopt(value, path):
    """Give ``value`` (a Parameter, Module, or list of them) its dotted path."""
    if isinstance(value, Parameter):
        value.name = path
    elif isinstance(value, Module):
        object.__setattr__(value, "_path", path)
        for name, module in value.named_modules():
            if name:
                object.__setattr__(module, "_path", f"{path}.{name}")
        for name, parameter in value.named_parameters():
            parameter.name = f"{path}.{name}"
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _adopt(item, f"{path}.{i}")


class ModuleList(Module):
    """A list of Modules, registered as children ``"0"``, ``"1"``, ...

    >>> import autonet.nn as nn
    >>> layers = nn.ModuleList([nn.Linear(2, 2, rng=0)])
    >>> layers = layers.append(nn.Tanh())
    >>> len(layers), [name for name, _ in layers.named_parameters()]
    (2, ['0.weight', '0.bias'])
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        self.extend(modules or [])

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns the list."""
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, not {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add each of ``modules`` at the end; returns the list."""
        for module in modules:
            self.append(module)
        return self

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __iter__(self) -> Iterator[Module]:
        return iter([module for _, module in self.named_children()])

    @overload
    def __getitem__(self, index: int) -> Module: ...

    @overload
    def __getitem__(self, index: slice) -> ModuleList: ...

    def __getitem__(self, index: int | slice) -> Module | ModuleList:
        modules = list(self)
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[index]


class ModuleDict(Module):
    """A mapping of names to Modules, registered as children under those names."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        for name, module in dict(modules or {}).items():
            self[name] = module

    def __setitem__(self, name: str, module: Module) -> None:
        if not isinstance(name, str) or not name or "." in name or name in Module._INTERNAL:
            raise KeyError(f"ModuleDict keys are non-empty strings without '.', not {name!r}")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict holds Modules, not {type(module).__name__}")
        setattr(self, name, module)

    def __getitem__(self, name: str) -> Module:
        for key, module in self.named_children():
            if key == name:
                return module
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.named_children())

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        return [key for key, _ in self.named_children()]

    def values(self) -> list[Module]:
        return [module for _, module in self.named_children()]

    def items(self) -> list[tuple[str, Module]]:
        return list(self.named_children())
