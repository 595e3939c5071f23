"""jacrev carries many seeds at once, as rows of one gradient, through ops whose formulas
broadcast (``autonet.func._ROW_SAFE``). Each Jacobian here is compared with the same
Jacobian taken one row at a time (the ops' own passes, the path every other op takes) and
with central finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autonet
from autonet import Tensor, func

UNARY = [autonet.tanh, autonet.sigmoid, autonet.exp, autonet.sin, autonet.cos, lambda t: -t,
         lambda t: autonet.log1p(t * t), lambda t: autonet.sqrt(t * t + 1.0), autonet.abs,
         lambda t: autonet.expm1(t * 0.1), lambda t: autonet.log(t * t + 2.0)]


def row_by_row(f, *args, argnums=0):
    """The Jacobian with no op allowed on the rows-at-once path."""
    allowed, func._ROW_SAFE = func._ROW_SAFE, frozenset()
    try:
        return func.jacrev(f, argnums=argnums)(*args)
    finally:
        func._ROW_SAFE = allowed


def finite_differences(f, x, eps=1e-6):
    x = np.asarray(x, dtype=float)
    out = np.asarray(f(Tensor(x)).data)
    jac = np.zeros(out.shape + x.shape)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        jac[(...,) + i] = (f(Tensor(up)).data - f(Tensor(down)).data) / (2 * eps)
    return jac


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, len(UNARY) - 1), min_size=1, max_size=4), st.integers(1, 5),
       st.integers(1, 4), st.booleans(), st.integers(0, 2**31 - 1))
def test_rows_at_once_equal_rows_one_by_one_and_finite_differences(chain, n, batch, vector_in, seed):
    rng = np.random.default_rng(seed)
    w = Tensor(rng.normal(size=(n, 3)) / 2)
    bias = Tensor(rng.normal(size=3))
    scale = Tensor(rng.normal(size=(batch, 1)) + 2.0)

    def f(x):
        h = x @ w + bias          # (n,) @ (n, 3) or (batch, n) @ (n, 3); the bias broadcasts
        for k in chain:
            h = UNARY[k](h)
        return h if vector_in else h / scale

    x = rng.normal(size=(n,) if vector_in else (batch, n))
    got = func.jacrev(f)(Tensor(x)).data
    one_by_one = row_by_row(f, Tensor(x)).data
    np.testing.assert_allclose(got, one_by_one, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got, finite_differences(f, x), rtol=1e-5, atol=1e-7)


def test_two_variables_and_a_batched_matmul():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 2))
    f = lambda a, b: autonet.tanh(a @ b) * b.sum()   # sum is not row-safe: row by row
    g = lambda a, b: autonet.tanh(a @ b) * 2.0
    for fn in (f, g):
        got = func.jacrev(fn, argnums=(0, 1))(Tensor(a), Tensor(b))
        want = row_by_row(fn, Tensor(a), Tensor(b), argnums=(0, 1))
        for x, y in zip(got, want):
            np.testing.assert_allclose(x.data, y.data, rtol=1e-13, atol=1e-15)
    fd = finite_differences(lambda t: g(t, Tensor(b)), a)
    np.testing.assert_allclose(func.jacrev(g)(Tensor(a), Tensor(b)).data, fd, rtol=1e-5, atol=1e-7)


def test_an_inner_product_of_two_vectors_inside_goes_row_by_row():
    # (x @ v) is 0-d: its gradient rows would meet v elementwise when there are as many rows as
    # v has elements; such a node is kept off the rows-at-once path.
    v = Tensor(np.array([1.0, -2.0, 0.5]))
    f = lambda x: (x @ v) * x
    x = np.array([0.3, 0.7, -1.1])
    np.testing.assert_allclose(func.jacrev(f)(Tensor(x)).data, finite_differences(f, x), rtol=1e-6)
    np.testing.assert_allclose(func.jacrev(f)(Tensor(x)).data,
                               np.outer(x, v.data) + (x @ v.data) * np.eye(3), rtol=1e-14)
    two = lambda x: (x @ v) * Tensor([1.0, 2.0])   # two rows against three elements
    np.testing.assert_allclose(func.jacrev(two)(Tensor(x)).data, np.outer([1.0, 2.0], v.data), rtol=1e-14)


def test_rows_in_blocks_when_one_block_would_be_large(monkeypatch):
    rng = np.random.default_rng(4)
    w = Tensor(rng.normal(size=(7, 9)))
    f = lambda x: autonet.sigmoid(x @ w)
    x = Tensor(rng.normal(size=(5, 7)))
    whole = func.jacrev(f)(x).data
    monkeypatch.setattr(func, "_ROWS_BUDGET", 50)   # 45 rows of 45 elements: blocks of one row
    np.testing.assert_array_equal(func.jacrev(f)(x).data, whole)
    assert whole.shape == (5, 9, 5, 7)


def test_float32_stays_float32_and_an_unreached_variable_is_zero():
    w = Tensor(np.ones((2, 2), np.float32))
    f = lambda x, y: autonet.tanh(x @ w)
    jx, jy = func.jacrev(f, argnums=(0, 1))(Tensor(np.ones(2, np.float32)), Tensor(np.ones(3, np.float32)))
    assert jx.dtype == np.float32 and jy.dtype == np.float32
    np.testing.assert_array_equal(jy.data, np.zeros((2, 3)))
    np.testing.assert_allclose(jx.data, (1 - np.tanh(2.0) ** 2) * np.ones((2, 2)), rtol=1e-6)
