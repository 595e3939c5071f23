"""autonet reproduces the origin notebook's hand-coded gradients and training."""
import numpy as np
import pytest

from autonet import Tensor, notebook


def _loss(out, Y):
    return 0.5 * ((Tensor(Y) - out) ** 2).sum()


@pytest.mark.parametrize("seed", range(5))
def test_perceptron_gradient_is_minus_the_notebooks_update(seed):
    rng = np.random.default_rng(seed)
    W = Tensor(rng.uniform(-1, 1, (3, 1)), requires_grad=True)
    _loss((Tensor(notebook.X) @ W).sigmoid(), notebook.Y_FIRST_COLUMN).backward()
    _, update = notebook.perceptron_update(notebook.X, notebook.Y_FIRST_COLUMN, W.data)
    np.testing.assert_allclose(W.grad, -update, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_two_layer_gradients_are_minus_the_notebooks_deltas(seed):
    rng = np.random.default_rng(seed)
    W0 = Tensor(rng.uniform(-1, 1, (3, 4)), requires_grad=True)
    W1 = Tensor(rng.uniform(-1, 1, (4, 1)), requires_grad=True)
    out = ((Tensor(notebook.X) @ W0).sigmoid() @ W1).sigmoid()
    _loss(out, notebook.Y_XOR).backward()
    layer2, update0, update1 = notebook.two_layer_deltas(notebook.X, notebook.Y_XOR, W0.data, W1.data)
    np.testing.assert_allclose(out.data, layer2, rtol=0, atol=1e-15)
    np.testing.assert_allclose(W0.grad, -update0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(W1.grad, -update1, rtol=0, atol=1e-12)


def test_two_thousand_manual_steps_end_at_the_notebooks_weights():
    rng = np.random.default_rng(42)
    start0, start1 = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4, 1))
    W0 = Tensor(start0, requires_grad=True)
    W1 = Tensor(start1, requires_grad=True)
    X = Tensor(notebook.X)
    for _ in range(2000):
        _loss(((X @ W0).sigmoid() @ W1).sigmoid(), notebook.Y_XOR).backward()
        W0.data -= 1.0 * W0.grad
        W1.data -= 1.0 * W1.grad
        W0.zero_grad()
        W1.zero_grad()
    expected0, expected1, _ = notebook.train_two_layer(notebook.X, notebook.Y_XOR, start0, start1, 2000)
    np.testing.assert_allclose(W0.data, expected0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(W1.data, expected1, rtol=0, atol=1e-9)
    # and the weights really moved: the comparison is not between two starting points
    assert np.abs(expected0 - start0).max() > 0.5
