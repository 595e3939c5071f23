"""Elementwise ops: closed forms, kinks, mixing operands (gradients of every op: tests/op_db.py)."""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import autonet
from autonet.ops import generic
from autonet.testing import arrays, assert_gradients_match, tensors
from op_db import OPS

# Values, gradients and second derivatives of every op: tests/op_db.py and test_ops_db.py.
BINARY = {row.name: row.call for row in OPS if row.shapes == "broadcast" and row.name != "where"}


@pytest.mark.host_only("mixes host ndarrays into ops, which a device refuses")
@pytest.mark.parametrize("name", sorted(BINARY))
@given(a=arrays(shape=(2, 3), min_value=0.5, max_value=2), b=arrays(shape=(3,), min_value=0.5, max_value=2))
def test_binary_accepts_ndarrays_and_numbers_on_either_side(name, a, b):
    fn = BINARY[name]
    mixed = fn(autonet.Tensor(a), b)
    reflected = fn(a, autonet.Tensor(b))
    expected = fn(autonet.Tensor(a), autonet.Tensor(b))
    np.testing.assert_array_equal(mixed.data, expected.data)
    np.testing.assert_array_equal(reflected.data, expected.data)
    np.testing.assert_array_equal(fn(autonet.Tensor(a), 2.0).data, fn(autonet.Tensor(a), autonet.Tensor(2.0)).data)


@given(tensors(min_value=-30, max_value=30))
def test_sigmoid_derivative_is_s_times_one_minus_s(x):
    e = np.exp(-np.abs(x.data))
    exact = e / (1 + e) ** 2          # s (1 - s), written without cancellation
    x.sigmoid().sum().backward()
    # s (1 - s) from a rounded s carries an absolute error of about one ulp of s
    np.testing.assert_allclose(x.grad, exact, rtol=1e-12, atol=3e-16)


@given(tensors(min_value=-5, max_value=5))
def test_tanh_derivative_is_one_minus_t_squared(x):
    t = np.tanh(x.data)
    x.tanh().sum().backward()
    np.testing.assert_allclose(x.grad, 1 - t ** 2, rtol=1e-12)


@given(tensors(shape=(3, 5)), arrays(shape=(3, 5)))
def test_log_softmax_vjp_closed_form(x, upstream):
    p = np.exp(x.data - x.data.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    x.log_softmax(axis=1).backward(upstream)
    expected = upstream - p * upstream.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-10, atol=1e-12)


def test_ties_split_the_gradient_evenly():
    a = autonet.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = autonet.Tensor([1.0, 1.0, 4.0], requires_grad=True)
    autonet.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(b.grad, [0.5, 0.0, 1.0])


def test_kinks_take_pytorch_subgradients():
    x = autonet.Tensor([0.0, 0.0, 1.0], requires_grad=True)
    (x.relu() + x.abs() + x.clip(0.0, 1.0)).sum().backward()
    # relu'(0) = 0, abs'(0) = 0, clip passes the gradient on its closed bounds
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 3.0])


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_second_derivative_at_zero_is_pytorchs(alpha):
    # PyTorch: elu'' = alpha exp(x) for x < 0 and 0 for x >= 0, at x = 0 too (it was alpha / 2,
    # from minimum(x, 0) splitting its gradient at the tie)
    x = autonet.Tensor([0.0, -0.0, -1.0, 1.0], requires_grad=True)
    (first,) = autonet.grad(autonet.elu(x, alpha).sum(), x, create_graph=True)
    np.testing.assert_array_equal(first.data, [alpha, alpha, alpha * np.exp(-1.0), 1.0])
    (second,) = autonet.grad(first.sum(), x)
    np.testing.assert_array_equal(second.data, [0.0, 0.0, alpha * np.exp(-1.0), 0.0])


@pytest.mark.parametrize("x", [1000.0, -1000.0])
def test_sigmoid_tanh_log_softmax_at_extremes(x):
    t = autonet.Tensor([x, -x, 0.0], requires_grad=True)
    s = t.sigmoid()
    (s.sum() + t.tanh().sum() + t.log_softmax().sum() + t.softmax()[0]).backward()
    assert np.all(np.isfinite(s.data)) and np.all(np.isfinite(t.grad))
    grad_sigmoid = autonet.Tensor([x], requires_grad=True)
    grad_sigmoid.sigmoid().sum().backward()
    assert grad_sigmoid.grad[0] == 0.0


