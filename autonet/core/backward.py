"""Reverse mode as two steps: plan the pass, then execute it.

:func:`plan` decides everything that does not need a gradient value: which
nodes run, in which order (newest first, so each runs after every consumer
of its output has added to its gradient), where each input gradient goes and
with which shape and dtype. It also checks, before any formula runs, that no
saved array was freed or modified in place, so a refused pass changes nothing.

:func:`execute` runs the formulas on ndarrays, on Tensors under
``create_graph`` (the backward pass is then itself recorded), or checked by
observers (anomaly mode), and frees each node's saved arrays as soon as its
formula ran unless the graph is retained. Eager ``backward()``, ``grad()``
and ``autonet.compile`` share both. Gradients reach ``.grad`` only after the
whole pass succeeded, through :mod:`.ownership`.

Both are iterative: a chain of 100,000 ops backpropagates.
"""
from __future__ import annotations

import numbers
from typing import Sequence
import operator

import numpy as np

from . import device as devices, ownership
from .context import Context
from .function import RELEASED
from .state import notify, state
from .tensor import Tensor, TensorLike


class Plan:
    """The nodes a backward pass visits, in order, and each one's routes.

    ``routes[i]`` lists ``(position, key, shape, dtype)`` for the inputs of
    ``nodes[i]`` that want a gradient: the key is the node that made the input
    or the leaf Tensor itself; shape and dtype are the input's, which the
    gradient must have. :func:`execute` reads the same from the nodes
    themselves; the routes are worked out only for those who ask (compile's
    tracer, ``autonet.func``).
    """

    __slots__ = ("nodes", "_routes")

    def __init__(self, nodes, routes=None):
        self.nodes = nodes
        self._routes = routes

    @property
    def routes(self):
        if self._routes is None:
            self._routes = [routes_of(node) for node in self.nodes]
        return self._routes


def routes_of(node):
    """``(position, key, shape, dtype)`` of each input of ``node`` that wants a gradient."""
    return [(position, edge, *_shape_and_dtype(edge))
            for position, (edge, wanted) in enumerate(zip(node.inputs, node.needs_input_grad))
            if wanted]


def _shape_and_dtype(edge):
    """The shape and dtype of the input behind ``edge``: a node's output, or a leaf."""
    if type(edge) is Context:
        return edge.shape, edge.dtype
    return edge._data.shape, edge._data.dtype


def key_of(tensor):
    """Where the gradient of ``tensor`` is gathered: its node, or the leaf itself."""
    return tensor._node if tensor._node is not None else tensor


def plan(keys):
    """The :class:`Plan` of a backward pass from ``keys``; refuses freed or modified graphs.

    A search finds the nodes; they run newest first (by ``seq``: every node is numbered after
    its inputs), so each runs after all the consumers of its output added to its gradient.
    """
    nodes = [key for key in keys if type(key) is Context]
    seen = set(nodes)
    for node in nodes:   # the list grows as the search finds nodes: a breadth-first walk
        saved = node.saved
        if saved:   # each saved array's version, checked once per pass
            if saved is RELEASED:
                raise _freed_graph_error(node)
            for entry in node.saved_versions:
                if entry is not None and entry[1] is not None and entry[1][0] != entry[2]:
                    raise _modified_error(node, entry)
        for edge in node.inputs:
            if type(edge) is Context and edge not in seen:
                seen.add(edge)
                nodes.append(edge)
    nodes.sort(key=_seq, reverse=True)   # newest first: consumers before their inputs
    return Plan(nodes)


_seq = operator.attrgetter("seq")


