"""Optimizer: parameter groups, per-parameter state, and their state_dict."""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Iterable, Sequence, TypeVar, Union, overload

import numpy as np

from ..core import device as devices
from ..core.state import enable_grad, replayable
from ..core.tensor import Tensor
from ..core.types import Array

_Loss = TypeVar("_Loss")

ParamsLike = Union[Iterable[Tensor], Iterable[Dict[str, Any]]]
"""What an optimizer takes: Tensors (``model.parameters()``), or parameter groups
(dicts with ``params`` and hyper-parameter overrides)."""


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of params and hyper-parameters) and ``state``.

    ``params`` is an iterable of Tensors that require grad, or of dicts
    ``{"params": [...], **overrides}`` as in PyTorch. Subclasses implement
    ``update(param, grad, group, state)``, which changes ``param.data`` in place.
    """

    defaults: dict[str, Any]
    param_groups: list[dict[str, Any]]
    state: dict[Tensor, dict[str, Any]]

    def __init__(self, params: ParamsLike, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        if isinstance(params, Tensor):
            raise TypeError("an optimizer takes an iterable of Tensors; wrap a single one in a list")
        _refuse_unordered(params)
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __init_subclass__(cls, **kwargs):
        """A subclass's own ``step`` / ``zero_grad`` is replayable too: a compiled step replays
        the subclass's method (its learning-rate decay, say), not the base one it calls."""
        super().__init_subclass__(**kwargs)
        for name in ("step", "zero_grad"):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__replayable__", False):
                setattr(cls, name, replayable(method))

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a dict with ``params`` and optional hyper-parameter overrides."""
        params = group["params"]
        _refuse_unordered(params)
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for number, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizers take Tensors, got {type(p).__name__}")
            if not p.requires_grad or not p.is_leaf:
                raise TypeError("optimizers take leaf Tensors that require grad")
            if id(p) in seen:
                raise ValueError(
                    f"parameter {number} of this group is given twice (in this group or an earlier "
                    f"one), so a step would update it twice: give each parameter once (PyTorch warns "
                    f"that this will be an error)")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
        full = {**self.defaults, **group, "params": params}
        self.check_hyperparameters(full)
        self.param_groups.append(full)

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        """Raise ValueError for values that make no sense (subclasses extend)."""
        for key in ("lr", "initial_lr"):
            if key in group and not group[key] >= 0:   # NaN too
                raise ValueError(f"invalid learning rate {key}={group[key]!r}")

    @replayable
    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to None."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], _Loss]) -> _Loss: ...

    @replayable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, in place, outside the graph. With
        ``closure`` (PyTorch's): call it first, with grad mode on (it computes the loss and its
        gradients), and return what it returns; None otherwise."""
        loss = _run_closure(closure) if closure is not None else None
        states = self.state
        update = self.update
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if isinstance(grad, Tensor):
                    grad = grad.data
                state = states.get(p)
                if state is None:
                    state = states[p] = {}
                update(p, grad, group, state)
                p._bump_version()   # graphs that saved the old values now refuse to backward
        return loss

    def update(self, param: Tensor, grad: Array, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError

    def fused_step(self, params: Sequence[Tensor]) -> FusedStep | None:
        """This optimizer's step as a fused kernel may take it, over ``params`` (the kernel's
        leaves, in its order): a :class:`FusedStep`, or None where the kernel leaves the step
        to Python (``autonet.compile(..., backend="fused")``; see SGD's)."""
        return None

    def finish_step(self) -> None:
        """What ``step`` does besides the arithmetic, for a step a fused kernel took: each
        parameter gets its state entry, and its version moves on."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state.setdefault(p, {})
                p._bump_version()


    # ------------------------------------------------------------ state
    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: array}}, "param_groups": [...]}``, all copies (each array
        on its parameter's device, as PyTorch keeps them; ``autonet.save`` writes them from there)."""
        index = {p: i for i, p in enumerate(self._params())}
        packed_state = {index[p]: {k: devices.copy(v) for k, v in s.items()}
                        for p, s in self.state.items() if p in index and s}   # none for no state
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index[p] for p in group["params"]]
            groups.append(packed)
        return {"state": packed_state, "param_groups": groups}

    def state_shapes(self, param: Tensor, group: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
        """The state entries this optimizer keeps for ``param`` under the settings ``group``
        (by default the group that holds it): name -> shape (subclasses)."""
        return {}

    def group_of(self, param: Tensor) -> dict[str, Any]:
        """The parameter group that holds ``param``."""
        return next(group for group in self.param_groups if any(p is param for p in group["params"]))

    host_state: tuple[str, ...] = ()   # names of state entries kept on the host whatever the parameter's device

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state (copied) saved by ``state_dict()``.

        Everything is checked first: the groups' sizes, every hyper-parameter
        by the constructor's rules, and each parameter's state entries (the
        names this optimizer keeps, of the right shapes: floating-point arrays,
        cast to the parameter's dtype as PyTorch casts them, and counters such as
        Adam's ``step``, real numbers kept as they are). On any mismatch a
        ``ValueError`` says what, and nothing has changed.
        """
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise ValueError("load_state_dict: the parameter groups do not match this optimizer's")
        new_groups = []
        for number, (own, saved) in enumerate(zip(self.param_groups, groups)):
            settings = {k: v for k, v in saved.items() if k != "params"}
            expected = set(own) - {"params", "initial_lr"}   # a scheduler's, present or not
            if set(settings) - {"initial_lr"} != expected:
                raise ValueError(
                    f"load_state_dict: parameter group {number} has settings {sorted(settings)}; "
                    f"{type(self).__name__} takes {sorted(expected)}")
            candidate = {**own, **copy.deepcopy(settings)}
            try:
                self.check_hyperparameters(candidate)
            except (TypeError, ValueError) as error:
                raise ValueError(f"load_state_dict: parameter group {number}: {error}") from None
            new_groups.append(candidate)
        params = self._params()
        settings = [group for group in new_groups for _ in group["params"]]   # the saved ones, as PyTorch
        by_index = {}
        for key, values in state_dict["state"].items():
            i = _index(key)
            if i is None or not 0 <= i < len(params):
                raise ValueError(f"load_state_dict: state for unknown parameter index {key!r} "
                                 f"(this optimizer has parameters 0..{len(params) - 1})")
            by_index[i] = self._checked_state(i, params[i], values, settings[i])
        for group, candidate in zip(self.param_groups, new_groups):
            group.update(candidate)
        self.state = {params[i]: values for i, values in by_index.items()}

    def _checked_state(self, index, param, values, group):
        """A copy of one parameter's saved state, refused unless it is what this optimizer keeps
        under the saved settings ``group`` (Adam's amsgrad, RMSprop's momentum and centered)."""
        shapes = self.state_shapes(param, group)
        if set(values) != set(shapes):
            raise ValueError(
                f"load_state_dict: parameter {index} has state {sorted(values)}, but "
                f"{type(self).__name__} keeps {sorted(shapes)}")
        checked = {}
        for name, value in values.items():
            value = devices.copy(value) if devices.is_foreign(value) else np.array(value, copy=True)
            counter = name in self.host_state   # Adam's step: any real number, kept as it is
            if value.dtype.kind not in ("iuf" if counter else "f") or value.shape != shapes[name]:
                raise ValueError(
                    f"load_state_dict: state {name!r} of parameter {index} is {value.dtype} of "
                    f"shape {value.shape}; it must be {'numbers' if counter else 'floating point'} "
                    f"of shape {shapes[name]}")
            if counter:   # counters stay on the host, as PyTorch keeps them
                checked[name] = value
            else:   # in the parameter's dtype and on its device, as PyTorch casts them
                checked[name] = devices.to_device(value.astype(param.dtype, copy=False), param.device)
        return checked


def _run_closure(closure):
    """``closure()`` with grad mode on (``autonet.compile`` refuses a function given to a
    replayed call: its trace would not see the closure's forward and backward)."""
    with enable_grad():
        return closure()


def _refuse_unordered(params):
    """PyTorch's refusal of a set of parameters: its order changes from run to run, and a
    state_dict maps state to parameters by their position."""
    if isinstance(params, (set, frozenset)):
        raise TypeError("optimizer parameters must come in an ordered collection (a list), not a "
                        f"{type(params).__name__}: state_dict() numbers them by their order, which "
                        "a set changes from run to run")


def require_non_negative(group, *names):
    """``ValueError`` unless each setting ``names`` of ``group`` is a number >= 0 (NaN fails too)."""
    for name in names:
        if not group[name] >= 0:
            raise ValueError(f"{name} must be >= 0, got {group[name]!r}")


def _index(key):
    """A parameter index from a state key: an int, or its decimal string (None otherwise)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    return int(key) if isinstance(key, str) and key.isdecimal() else None


class FusedStep:
    """An optimizer's step as a fused kernel takes it: the optimizer's own formula, run on the
    kernel's symbolic arrays, over the parameters the kernel was traced with.

    ``formula(k, param, grad, numbers, arrays)`` updates ``params[k]`` (and ``arrays``, its
    state arrays named ``state``) in place from its fresh ``grad``, one parameter at a time (so
    the kernel may compile it once per parameter layout); ``numbers`` are the parameter's share
    (``count // len(params)`` each, in order) of what ``numbers()`` computes in Python on every
    call (``settings``' values, pairs ``(group index, name)``, unless the optimizer gives its
    own ``numbers``). The formula is the step only while every setting in ``zero`` is 0, every
    setting in ``fixed`` keeps the value it had when the kernel was written, and each
    parameter has its state (``applies``).
    """

    def __init__(self, optimizer, params, formula, settings=(), zero=(), numbers=None, count=None,
                 state=(), fixed=()):
        self.optimizer = optimizer
        self.params = tuple(params)
        self.traced = tuple(tuple(group["params"]) for group in optimizer.param_groups)
        self.formula = formula
        self.settings = tuple(settings)
        self.zero = tuple(zero)
        self.fixed = tuple((name, [copy.deepcopy(group[name]) for group in optimizer.param_groups])
                           for name in fixed)
        self._numbers = numbers or (lambda: [optimizer.param_groups[g][name] for g, name in self.settings])
        self.count = len(self.settings) if count is None else count   # how many numbers
        self.state = tuple(state)
        self.arrays_like = [(p.shape, p.dtype) for p in self.params for _ in self.state]

    def numbers(self):
        """This call's numbers, as floats."""
        return [float(number) for number in self._numbers()]

    def arrays(self):
        """The state arrays the formula updates (zeros where a parameter has none yet: then
        ``applies`` is False and the kernel leaves them alone)."""
        states = self.optimizer.state
        found = [states.get(p, {}).get(key) for p in self.params for key in self.state]
        return [array if array is not None else np.zeros(shape, dtype)
                for array, (shape, dtype) in zip(found, self.arrays_like)]

    def applies(self):
        """True when the coming step is the formula's: the ``zero`` settings are 0, the ``fixed``
        ones as traced, every parameter has its state, and the groups hold exactly the
        parameters traced, none with a gradient accumulated before."""
        groups = self.optimizer.param_groups
        if len(groups) != len(self.traced):
            return False
        for group, params in zip(groups, self.traced):   # loops, not all(...): this runs each call
            for name in self.zero:
                if group[name]:
                    return False
            if len(group["params"]) != len(params):
                return False
            for p, kept in zip(group["params"], params):
                if p is not kept or p.grad is not None:
                    return False
        for name, values in self.fixed:
            for group, value in zip(groups, values):
                if group[name] != value:
                    return False
        if self.state:
            states = self.optimizer.state
            for p in self.params:
                state = states.get(p)
                if state is None:
                    return False
                for key in self.state:
                    array = state.get(key)
                    if type(array) is not np.ndarray or array.shape != p.shape or array.dtype != p.dtype:
                        return False
        return True

    def finish(self):
        self.optimizer.finish_step()
