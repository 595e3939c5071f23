"""The origin notebook's models, rebuilt on autonet.

Both are Modules trained by SGD on ``0.5 * sum((Y - out) ** 2)``, whose
gradient step is exactly the notebook's hand-coded update
``W += X.T.dot(error * sigmoid'(out))``. Unlike the notebook, each instance
draws its own weights (the notebook's default arguments shared one set).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .core import device as devices
from .core.state import no_grad
from .compiler import compile  # noqa: A004 - autonet.compile
from .nn.module import Module, Parameter
from .optim import SGD
from .random import generator
from .core.tensor import Tensor, TensorLike
from .core.types import Array, Seed


class _NotebookModel(Module):
    """fit / predict / binary_threshold, shared by both notebook models."""

    def __init__(self, n_inputs: int, n_outputs: int, lr: float) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.lr = lr
        self.loss_history_: list[float] = []

    def _weights(self, given, shape, rng, name):
        if given is None:
            return Parameter(rng.uniform(-1, 1, shape))
        weights = np.array(given.data if isinstance(given, Tensor) else given, dtype=np.float64)
        if weights.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, not {weights.shape}")
        return Parameter(weights)

    def _inputs(self, X):
        X = np.asarray(X.data if isinstance(X, Tensor) else X, dtype=np.float64)
        if X.ndim not in (1, 2) or X.shape[-1] != self.n_inputs:
            raise ValueError(
                f"{type(self).__name__} expects samples of {self.n_inputs} inputs, got shape {X.shape}")
        return X

    def fit(self, X: TensorLike, Y: TensorLike, epochs: int = 100_000) -> Array | None:
        """Train from the current weights; returns the last forward pass's outputs.

        ``Y`` is ``(n, n_outputs)`` or, for one output, ``(n,)``; the result has
        ``Y``'s shape. ``loss_history_`` gets one float per epoch of this call.
        """
        X = Tensor(self._inputs(X))
        Y = np.asarray(Y.data if isinstance(Y, Tensor) else Y, dtype=np.float64)
        flat = Y.ndim == 1
        target = Tensor(Y.reshape(-1, 1) if flat else Y)
        if target.shape != (X.shape[0], self.n_outputs):
            raise ValueError(
                f"Y of shape {Y.shape} does not fit {X.shape[0]} samples of {self.n_outputs} outputs")
        optimizer = SGD(self.parameters(), lr=self.lr)

        @compile   # the same step every epoch: traced once, then replayed (bit for bit)
        def step():
            out = self(X)
            loss = 0.5 * ((target - out) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return out, loss

        self.loss_history_ = []
        out = None
        for _ in range(epochs):
            out, loss = step()
            self.loss_history_.append(float(loss.data))
        if out is None:
            return None
        return out.data.reshape(Y.shape)

    @no_grad()
    def predict(self, X: TensorLike) -> Array:
        """Outputs for a batch ``(n, n_inputs)``, or ``(n_outputs,)`` for one 1-D sample."""
        return self(Tensor(self._inputs(X))).data

    @staticmethod
    def binary_threshold(x: Any) -> Any:
        """1 where ``x > 0.5`` else 0 (0.5 gives 0): an int, or an int array."""
        if np.ndim(x) == 0:
            return 1 if x > 0.5 else 0
        return ((x if devices.is_foreign(x) else np.asarray(x)) > 0.5).astype(int)


class Perceptron(_NotebookModel):
    """One sigmoid layer without bias: ``sigmoid(X @ W)``, W of shape (n_inputs, 1).

    >>> import numpy as np
    >>> from autonet import notebook
    >>> p = Perceptron(rng=0)
    >>> _ = p.fit(notebook.X, notebook.Y_FIRST_COLUMN, epochs=10_000)
    >>> Perceptron.binary_threshold(p.predict(np.array([1, 0, 0])))
    array([1])
    """

    def __init__(self, n_inputs: int = 3, rng: Seed = None, lr: float = 1.0,
                 W: TensorLike | None = None) -> None:
        super().__init__(n_inputs, 1, lr)
        self.W = self._weights(W, (n_inputs, 1), generator(rng), "W")

    def forward(self, x: Tensor) -> Tensor:
        return (x @ self.W).sigmoid()   # the notebook's layout: W is (n_inputs, 1)

    def extra_repr(self) -> str:
        return f"{self.n_inputs} -> 1, lr={self.lr}"


class TwoLayerNNClassifier(_NotebookModel):
    """The notebook's network: ``sigmoid(sigmoid(X @ W0) @ W1)``, no biases."""

    def __init__(self, n_inputs: int = 3, n_hidden: int = 4, n_outputs: int = 1, lr: float = 1.0,
                 rng: Seed = None, W0: TensorLike | None = None, W1: TensorLike | None = None) -> None:
        super().__init__(n_inputs, n_outputs, lr)
        self.n_hidden = n_hidden
        rng = generator(rng)
        self.W0 = self._weights(W0, (n_inputs, n_hidden), rng, "W0")
        self.W1 = self._weights(W1, (n_hidden, n_outputs), rng, "W1")

    def forward(self, x: Tensor) -> Tensor:
        hidden = (x @ self.W0).sigmoid()   # the notebook's matrices, (in, out): not nn.Linear's
        return (hidden @ self.W1).sigmoid()

    def extra_repr(self) -> str:
        return f"{self.n_inputs} -> {self.n_hidden} -> {self.n_outputs}, lr={self.lr}"
