"""An MLP on scikit-learn's bundled 8x8 digits, with cross-entropy and Adam.

Trains 64-128-64-10 (tanh), reports test accuracy, saves the model with
autonet.save, reloads it into a fresh model and checks the predictions are
identical, and writes the loss curve to digits_loss.png.
Needs the optional extra: pip install autonet[examples] (scikit-learn, matplotlib).
Run: python examples/digits.py [--epochs N] [--out DIR]
"""
import argparse
import pathlib
import sys

import numpy as np

try:
    import matplotlib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ImportError as missing:
    print(f"skipped: this example needs the 'examples' extra ({missing.name} is missing): "
          f"pip install autonet[examples]")
    sys.exit(0)

import autonet
import autonet.nn as nn
from autonet.optim import Adam


def build(seed):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(64, 128, rng=rng), nn.Tanh(),
                         nn.Linear(128, 64, rng=rng), nn.Tanh(),
                         nn.Linear(64, 10, rng=rng))


@autonet.no_grad()
def predict(model, X):
    return model(autonet.Tensor(X)).data.argmax(axis=1)


def main(epochs=30, out_dir="."):
    digits = load_digits()
    X = digits.data / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
    model = build(seed=0)
    optimizer = Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(1)
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(X_train))
        for start in range(0, len(order), 64):
            batch = order[start:start + 64]
            loss = loss_fn(model(autonet.Tensor(X_train[batch])), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        accuracy = (predict(model, X_test) == y_test).mean()
        print(f"epoch {epoch + 1:3d}  loss {np.mean(losses[-len(order) // 64:]):.4f}  "
              f"test accuracy {accuracy:.3f}")

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "digits_mlp.npz"
    autonet.save(model.state_dict(), model_path)
    restored = build(seed=123)
    restored.load_state_dict(autonet.load(model_path))
    same = np.array_equal(predict(restored, X_test), predict(model, X_test))
    print(f"saved to {model_path}; reloaded model gives identical predictions: {same}")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(losses, linewidth=0.8)
    axes.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="digits MLP, Adam")
    figure.tight_layout()
    figure.savefig(out / "digits_loss.png", dpi=100)
    print(f"loss curve written to {out / 'digits_loss.png'}")
    return accuracy, same


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="An MLP on the 8x8 digits.")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=".")
    arguments = parser.parse_args()
    main(arguments.epochs, arguments.out)
