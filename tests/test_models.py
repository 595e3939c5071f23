"""The notebook's models on autonet: exact reproduction of its training, and its API."""
import numpy as np
import pytest

from autonet import notebook
from autonet.models import Perceptron, TwoLayerNNClassifier


def _start(seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4, 1))


def test_two_layer_fit_ends_at_the_notebooks_weights():
    W0, W1 = _start(7)
    model = TwoLayerNNClassifier(W0=W0, W1=W1)
    result = model.fit(notebook.X, notebook.Y_XOR, epochs=2000)
    expected0, expected1, last_layer2 = notebook.train_two_layer(notebook.X, notebook.Y_XOR, W0, W1, 2000)
    np.testing.assert_allclose(model.W0.data, expected0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.W1.data, expected1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result, last_layer2, rtol=0, atol=1e-9)
    assert len(model.loss_history_) == 2000 and model.loss_history_[-1] < model.loss_history_[0]


def test_perceptron_fit_ends_at_the_notebooks_weights():
    W = np.random.default_rng(3).uniform(-1, 1, (3, 1))
    model = Perceptron(W=W)
    result = model.fit(notebook.X, notebook.Y_FIRST_COLUMN, epochs=2000)
    expected, output = notebook.train_perceptron(notebook.X, notebook.Y_FIRST_COLUMN, W, 2000)
    np.testing.assert_allclose(model.W.data, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result, output, rtol=0, atol=1e-9)


def test_fit_continues_from_the_current_weights():
    W0, W1 = _start(1)
    once = TwoLayerNNClassifier(W0=W0, W1=W1)
    once.fit(notebook.X, notebook.Y_XOR, epochs=600)
    twice = TwoLayerNNClassifier(W0=W0, W1=W1)
    twice.fit(notebook.X, notebook.Y_XOR, epochs=300)
    twice.fit(notebook.X, notebook.Y_XOR, epochs=300)
    np.testing.assert_array_equal(once.W0.data, twice.W0.data)
    assert len(twice.loss_history_) == 300


def test_xor_converges_from_a_seeded_rng():
    model = TwoLayerNNClassifier(rng=0)
    result = model.fit(notebook.X, notebook.Y_XOR.ravel(), epochs=10_000)
    assert result.shape == (4,)
    np.testing.assert_array_equal(model.binary_threshold(result), [0, 1, 1, 0])
    assert model.binary_threshold(model.predict(np.array([1, 0, 0]))[0]) == 1


def test_instances_draw_their_own_weights_and_copy_given_ones():
    a, b = TwoLayerNNClassifier(), TwoLayerNNClassifier()
    assert not np.array_equal(a.W0.data, b.W0.data)
    np.testing.assert_array_equal(TwoLayerNNClassifier(rng=5).W1.data, TwoLayerNNClassifier(rng=5).W1.data)
    assert np.all(np.abs(a.W0.data) <= 1)
    W0, W1 = _start(2)
    model = TwoLayerNNClassifier(W0=W0, W1=W1)
    model.fit(notebook.X, notebook.Y_XOR, epochs=5)
    np.testing.assert_array_equal(W0, _start(2)[0])


def test_parameter_names_follow_the_notebook():
    assert [n for n, _ in TwoLayerNNClassifier().named_parameters()] == ["W0", "W1"]
    assert [n for n, _ in Perceptron().named_parameters()] == ["W"]
    assert TwoLayerNNClassifier(n_inputs=2, n_hidden=5, n_outputs=3).W1.shape == (5, 3)


def test_predict_shapes():
    model = TwoLayerNNClassifier(n_outputs=2, rng=0)
    assert model.predict(np.array([1, 0, 0])).shape == (2,)
    assert model.predict(notebook.X).shape == (4, 2)
    assert not hasattr(model.predict(notebook.X), "grad_fn")


def test_binary_threshold():
    threshold = TwoLayerNNClassifier.binary_threshold
    assert threshold(0.7) == 1 and type(threshold(0.7)) is int
    assert threshold(0.5) == 0 and threshold(np.float64(0.51)) == 1
    out = threshold(np.array([[0.2], [0.5], [0.9]]))
    assert out.dtype.kind == "i" and out.ravel().tolist() == [0, 0, 1]


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="W0"):
        TwoLayerNNClassifier(W0=np.ones((3, 3)))
    model = TwoLayerNNClassifier()
    with pytest.raises(ValueError, match="3 inputs"):
        model.predict(np.ones((4, 2)))
    with pytest.raises(ValueError, match="does not fit"):
        model.fit(notebook.X, np.ones((3, 1)), epochs=1)
