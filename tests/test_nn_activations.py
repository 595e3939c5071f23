"""Contract v3's activations, one row each: an independent NumPy formula for the value,
PyTorch's gradients at the kinks (written out from its backward formulas), gradients by finite
differences and second derivatives (away from the kinks), and the module of PyTorch's name."""
import math

import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.testing import assert_gradients_match
from device_double import here

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# name: (function, module, reference, {kink: PyTorch's gradient there})
ROWS = {
    "relu6": (F.relu6, nn.ReLU6(), lambda x: np.clip(x, 0, 6), {0.0: 0.0, 6.0: 0.0}),
    "hardtanh": (lambda x: F.hardtanh(x, -2.0, 3.0), nn.Hardtanh(-2.0, 3.0), lambda x: np.clip(x, -2, 3),
                 {-2.0: 0.0, 3.0: 0.0}),
    "hardsigmoid": (F.hardsigmoid, nn.Hardsigmoid(), lambda x: np.clip(x / 6 + 0.5, 0, 1), {-3.0: 0.0, 3.0: 0.0}),
    "hardswish": (F.hardswish, nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6, {-3.0: 0.0, 3.0: 1.0}),
    "mish": (F.mish, nn.Mish(), lambda x: x * np.tanh(_softplus(x)), {}),
    "celu": (lambda x: F.celu(x, 1.5), nn.CELU(1.5),
             lambda x: np.maximum(x, 0) + np.minimum(0, 1.5 * (np.exp(x / 1.5) - 1)), {0.0: 1.0}),
    "selu": (F.selu, nn.SELU(),
             lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)), {0.0: SELU_SCALE * SELU_ALPHA}),
    "softsign": (F.softsign, nn.Softsign(), lambda x: x / (1 + np.abs(x)), {0.0: 1.0}),
    "logsigmoid": (F.logsigmoid, nn.LogSigmoid(), lambda x: np.log(_sigmoid(x)), {}),
    "tanhshrink": (F.tanhshrink, nn.Tanhshrink(), lambda x: x - np.tanh(x), {}),
}
POINTS = np.array([-7.3, -3.4, -2.6, -1.2, -0.4, 0.3, 0.9, 2.2, 2.7, 3.6, 5.1, 6.5])


@pytest.mark.parametrize("name", sorted(ROWS))
def test_values_against_numpy_and_modules_match(name):
    function, module, reference, _ = ROWS[name]
    x = Tensor(here(POINTS))
    np.testing.assert_allclose(function(x).data, here(reference(POINTS)), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(module(x).data, function(x).data)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_gradients_and_second_derivatives_away_from_kinks(name):
    function = ROWS[name][0]
    x = Tensor(here(POINTS), requires_grad=True)
    assert_gradients_match(lambda t: function(t) * 1.0, x)
    assert autonet.gradgradcheck(function, x)


@pytest.mark.parametrize("name", sorted(name for name in ROWS if ROWS[name][3]))
def test_gradients_at_kinks_are_pytorchs(name):
    function, _, _, kinks = ROWS[name]
    x = Tensor(here(np.array(list(kinks))), requires_grad=True)
    function(x).sum().backward()
    np.testing.assert_allclose(x.grad, here(np.array(list(kinks.values()))), rtol=1e-15)


# PyTorch's gradients at -inf, inf and NaN (from its backward formulas: a comparison with NaN is
# false, so NaN takes the branch after the tested ones: elu's and selu's positive side, whose test
# is x <= 0: selu's scale, not alpha * scale).
NON_FINITE = {"relu6": [0.0, 0.0, 1.0], "hardtanh": [0.0, 0.0, 1.0], "hardsigmoid": [0.0, 0.0, 0.0],
              "hardswish": [0.0, 1.0, 1.0], "celu": [0.0, 1.0, 1.0], "selu": [0.0, SELU_SCALE, SELU_SCALE],
              "logsigmoid": [1.0, 0.0, np.nan], "tanhshrink": [1.0, 1.0, np.nan]}


@pytest.mark.parametrize("name", sorted(NON_FINITE))
def test_gradients_at_infinities_and_nan_are_pytorchs(name):
    x = Tensor(here(np.array([-np.inf, np.inf, np.nan][:len(NON_FINITE[name])])), requires_grad=True)
    with np.errstate(invalid="ignore"):
        ROWS[name][0](x).sum().backward()
    np.testing.assert_array_equal(x.grad, here(np.array(NON_FINITE[name])))


def test_hardtanh_with_equal_bounds_is_a_constant_with_no_gradient_as_pytorchs():
    x = Tensor(here(np.array([-2.0, 1.0, 3.0])), requires_grad=True)
    y = F.hardtanh(x, 1.0, 1.0)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, here(np.ones(3)))
    np.testing.assert_array_equal(x.grad, here(np.zeros(3)))
    with pytest.raises(ValueError, match="must be below"):
        nn.Hardtanh(1.0, 1.0)   # PyTorch's module refuses equal bounds too


