"""matmul with NumPy semantics (1-D, 2-D, batched, broadcast batches) and linear."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autonet
from autonet.testing import assert_gradients_match, tensors


@st.composite
def matmul_shapes(draw):
    """Operand shapes that numpy.matmul accepts: 1-D, 2-D and broadcast batches."""
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
    shape_a = draw(st.sampled_from([(k,), (n, k), batch + (n, k)]))
    shape_b = draw(st.sampled_from([(k,), (k, m), batch + (k, m)]))
    # drop leading batch axes from one side, or make them size 1, so batches broadcast
    if len(shape_b) > 2 and draw(st.booleans()):
        shape_b = tuple(1 if draw(st.booleans()) else s for s in shape_b[:-2]) + shape_b[-2:]
    return shape_a, shape_b


@given(data=st.data())
def test_matmul_matches_numpy_and_gradcheck(data):
    shape_a, shape_b = data.draw(matmul_shapes())
    a, b = data.draw(tensors(shape=shape_a)), data.draw(tensors(shape=shape_b))
    np.testing.assert_allclose((a @ b).data, np.matmul(a.data, b.data), rtol=1e-12)
    assert_gradients_match(lambda x, y: x @ y, a, b)


@given(data=st.data())
def test_matmul_second_order(data):
    shape_a, shape_b = data.draw(matmul_shapes())
    a, b = data.draw(tensors(shape=shape_a)), data.draw(tensors(shape=shape_b))
    assert autonet.gradgradcheck(lambda x, y: (x @ y).tanh(), (a, b))


@given(data=st.data(), bias=st.booleans())
def test_linear_matches_matmul_plus_bias(data, bias):
    batch = data.draw(st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple))
    n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    x = data.draw(tensors(shape=batch + (n_in,)))
    w = data.draw(tensors(shape=(n_out, n_in)))   # PyTorch's (out, in)
    b = data.draw(tensors(shape=(n_out,))) if bias else None
    expected = x.data @ w.data.T + (b.data if bias else 0)
    np.testing.assert_allclose(_linear(x, w, b).data, expected, rtol=1e-12)
    inputs = (x, w, b) if bias else (x, w)
    assert_gradients_match(lambda *t: _linear(*t), *inputs)
    assert autonet.gradgradcheck(lambda *t: _linear(*t).sigmoid(), inputs)


def _linear(x, w, b=None):
    from autonet.ops.linalg import linear
    return linear(x, w, b)


@pytest.mark.host_only("mixes host ndarrays into ops, which a device refuses")
def test_matmul_records_its_name_and_rejects_bad_shapes():
    a = autonet.Tensor(np.ones((2, 3)), requires_grad=True)
    assert (a @ np.ones(3)).grad_fn.name == "matmul"
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(2, 3\)"):
        a @ np.ones((2, 3))
    with pytest.raises(ValueError, match="matmul"):
        a @ 2.0


def test_linear_shape_errors_name_the_op():
    with pytest.raises(ValueError, match="linear"):
        _linear(autonet.Tensor(np.ones((2, 3))), autonet.Tensor(np.ones((4, 2))))


@pytest.mark.parametrize("ord", [1, -1, np.inf, -np.inf, "fro"])
@pytest.mark.parametrize("axis", [(2, 0), (0, 2), (-1, 1), (1, -1)])
def test_matrix_norm_takes_rows_and_columns_in_the_order_given(ord, axis):
    # NumPy: axis=(r, c) sums over r for ord=1 (column sums) and over c for ord=inf; sorting the
    # pair silently swapped ord=1 with ord=inf
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    t = autonet.Tensor(x, requires_grad=True)
    rows, cols = (a % 3 for a in axis)
    by_hand = {1: lambda m: np.abs(m).sum(axis=rows, keepdims=True).max(axis=cols),
               -1: lambda m: np.abs(m).sum(axis=rows, keepdims=True).min(axis=cols),
               np.inf: lambda m: np.abs(m).sum(axis=cols, keepdims=True).max(axis=rows),
               -np.inf: lambda m: np.abs(m).sum(axis=cols, keepdims=True).min(axis=rows),
               "fro": lambda m: np.sqrt((m * m).sum(axis=axis))}[ord](x).reshape(-1)
    np.testing.assert_allclose(autonet.norm(t, ord, axis=axis).data.reshape(-1), by_hand, rtol=1e-12)
    np.testing.assert_allclose(autonet.norm(t, ord, axis=axis).data, np.linalg.norm(x, ord, axis=axis))
    assert_gradients_match(lambda u: autonet.norm(u, ord, axis=axis), t)


@pytest.mark.parametrize("ord", [0.5, 1, 1.5, 3, -1])
def test_p_norm_gradient_is_zero_at_the_zero_vector(ord):
    # PyTorch's rule; the chain rule through sum(|x| ** p) ** (1 / p) gave NaN
    t = autonet.Tensor(np.zeros((2, 3)), requires_grad=True)
    out = autonet.norm(t, ord, axis=1)
    assert out.data.tolist() == [0.0, 0.0]
    out.sum().backward()
    assert t.grad.tolist() == [[0.0] * 3] * 2


_HALF_NORM = (3 ** 0.5 + 2) ** 2   # (sum sqrt|x|)^2 of [0, 3, -4]


@pytest.mark.parametrize("ord, norm, expected", [
    (3, 91 ** (1 / 3), [0.0, 9 / 91 ** (2 / 3), -16 / 91 ** (2 / 3)]),   # sign(x) x^2 / norm^2
    (0.5, _HALF_NORM, [0.0, (_HALF_NORM / 3) ** 0.5, -(_HALF_NORM / 4) ** 0.5]),   # sign(x) (norm / |x|)^(1/2)
    (-1, 0.0, [0.0, 0.0, 0.0]),   # a zero element makes the norm 0, and the gradient 0 (PyTorch's)
])
def test_p_norm_gradient_at_a_zero_element_by_hand(ord, norm, expected):
    t = autonet.Tensor([0.0, 3.0, -4.0], requires_grad=True)
    out = autonet.norm(t, ord)
    assert out.item() == pytest.approx(norm, rel=1e-14)
    out.backward()
    np.testing.assert_allclose(t.grad, expected, rtol=1e-12)


@pytest.mark.parametrize("axis, keepdims", [(0, False), (-1, True), (None, False)])
def test_zero_norm_counts_nonzeros_as_numpy_with_a_zero_gradient(axis, keepdims):
    a = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -0.0]], dtype=np.float32)
    a = a[0] if axis is None else a
    t = autonet.Tensor(a, dtype=np.float32, requires_grad=True)
    out = autonet.norm(t, 0, axis=axis, keepdims=keepdims)
    expected = np.linalg.norm(a, 0, axis=axis, keepdims=keepdims)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)
    (out.sum() + t.sum()).backward()   # the count adds nothing (PyTorch's zero gradient)
    np.testing.assert_array_equal(t.grad, np.ones_like(a))


@pytest.mark.host_only("the step takes host arrays")
def test_zero_norm_is_recomputed_by_each_compiled_replay():
    # it was a Tensor made from x.data inside norm: a compiled step refused it as "an array
    # computed with NumPy from the .data of a tensor", blaming the caller
    w = autonet.Tensor([1.0, 0.0, 2.0], requires_grad=True)

    def step(x):
        return autonet.norm(w * x, 0) + (w * x).sum()

    compiled = autonet.compile(step)
    for x, count in [([1.0, 1.0, 1.0], 2), ([0.0, 0.0, 1.0], 1), ([1.0, 1.0, 0.0], 1)]:
        assert compiled(np.array(x)).item() == count + float(np.dot([1.0, 0.0, 2.0], x))