@pytest.mark.parametrize("size", [4, generic.SMALL_SIGMOID], ids=["logaddexp-form", "exp-form"])
def test_both_sigmoid_forms_saturate_exactly_without_warning(size):
    x = np.resize([-1000.0, 1000.0, -745.0, 0.0], size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = generic.stable_sigmoid(x)
    assert got[0] == 0.0 and got[1] == 1.0 and got[3] == 0.5 and 0.0 <= got[2] < 1e-300


def test_sigmoid_forms_agree_across_the_size_where_one_hands_over():
    x = np.linspace(-700, 40, 20 * generic.SMALL_SIGMOID)
    exact = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    small = np.concatenate([generic.stable_sigmoid(chunk) for chunk in np.split(x, 40)])   # below the size
    assert x.size // 40 < generic.SMALL_SIGMOID
    for got in (small, generic.stable_sigmoid(x)):
        assert np.max(np.abs(got - exact) / exact) < 5e-15


def test_sigmoid_is_accurate_to_a_few_ulp():
    x = np.linspace(-700, 40, 200_001)
    wide = x.astype(np.longdouble)
    exact = 1 / (1 + np.exp(-wide))           # extended precision reference
    got = autonet.sigmoid(x).data
    assert np.max(np.abs(got - exact) / exact) < 5e-15


def test_float32_stays_float32_with_python_numbers():
    x = autonet.Tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    y = (x * 2.5 + 1) ** 2 / 3.0
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


@pytest.mark.host_only("mixes host ndarrays into ops, which a device refuses")
def test_float32_with_float64_array_promotes_and_grad_keeps_its_dtype():
    x = autonet.Tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    y = x * np.array([1.0, 2.0])
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("exponent", [2, 2.0, np.int64(2), np.int32(2), np.float64(2), np.float32(2), np.int64(3)])
def test_power_of_a_numpy_scalar_promotes_as_numpys(dtype, exponent):
    # NumPy 2: float32 ** np.float64(2) is float64 (a NumPy scalar is not weak, a Python one is);
    # the a * a shortcut for squares kept float32
    a = np.array([1.5, -2.0, 3.0]).astype(dtype)
    expected = a ** exponent
    got = autonet.Tensor(a, dtype=dtype) ** exponent
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got.data, expected)


def test_broadcast_shape_mismatch_names_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4,\)"):
        autonet.Tensor(np.ones((2, 3))) + autonet.Tensor(np.ones(4))


# Every differentiable top-level function of the API, called as a function.
TOP_LEVEL = {
    "exp": (autonet.exp, {"max_value": 5}), "log": (autonet.log, {"min_value": 0.1}),
    "sqrt": (autonet.sqrt, {"min_value": 0.1}), "abs": (autonet.abs, {"min_magnitude": 0.01}),
    "sigmoid": (autonet.sigmoid, {}), "tanh": (autonet.tanh, {}),
    "relu": (autonet.relu, {"min_magnitude": 0.01}),
    "clip": (lambda t: autonet.clip(t, -1.0, None), {"min_value": -0.99}),
    "softmax": (autonet.softmax, {}), "log_softmax": (autonet.log_softmax, {}),
    "sum": (lambda t: autonet.sum(t, axis=0), {}), "mean": (lambda t: autonet.mean(t, keepdims=True), {}),
    "max": (lambda t: autonet.max(t, axis=-1), {"distinct": True}),
    "min": (lambda t: autonet.min(t, axis=(0, 1)), {"distinct": True}),
    "var": (lambda t: autonet.var(t, axis=1, ddof=1), {}),
    "matmul": (lambda t: autonet.matmul(t, t.T), {}),
    "radd": (lambda t: 2.0 + t, {}), "rmul": (lambda t: np.full((2, 3), 3.0, like=t.data) * t, {}),
    "rmatmul": (lambda t: np.ones((4, 2), like=t.data) @ t, {}),
}


@pytest.mark.parametrize("name", sorted(TOP_LEVEL))
@given(data=st.data())
def test_top_level_functions_gradients(name, data):
    fn, bounds = TOP_LEVEL[name]
    x = data.draw(tensors(shape=(2, 3), **bounds), label="x")
    assert_gradients_match(fn, x)