def test_logsigmoid_is_finite_far_out_and_exact_there():
    x = Tensor(here(np.array([-800.0, -30.0, 30.0, 800.0])), requires_grad=True)
    y = F.logsigmoid(x)
    expected = np.array([-800.0, -30.0 - math.exp(-30), -math.exp(-30), 0.0])   # log(1 + e) ~ e
    np.testing.assert_allclose(y.data, here(expected),
                               rtol=1e-12, atol=1e-300)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, here(np.array([1.0, 1.0, math.exp(-30), 0.0])), rtol=1e-12)


def test_softmin_glu_and_the_softmax_modules():
    x = np.random.default_rng(0).standard_normal((3, 4, 2))
    t = Tensor(here(x), requires_grad=True)
    e = np.exp(-x)
    np.testing.assert_allclose(F.softmin(t, axis=1).data, here(e / e.sum(axis=1, keepdims=True)), rtol=1e-13)
    np.testing.assert_allclose(F.glu(t, axis=1).data, here(x[:, :2] * _sigmoid(x[:, 2:])), rtol=1e-13)
    np.testing.assert_allclose(nn.GLU()(t).data, here(x[..., :1] * _sigmoid(x[..., 1:])), rtol=1e-13)
    np.testing.assert_array_equal(nn.Softmin(axis=1)(t).data, F.softmin(t, axis=1).data)
    np.testing.assert_array_equal(nn.LogSoftmax(axis=0)(t).data, F.log_softmax(t, axis=0).data)
    for call in (lambda t: F.softmin(t, axis=1), lambda t: F.glu(t, axis=1)):
        assert_gradients_match(lambda t: call(t) * 1.0, t)
        assert autonet.gradgradcheck(call, t)


def test_identity_and_unflatten():
    x = Tensor(here(np.arange(24.0).reshape(2, 12)))
    assert nn.Identity(54, unused="anything")(x) is x
    np.testing.assert_array_equal(nn.Unflatten(1, (3, -1))(x).data, here(np.arange(24.0).reshape(2, 3, 4)))
    np.testing.assert_array_equal(nn.Unflatten(-1, (2, 2, 3))(x).data, here(np.arange(24.0).reshape(2, 2, 2, 3)))
    with pytest.raises(ValueError, match=r"Unflatten: axis 1 of an input of shape \(2, 12\) cannot be split"):
        nn.Unflatten(1, (5, -1))(x)
    with pytest.raises(ValueError, match="at most one -1"):
        nn.Unflatten(1, (-1, -1))


def test_flatten_refuses_axes_out_of_range_and_flattens_a_scalar_to_one_element():
    """``Flatten(3)`` of a 3-d input wrapped to axis 0 (3 % 3) and flattened everything, and
    ``Flatten()`` of a 1-d input flattened axis 0 (1 % 1); PyTorch raises. A 0-d input is one
    element (PyTorch's ``(1,)``); it raised ZeroDivisionError. An ndarray comes back a Tensor."""
    x = np.arange(24.0).reshape(2, 3, 4)
    for start, end, shape in ((3, -1, x.shape), (-4, -1, x.shape), (1, 5, x.shape), (1, -1, (2,)), (1, -1, ()),
                              (1.0, -1, x.shape)):   # a float: "slice indices must be integers"
        with pytest.raises(ValueError, match="must be ints in"):
            nn.Flatten(start, end)(np.ones(shape))
    with pytest.raises(ValueError, match="cannot be split"):
        nn.Unflatten(1.0, (3, 4))(np.ones((2, 12)))
    scalar = nn.Flatten(0)(Tensor(here(np.array(5.0))))
    assert scalar.shape == (1,) and scalar.data.tolist() == [5.0]
    flat = nn.Flatten()(here(x))
    assert isinstance(flat, Tensor) and flat.shape == (2, 12)
    np.testing.assert_array_equal(flat.data, here(x.reshape(2, 12)))
    assert isinstance(nn.Unflatten(1, (3, 4))(here(x.reshape(2, 12))), Tensor)


