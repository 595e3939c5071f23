"""Linear's (out, in) weight, nn.init's fans, and layers' refusal of an input of another floating
dtype."""
import math

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor

from device_double import here


# ------------------------------------------------------------------ Linear's layout
def test_linear_weight_is_out_by_in_and_linear_is_x_weight_transposed_plus_bias():
    layer = nn.Linear(3, 2, rng=0)
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)
    w, b = layer.weight.data, layer.bias.data
    x = np.random.default_rng(1).standard_normal((4, 3))
    # element by element, PyTorch's definition y_ij = sum_k x_ik W_jk + b_j
    expected = np.array([[sum(x[i, k] * w[j, k] for k in range(3)) + b[j] for j in range(2)]
                         for i in range(4)])
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-14)
    np.testing.assert_allclose(nn.functional.linear(x, w).data, expected - b, rtol=1e-14)


def test_linear_backward_for_batches_of_any_rank_and_one_sample():
    w = Tensor(np.random.default_rng(2).standard_normal((2, 3)), requires_grad=True)
    b = Tensor([0.5, -1.0], requires_grad=True)
    for shape in [(3,), (4, 3), (2, 4, 3)]:
        x = Tensor(np.random.default_rng(3).standard_normal(shape), requires_grad=True)
        autonet.testing.assert_gradients_match(nn.functional.linear, x, w, b)
        assert autonet.gradgradcheck(lambda x, w, b: nn.functional.linear(x, w, b).tanh(), (x, w, b))


def test_linear_init_bound_is_one_over_sqrt_in_features_as_pytorch():
    layer = nn.Linear(50, 7, rng=4)
    bound = 1 / math.sqrt(50)        # PyTorch: kaiming_uniform_(a=sqrt(5)) on (out, in)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.9 * bound


@pytest.mark.parametrize("shape, fans", [
    ((7, 5), (5, 7)),                # Linear (out, in): fan-in is shape[1]
    ((6, 2, 3, 3), (18, 54)),        # Conv2d (out, in, kh, kw)
    ((4, 3, 5), (15, 20)),           # Conv1d
])
def test_init_fans_are_pytorchs(shape, fans):
    assert nn.init.fans(shape) == fans
    t = Tensor(np.zeros(shape))
    nn.init.xavier_uniform_(t, rng=0)
    bound = math.sqrt(6.0 / sum(fans))
    assert np.abs(t.data).max() <= bound and np.abs(t.data).max() > 0.8 * bound
    nn.init.kaiming_uniform_(t, nonlinearity="relu", rng=0)
    bound = math.sqrt(2.0) * math.sqrt(3.0 / fans[0])
    assert np.abs(t.data).max() <= bound and np.abs(t.data).max() > 0.8 * bound


def test_notebook_models_keep_their_in_by_out_matrices():
    from autonet.models import TwoLayerNNClassifier
    w0, w1 = np.full((3, 4), 0.1), np.full((4, 1), 0.2)
    model = TwoLayerNNClassifier(W0=w0, W1=w1)
    x = np.array([[1.0, 0.0, 1.0]])
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(model.predict(x), sigmoid(sigmoid(x @ w0) @ w1), rtol=1e-15)


# ------------------------------------------------------------------ dtype refusal
@pytest.mark.parametrize("make, shape", [
    (lambda dtype: nn.Linear(3, 2, rng=0, dtype=dtype), (4, 3)),
    (lambda dtype: nn.Conv1d(2, 3, 2, rng=0, dtype=dtype), (1, 2, 5)),
    (lambda dtype: nn.BatchNorm1d(3, dtype=dtype), (4, 3)),
    (lambda dtype: nn.LayerNorm(3, dtype=dtype), (4, 3)),
])
def test_a_layer_refuses_an_input_of_another_floating_dtype(make, shape):
    for layer_dtype, input_dtype in [(np.float32, np.float64), (np.float64, np.float32)]:
        layer = make(layer_dtype)
        before = [p.data.copy() for p in layer.parameters()]
        x = Tensor(here(np.ones(shape, dtype=input_dtype)))
        with pytest.raises(TypeError, match=rf"{np.dtype(input_dtype).name}.*"
                                            rf"{np.dtype(layer_dtype).name}.*astype"):
            layer(x)
        assert all(np.array_equal(a, p.data) for a, p in zip(before, layer.parameters()))
        assert layer(x.astype(layer_dtype)).dtype == layer_dtype             # the first fix
        assert layer.astype(input_dtype)(x).dtype == input_dtype              # the second


def test_integer_input_passes_where_numpy_keeps_the_layers_dtype_only():
    assert nn.Linear(2, 1, rng=0)(np.array([[1, 2]])).dtype == np.float64
    with pytest.raises(TypeError, match=r"int64.*float32.*x.astype\(np.float32\)$"):   # no float32 model for ints
        nn.Linear(2, 1, rng=0, dtype=np.float32)(np.array([[1, 2]]))


def test_a_linear_layer_on_a_batch_of_sequences_that_needs_no_gradient_trains():
    """A 3-d input that needs no gradient: the weight is not saved, so its gradient must not
    read the weight's shape (it crashed with AttributeError); the folded product equals the
    per-position sum."""
    layer = nn.Linear(4, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 5, 4))
    layer(autonet.Tensor(x)).sum().backward()
    expected = np.ones((2, 5, 3)).reshape(-1, 3).T @ x.reshape(-1, 4)
    np.testing.assert_allclose(layer.weight.grad, expected, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, np.full(3, 10.0), rtol=1e-12)
