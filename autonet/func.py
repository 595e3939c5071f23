"""Function transforms: ``grad``, ``vjp``, ``jvp``, Jacobians, Hessians (``torch.func``'s values).

>>> import autonet
>>> from autonet import func
>>> f = lambda x: (x ** 3).sum()
>>> func.grad(f)(autonet.Tensor([1.0, 2.0]))
Tensor([ 3., 12.])
>>> func.hessian(f)(autonet.Tensor([1.0, 2.0]))
Tensor([[ 6.,  0.],
        [ 0., 12.]])

Each transform calls ``f`` on variables of its own: a fresh leaf for an input
outside any graph, or a new node (``alias``) after an input that is in one,
so an outer transform or an outer ``backward`` still reaches through. The
results are computed with ``autonet.grad`` (never ``.grad``), with
``create_graph=True`` exactly when they depend on a tensor that requires grad
outside the transform (an outer transform's variable, a model's parameter):
then they stay differentiable, so transforms nest (``jacfwd(jacrev(f))``).

``jvp`` and ``jacfwd`` are forward mode by the double-vjp construction:
``u -> J^T u`` is linear in ``u``, so the gradient of ``<J^T u, v>`` with
respect to ``u`` is exactly ``J v``, whatever ``u`` is (zeros here). That
second pass runs only the formulas on a path to ``u`` (:class:`_Toward`).
``hvp`` is reverse-over-reverse: the gradient of ``<grad f, v>``, which is
``H v`` because a Hessian is symmetric.

Inputs to differentiate and outputs are Tensors (or arrays, numbers), not
``torch.func``'s pytrees: a tuple, list or dict holding Tensors is refused
(``TypeError``) rather than stacked into one constant Tensor; pass each Tensor
as an argument of its own and name them with ``argnums``.
"""
from __future__ import annotations

import functools
import math
import numbers
import operator
from typing import Any, Callable, ParamSpec, Sequence

import numpy as np

from .core import device as devices, ownership
from .core.backward import Plan, execute, grad as autograd, initial_gradient, key_of, plan
from .core.context import Context
from .core.function import Function
from .core.state import enable_grad, is_grad_enabled, state
from .core.tensor import Tensor, TensorLike
from .ops.elementwise import (Abs, Add, Cos, Div, Exp, Expm1, Log, Log1p, Mul, Neg, Sigmoid, Sin,
                              Sqrt, Sub, Tanh)
from .ops.linalg import MatMul
from .ops.shape import stack

_P = ParamSpec("_P")

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "hvp"]


