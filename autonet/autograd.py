"""The backward engine: grad mode, the reverse-mode graph walk and ``grad()``.

The walk is iterative (a heap, never recursion) so a chain of 100,000 ops
backpropagates. Gradients of leaves are delivered only after the
whole walk succeeded, so an error part-way leaves every ``.grad`` untouched.
"""
import functools
import heapq
import itertools
import numbers
import sys
import threading

import numpy as np

from . import tensor as _tensor_module

RELEASED = object()
"""Marks a node whose saved arrays were freed by a backward pass."""


class _ThreadState(threading.local):
    """Per-thread engine state: grad mode and the module scope (for viz)."""

    grad_enabled = True
    scope = ()
    anomaly = False
    tracer = None   # set while autonet.compile traces a step


state = _ThreadState()


class CompileError(RuntimeError):
    """A step cannot be traced by ``autonet.compile``, or a call does not fit its trace."""


def is_grad_enabled():
    """True when ops record the graph in this thread."""
    return state.grad_enabled


class _GradMode:
    """Sets grad mode for a ``with`` block or, used as a decorator, a call."""

    enabled = True

    def __new__(cls, func=None):
        self = super().__new__(cls)
        if func is None:
            return self
        # Used bare as a decorator: ``@no_grad`` as well as ``@no_grad()``.
        return self(func)

    def __enter__(self):
        self._previous = state.grad_enabled
        state.grad_enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        state.grad_enabled = self._previous
        return False

    def __call__(self, func):
        mode = type(self)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with mode():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Turn graph recording off in this thread (``with no_grad():`` or ``@no_grad()``)."""

    enabled = False


class enable_grad(_GradMode):
    """Turn graph recording back on in this thread, e.g. inside ``no_grad``."""

    enabled = True


def replayable(method):
    """Mark a method with side effects (zero_grad, an optimizer step) for compile to replay."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        tracer = state.tracer
        if tracer is not None:
            tracer.record_call(functools.partial(method, *args, **kwargs))
        return method(*args, **kwargs)

    return wrapper


sequence = itertools.count()
"""Every recorded op takes the next number: consumers are always numbered after their inputs."""


def _freed_graph_error(node):
    return RuntimeError(
        f"trying to backward through the graph a second time: the arrays saved by "
        f"'{node.name}' were freed by an earlier backward(). Pass retain_graph=True to the "
        f"first backward() to keep them.")


def fit_gradient(grad, like, create_graph=False):
    """Reduce or expand ``grad`` to the shape of tensor ``like``, in its dtype.

    Broadcasting in the forward pass widens shapes; the chain rule sums the
    gradient back over the broadcast axes. This is the one place it happens,
    for ndarrays and (with create_graph) for recorded Tensor gradients alike.
    """
    Tensor = _tensor_module.Tensor
    if create_graph:
        if not isinstance(grad, Tensor):
            grad = Tensor._make(np.asarray(grad), None)
    elif not isinstance(grad, np.ndarray):
        grad = np.asarray(grad)
    shape = like.data.shape
    if grad.shape != shape:
        grad = sum_to_shape(grad, shape)
    if grad.dtype != like.data.dtype:
        grad = grad.astype(like.data.dtype)
    return grad


def sum_to_shape(grad, shape):
    """Sum ``grad`` (ndarray or Tensor) over the axes along which ``shape`` was broadcast."""
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:   # a gradient narrower than its input: spread it out
        from .ops import dual

        grad = dual.broadcast_to(grad, shape)
    return grad


def _call_backward(node, output, grad, create_graph):
    """Run one node's backward formula (on Tensors with create_graph), checked."""
    if not create_graph:
        grads = _run_formula(node, grad)
    else:
        # The same formula, fed Tensors: saved inputs and output become the
        # graph's own tensors, so the backward pass is recorded as a graph.
        arrays = node.saved
        node.saved = tuple(_saved_as_tensor(a, node, output) for a in arrays)
        try:
            grads = _run_formula(node, grad)
        finally:
            node.saved = arrays
    grads = _one_per_input(node, grads)
    if state.anomaly:
        from .anomaly import check_backward

        check_backward(node, grads)
    return grads


def _one_per_input(node, grads):
    """A backward's result as a tuple with one entry per forward input, checked."""
    if type(grads) is not tuple:
        grads = (grads,)
    if len(grads) != len(node.parents):
        raise RuntimeError(
            f"{node.name}.backward returned {len(grads)} gradient(s) but forward "
            f"took {len(node.parents)} input(s); return one per input (None allowed)")
    return grads


