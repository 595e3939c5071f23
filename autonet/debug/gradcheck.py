"""Gradient checks against central finite differences, in float64.

The analytic side is a vector-Jacobian product with a random upstream
gradient (not just ``sum()``), and every element of every input that requires
grad is perturbed, so a wrong entry anywhere in the Jacobian is caught.
Inputs on a device are perturbed there; the comparison reads values back to
the host explicitly.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..core import device as devices
from ..core.backward import grad as autograd_grad
from ..core.state import enable_grad, is_grad_enabled, no_grad
from ..ops.shape import concatenate
from ..core.tensor import Tensor, TensorLike, as_tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences.

    Attributes: ``input_index``, ``input_name``, ``element`` (a tuple index),
    ``numeric``, ``analytic``.
    """

    def __init__(self, message: str, input_index: int | None = None, input_name: str | None = None,
                 element: tuple[int, ...] | None = None, numeric: float | None = None,
                 analytic: float | None = None) -> None:
        super().__init__(message)
        self.input_index = input_index
        self.input_name = input_name
        self.element = element
        self.numeric = numeric
        self.analytic = analytic


def gradcheck(fn: Callable[..., Any], inputs: Tensor | Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central differences.

    ``inputs`` is a Tensor or a sequence; those that require grad are checked
    (on float64 copies). Returns True, or raises :class:`GradcheckError`
    naming the input, the element and both values (returns False instead
    when ``raise_exception=False``).

    >>> import autonet
    >>> x = autonet.Tensor([[0.5, -1.0]], requires_grad=True)
    >>> autonet.gradcheck(lambda t: t.tanh() * t, x)
    True
    """
    try:
        check_vjp(fn, _float64_copies(inputs), eps, atol, rtol, np.random.default_rng(0))
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(fn: Callable[..., Any], inputs: Tensor | Sequence[Tensor],
                  grad_outputs: TensorLike | None = None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Check second derivatives: ``gradcheck`` of ``fn``'s first-order gradients.

    The first-order gradients are taken with ``create_graph=True`` against
    ``grad_outputs`` (random when omitted) and then checked like any function.
    They must first equal the gradients taken without ``create_graph`` (to
    ``atol``/``rtol``): a backward may compute them another way on Tensors, and
    second derivatives of a wrong first derivative would check out.
    """
    inputs = _float64_copies(inputs)
    if grad_outputs is None:
        with no_grad():
            shape = as_tensor(fn(*inputs)).shape
        grad_outputs = np.random.default_rng(1).standard_normal(shape)

    def gradients(xs, create_graph):
        wanted = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        with enable_grad():   # also while gradcheck perturbs inputs under no_grad
            output = as_tensor(fn(*xs))
            grads = autograd_grad(output, wanted, grad_outputs=_on_device_of(output, grad_outputs),
                                  create_graph=create_graph, allow_unused=True)
        return [g if g is not None else Tensor(devices.zeros(x.shape, x.dtype, like=x.data))
                for g, x in zip(grads, wanted)]

    def first_derivatives(*xs):
        """With a graph for gradcheck's backward through them; without, for its perturbed
        evaluations (under no_grad), which want values only: the derivatives of the plain
        first derivatives, which the create_graph ones were just held to."""
        return concatenate([g.reshape(-1) for g in gradients(xs, is_grad_enabled())])

    try:
        _check_create_graph_agrees(inputs, gradients(inputs, True), gradients(inputs, False), atol, rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return gradcheck(first_derivatives, inputs, eps, atol, rtol, raise_exception)


def _check_create_graph_agrees(inputs, with_graph, without, atol, rtol):
    """Raise GradcheckError where a first derivative taken with ``create_graph`` differs."""
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    for position, graph_grad, plain_grad in zip(checked, with_graph, without):
        graph, plain = (devices.to_host(g.data) for g in (graph_grad, plain_grad))
        found = _disagreement(graph, plain, atol, rtol)
        if found:
            element, _ = found
            raise _mismatch("first derivative", position, inputs[position], element, plain, graph,
                            f"{graph[element]:.8g} with create_graph=True, {plain[element]:.8g} "
                            f"without; the backward computes another formula on Tensors "
                            f"(create_graph) than on arrays")


def check_vjp(fn, inputs, eps, atol, rtol, rng):
    """Raise GradcheckError unless the VJP of ``fn`` at ``inputs`` matches.

    ``inputs`` must already be the tensors to perturb (float64, owned here).
    """
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    with enable_grad():   # the derivatives asked for, even where the caller is under no_grad
        output = as_tensor(fn(*inputs))
    upstream = rng.standard_normal(output.shape)
    analytic = _analytic(output, [inputs[i] for i in checked], upstream)
    for position, analytic_grad in zip(checked, analytic):
        tensor = inputs[position]
        numeric = _numeric(fn, inputs, tensor, upstream, eps)
        analytic_grad = devices.to_host(analytic_grad)
        found = _disagreement(analytic_grad, numeric, atol, rtol, finite=True)
        if found:
            element, count = found
            raise _mismatch("gradient mismatch", position, tensor, element, numeric, analytic_grad,
                            f"numeric {numeric[element]:.8g}, analytic {analytic_grad[element]:.8g} "
                            f"(output shape {output.shape}; {count} element(s) differ)")


def _disagreement(got, want, atol, rtol, finite=False):
    """The first element (and the count) where ``got`` is off ``want`` by more than ``atol + rtol
    |want|`` or NaN where it is not; with ``finite``, where ``want`` is not finite too (an
    overflowing finite difference proves nothing). None where they agree."""
    bad = np.abs(got - want) > atol + rtol * np.abs(want)
    bad |= np.isnan(got) != np.isnan(want)
    if finite:
        bad |= ~np.isfinite(want)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.argwhere(bad)[0]), int(bad.sum())


def _mismatch(what, position, tensor, element, expected, got, detail):
    """The GradcheckError for input ``position``'s gradient at ``element`` (``expected`` is the
    reference: the numeric one, or the one without create_graph)."""
    label = f"input {position}" + (f" ({tensor.name!r})" if tensor.name else "")
    return GradcheckError(f"{what} for {label} of shape {tensor.shape} at element {element}: {detail}",
                          input_index=position, input_name=tensor.name, element=element,
                          numeric=float(expected[element]), analytic=float(got[element]))


def _float64_copies(inputs):
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    copies = []
    for x in inputs:
        if isinstance(x, Tensor):
            copy = Tensor(x.data, dtype=np.float64, name=x.name)
            copy.requires_grad = x.requires_grad
            copies.append(copy)
        else:
            copies.append(x)
    return copies


def _analytic(output, tensors, upstream):
    if not output.requires_grad:
        return [np.zeros(t.shape) for t in tensors]
    grads = autograd_grad(output, tensors, grad_outputs=_on_device_of(output, upstream), allow_unused=True)
    results = []
    for g, t in zip(grads, tensors):
        if g is None:
            results.append(np.zeros(t.shape))
            continue
        if g.shape != t.shape or g.dtype != t.dtype:
            raise GradcheckError(
                f"gradient of shape {g.shape} and dtype {g.dtype} for an input of shape "
                f"{t.shape} and dtype {t.dtype}")
        results.append(g.data)
    return results


def _numeric(fn, inputs, tensor, upstream, eps):
    """d <upstream, fn(inputs)> / d tensor, by central differences."""
    flat = tensor.data.reshape(-1)   # a view: inputs are contiguous copies
    numeric = np.empty(flat.size)
    with no_grad():
        for j in range(flat.size):
            original = flat[j].item()
            flat[j] = original + eps
            plus = _weighted_sum(fn(*inputs), upstream)
            flat[j] = original - eps
            minus = _weighted_sum(fn(*inputs), upstream)
            flat[j] = original
            numeric[j] = (plus - minus) / (2 * eps)
    return numeric.reshape(tensor.shape)


def _weighted_sum(output, upstream):
    values = devices.to_host(output.data if isinstance(output, Tensor) else output)
    return float(np.sum(values.astype(np.float64) * upstream))


def _on_device_of(output, array):
    """``array`` (drawn on the host) where ``output`` lives."""
    return array if isinstance(array, Tensor) else devices.to_device(array, output.device)