def test_normalize_against_numpy_and_at_the_zero_vector():
    x = np.random.default_rng(1).standard_normal((3, 4))
    x[1] = 0.0
    t = Tensor(here(x), requires_grad=True)
    norms = np.maximum(np.sqrt((x * x).sum(axis=1, keepdims=True)), 1e-12)
    np.testing.assert_allclose(F.normalize(t).data, here(x / norms), rtol=1e-14)
    l1 = np.maximum(np.abs(x).sum(axis=0, keepdims=True), 1e-12)
    np.testing.assert_allclose(F.normalize(t, ord=1, axis=0).data, here(x / l1), rtol=1e-14)
    F.normalize(t).sum().backward()                  # the zero row: x / eps, so gradient 1 / eps
    np.testing.assert_allclose(t.grad[1], here(np.full(4, 1e12)), rtol=1e-12)
    away = Tensor(here(x[[0, 2]]), requires_grad=True)
    assert_gradients_match(lambda t: F.normalize(t) * 1.0, away)
    assert autonet.gradgradcheck(F.normalize, away)


def test_cosine_similarity_against_numpy_with_broadcasting():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((1, 5))
    expected = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    ta, tb = Tensor(here(a), requires_grad=True), Tensor(here(b), requires_grad=True)
    np.testing.assert_allclose(F.cosine_similarity(ta, tb).data, here(expected), rtol=1e-13)
    assert_gradients_match(lambda a, b: F.cosine_similarity(a, b) * 1.0, ta, tb)
    assert autonet.gradgradcheck(F.cosine_similarity, (ta, tb))
    tiny = F.cosine_similarity(Tensor(here(a * 1e-10)), tb)   # norm 1e-10 < eps: the value is clamped
    np.testing.assert_allclose(tiny.data, here(expected * np.linalg.norm(a, axis=1) * 1e-10 / 1e-8), rtol=1e-12)


def test_one_hot_is_a_float_constant_as_numpy_builds_it():
    indices = np.array([[0, 2], [1, 1]])
    out = F.one_hot(here(indices), num_classes=4)
    assert out.shape == (2, 2, 4) and out.dtype == np.float64 and not out.requires_grad
    np.testing.assert_array_equal(out.data, here(np.eye(4)[indices]))
    assert F.one_hot(here(indices)).shape == (2, 2, 3)            # -1: max + 1
    assert F.one_hot([1], 2, dtype=np.int64).dtype == np.int64


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.one_hot(np.array([0.0, 1.0])), TypeError, "integers"),
    (lambda: F.one_hot(np.array([0, 3]), 3), ValueError, r"lie in \[0, 3\)"),
    (lambda: F.one_hot(np.array([-1])), ValueError, r"lie in \[0, 0\)"),
    (lambda: F.one_hot(np.array([], dtype=int)), ValueError, "cannot be inferred"),
    (lambda: F.glu(np.ones((2, 3)), axis=1), ValueError, "odd size 3"),
    (lambda: F.glu(np.ones(4), axis=1), ValueError, "axis 1 is out of range"),
    (lambda: F.hardtanh(np.ones(2), 1.0, -1.0), ValueError, "min_val"),
    (lambda: F.celu(np.ones(2), 0.0), ValueError, "alpha must not be 0"),
])
@pytest.mark.host_only("host arrays on purpose")
def test_bad_arguments_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: nn.Softmax(dim=1), r"Softmax: PyTorch's dim= is spelled axis="),
    (lambda: nn.LogSoftmax(dim=1), "spelled axis="),
    (lambda: nn.Flatten(start_dim=1), "start_dim= is spelled start_axis="),
    (lambda: nn.Flatten(end_dim=2), "end_dim= is spelled end_axis="),
    (lambda: nn.ReLU(inplace=True), "ReLU: inplace= is not offered"),
    (lambda: nn.Hardtanh(inplace=True), "inplace= is not offered"),
    (lambda: nn.Unflatten(dim=1, sizes=(2, 2)), "spelled axis="),
    (lambda: nn.CrossEntropyLoss(dim=1), "CrossEntropyLoss takes no dim="),
    (lambda: F.softmax(np.ones(3), dim=0), "softmax: PyTorch's dim= is spelled axis="),
    (lambda: F.glu(np.ones(4), dim=0), "spelled axis="),
    (lambda: F.relu(np.ones(3), inplace=True), "relu: inplace= is not offered"),
    (lambda: F.normalize(np.ones((2, 2)), dim=0), "spelled axis="),
    (lambda: F.normalize(np.ones((2, 2)), p=1), "normalize: PyTorch's p= is spelled ord="),
    (lambda: F.dropout(np.ones(3), inplace=True), "inplace= is not offered"),
    (lambda: F.cosine_similarity(np.ones((2, 2)), np.ones((2, 2)), dim=0), "spelled axis="),
])
@pytest.mark.host_only("no arrays")
def test_pytorch_keywords_are_refused_with_autonets_spelling(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_a_users_module_with_its_own_dim_parameter_is_left_alone():
    class Scaled(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dim = dim

    assert Scaled(dim=3).dim == 3
