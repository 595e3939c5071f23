"""Draw a small model's computation graph three ways, as SVG files.

1. plain: ops and tensors only;
2. with values and gradients, after backward();
3. grouped by module: each layer's ops in a labelled box.
Run: python examples/visualize.py [--out DIR]   (needs Graphviz's dot)
"""
import argparse
import pathlib

import numpy as np

import autonet
import autonet.nn as nn
from autonet import viz


class TinyClassifier(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.hidden = nn.Linear(3, 4, rng=rng)
        self.out = nn.Linear(4, 2, rng=rng)

    def forward(self, x):
        return self.out(self.hidden(x).tanh())


def main(out_dir="."):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    model = TinyClassifier(rng)
    loss = nn.CrossEntropyLoss()(model(rng.standard_normal((5, 3))), [0, 1, 1, 0, 1])
    loss.name = "loss"
    paths = [viz.save_graph(loss, out / "plain.svg", group_modules=False, show_grads=False)]
    loss.backward()
    paths.append(viz.save_graph(loss, out / "values_and_grads.svg", group_modules=False,
                                show_values=True, show_grads=True))
    paths.append(viz.save_graph(loss, out / "grouped.svg", group_modules=True))
    for path in paths:
        print(f"wrote {path}")
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Draw a model's graph three ways.")
    parser.add_argument("--out", default=".")
    main(parser.parse_args().out)