class Alias(Function):
    """A copy of an input as a node of its own: a transform's private variable in a graph."""

    name = "alias"

    @staticmethod
    def forward(ctx, x):
        return devices.copy(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


# ----------------------------------------------------------------- one traced call
class _Call:
    """``f`` called once on the transform's own variables for the arguments in ``positions``.

    ``outputs`` is a tuple of Tensors (``single`` says whether ``f`` returned
    one Tensor); ``linked`` says whether they depend on a tensor that requires
    grad outside the transform, so that results must keep their graph.
    """

    def __init__(self, f, args, kwargs, positions, has_aux, where):
        self.where = where
        outer = is_grad_enabled()
        args = list(args)
        with enable_grad():
            self.variables = tuple(_variable(args[i], outer, f"{where}: argument {i}")
                                   for i in positions)
            for i, variable in zip(positions, self.variables):
                args[i] = variable
            out = f(*args, **kwargs)
        if has_aux:
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError(f"{where}: with has_aux=True, f must return a pair (output, aux), "
                                f"got {type(out).__name__}")
            out, self.aux = out
        self.single = not isinstance(out, (tuple, list))
        self.outputs = tuple(_output(o, f"{where}: f's output" + ("" if self.single else f" {k}"))
                             for k, o in enumerate((out,) if self.single else out))
        self.linked = outer and _depends_on_outside(self.outputs, self.variables)

    def pullback(self, outputs, cotangents, create_graph):
        """``J^T c`` for each variable, as Tensors (zeros where an output does not reach it)."""
        pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
        grads = (None,) * len(self.variables)
        if pairs:
            grads = autograd([o for o, _ in pairs], self.variables, [c for _, c in pairs],
                             retain_graph=True, create_graph=create_graph, allow_unused=True)
        return tuple(_zeros_like(v) if g is None else g for g, v in zip(grads, self.variables))

    def result(self, tensor):
        """What the caller gets: the tensor itself if linked, else cut from the private graph."""
        return tensor if self.linked else tensor.detach()

    def results(self, tensors):
        return tuple(self.result(t) for t in tensors)

    def shaped(self, tensors):
        """One Tensor if ``f`` returned one, else the tuple."""
        return tensors[0] if self.single else tuple(tensors)

    def scalar_output(self):
        """The one output of a function that ``grad`` or ``hvp`` differentiates; it must be 0-d."""
        if not self.single or self.outputs[0].ndim != 0:
            shape = (f"a tuple of {len(self.outputs)} outputs" if not self.single
                     else f"an output of shape {self.outputs[0].shape}")
            raise TypeError(f"{self.where}: f must return a scalar (a 0-d Tensor), got {shape}; "
                            f"reduce it (.sum()) or use jacrev / vjp for a non-scalar output")
        return self.outputs[0]


def _variable(value, outer, where):
    """The transform's own differentiable copy of ``value``, linked to it if it is in a graph."""
    tensor = value if isinstance(value, Tensor) else _tensor(value, where)
    if tensor.dtype.kind != "f":
        raise TypeError(f"{where} has dtype {tensor.dtype}; only floating-point inputs can be "
                        f"differentiated (convert it with .astype(float))")
    if outer and tensor.requires_grad:
        return Alias.apply(tensor)
    fresh = Tensor._make(devices.copy(tensor.data), None)
    fresh.requires_grad = True
    return fresh


def _tensor(value, where, instead="pass each Tensor as an argument of its own and name them with "
                                   "argnums=(0, 1, ...)"):
    """``value`` as a constant Tensor; a container of Tensors is refused, not stacked into one
    (``torch.func`` takes it as a pytree: a tuple of results, linked to each Tensor)."""
    if _holds_tensor(value):
        raise TypeError(f"{where} is a {type(value).__name__} holding Tensors; autonet.func "
                        f"differentiates Tensors, not containers of them (torch.func's pytrees): "
                        f"{instead}")
    try:
        return Tensor(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where} must be a Tensor or an array of numbers: {error}") from None


def _holds_tensor(value):
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(part) for part in value)
    if isinstance(value, dict):
        return any(_holds_tensor(part) for part in value.values())
    return isinstance(value, Tensor)


def _output(value, where):
    """An output of ``f`` as a floating-point Tensor (an array or a number is a constant)."""
    tensor = value if isinstance(value, Tensor) else _tensor(
        value, where, "return one Tensor or a flat tuple of Tensors")
    if tensor.dtype.kind != "f":
        raise TypeError(f"{where} has dtype {tensor.dtype}; only floating-point outputs have "
                        f"derivatives")
    return tensor


def _depends_on_outside(outputs, variables):
    """Whether any output reaches a tensor that requires grad and is not a variable of ours."""
    if any(type(v._node) is Context for v in variables):   # an alias: its input is outside
        return True
    own = {id(v) for v in variables}
    if any(o._node is None and o.requires_grad and id(o) not in own for o in outputs):
        return True
    stack = [o._node for o in outputs if o._node is not None]
    seen = set(stack)
    while stack:
        node = stack.pop()
        for edge, wanted in zip(node.inputs, node.needs_input_grad):
            if type(edge) is Context:
                if edge not in seen:
                    seen.add(edge)
                    stack.append(edge)
            elif wanted and id(edge) not in own:
                return True
    return False


def _zeros_like(tensor):
    return Tensor._make(devices.zeros(tensor.shape, tensor.dtype, _array(tensor)), None)


def _array(tensor):
    """The tensor's array (a NumPy scalar some ops leave becomes a 0-d array): to make others like."""
    return tensor.data if not devices.is_host(tensor.data) else np.asarray(tensor.data)


def _basis(tensor):
    """Constants of ``tensor``'s shape and dtype, one per element: 1 there, 0 elsewhere."""
    like = _array(tensor)
    eye = np.eye(tensor.size, dtype=tensor.dtype) if type(like) is np.ndarray else \
        np.eye(tensor.size, dtype=tensor.dtype, like=like)
    return [Tensor._make(row.reshape(tensor.shape), None) for row in eye]


