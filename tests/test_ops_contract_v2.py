"""The contract's new ops: PyTorch's edge rules, zeros, constructors and refusals (their values and
gradients of every order are rows of tests/op_db.py)."""
import math

import numpy as np
import pytest
from hypothesis import given

import autonet
from autonet import Tensor
from autonet.testing import arrays, assert_gradients_match

# Values, gradients and second derivatives of every op: tests/op_db.py and test_ops_db.py.


def test_prod_gradient_with_zeros_is_the_product_of_the_others():
    x = Tensor([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]], requires_grad=True)
    x.prod(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]])
    assert_gradients_match(lambda t: t.prod(axis=1), x)
    assert autonet.gradgradcheck(lambda t: t.prod(axis=1), [x])


def test_pytorch_edge_rules():
    zero = Tensor([0.0], requires_grad=True)
    autonet.leaky_relu(zero, 0.1).sum().backward()
    assert zero.grad[0] == 0.1                  # the slope at 0, as torch
    zero.grad = None
    autonet.elu(zero, alpha=0.5).sum().backward()
    assert zero.grad[0] == 0.5
    big = Tensor([30.0, -800.0])
    np.testing.assert_array_equal(autonet.softplus(big).data, [30.0, 0.0])   # threshold 20, no overflow
    assert autonet.logsumexp(Tensor([-np.inf, -np.inf])).item() == -np.inf
    assert autonet.logsumexp(Tensor([1000.0, 1000.0])).item() == 1000.0 + math.log(2)
    with pytest.raises(ValueError, match="approximate"):
        autonet.gelu(big, approximate="fast")


def test_argmax_argmin_return_int_arrays_like_numpy():
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    for axis in (None, 0, 1, -1):
        np.testing.assert_array_equal(Tensor(a).argmax(axis=axis), np.argmax(a, axis=axis))
        np.testing.assert_array_equal(autonet.argmin(Tensor(a), axis=axis), np.argmin(a, axis=axis))
    t = Tensor(a)
    assert autonet.core.device.is_array(t.argmax()) and t.argmax().dtype.kind == "i"
    assert autonet.core.device.device_of(t.argmax(axis=0)) == t.device   # on the tensor's device


@pytest.mark.parametrize("make, reference", [
    (lambda: autonet.arange(5), lambda: np.arange(5.0)),
    (lambda: autonet.arange(1, 2, 0.25), lambda: np.arange(1, 2, 0.25)),
    (lambda: autonet.full((2, 3), 7.5), lambda: np.full((2, 3), 7.5)),
    (lambda: autonet.linspace(0, 1, 5), lambda: np.linspace(0, 1, 5)),
    (lambda: autonet.linspace(0, 1, 4, endpoint=False), lambda: np.linspace(0, 1, 4, endpoint=False)),
    (lambda: autonet.eye(3, 4, k=1), lambda: np.eye(3, 4, k=1)),
    (lambda: Tensor.eye(2), lambda: np.eye(2)),
])
def test_constructors_match_numpy_in_float64(make, reference):
    made = make()
    assert made.dtype == np.float64 and not made.requires_grad
    np.testing.assert_array_equal(made.data, reference())


def test_constructors_take_dtype_and_requires_grad():
    t = autonet.arange(3, dtype=np.float32, requires_grad=True)
    assert t.dtype == np.float32 and t.requires_grad
    assert autonet.full((2,), 1, dtype=np.float32).dtype == np.float32
    assert autonet.eye(2, requires_grad=True).requires_grad


@given(x=arrays((2, 3)))
def test_numpy_functions_dispatch_to_the_new_ops(x):
    t = Tensor(x, requires_grad=True)
    for np_function, expected in ((np.sin, np.sin(x)), (np.cos, np.cos(x)), (np.expm1, np.expm1(x)),
                                  (lambda a: np.cumsum(a, axis=0), np.cumsum(x, axis=0)),
                                  (lambda a: np.pad(a, 1), np.pad(x, 1))):
        out = np_function(t)
        assert isinstance(out, Tensor) and out.requires_grad
        np.testing.assert_allclose(out.data, expected, rtol=1e-15)
    with pytest.raises(TypeError, match="constant"):
        np.pad(t, 1, mode="symmetric")   # (edge, reflect and wrap are ops since contract v3)


def test_einsum_as_a_method():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(Tensor(a).einsum("ij,jk->ik", Tensor(b)).data, a @ b)


def test_pad_refuses_negative_widths():
    with pytest.raises(ValueError, match="widths"):
        Tensor(np.ones(3)).pad(-1)
