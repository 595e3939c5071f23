"""The public API as typed code: a model of your own, trained, compiled, differentiated and saved.

tests/test_typing.py runs mypy on this file with strict settings (every function annotated, no
call into an unannotated one), so each call below is held to autonet's signatures; the same
test runs it as a script. Run: python examples/typed_usage.py [--steps N]
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from numpy.typing import NDArray

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.data import DataLoader
from autonet.optim import SGD, Adam
from autonet.optim.lr_scheduler import StepLR


class Regressor(nn.Module):
    """A tanh layer and a linear shortcut: ``Regressor(...)(x)`` is typed by ``forward``."""

    def __init__(self, n_in: int, n_hidden: int, seed: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden, rng=seed)
        self.out = nn.Linear(n_hidden, 1, rng=seed + 1)
        self.skip = nn.Linear(n_in, 1, bias=False, rng=seed + 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.hidden(x).tanh()) + self.skip(x)


def make_data(n: int, rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Noisy samples of ``y = sin(3 x1) + x2 ** 2``."""
    X = rng.uniform(-1, 1, (n, 2))
    y = np.sin(3 * X[:, :1]) + X[:, 1:] ** 2 + 0.05 * rng.standard_normal((n, 1))
    return X, y


def train(model: Regressor, loader: DataLoader, epochs: int) -> float:
    """Adam with a step schedule, one pass of ``loader`` an epoch; the last batch's loss."""
    optimizer = Adam(model.parameters(), lr=0.02)
    scheduler = StepLR(optimizer, step_size=10, gamma=0.5)
    loss = Tensor(0.0)
    for _ in range(epochs):
        for x, y in loader:
            loss = F.mse_loss(model(Tensor(x)), y)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            optimizer.step()
        scheduler.step()
    return loss.item()


def compiled_steps(X: NDArray[np.float64], y: NDArray[np.float64], steps: int) -> float:
    """A Sequential model trained by a compiled SGD step; the last loss."""
    model = nn.Sequential(nn.Linear(2, 16, rng=3), nn.Tanh(), nn.Linear(16, 1, rng=4))
    optimizer = SGD(model.parameters(), lr=0.1)

    def step(x: Tensor, target: NDArray[np.float64]) -> Tensor:
        loss = F.mse_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    compiled = autonet.compile(step)
    loss = Tensor(0.0)
    for _ in range(steps):
        loss = compiled(Tensor(X), y)
    return loss.item()


def cube_sum(x: Tensor) -> Tensor:
    return (x ** 3).sum()


def main(steps: int = 30) -> None:
    rng = np.random.default_rng(0)
    X, y = make_data(128, rng)
    model = Regressor(2, 16, seed=0)
    first = F.mse_loss(model(Tensor(X)), y).item()
    last = train(model, DataLoader(X, y, batch_size=32, shuffle=True, rng=1), epochs=steps)
    print(f"mse fell from {first:.4f} to {last:.4f}")
    print(f"compiled SGD loss {compiled_steps(X, y, steps):.4f}")

    x = Tensor([1.0, 2.0], requires_grad=True)
    d_cube = autonet.func.grad(cube_sum)(x)   # 3 x ** 2, by function transform
    (dx,) = autonet.grad(cube_sum(x), x)      # and by the engine's grad
    print(f"d/dx sum(x**3) = {d_cube.data.tolist()} = {dx.data.tolist()}")

    shape: tuple[int, ...] = x.shape
    total: Tensor = x.sum(axis=0) + 1
    print(f"x of shape {shape}, sum + 1 = {total.item()}")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "regressor.npz")
        autonet.save({"model": model.state_dict(), "epoch": steps}, path)
        restored = Regressor(2, 16, seed=5)
        restored.load_state_dict(autonet.load(path)["model"])
    same = np.array_equal(restored(Tensor(X)).data, model(Tensor(X)).data)
    print(f"reloaded model predicts the same: {same}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    main(parser.parse_args().steps)
