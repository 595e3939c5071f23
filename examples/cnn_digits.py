"""A LeNet-style CNN on scikit-learn's 8x8 digits: convolution, batch norm, pooling, dropout.

Trains with DataLoader, AdamW and a cosine learning-rate schedule, reports the
test accuracy, writes the loss and accuracy curves to cnn_digits_curves.png
and the model's graph, one box per layer (depth=1), to cnn_digits_graph.svg.
Needs the optional extra: pip install autonet[examples] (scikit-learn, matplotlib).
Run: python examples/cnn_digits.py [--epochs N] [--out DIR]
"""
import argparse
import pathlib
import sys
import time

import numpy as np

import autonet
import autonet.nn as nn
from autonet.data import DataLoader
from autonet.optim import AdamW, lr_scheduler


def build(seed=0, dropout=0.25):
    """The network (``benchmarks/models.py`` times its step against PyTorch's)."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=rng), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),                                   # 16 x 4 x 4
        nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),                                   # 32 x 2 x 2
        nn.Flatten(), nn.Dropout(dropout, rng=rng),
        nn.Linear(128, 64, rng=rng), nn.ReLU(), nn.Linear(64, 10, rng=rng))


def accuracy(model, X, y):
    model.eval()
    with autonet.no_grad():
        predicted = model(autonet.Tensor(X)).data.argmax(axis=1)
    model.train()
    return float((predicted == y).mean())


def main(epochs=20, out_dir="."):
    try:
        import matplotlib
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as missing:
        print(f"skipped: this example needs the 'examples' extra ({missing.name} is missing): "
              f"pip install autonet[examples]")
        sys.exit(0)
    digits = load_digits()
    images = (digits.images / 16.0)[:, None]              # (N, 1, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
    model = build()
    optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    batches = DataLoader(X_train, y_train, batch_size=64, shuffle=True, rng=1)
    loss_fn = nn.CrossEntropyLoss()
    losses, accuracies = [], []
    started = time.perf_counter()
    for epoch in range(epochs):
        for x, labels in batches:
            loss = loss_fn(model(autonet.Tensor(x)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        accuracies.append(accuracy(model, X_test, y_test))
        print(f"epoch {epoch + 1:3d}  loss {np.mean(losses[-len(batches):]):.4f}  "
              f"test accuracy {accuracies[-1]:.3f}  lr {schedule.get_last_lr()[0]:.2e}")
    print(f"trained in {time.perf_counter() - started:.1f} s; test accuracy {accuracies[-1]:.3f}")

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(losses, linewidth=0.8)
    left.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="training loss")
    right.plot(range(1, epochs + 1), accuracies, marker="o")
    right.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy")
    figure.tight_layout()
    figure.savefig(out / "cnn_digits_curves.png", dpi=100)
    print(f"curves written to {out / 'cnn_digits_curves.png'}")
    try:
        graph_path = out / "cnn_digits_graph.svg"
        loss = loss_fn(model(autonet.Tensor(X_test[:8])), y_test[:8])
        autonet.viz.save_graph(loss, graph_path, depth=1)
        print(f"graph written to {graph_path}")
    except autonet.viz.GraphvizNotFound as missing:
        print(f"graph not drawn: {missing}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default=".")
    arguments = parser.parse_args()
    main(arguments.epochs, arguments.out)
