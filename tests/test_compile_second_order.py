"""Second-order steps compile: ``autonet.grad`` (with and without ``create_graph``) inside a step.

A ``create_graph`` pass runs its formulas on Tensors, so the trace records its ops like any
others (reading what the forward ops saved); a first-order ``autonet.grad`` is a backward pass
whose results become values. Each step here runs eagerly and compiled over calls with changing
inputs and must agree bit for bit; the Hessian-vector product is also checked against its
closed form.
"""
import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import CompileError, Tensor
from autonet.optim import SGD


def _same(a, b):
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _twins(make, arguments, calls=5):
    """``make() -> (tensors, step)``, run eagerly and compiled on ``arguments(rng)`` each call."""
    (eager_tensors, eager), (tensors, step) = make(), make()
    compiled = autonet.compile(step)
    rng = np.random.default_rng(7)
    for _ in range(calls):
        args = arguments(rng)
        expected, got = eager(*args), compiled(*args)
        for e, g in zip(expected if isinstance(expected, tuple) else (expected,),
                        got if isinstance(got, tuple) else (got,)):
            _same(g.data, e.data)
        for e, g in zip(eager_tensors, tensors):
            _same(g.data, e.data)
            assert (e.grad is None) == (g.grad is None)
            if e.grad is not None:
                _same(g.grad, e.grad)
    assert len(compiled.programs) == 1   # every call after the first replayed
    return compiled


def _penalty_step(momentum=0.0):
    """A tanh layer's loss plus a gradient penalty on its input gradient, then SGD."""
    def make():
        model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 1, rng=1))
        optimizer = SGD(model.parameters(), lr=0.05, momentum=momentum)

        def penalty_step(x, y):
            loss = ((model(x) - y) ** 2).mean()
            grads = autonet.grad(loss, list(model.parameters()), create_graph=True)
            penalty = sum((g * g).sum() for g in grads)
            total = loss + 0.1 * penalty
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            return total, loss

        return list(model.parameters()), penalty_step

    return make


def _batch(rng):
    return Tensor(rng.standard_normal((5, 3))), Tensor(rng.standard_normal((5, 1)))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_gradient_penalty_step_compiles_and_equals_eager(momentum):
    compiled = _twins(_penalty_step(momentum), _batch)
    assert "mul_forward" in compiled.source and ".saved[" in compiled.source   # the double pass


def _hvp_step():
    def make():
        w = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)

        def hvp(x, v):
            loss = ((w * x).tanh() ** 2).sum() + (w ** 3).sum()
            (g,) = autonet.grad(loss, [w], create_graph=True)
            (hv,) = autonet.grad((g * v).sum(), [w])
            return hv, g

        return [w], hvp

    return make


def _hvp_arguments(rng):
    return Tensor(rng.standard_normal(3)), Tensor(rng.standard_normal(3))


def test_a_hessian_vector_product_step_compiles_and_equals_eager():
    _twins(_hvp_step(), _hvp_arguments)


def test_the_compiled_hessian_vector_product_matches_its_closed_form():
    """loss = sum(tanh(w x)^2) + sum(w^3) is separable: H is diagonal with
    H_ii = 2 x_i^2 (sech^4 u - 2 tanh^2 u sech^2 u) + 6 w_i, u = w_i x_i; the gradient is
    2 x_i tanh u sech^2 u + 3 w_i^2."""
    [w], hvp = _hvp_step()()
    compiled = autonet.compile(hvp)
    rng = np.random.default_rng(11)
    for _ in range(4):
        x, v = rng.standard_normal(3), rng.standard_normal(3)
        hv, g = compiled(Tensor(x), Tensor(v))
        u = w.data * x
        tanh, sech2 = np.tanh(u), 1.0 / np.cosh(u) ** 2
        np.testing.assert_allclose(g.data, 2 * x * tanh * sech2 + 3 * w.data ** 2, rtol=1e-12)
        diagonal = 2 * x ** 2 * (sech2 ** 2 - 2 * tanh ** 2 * sech2) + 6 * w.data
        np.testing.assert_allclose(hv.data, diagonal * v, rtol=1e-12, atol=1e-14)


def test_first_order_grad_inside_a_step_returns_fresh_arrays_each_call():
    w = Tensor(np.array([1.0, -2.0]), requires_grad=True)

    @autonet.compile
    def step(x):
        return autonet.grad((w * w * x).sum(), [w, w])   # the same input twice: two copies

    first = step(Tensor(np.array([1.0, 3.0])))
    second = step(Tensor(np.array([2.0, 0.5])))   # a replay
    np.testing.assert_array_equal(second[0].data, 2 * w.data * np.array([2.0, 0.5]))
    np.testing.assert_array_equal(first[0].data, 2 * w.data * np.array([1.0, 3.0]))   # kept
    assert not np.shares_memory(second[0].data, second[1].data)
    np.testing.assert_array_equal(second[0].data, second[1].data)


def test_grad_with_respect_to_an_intermediate_compiles():
    def make():
        w = Tensor(np.array([0.3, 0.7, -0.2]), requires_grad=True)

        def step(x):
            h = (w * x).sigmoid()
            loss = (h * h).sum() + w.sum()
            gh, gw = autonet.grad(loss, [h, w])
            return gh, gw

        return [w], step

    _twins(make, lambda rng: (Tensor(rng.standard_normal(3)),))


def test_a_second_order_step_on_the_fused_backend_falls_back_to_the_replay():
    pytest.importorskip("numba")
    (_, eager), (_, step) = _hvp_step()(), _hvp_step()()
    compiled = autonet.compile(step, backend="fused")
    rng = np.random.default_rng(3)
    for _ in range(3):
        args = _hvp_arguments(rng)
        for e, g in zip(eager(*args), compiled(*args)):
            _same(g.data, e.data)
    assert "not fused: autonet.grad" in compiled.programs[0].listing()


def test_backward_with_create_graph_is_refused_with_what_to_use_instead():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    @autonet.compile
    def step():
        (w * w * w).sum().backward(create_graph=True)
        return (w.grad * w.grad).sum()

    with pytest.raises(CompileError, match=r"backward\(create_graph=True\).*autonet.grad"):
        step()


def test_create_graph_with_array_grad_outputs_is_refused():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    @autonet.compile
    def step():
        (g,) = autonet.grad(w * w, [w], grad_outputs=np.ones(2), create_graph=True)
        return (g * g).sum()

    with pytest.raises(CompileError, match="grad_outputs.*Tensors"):
        step()


def test_a_create_graph_pass_after_a_retained_backward_reads_what_the_forward_saved():
    """backward(retain_graph=True) first: the replay keeps the saved arrays a later
    create_graph pass reads, as eager mode's retained graph does."""
    def make():
        w = Tensor(np.array([0.4, -0.6, 1.3]), requires_grad=True)

        def step(x):
            loss = ((w * x).sigmoid() ** 3).sum()
            w.zero_grad()
            loss.backward(retain_graph=True)
            (g,) = autonet.grad(loss, [w], create_graph=True)
            return g * g   # no later pass steps through the forward ops: only the reads keep them

        return [w], step

    _twins(make, lambda rng: (Tensor(rng.standard_normal(3)),))
