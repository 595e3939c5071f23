"""The backward pass sums fan-out gradients in arrays it made itself, in place, and adds a
slice's gradient straight into them (``Function.backward_into``): a loop over ``x[t]`` costs
the slices, not a zero-filled copy of ``x`` per step. These tests compare every such sum with
``np.add.at`` written independently, and check that no array the pass did not make is ever
written: the caller's seed, a formula's shared result, another input's gradient."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autonet
from autonet import Tensor

INDICES = [np.s_[1:4], np.s_[:, 2], np.s_[::-2], np.s_[2], np.s_[..., 1:3], np.s_[[0, 0, 3]],
           np.s_[[1, 4], [2, 2]], np.s_[np.array([True, False, True, False, True, False])],
           np.s_[-1, ::2], np.s_[()]]


def expected_grad(shape, picks, extra):
    """sum_k add.at(zeros, index_k, weight_k) + extra, by NumPy alone."""
    total = np.zeros(shape)
    for index, weight in picks:
        np.add.at(total, index, weight)
    return total + extra


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(INDICES) - 1), min_size=1, max_size=8),
       st.integers(0, 8), st.integers(0, 2**31 - 1))
def test_many_slices_of_one_tensor_sum_as_add_at_does(choices, dense_at, seed):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.normal(size=(6, 5)), requires_grad=True)
    scale = rng.normal(size=(6, 5))
    picks, terms = [], []
    for k, choice in enumerate(choices):
        if k == dense_at:   # a dense consumer somewhere in the order
            terms.append((x * scale).sum())
        index = INDICES[choice]
        weight = rng.normal(size=np.shape(x.data[index]))
        picks.append((index, weight))
        terms.append((x[index] * weight).sum())
    extra = scale if dense_at < len(choices) else 0.0
    sum(terms[1:], terms[0]).backward()
    np.testing.assert_allclose(x.grad, expected_grad(x.shape, picks, extra), rtol=1e-12, atol=1e-12)


def test_a_seed_gradient_shared_by_two_slices_is_never_written():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    seed = np.ones((2, 4))
    kept = seed.copy()
    y = x[0:2] + x[1:3]   # add's formula hands the seed itself to both slices
    z = y + x[0:2] * 2.0
    z.backward(seed)
    np.testing.assert_array_equal(seed, kept)
    np.testing.assert_array_equal(x.grad, expected_grad((3, 4), [(np.s_[0:2], 3.0), (np.s_[1:3], 1.0)], 0))


def test_one_gradient_object_routed_to_two_inputs_is_summed_into_a_new_array():
    x = Tensor(np.arange(6.0), requires_grad=True)
    s = x[1:]
    t = s + s            # one array reaches the same input twice
    u = t + x[:-1]       # then a slice adds in place into the pass's own sum
    v = u.sum() + x[0] * 5.0
    v.backward()
    np.testing.assert_array_equal(x.grad, [6.0, 3.0, 3.0, 3.0, 3.0, 2.0])


def test_another_inputs_gradient_is_not_changed_by_an_in_place_sum():
    a = Tensor(np.ones(4), requires_grad=True)
    b = Tensor(np.ones(4), requires_grad=True)
    c = a + b            # a's and b's gradients arrive as one object
    (c.sum() + a[1:3].sum() * 10.0 + a[0:2].sum()).backward()
    np.testing.assert_array_equal(b.grad, np.ones(4))
    np.testing.assert_array_equal(a.grad, [2.0, 12.0, 11.0, 1.0])


def test_in_place_sums_equal_the_observed_slow_path_bit_for_bit():
    rng = np.random.default_rng(3)
    data, weights = rng.normal(size=(16, 3, 4)), rng.normal(size=(16, 3, 4))

    def grad_of_loop():
        x = Tensor(data, requires_grad=True)
        h = Tensor(np.zeros((3, 4)))
        for t in range(16):   # a recurrence over x[t], as recurrent layers run
            h = (h * 0.5 + x[t] * weights[t]).tanh()
        (h.sum() + x[3:9].sum()).backward()
        return x.grad

    fast = grad_of_loop()
    with autonet.detect_anomaly():   # observers take the formula-by-formula path
        slow = grad_of_loop()
    np.testing.assert_array_equal(fast, slow)


def test_retain_graph_twice_accumulates_twice():
    x = Tensor(np.arange(5.0), requires_grad=True)
    y = x[1:3].sum() + x[2:].sum() + x[[0, 0]].sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * first)
    np.testing.assert_array_equal(first, [2.0, 1.0, 2.0, 1.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_float32_input_keeps_its_dtype_through_in_place_sums(dtype):
    x = Tensor(np.ones((4, 3), dtype=dtype), requires_grad=True)
    (x[0].sum() + x[1:].sum() + x[:, 1].sum() + x[2].sum()).backward()
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad, [[1, 2, 1], [1, 2, 1], [2, 3, 2], [1, 2, 1]])


def test_a_compiled_loop_over_slices_adds_in_place_and_equals_eager_mode():
    rng = np.random.default_rng(5)
    w = Tensor(rng.normal(size=(4, 4)) / 2, requires_grad=True)
    optimizer = autonet.optim.SGD([w], lr=0.1)

    def step(x):
        optimizer.zero_grad()
        h = autonet.zeros((3, 4))
        for t in range(6):
            h = (h @ w + x[t]).tanh()
        loss = h.sum() + x[1:4].sum() * 0.5
        loss.backward()
        return loss

    compiled = autonet.compile(step)
    for _ in range(3):
        data = rng.normal(size=(6, 3, 4))
        x_eager, x_compiled = Tensor(data, requires_grad=True), Tensor(data, requires_grad=True)
        expected = step(x_eager)
        grads = (x_eager.grad.copy(), w.grad.copy())
        got = compiled(x_compiled)
        np.testing.assert_array_equal(got.data, expected.data)
        np.testing.assert_array_equal(x_compiled.grad, grads[0])
        np.testing.assert_array_equal(w.grad, grads[1])
    assert "getitem_backward_into" in compiled.source   # the replay takes the in-place path too
