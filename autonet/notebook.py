"""The origin notebook's hand-coded NumPy network, kept as the reference.

autonet's gradients and training are verified against these functions: they
are the notebook's cells, restated as functions (the weights are passed in
rather than shared through default arguments).
"""
import numpy as np

X = np.array([[0, 0, 1],
              [0, 1, 1],
              [1, 0, 1],
              [1, 1, 1]])
"""The notebook's four samples of three inputs (the last one always 1)."""

Y_FIRST_COLUMN = np.array([[0, 0, 1, 1]]).T
"""The first target: the output copies the first input (a perceptron learns it)."""

Y_XOR = np.array([[0, 1, 1, 0]]).T
"""The second target: XOR of the first two inputs (needs a hidden layer)."""


def sigmoid(x, deriv=False):
    """The notebook's sigmoid; with ``deriv`` it takes sigmoid's *output*."""
    if deriv:
        return x * (1 - x)
    return 1 / (1 + np.exp(-x))


def perceptron_update(X, Y, W):
    """One step of the notebook's perceptron loop: (output, the update added to W)."""
    output = sigmoid(np.dot(X, W))
    error = Y - output
    return output, np.dot(X.T, error * sigmoid(output, True))


def two_layer_deltas(X, Y, W0, W1):
    """One forward/backward pass of ``TwoLayerNNClassifier.fit``'s loop body.

    Returns ``layer2`` and the updates the notebook adds to W0 and W1.
    """
    layer0 = X
    layer1 = sigmoid(np.dot(layer0, W0))
    layer2 = sigmoid(np.dot(layer1, W1))
    l2_error = Y - layer2
    l2_delta = l2_error * sigmoid(layer2, deriv=True)
    l1_error = l2_delta.dot(W1.T)
    l1_delta = l1_error * sigmoid(layer1, deriv=True)
    return layer2, layer0.T.dot(l1_delta), layer1.T.dot(l2_delta)


def train_two_layer(X, Y, W0, W1, iterations):
    """The notebook's training loop on copies of W0, W1: (W0, W1, last layer2)."""
    W0 = np.array(W0, dtype=float)
    W1 = np.array(W1, dtype=float)
    layer2 = None
    for _ in range(iterations):
        layer2, update0, update1 = two_layer_deltas(X, Y, W0, W1)
        W1 += update1
        W0 += update0
    return W0, W1, layer2


def train_perceptron(X, Y, W, iterations):
    """The notebook's perceptron loop on a copy of W: (W, last output)."""
    W = np.array(W, dtype=float)
    output = None
    for _ in range(iterations):
        output, update = perceptron_update(X, Y, W)
        W = W + update
    return W, output