def _run_formula(node, grad):
    if state.anomaly:
        with np.errstate(all="ignore"):   # check_backward names the op instead
            return node.fn.backward(node, grad)
    return node.fn.backward(node, grad)


def check_unmodified(node, output):
    """Refuse to run a formula whose saved arrays were changed in place since."""
    versions = node.versions
    for parent, version in zip(node.parents, versions):
        if parent is not None and parent._version[0] != version:
            _refuse_if_saved(node, parent, version, "input")
    if output._version[0] != versions[-1]:
        _refuse_if_saved(node, output, versions[-1], "output")


def _refuse_if_saved(node, tensor, version, role):
    if any(saved is tensor.data for saved in node.saved):
        label = repr(tensor.name) if tensor.name else f"a tensor of shape {tensor.shape}"
        raise RuntimeError(
            f"one of the arrays saved by '{node.name}' for its gradient was modified by an "
            f"in-place operation: its {role} {label} is at version {tensor._version[0]}, "
            f"it was at version {version} when '{node.name}' ran. Compute it out of place "
            f"(or on a copy) instead.")


def _saved_as_tensor(array, node, output):
    """Map a saved array to the tensor it came from (or a constant)."""
    Tensor = _tensor_module.Tensor
    if not isinstance(array, np.ndarray):
        return array
    for parent in node.parents:
        if parent is not None and array is parent.data:
            return parent
    if array is output.data:
        return output
    return Tensor._make(array, None)


def run_backward(roots, root_grads, retain_graph, create_graph, inputs=None):
    """Backpropagate ``root_grads`` from ``roots``.

    Nodes are visited newest first (a max-heap on their sequence numbers), so
    each one runs once, after every consumer of its output has added to its
    gradient: the order PyTorch's engine uses, without a separate sort.

    Without ``inputs``: accumulate into ``.grad`` of leaves (and of tensors that
    called ``retain_grad``). With ``inputs``: touch no ``.grad``; return a dict
    tensor -> gradient for those tensors only.
    """
    grads = {}
    heap = []
    for root, grad in zip(roots, root_grads):
        if root not in grads and root._node is not None:
            heapq.heappush(heap, (-root._node.seq, root))
        _accumulate(grads, root, grad)

    captured = {} if inputs is not None else None
    visited = []
    tracer = state.tracer
    schedule = [] if tracer is not None else None
    if tracer is not None and (create_graph or inputs is not None):
        raise CompileError("compiled steps support backward(), not grad() or create_graph=True")
    previous_mode = state.grad_enabled
    state.grad_enabled = create_graph
    slow = create_graph or state.anomaly
    try:
        while heap:
            tensor = heapq.heappop(heap)[1]
            grad = grads.pop(tensor)
            node = tensor._node
            saved = node.saved
            if saved is RELEASED:
                raise _freed_graph_error(node)
            if saved:
                check_unmodified(node, tensor)
            if captured is not None:
                if tensor in inputs:
                    captured[tensor] = grad
            elif tensor._retains_grad:
                _accumulate(grads, _Retained(tensor), grad)
            visited.append(node)
            if slow:
                parent_grads = _call_backward(node, tensor, grad, create_graph)
            else:
                parent_grads = node.fn.backward(node, grad)
                if type(parent_grads) is not tuple:
                    parent_grads = (parent_grads,)
                if len(parent_grads) != len(node.parents):
                    _one_per_input(node, parent_grads)   # raises, explaining
            routes = [] if schedule is not None else None
            for position, (parent, parent_grad) in enumerate(zip(node.parents, parent_grads)):
                if parent_grad is None or parent is None or not parent.requires_grad:
                    continue
                data = parent.data
                fits = (slow or type(parent_grad) is not np.ndarray or parent_grad.shape != data.shape
                        or parent_grad.dtype != data.dtype)
                if fits:
                    parent_grad = fit_gradient(parent_grad, parent, create_graph)
                if routes is not None:
                    routes.append((position, parent, fits))
                previous = grads.get(parent)
                if previous is None:
                    grads[parent] = parent_grad
                    if parent._node is not None:
                        heapq.heappush(heap, (-parent._node.seq, parent))
                else:
                    grads[parent] = previous + parent_grad
            if schedule is not None:
                schedule.append((tensor, routes))
    finally:
        state.grad_enabled = previous_mode
    if tracer is not None:
        if any(isinstance(key, _Retained) for key in grads):
            raise CompileError("compiled steps do not support retain_grad()")
        tracer.record_backward(roots, root_grads, schedule)

    # Every formula ran: now (and only now) write results and free memory.
    # The loop's last locals would count as holders of the gradients they saw.
    parent_grads = parent_grad = previous = grad = None
    if captured is not None:
        for tensor, grad in grads.items():
            if tensor in inputs:
                captured[tensor] = grad
    else:
        while grads:   # popitem: afterwards `grad` is each array's only holder here
            key, grad = grads.popitem()
            target = key.tensor if isinstance(key, _Retained) else key
            deliver(target, grad, create_graph, holders=1)
    if not retain_graph:
        for node in visited:
            if node.saved:
                node.saved = RELEASED
    return captured


