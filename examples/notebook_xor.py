"""The origin notebook's two-layer XOR network, trained with autonet Tensors.

Run: python examples/notebook_xor.py [--epochs N]
"""
import argparse

import numpy as np

import autonet
from autonet import Tensor, notebook


def main(epochs=100_000):
    rng = np.random.default_rng(1)
    W0 = Tensor(rng.uniform(-1, 1, (3, 4)), requires_grad=True, name="W0")
    W1 = Tensor(rng.uniform(-1, 1, (4, 1)), requires_grad=True, name="W1")
    X, Y = Tensor(notebook.X), Tensor(notebook.Y_XOR)
    for _ in range(epochs):
        out = ((X @ W0).sigmoid() @ W1).sigmoid()
        loss = 0.5 * ((Y - out) ** 2).sum()
        loss.backward()
        with autonet.no_grad():
            W0.data -= W0.grad
            W1.data -= W1.grad
        W0.zero_grad()
        W1.zero_grad()
    print("fitted y:\n", (out.data > 0.5).astype(int))
    sample = Tensor([1, 0, 0])
    prediction = ((sample @ W0).sigmoid() @ W1).sigmoid()
    print("prediction for [1, 0, 0]:", prediction.data)
    return out.data, prediction.data


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100_000)
    main(parser.parse_args().epochs)