def execute(plan, grads, create_graph=False, retain_graph=False, capture=(), fitted=None):
    """Run ``plan`` from the seed gradients in ``grads`` (a dict key -> gradient).

    Returns ``(grads, retained, captured)``: the leaves' gradients (by leaf
    tensor), those of non-leaves that asked to ``retain_grad`` (by tensor),
    and those that arrived at the nodes in ``capture`` (by node). ``fitted``,
    if a list, gets ``(node, input position)`` of each gradient that had to be
    summed to its input's shape or cast.
    """
    retained = {}
    captured = {}
    owned = set()   # keys whose gradient this pass summed into a new array: safe to add into in place
    observed = bool(state.observers)
    slow = create_graph or observed
    # Anomaly mode reports bad values itself, naming the op: NumPy stays quiet, sums included.
    numpy_errors = np.seterr(all="ignore") if observed and _quiet() else None
    previous_mode = state.grad_enabled
    state.grad_enabled = create_graph
    ndarray = np.ndarray
    try:
        for node in plan.nodes:   # newest first
            grad = grads.pop(node, None)
            if grad is None:            # every formula that could reach it returned None
                continue
            if owned:
                owned.discard(node)
            if node.retained is not None or capture:
                _keep(node, grad, retained, captured, capture)
            if not slow and node.fn.backward_into is not None and _adds_in_place(node, owned, grad):
                node.fn.backward_into(node, grad, grads[node.inputs[0]])   # x[t] of a big x: O(slice)
                if not retain_graph and node.saved:
                    node.saved, node.saved_versions = RELEASED, ()   # freed as soon as it ran
                continue
            if slow:   # on Tensors (create_graph), or watched by observers
                input_grads = _run_formula_slowly(node, grad, create_graph)
            else:      # the fast path: the formula on ndarrays
                input_grads = node.fn.backward(node, grad)
                if type(input_grads) is not tuple:
                    input_grads = (input_grads,)
            inputs = node.inputs
            if len(input_grads) != len(inputs):
                raise _count_error(node, input_grads)
            if not retain_graph and node.saved:
                node.saved, node.saved_versions = RELEASED, ()   # freed as soon as it ran
            position = -1
            for key, wanted, input_grad in zip(inputs, node.needs_input_grad, input_grads):
                position += 1   # each wanted input gradient, fitted to its input, summed
                if input_grad is None or not wanted:
                    continue
                if type(key) is Context:
                    shape, dtype = key.shape, key.dtype
                else:   # a leaf that required grad when the op ran
                    shape, dtype = key._data.shape, key._data.dtype
                if (type(input_grad) is not ndarray or input_grad.shape != shape
                        or input_grad.dtype is not dtype and input_grad.dtype != dtype):
                    input_grad = fit(input_grad, shape, dtype, create_graph)
                    if fitted is not None:
                        fitted.append((node, position))
                earlier = grads.get(key)
                if earlier is None:
                    grads[key] = input_grad
                elif key in owned:
                    earlier += input_grad
                else:
                    grads[key] = accumulate(earlier, input_grad)
                    if not slow:   # a new ndarray that no formula has seen yet
                        owned.add(key)
                if observed:
                    notify("gradient_summed", node, position, grads[key])
    finally:
        state.grad_enabled = previous_mode
        if numpy_errors is not None:
            np.seterr(**numpy_errors)
    return grads, retained, captured


def _keep(node, grad, retained, captured, capture):
    """The gradient arriving at ``node``, kept for a tensor that asked ``retain_grad()`` and
    for a caller that asked to capture it."""
    if node.retained is not None:
        tensor = node.retained()
        if tensor is not None and tensor._node is node:
            retained[tensor] = grad
    if node in capture:
        captured[node] = grad


def _count_error(node, input_grads):
    return RuntimeError(
        f"{node.name}.backward returned {len(input_grads)} gradient(s) but forward took "
        f"{len(node.inputs)} input(s); return one per input (None allowed)")


def _quiet():
    return any(observer.quiet_numpy for observer in state.observers)


def _run_formula_slowly(node, grad, create_graph):
    """One formula, on Tensors with ``create_graph``, shown to observers."""
    if create_graph:
        arrays = node.saved
        node.saved = tuple(_saved_as_tensor(node, i, a) for i, a in enumerate(arrays))
        try:
            input_grads = node.fn.backward(node, grad)
        finally:
            node.saved = arrays
    else:
        input_grads = node.fn.backward(node, grad)
    if type(input_grads) is not tuple:
        input_grads = (input_grads,)
    notify("formula_ran", node, input_grads)
    return input_grads


def _saved_as_tensor(node, index, array):
    """A saved array as a Tensor in the graph, so a formula's use of it is recorded."""
    if not isinstance(array, np.ndarray) and not devices.is_foreign(array):
        return array   # a number or a setting
    entry = node.saved_versions[index] if index < len(node.saved_versions) else None
    if entry is None:
        return Tensor._make(array, None)
    position, _, _, exact = entry
    edge = node if position < 0 else node.inputs[position]
    wanted = position < 0 or node.needs_input_grad[position]
    if not exact and wanted:
        raise RuntimeError(
            f"'{node.name}' saved a view of its {'output' if position < 0 else 'input'} rather than "
            f"the array itself, so create_graph=True cannot tell how that view depends on it. "
            f"Save the tensor's own array in forward and take the view inside backward.")
    if position < 0:
        return Tensor._make(array, node)
    if type(edge) is Context:
        return Tensor._make(array, edge)
    return edge if wanted else Tensor._make(array, None)   # a leaf in the graph, or a constant


