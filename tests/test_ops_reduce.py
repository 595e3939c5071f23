"""Reductions: axis/keepdims in every form, by property and closed form."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autonet
from autonet.testing import arrays, assert_gradients_match, tensors

REDUCTIONS = {
    "sum": lambda x, **kw: x.sum(**kw),
    "mean": lambda x, **kw: x.mean(**kw),
    "var": lambda x, **kw: x.var(**kw),
    "var_ddof1": lambda x, **kw: x.var(ddof=1, **kw),
    "max": lambda x, **kw: x.max(**kw),
    "min": lambda x, **kw: x.min(**kw),
}
NUMPY = {"sum": np.sum, "mean": np.mean, "var": np.var, "max": np.max, "min": np.min,
         "var_ddof1": lambda a, **kw: np.var(a, ddof=1, **kw)}


@st.composite
def tensor_and_axis(draw, min_side=1):
    """A tensor with unique values (no ties) and an axis argument in any accepted form."""
    shape = draw(st.lists(st.integers(min_side, 4), min_size=1, max_size=3).map(tuple))
    x = draw(tensors(shape=shape, distinct=True))
    ndim = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
            lambda axes: st.tuples(*[st.sampled_from([a, a - ndim]) for a in axes]))))
    return x, axis, draw(st.booleans())


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(case=tensor_and_axis(min_side=2))
def test_reduction_values_and_gradients(name, case):
    x, axis, keepdims = case
    reduce = REDUCTIONS[name]
    out = reduce(x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.data, NUMPY[name](x.data, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert_gradients_match(lambda t: reduce(t, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(case=tensor_and_axis(min_side=2))
def test_reduction_second_order(name, case):
    x, axis, keepdims = case
    reduce = REDUCTIONS[name]
    assert autonet.gradgradcheck(lambda t: reduce(t, axis=axis, keepdims=keepdims), x)


def test_max_min_split_ties_evenly():
    x = autonet.Tensor([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    (x.max(axis=1).sum() + x.min()).backward()
    # row maxima: two tied 3s, three tied 2s; the global min 1.0 is unique
    np.testing.assert_allclose(x.grad, [[0.5, 1.0, 0.5], [1 / 3, 1 / 3, 1 / 3]])


@given(arrays(shape=(4, 3)))
def test_mean_gradient_closed_form(a):
    x = autonet.Tensor(a, requires_grad=True)
    x.mean(axis=0).sum().backward()
    np.testing.assert_allclose(x.grad, np.full((4, 3), 0.25))


@given(arrays(shape=(5,)))
def test_var_gradient_closed_form(a):
    x = autonet.Tensor(a, requires_grad=True)
    x.var().backward()
    np.testing.assert_allclose(x.grad, 2 * (a - a.mean()) / 5, atol=1e-12)


def test_top_level_functions_accept_arrays():
    a = np.arange(6.0).reshape(2, 3)
    assert autonet.sum(a, axis=1).shape == (2,)
    assert autonet.max(a).item() == 5.0
    assert autonet.var(a, axis=(0, 1)).item() == pytest.approx(a.var())
    assert autonet.mean(a, keepdims=True).shape == (1, 1)
    assert autonet.min(a, axis=-1).data.tolist() == [0.0, 3.0]


def test_bad_axis_is_an_error_naming_the_op():
    with pytest.raises(ValueError, match="sum"):
        autonet.Tensor(np.ones((2, 3))).sum(axis=2)