# ----------------------------------------------------------------- arguments
def _positions(argnums, count, where):
    """``argnums`` as a tuple of argument positions, checked against ``count`` arguments."""
    _check_argnums_type(argnums, where)
    requested = (argnums,) if _is_int(argnums) else argnums
    if not requested:
        raise ValueError(f"{where}: argnums is an empty tuple; name at least one argument")
    if any(not -count <= n < count for n in requested):
        raise ValueError(f"{where}: argnums {argnums!r} is out of range for a call with "
                         f"{count} positional argument(s)")
    positions = tuple(operator.index(n) % count for n in requested)
    if len(set(positions)) != len(positions):
        raise ValueError(f"{where}: argnums {argnums!r} names an argument twice")
    return positions


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_argnums_type(argnums, where):
    """Refuse a bad ``argnums`` when the transform is made, not only when it is called."""
    if not _is_int(argnums) and not (isinstance(argnums, tuple) and all(map(_is_int, argnums))):
        raise TypeError(f"{where}: argnums must be an int or a tuple of ints, got {argnums!r}")


def _as_tuple(primals):
    """``primals`` (a tuple or list, or one Tensor or array) as a tuple."""
    if isinstance(primals, (tuple, list)):
        return tuple(primals)
    return (primals,)


def _tangents_for(targets, tangents, what, where, against="primals"):
    """``tangents`` as Tensors, one per target (a primal, or an output of ``f`` for
    cotangents), each of its target's shape (``ValueError`` otherwise)."""
    tangents = _as_tuple(tangents)
    if len(tangents) != len(targets):
        raise ValueError(f"{where}: {len(targets)} {against} but {len(tangents)} {what}")
    checked = []
    for i, (target, tangent) in enumerate(zip(targets, tangents)):
        tangent = tangent if isinstance(tangent, Tensor) else _tensor(tangent, f"{where}: {what}[{i}]")
        if tangent.shape != target.shape:
            raise ValueError(f"{where}: {what}[{i}] has shape {tangent.shape} but {against}[{i}] "
                             f"has shape {target.shape}; they must match")
        checked.append(tangent)
    return tuple(checked)


def _detached(value, linked):
    """``aux`` as returned: Tensors in it cut from the private graph unless linked."""
    if linked:
        return value
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_detached(v, linked) for v in value)
    if isinstance(value, dict):
        return {k: _detached(v, linked) for k, v in value.items()}
    return value