class _Retained:
    """Dict key for the gradient of a non-leaf that asked to ``retain_grad``."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor

    def __hash__(self):
        return hash((_Retained, id(self.tensor)))

    def __eq__(self, other):
        return isinstance(other, _Retained) and other.tensor is self.tensor


def _accumulate(grads, tensor, grad):
    previous = grads.get(tensor)
    grads[tensor] = grad if previous is None else previous + grad


def deliver(tensor, grad, create_graph, holders):
    """Add a finished gradient to ``tensor.grad`` (a fresh array, never a view).

    ``holders``: how many references to ``grad`` the caller itself holds.
    """
    if create_graph:
        tensor.grad = grad if tensor.grad is None else tensor.grad + grad
    elif tensor.grad is None:
        owned = _exclusively_ours(grad, holders + 1)   # + our own argument
        tensor.grad = grad if owned else np.array(grad, copy=True)
    elif isinstance(tensor.grad, np.ndarray):
        tensor.grad += grad
    else:
        tensor.grad = tensor.grad + grad
    if state.tracer is not None:
        state.tracer.delivered.append(tensor.grad)


def _exclusively_ours(array, holders):
    """True when only our ``holders`` references reach ``array``, so it may become a
    ``.grad`` without a copy.

    A formula's fresh result qualifies; the upstream array that add passes to
    both inputs, a view, the user's own array or one kept in a context does
    not (each adds a reference, or a base). Saves copying every gradient of
    every step, which for large layers costs as much as a matrix product.
    """
    # getrefcount sees our `array` argument and its own argument too.
    return (type(array) is np.ndarray and array.base is None and array.flags.writeable
            and sys.getrefcount(array) <= holders + 2)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
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
    Tensor = _tensor_module.Tensor
    outputs = _as_tensor_tuple(outputs, "outputs")
    inputs = _as_tensor_tuple(inputs, "inputs")
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray, numbers.Number)):
        grad_outputs = (grad_outputs,)
    else:
        grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"grad: inputs[{i}] does not require grad")
    root_grads = [
        initial_gradient(out, g, create_graph, "grad") for out, g in zip(outputs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    captured = run_backward(outputs, root_grads, retain_graph, create_graph, set(inputs))
    results = []
    for i, tensor in enumerate(inputs):
        g = captured.get(tensor)
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: inputs[{i}] was not used to compute the outputs; "
                    f"pass allow_unused=True to get None for it")
            results.append(None)
        elif isinstance(g, Tensor):
            results.append(g)
        else:
            results.append(Tensor._make(np.array(g, copy=True), None))
    return tuple(results)


def _as_tensor_tuple(value, what):
    Tensor = _tensor_module.Tensor
    items = (value,) if isinstance(value, Tensor) else tuple(value)
    for item in items:
        if not isinstance(item, Tensor):
            raise TypeError(f"grad: {what} must be Tensors, got {type(item).__name__}")
    return items


def initial_gradient(output, grad, create_graph, where):
    """The gradient that seeds a backward pass from ``output``, checked."""
    Tensor = _tensor_module.Tensor
    if not output.requires_grad:
        raise RuntimeError(
            f"{where}: the tensor does not require grad and has no grad_fn "
            f"(set requires_grad=True on an input that it depends on)")
    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"{where}: grad can be omitted only for a one-element tensor; this one "
                f"has shape {output.shape}: pass grad= of that shape")
        # np.array(1.0) is one C call; np.ones goes through Python-level NumPy code
        grad = np.array(1.0, dtype=output.data.dtype).reshape(output.data.shape)
    elif isinstance(grad, Tensor):
        grad = grad if create_graph else grad.data
    else:
        grad = np.asarray(grad, dtype=output.data.dtype)
        if grad.ndim == 0 and output.data.ndim != 0:
            grad = np.broadcast_to(grad, output.data.shape)
    if grad.shape != output.data.shape:
        raise ValueError(
            f"{where}: grad has shape {tuple(grad.shape)} but the tensor has shape "
            f"{output.shape}")
    if create_graph and not isinstance(grad, Tensor):
        grad = Tensor._make(np.array(grad), None)
    return grad