def _adds_in_place(node, owned, grad):
    """True when a node's one input gradient can be added into the pass's own array for that
    input (``Function.backward_into``), with nothing to fit."""
    if len(node.inputs) != 1 or not node.needs_input_grad[0]:
        return False
    key = node.inputs[0]
    return key in owned and grad.dtype == _shape_and_dtype(key)[1]


def accumulate(earlier, grad):
    """``earlier + grad``: fan-out gradients summed (a 0-d sum stays an array, not NumPy's scalar)."""
    total = earlier + grad
    return np.asarray(total) if isinstance(total, np.generic) else total


def fit(grad, shape, dtype, create_graph=False):
    """``grad`` summed or spread to ``shape`` and cast to ``dtype``.

    Broadcasting in the forward pass widens shapes; the chain rule sums the
    gradient back over the broadcast axes. This is the one place it happens,
    for ndarrays and (with create_graph) for recorded Tensor gradients alike.
    """
    if create_graph:
        if not isinstance(grad, Tensor):
            grad = Tensor._make(np.asarray(grad), None)
    elif isinstance(grad, (np.generic, int, float)):
        grad = np.asarray(grad)
    elif isinstance(grad, Tensor):   # a formula written with ops: only its values count here
        grad = grad._data
    if grad.shape != shape:
        grad = sum_to_shape(grad, shape)
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    return grad


def sum_to_shape(grad, shape):
    """Sum ``grad`` (ndarray or Tensor) over the axes along which ``shape`` was broadcast."""
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
        if isinstance(grad, np.generic):   # NumPy's sum over every axis is a scalar; formulas
            grad = np.asarray(grad)        # downstream (getitem's) need an array
    elif extra < 0:   # the input had leading size-1 axes that NumPy dropped (t[0:1] = (1, 1) value)
        grad = grad.reshape((1,) * -extra + tuple(grad.shape))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:   # a gradient narrower than its input: spread it out
        grad = grad * devices.ones(shape, grad.dtype, _like(grad))
    return grad


def _like(grad):
    """The array that new arrays should be made like: on its device."""
    return grad._data if isinstance(grad, Tensor) else grad


def _freed_graph_error(node):
    return RuntimeError(
        f"trying to backward through the graph a second time: the arrays saved by "
        f"'{node.name}' were freed by an earlier backward(). Pass retain_graph=True to the "
        f"first backward() to keep them.")


def _modified_error(node, entry):
    """The error for a saved array changed in place since ``node`` ran (its ``saved_versions``
    entry holds the version counter and its value then)."""
    position, counter, version, _ = entry
    role = "output" if position < 0 else "input"
    return RuntimeError(
        f"one of the arrays saved by '{node.name}' for its gradient was modified by an "
        f"in-place operation: its {role} {_describe(node, position)} is at version "
        f"{counter[0]}, it was at version {version} when '{node.name}' ran. Compute it out "
        f"of place (or on a copy) instead.")


def _describe(node, position):
    if position < 0:
        return f"of shape {node.shape}"
    edge = node.inputs[position]
    if type(edge) is Context:
        return f"(the result of '{edge.name}', shape {edge.shape})"
    return repr(edge.name) if edge.name else f"of shape {edge.shape}"


