"""The benchmark workloads: one training step each, in hand-written NumPy and in autonet.

Each workload builds its starting parameters once; every implementation
starts from copies, so after the same number of steps their parameters must
agree (``check`` in run.py), and a fast wrong engine cannot win.
"""
import tracemalloc

import numpy as np

import autonet
import autonet.nn as nn
from autonet import notebook
from autonet.optim import SGD


class Workload:
    """A name, starting parameters, data, and the step implementations."""

    name = ""
    dtype = np.float64
    tolerance = 1e-10

    def numpy_step(self):
        """A closure doing one hand-written step; returns (step, parameters)."""
        raise NotImplementedError

    def autonet_model(self):
        """(model, loss_fn(model) -> loss Tensor) on copies of the parameters."""
        raise NotImplementedError

    def autonet_step(self, compiled=False, backend="numpy"):
        model, loss_fn, lr = self.autonet_model()
        optimizer = SGD(model.parameters(), lr=lr)

        def step():
            loss = loss_fn(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        if compiled:
            step = autonet.compile(step, backend=backend)
        return step, [p.data for p in model.parameters()]

    def torch_step(self, torch):
        return None


# ---------------------------------------------------------------- 1. XOR
def _notebook_sigmoid(x):
    return 1 / (1 + np.exp(-x))


class NotebookXOR(Workload):
    """The notebook's step: 4x3 inputs, 3-4-1 sigmoid, no biases, SGD lr 1."""

    name = "notebook XOR (4x3, 3-4-1)"

    def __init__(self):
        rng = np.random.default_rng(1)
        self.W0 = rng.uniform(-1, 1, (3, 4))
        self.W1 = rng.uniform(-1, 1, (4, 1))
        self.X = notebook.X.astype(np.float64)
        self.Y = notebook.Y_XOR.astype(np.float64)

    def numpy_step(self):
        X, Y = self.X, self.Y
        W0, W1 = self.W0.copy(), self.W1.copy()

        def step():
            nonlocal W0, W1
            layer1 = _notebook_sigmoid(X.dot(W0))
            layer2 = _notebook_sigmoid(layer1.dot(W1))
            l2_error = Y - layer2
            l2_delta = l2_error * (layer2 * (1 - layer2))
            l1_delta = l2_delta.dot(W1.T) * (layer1 * (1 - layer1))
            W1 += layer1.T.dot(l2_delta)
            W0 += X.T.dot(l1_delta)

        return step, [W0, W1]

    def autonet_model(self):
        from autonet.models import TwoLayerNNClassifier

        model = TwoLayerNNClassifier(W0=self.W0, W1=self.W1)
        X, Y = autonet.Tensor(self.X), autonet.Tensor(self.Y)
        return model, lambda m: 0.5 * ((Y - m(X)) ** 2).sum(), 1.0

    def torch_step(self, torch):
        X, Y = torch.tensor(self.X), torch.tensor(self.Y)
        W0 = torch.tensor(self.W0, requires_grad=True)
        W1 = torch.tensor(self.W1, requires_grad=True)
        optimizer = torch.optim.SGD([W0, W1], lr=1.0)

        def step():
            loss = 0.5 * ((Y - torch.sigmoid(torch.sigmoid(X @ W0) @ W1)) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step, [W0, W1]


# ---------------------------------------------------------------- MLPs
class MLP(Workload):
    """A tanh or ReLU MLP with biases, softmax cross-entropy (mean), plain SGD."""

    def __init__(self, sizes, activation, batch, lr, dtype, data=None):
        rng = np.random.default_rng(0)
        self.sizes, self.activation, self.lr, self.dtype = sizes, activation, lr, dtype
        self.weights = [rng.uniform(-1, 1, (a, b)).astype(dtype) / np.sqrt(a).astype(dtype)
                        for a, b in zip(sizes[:-1], sizes[1:])]
        self.biases = [np.zeros(b, dtype=dtype) for b in sizes[1:]]
        if data is None:
            data = (rng.standard_normal((batch, sizes[0])).astype(dtype),
                    rng.integers(0, sizes[-1], batch))
        self.x, self.labels = data[0][:batch].astype(dtype), data[1][:batch]

    def numpy_step(self):
        weights = [w.copy() for w in self.weights]
        biases = [b.copy() for b in self.biases]
        x, labels, lr, relu = self.x, self.labels, self.dtype(self.lr), self.activation == "relu"
        rows = np.arange(len(labels))

        def step():
            activations = [x]
            for w, b in zip(weights[:-1], biases[:-1]):
                z = activations[-1] @ w + b
                activations.append(np.maximum(z, 0) if relu else np.tanh(z))
            logits = activations[-1] @ weights[-1] + biases[-1]
            shifted = logits - logits.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            total = exp.sum(axis=1, keepdims=True)
            loss = np.mean(np.log(total[:, 0]) - shifted[rows, labels])
            delta = exp / total
            delta[rows, labels] -= 1
            delta /= len(labels)
            for i in range(len(weights) - 1, -1, -1):
                grad_w = activations[i].T @ delta
                grad_b = delta.sum(axis=0)
                if i:
                    back = delta @ weights[i].T
                    h = activations[i]
                    delta = back * (h > 0) if relu else back * (1 - h * h)
                weights[i] -= lr * grad_w
                biases[i] -= lr * grad_b
            return loss

        return step, [p for pair in zip(weights, biases) for p in pair]

    def autonet_model(self):
        layers = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            linear = nn.Linear(*w.shape)
            linear.weight.data = w.T.copy()   # the hand-written step's (in, out) as Linear's (out, in)
            linear.bias.data = b.copy()
            layers.append(linear)
            if i < len(self.weights) - 1:
                layers.append(nn.ReLU() if self.activation == "relu" else nn.Tanh())
        model = nn.Sequential(*layers)
        x, labels = autonet.Tensor(self.x), self.labels
        loss = nn.CrossEntropyLoss()
        return model, lambda m: loss(m(x), labels), self.lr

    def autonet_step(self, compiled=False, backend="numpy"):
        step, parameters = super().autonet_step(compiled, backend)
        # in the hand-written step's (in, out) layout: views that follow the updates
        return step, [p.T if p.ndim == 2 else p for p in parameters]

    def torch_step(self, torch):
        layers = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            linear = torch.nn.Linear(*w.shape, dtype=torch.float64 if self.dtype == np.float64 else torch.float32)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(w.T))
                linear.bias.copy_(torch.tensor(b))
            layers.append(linear)
            if i < len(self.weights) - 1:
                layers.append(torch.nn.ReLU() if self.activation == "relu" else torch.nn.Tanh())
        model = torch.nn.Sequential(*layers)
        x, labels = torch.tensor(self.x), torch.tensor(self.labels)
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            loss = loss_fn(model(x), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        parameters = []   # in autonet's (in, out) layout: views that follow the updates
        for layer in layers:
            if isinstance(layer, torch.nn.Linear):
                parameters += [layer.weight.detach().T, layer.bias.detach()]
        return step, parameters


def digits_data():
    """scikit-learn's digits when installed, else random data of the same shapes."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(2)
        return rng.uniform(0, 1, (1797, 64)), rng.integers(0, 10, 1797), "synthetic"
    digits = load_digits()
    return digits.data / 16.0, digits.target, "sklearn"


class Digits(MLP):
    def __init__(self):
        x, y, source = digits_data()
        super().__init__([64, 128, 64, 10], "tanh", batch=64, lr=0.1, dtype=np.float64, data=(x, y))
        self.name = f"digits MLP 64-128-64-10 ({source})"


class Wide(MLP):
    tolerance = 2e-5

    def __init__(self):
        super().__init__([784, 1024, 1024, 10], "relu", batch=512, lr=0.01, dtype=np.float32)
        self.name = "784-1024-1024-10 ReLU f32"

    def matmul_only_step(self):
        """The bare matrix products of one step, the floor for any implementation:
        three forward, three weight gradients, two input gradients."""
        (w1, w2, w3), x = self.weights, self.x

        def step():
            a1 = x @ w1
            a2 = a1 @ w2
            out = a2 @ w3
            d2 = out @ w3.T
            d1 = d2 @ w2.T
            return a2.T @ out, a1.T @ d2, x.T @ d1

        return step


WORKLOADS = [NotebookXOR, Digits, Wide]


def peak_bytes(step):
    """The most memory one step (after warm-up) holds beyond what existed before it."""
    step()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