# ----------------------------------------------------------------- grad and vjp
def value_and_grad(f: Callable[_P, Any], argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable[_P, tuple[Any, Any]]:
    """``f`` -> a function returning ``(f(*args), gradient)``; with ``has_aux``,
    ``((value, aux), gradient)`` as JAX. ``f`` must return a 0-d Tensor; a tuple
    ``argnums`` gives a tuple of gradients."""
    _check_argnums_type(argnums, "value_and_grad")

    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        value, aux, grads = _value_and_grad(f, args, kwargs, argnums, has_aux, "value_and_grad")
        return ((value, aux), grads) if has_aux else (value, grads)
    return value_and_grad_f


def grad(f: Callable[_P, Any], argnums: int | tuple[int, ...] = 0,
         has_aux: bool = False) -> Callable[_P, Any]:
    """``f`` -> a function returning the gradient of ``f`` (a 0-d Tensor) at its arguments;
    with ``has_aux``, ``(gradient, aux)`` as ``torch.func.grad``."""
    _check_argnums_type(argnums, "grad")

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        _, aux, grads = _value_and_grad(f, args, kwargs, argnums, has_aux, "grad")
        return (grads, aux) if has_aux else grads
    return grad_f


def _value_and_grad(f, args, kwargs, argnums, has_aux, where):
    positions = _positions(argnums, len(args), where)
    call = _Call(f, args, kwargs, positions, has_aux, where)
    out = call.scalar_output()
    grads = call.results(call.pullback((out,), (None,), call.linked))
    aux = _detached(call.aux, call.linked) if has_aux else None
    return call.result(out), aux, grads[0] if _is_int(argnums) else grads


def vjp(f: Callable[..., Any], *primals: TensorLike, has_aux: bool = False) -> tuple[Any, ...]:
    """``(f(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` returns the tuple ``cotangent @ J``,
    one entry per primal. ``cotangent`` has the structure of ``f``'s output. With
    ``has_aux``, ``(output, vjp_fn, aux)`` as ``torch.func.vjp``."""
    call = _Call(f, primals, {}, range(len(primals)), has_aux, "vjp")

    def vjp_fn(cotangent):
        cotangents = _tangents_for(call.outputs, (cotangent,) if call.single else cotangent,
                                   "cotangents", "vjp_fn", against="outputs")
        keep = is_grad_enabled() and (call.linked or any(c.requires_grad for c in cotangents))
        grads = call.pullback(call.outputs, cotangents, keep)
        return grads if keep else tuple(g.detach() for g in grads)

    out = call.shaped(call.results(call.outputs))
    return (out, vjp_fn, _detached(call.aux, call.linked)) if has_aux else (out, vjp_fn)


# ----------------------------------------------------------------- forward mode
class _Linearized:
    """``u -> J^T u`` recorded once with ``u`` a variable, so ``J v`` is its gradient."""

    def __init__(self, call):
        self.call = call
        self.passes = {}
        self.cotangents = tuple(_zeros_like(o).requires_grad_(True) for o in call.outputs)
        with enable_grad():
            self.transposed = call.pullback(call.outputs, self.cotangents, True)

    def push(self, tangents, keep):
        """``J v`` for each output, as Tensors, ``v`` given per variable (None: zero)."""
        chosen = tuple(j for j, (g, t) in enumerate(zip(self.transposed, tangents))
                       if t is not None and g.requires_grad)
        grads = (None,) * len(self.cotangents)
        if chosen:
            if chosen not in self.passes:   # jacfwd pushes many tangents through one variable
                self.passes[chosen] = _Toward([self.transposed[j] for j in chosen], self.cotangents)
            grads = self.passes[chosen].run([tangents[j] for j in chosen], keep)
        return tuple(_zeros_like(o) if g is None else g
                     for g, o in zip(grads, self.call.outputs))


class _Toward:
    """Passes from ``outputs`` back to the fresh ``leaves`` only, planned once for many seeds.

    ``autonet.grad`` plans every call and runs every formula reachable from the
    outputs. From ``J^T u`` that includes the way back into ``f``'s own graph
    (the derivative with respect to the primals, second order), which ``J v``
    does not need: as much work again as a vjp. Here only the formulas on a
    path to a leaf run, and ``jacrev`` plans its many passes once.
    """

    def __init__(self, outputs, leaves):
        self.outputs, self.leaves = outputs, leaves
        full = plan([key_of(o) for o in outputs])
        wanted = {id(leaf) for leaf in leaves}
        useful = set()
        for node, routes in zip(reversed(full.nodes), reversed(full.routes)):   # inputs first
            if any(id(key) in wanted or key in useful for _, key, _, _ in routes):
                useful.add(node)
        self.plan = Plan([n for n in full.nodes if n in useful],
                         [r for n, r in zip(full.nodes, full.routes) if n in useful])

    def run(self, seeds, create_graph):
        """The gradient of ``sum <output, seed>`` for each leaf (None where none arrives)."""
        if state.observers:   # compile and anomaly mode watch autonet.grad's own passes
            return autograd(self.outputs, self.leaves, seeds, retain_graph=True,
                            create_graph=create_graph, allow_unused=True)
        grads = {}
        for output, seed in zip(self.outputs, seeds):
            key, seed = key_of(output), initial_gradient(output, seed, create_graph, "jvp")
            grads[key] = seed if key not in grads else grads[key] + seed
        grads = execute(self.plan, grads, create_graph, retain_graph=True)[0]
        if create_graph:
            return tuple(grads.get(leaf) for leaf in self.leaves)
        return tuple(Tensor._make(ownership.claim(grads, leaf), None) if leaf in grads else None
                     for leaf in self.leaves)


def jvp(f: Callable[..., Any], primals: Sequence[TensorLike],
        tangents: Sequence[TensorLike]) -> tuple[Any, Any]:
    """``(f(*primals), J @ tangents)``: the directional derivative, as ``torch.func.jvp``.

    ``primals`` and ``tangents`` are tuples (or one Tensor each) of the same shapes."""
    primals = _as_tuple(primals)
    call = _Call(f, primals, {}, range(len(primals)), False, "jvp")
    tangents = _tangents_for(call.variables, tangents, "tangents", "jvp")
    keep = is_grad_enabled() and (call.linked or any(t.requires_grad for t in tangents))
    pushed = _Linearized(call).push(tangents, keep)
    if not keep:
        pushed = tuple(t.detach() for t in pushed)
    return call.shaped(call.results(call.outputs)), call.shaped(pushed)


# ----------------------------------------------------------------- Jacobians
def jacrev(f: Callable[_P, Any], argnums: int | tuple[int, ...] = 0) -> Callable[_P, Any]:
    """``f`` -> a function returning its Jacobian, of shape ``output.shape + input.shape``,
    one reverse pass per output element (``torch.func.jacrev``'s values and nesting)."""
    _check_argnums_type(argnums, "jacrev")

    @functools.wraps(f)
    def jacrev_f(*args, **kwargs):
        call = _Call(f, args, kwargs, _positions(argnums, len(args), "jacrev"), False, "jacrev")
        jacobians = [_all_rows_at_once(call, output) or _assemble(call, output, _rows(call, output), rows=True)
                     for output in call.outputs]
        return _structured(call, jacobians, argnums)
    return jacrev_f


# Ops whose formulas are written with broadcasting alone (``grad * out``, ``grad @ b.T`` on the
# last two axes), so a gradient with one more leading axis, one row per seed, gives each row's
# result: jacrev runs them for many output elements at once (torch.func's vmap of a vjp).
_ROW_SAFE = frozenset({Add, Sub, Mul, Div, Neg, Exp, Log, Sqrt, Abs, Sin, Cos, Log1p, Expm1, Sigmoid,
                       Tanh, MatMul})
_ROWS_BUDGET = 1 << 21   # elements of the largest gradient of one batch of rows (16 MiB in float64)


def _all_rows_at_once(call, output):
    """Each variable's Jacobian for ``output`` from reverse passes that carry many seeds at once,
    as rows of one gradient; None where that is not shown right by construction (an op not in
    ``_ROW_SAFE`` on the way, a linked graph, a device array), and the caller goes row by row."""
    if (call.linked or not output.requires_grad or state.observers or output.size == 0
            or type(output.data) is not np.ndarray):
        return None
    passes = _Toward((output,), call.variables)
    if not all(_row_safe(node) for node in passes.plan.nodes):
        return None
    widest = max([output.size] + [math.prod(shape) for routes in passes.plan.routes
                                  for _, _, shape, _ in routes])
    seeds = np.eye(output.size, dtype=output.dtype)
    step = max(1, _ROWS_BUDGET // max(widest, 1))
    blocks = [_rows_of(passes, output, seeds[start:start + step]) for start in range(0, output.size, step)]
    if any(block is None for block in blocks):
        return None
    jacobians = []
    for j, variable in enumerate(call.variables):
        parts = [block[j] for block in blocks]
        rows = None if any(p is None for p in parts) else np.concatenate(parts)
        array = (np.zeros(output.shape + variable.shape, variable.dtype) if rows is None
                 else rows.reshape(output.shape + variable.shape))
        jacobians.append(call.result(Tensor._make(array, None)))
    return jacobians


def _row_safe(node):
    """True for an op of ``_ROW_SAFE``, except an inner product of two vectors (its 0-d gradient
    would meet the vectors as ``grad * b``, rows against elements)."""
    return node.fn in _ROW_SAFE and not (node.fn is MatMul and node.ndims == (1, 1))


def _rows_of(passes, output, seeds):
    """One reverse pass of ``passes`` for the seeds in the rows of ``seeds``: per variable, its
    gradients as rows (None where none arrives); None if a formula broke the row form."""
    count = len(seeds)
    grads = {key_of(output): seeds.reshape((count,) + output.shape)}
    for node, routes in zip(passes.plan.nodes, passes.plan.routes):
        grad = grads.pop(node, None)
        if grad is None:
            continue
        input_grads = node.fn.backward(node, grad)
        input_grads = input_grads if type(input_grads) is tuple else (input_grads,)
        for position, key, shape, dtype in routes:
            if input_grads[position] is None:
                continue
            rows = _fit_rows(input_grads[position], count, shape, dtype)
            if rows is None:
                return None
            grads[key] = rows if key not in grads else grads[key] + rows
    return [grads.get(variable) for variable in passes.leaves]


def _fit_rows(grad, count, shape, dtype):
    """``grad`` (one row per seed, then the op's broadcast shape) summed to ``(count,) + shape``;
    None if it is not of that form."""
    grad = np.asarray(grad)
    if grad.ndim < 1 + len(shape) or grad.shape[0] != count:
        return None
    extra = grad.ndim - 1 - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(1, 1 + extra)))
    axes = tuple(1 + i for i, n in enumerate(shape) if n == 1 and grad.shape[1 + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape[1:] != tuple(shape):
        return None
    return grad.astype(dtype, copy=False)


def _rows(call, output):
    """The Jacobian's rows for ``output``: one pass per element, each a tuple per variable."""
    if call.linked or not output.requires_grad:
        return [call.pullback((output,), (seed,), call.linked) for seed in _basis(output)]
    passes = _Toward((output,), call.variables)   # not linked: the variables are fresh leaves
    return [tuple(_zeros_like(v) if g is None else g
                  for g, v in zip(passes.run((seed,), False), call.variables))
            for seed in _basis(output)]


def jacfwd(f: Callable[_P, Any], argnums: int | tuple[int, ...] = 0) -> Callable[_P, Any]:
    """``f`` -> a function returning its Jacobian, one forward (jvp) pass per input element;
    equal to ``jacrev``'s."""
    _check_argnums_type(argnums, "jacfwd")

    @functools.wraps(f)
    def jacfwd_f(*args, **kwargs):
        call = _Call(f, args, kwargs, _positions(argnums, len(args), "jacfwd"), False, "jacfwd")
        linearized = _Linearized(call)
        blank = [None] * len(call.variables)
        columns = [[] for _ in call.variables]   # per variable, per element: one tensor per output
        for j, variable in enumerate(call.variables):
            for seed in _basis(variable):
                tangents = blank[:j] + [seed] + blank[j + 1:]
                columns[j].append(linearized.push(tangents, call.linked))
        jacobians = []
        for k, output in enumerate(call.outputs):
            per_output = [[column[k] for column in columns[j]] for j in range(len(columns))]
            jacobians.append(_assemble(call, output, per_output, rows=False))
        return _structured(call, jacobians, argnums)
    return jacfwd_f


def _assemble(call, output, parts, rows):
    """Each variable's Jacobian from ``parts``: ``rows`` (per output element, one entry per
    variable) or columns (per variable, per input element)."""
    jacobians = []
    for j, variable in enumerate(call.variables):
        shape = output.shape + variable.shape
        pieces = [row[j] for row in parts] if rows else parts[j]
        if not pieces:   # an empty output or input
            jacobians.append(Tensor._make(devices.zeros(shape, variable.dtype, _array(variable)), None))
        else:
            jacobians.append(call.result(stack(pieces, axis=0 if rows else output.ndim).reshape(shape)))
    return jacobians


def _structured(call, jacobians, argnums):
    """Per output (a tuple if ``f`` returned one), per argument (a tuple if ``argnums`` is)."""
    per_output = [j[0] if _is_int(argnums) else tuple(j) for j in jacobians]
    return call.shaped(per_output)


def hessian(f: Callable[_P, Any], argnums: int | tuple[int, ...] = 0) -> Callable[_P, Any]:
    """``f`` (returning a 0-d Tensor) -> its Hessian, ``jacfwd(jacrev(f, argnums), argnums)``."""
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f: Callable[..., Any], primals: Sequence[TensorLike],
        tangents: Sequence[TensorLike]) -> tuple[Any, Any]:
    """``(f(*primals), H @ tangents)`` for ``f`` returning a 0-d Tensor, as
    ``torch.autograd.functional.hvp``: the product has the structure of ``primals``
    (one Tensor, or a tuple)."""
    single = not isinstance(primals, (tuple, list))
    primals = _as_tuple(primals)
    call = _Call(f, primals, {}, range(len(primals)), False, "hvp")
    out = call.scalar_output()
    tangents = _tangents_for(call.variables, tangents, "tangents", "hvp")
    keep = is_grad_enabled() and (call.linked or any(t.requires_grad for t in tangents))
    with enable_grad():
        gradients = call.pullback((out,), (None,), True)
    product = call.pullback(gradients, tangents, keep)   # the vjp of the gradient: v^T H = H v
    if not keep:
        product = tuple(p.detach() for p in product)
    return call.result(out), product[0] if single else product