# ----------------------------------------------------------------- entry points
def backward(tensor: Tensor, grad: TensorLike | None = None, retain_graph: bool | None = None,
             create_graph: bool = False) -> None:
    """Accumulate d(tensor)/d(leaf) into every leaf's ``.grad``.

    ``grad`` (ndarray, Tensor or number) is the upstream gradient; it may be
    omitted for a one-element tensor. The graph's saved arrays are freed
    unless ``retain_graph`` (default: ``create_graph``). With
    ``create_graph=True`` leaves get a ``.grad`` Tensor that is itself
    differentiable.
    """
    seed = initial_gradient(tensor, grad, create_graph, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    key = key_of(tensor)
    grads, retained = _run((key,), {key: seed}, create_graph, retain_graph, (), True)[:2]
    for leaf in list(grads):
        if leaf.requires_grad:   # not one frozen since the forward pass (PyTorch skips those too)
            ownership.deliver(grads, leaf, leaf, create_graph)
    for target in list(retained):
        ownership.deliver(retained, target, target, create_graph)


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: TensorLike | Sequence[TensorLike | None] | None = None,
         retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Tensor, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, as a tuple of Tensors.

    Never touches ``.grad``. With ``create_graph=True`` the results are part of
    a graph and can be differentiated again.

    >>> import autonet
    >>> x = autonet.Tensor([1.0, 2.0], requires_grad=True)
    >>> (dx,) = autonet.grad((x ** 3).sum(), x, create_graph=True)
    >>> dx
    Tensor([ 3., 12.], grad_fn=mul)
    >>> autonet.grad(dx.sum(), x)[0]
    Tensor([ 6., 12.])
    """
    outputs = _as_tensor_tuple(outputs, "outputs")
    inputs = _as_tensor_tuple(inputs, "inputs")
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray, numbers.Number)) or devices.is_foreign(grad_outputs):
        grad_outputs = (grad_outputs,)
    else:
        grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"grad: inputs[{i}] does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    seeds = {}
    for output, grad_output in zip(outputs, grad_outputs):
        seed = initial_gradient(output, grad_output, create_graph, "grad")
        key = key_of(output)
        seeds[key] = seed if key not in seeds else seeds[key] + seed
    wanted = [key_of(t) for t in inputs]
    capture = {key for key in wanted if type(key) is Context}
    grads, _, captured = _run(tuple(seeds), seeds, create_graph, retain_graph, capture, False)
    grads.update(captured)
    results = []
    for i, key in enumerate(wanted):
        if key not in grads:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: inputs[{i}] was not used to compute the outputs; "
                    f"pass allow_unused=True to get None for it")
            results.append(None)
        elif create_graph:
            results.append(grads[key])
        elif sum(k is key for k in wanted) > 1:   # the same input twice: each its own array
            results.append(Tensor._make(devices.copy(grads[key]), None))
        else:
            results.append(Tensor._make(ownership.claim(grads, key), None))
    if state.observers:   # compile: where each result came from
        notify("grad_returned", wanted, results)
    return tuple(results)


def _run(keys, seeds, create_graph, retain_graph, capture, into_grad):
    """Plan and execute a pass; observers (compile) see the plan afterwards."""
    the_plan = plan(keys)
    if not state.observers:
        return execute(the_plan, seeds, create_graph, retain_graph, capture)
    fitted = []
    initial = dict(seeds)
    result = execute(the_plan, seeds, create_graph, retain_graph, capture, fitted)
    notify("backward_ran", the_plan, initial, fitted, create_graph, into_grad)
    return result


def _as_tensor_tuple(value, what):
    items = (value,) if isinstance(value, Tensor) else tuple(value)
    for item in items:
        if not isinstance(item, Tensor):
            raise TypeError(f"grad: {what} must be Tensors, got {type(item).__name__}")
    return items


def initial_gradient(output, grad, create_graph, where):
    """The gradient that seeds a backward pass from ``output``, checked."""
    given = grad
    if not output.requires_grad:
        raise RuntimeError(
            f"{where}: the tensor does not require grad and has no grad_fn "
            f"(set requires_grad=True on an input that it depends on)")
    if grad is None:
        if output._data.size != 1:
            raise RuntimeError(
                f"{where}: grad can be omitted only for a one-element tensor; this one "
                f"has shape {output.shape}: pass grad= of that shape")
        # np.array(1.0) is one C call; np.ones goes through Python-level NumPy code
        grad = np.array(1.0, dtype=output._data.dtype).reshape(output._data.shape)
        if type(output._data) is not np.ndarray:
            grad = devices.to_device(grad, output.device)
    elif isinstance(grad, Tensor):
        grad = grad if create_graph else grad._data
    else:
        if devices.is_host(grad):
            grad = np.asarray(grad, dtype=output._data.dtype)
        if grad.ndim == 0 and output._data.ndim != 0:
            grad = np.broadcast_to(grad, output._data.shape)
        if type(output._data) is not np.ndarray:
            grad = devices.to_device(grad, output.device)
    if grad.shape != output._data.shape:
        raise ValueError(
            f"{where}: grad has shape {tuple(grad.shape)} but the tensor has shape "
            f"{output.shape}")
    if create_graph and not isinstance(grad, Tensor):
        grad = Tensor._make(devices.copy(grad), None)
        if state.observers:   # compile: the seed of a recorded backward pass
            notify("seeded", grad, given)
    return grad
