"""A model of your own: a Module with its own forward, trained with Adam.

The task: learn y = sin(3 x1) + x2**2 from noisy samples. The model adds a
linear "skip" path to a small tanh network, something no stock layer does.
Run: python examples/custom_model.py [--steps N]
"""
import argparse

import numpy as np

import autonet
import autonet.nn as nn
from autonet.optim import Adam


class SkipMLP(nn.Module):
    """tanh MLP plus a linear shortcut from the inputs to the output."""

    def __init__(self, n_in, n_hidden, rng):
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden, rng=rng)
        self.out = nn.Linear(n_hidden, 1, rng=rng)
        self.skip = nn.Linear(n_in, 1, bias=False, rng=rng)

    def forward(self, x):
        return self.out(self.hidden(x).tanh()) + self.skip(x)


def make_data(n, rng):
    X = rng.uniform(-1, 1, (n, 2))
    y = np.sin(3 * X[:, :1]) + X[:, 1:] ** 2 + 0.05 * rng.standard_normal((n, 1))
    return X, y


def main(steps=1500):
    rng = np.random.default_rng(0)
    X, y = make_data(256, rng)
    model = SkipMLP(2, 32, rng)
    print(model)
    optimizer = Adam(model.parameters(), lr=0.01)
    loss_fn = nn.MSELoss()
    inputs, targets = autonet.Tensor(X), autonet.Tensor(y)
    losses = []
    for step in range(steps + 1):
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % max(1, steps // 10) == 0:
            print(f"step {step:5d}  mse {loss.item():.5f}")
    print(f"mse fell from {losses[0]:.4f} to {losses[-1]:.4f} (noise floor 0.0025)")
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train a custom Module with Adam.")
    parser.add_argument("--steps", type=int, default=1500)
    main(parser.parse_args().steps)
