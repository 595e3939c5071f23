"""The origin notebook, retold on autonet, section by section.

1. A perceptron learns Y = [0, 0, 1, 1] and predicts [1, 0, 0].
2. The same perceptron fails on XOR: it can only answer 0.5.
3. TwoLayerNNClassifier fits XOR and predicts 1 for [1, 0, 0].
4. The trained network's computation graph is drawn to xor_graph.svg.

At each step autonet's gradients are compared with the notebook's hand-coded
deltas, computed both ways. Run: python examples/notebook_xor.py [--scale S]
(S < 1 shortens every training run, for a quick look).
"""
import argparse
import os

import numpy as np

import autonet
from autonet import notebook, viz
from autonet.models import Perceptron, TwoLayerNNClassifier


def autonet_gradients(model, X, Y):
    """d loss / d weights of the notebook's loss 0.5 * sum((Y - out)**2), by autonet."""
    model.zero_grad()
    out = model(autonet.Tensor(X))
    (0.5 * ((autonet.Tensor(Y) - out) ** 2).sum()).backward()
    return [p.grad for p in model.parameters()]


def show_gradients_agree(model, X, Y):
    if isinstance(model, Perceptron):
        _, update = notebook.perceptron_update(X, Y, model.W.data)
        notebook_steps = [update]
    else:
        _, update0, update1 = notebook.two_layer_deltas(X, Y, model.W0.data, model.W1.data)
        notebook_steps = [update0, update1]
    gaps = [np.abs(g + step).max() for g, step in zip(autonet_gradients(model, X, Y), notebook_steps)]
    names = ", ".join(name for name, _ in model.named_parameters())
    print(f"  autonet's gradient of {names} = minus the notebook's hand-coded update "
          f"(largest difference {max(gaps):.1e})")
    model.zero_grad()


def draw_trained_graph(classifier, X, Y, path):
    """One more forward and backward pass, drawn with its gradients."""
    classifier.zero_grad()
    loss = 0.5 * ((autonet.Tensor(Y) - classifier(autonet.Tensor(X))) ** 2).sum()
    loss.name = "loss"
    loss.backward()
    try:
        viz.save_graph(loss, path)
    except viz.GraphvizNotFound as missing:
        print(f"  not drawn: {missing}")
        return
    print(f"  graph written to {os.path.abspath(path)}")


def section(title):
    print(f"\n== {title}")


def main(scale=1.0, graph_path="xor_graph.svg"):
    X = notebook.X
    rng = np.random.default_rng(1)

    section("1. A perceptron learns Y = [0, 0, 1, 1]")
    perceptron = Perceptron(rng=rng)
    show_gradients_agree(perceptron, X, notebook.Y_FIRST_COLUMN)
    output = perceptron.fit(X, notebook.Y_FIRST_COLUMN, epochs=max(1, int(10_000 * scale)))
    print("  fitted outputs:", np.round(output.ravel(), 5))
    first = perceptron.predict(np.array([1, 0, 0]))
    print(f"  prediction for [1, 0, 0]: {first[0]:.5f}")

    section("2. The same perceptron on XOR, Y = [0, 1, 1, 0]")
    perceptron = Perceptron(rng=rng)
    show_gradients_agree(perceptron, X, notebook.Y_XOR)
    perceptron.fit(X, notebook.Y_XOR, epochs=max(1, int(100_000 * scale)))
    xor_single = perceptron.predict(np.array([1, 0, 0]))
    print(f"  prediction for [1, 0, 0]: {xor_single[0]:.5f}")
    print("  One layer draws one straight line through the inputs; XOR needs two. The best the")
    print("  perceptron can do is answer 0.5 everywhere, as the notebook found.")

    section("3. TwoLayerNNClassifier on XOR")
    classifier = TwoLayerNNClassifier(rng=rng)
    show_gradients_agree(classifier, X, notebook.Y_XOR)
    result = classifier.fit(X, notebook.Y_XOR, epochs=max(1, int(100_000 * scale)))
    show_gradients_agree(classifier, X, notebook.Y_XOR)
    print("  fitted y:\n", classifier.binary_threshold(result))
    prediction = classifier.predict(np.array([1, 0, 0]))
    print("  prediction before threshold:", prediction)
    print("  prediction after threshold:", classifier.binary_threshold(prediction[0]))
    print(f"  loss {classifier.loss_history_[0]:.4f} -> {classifier.loss_history_[-1]:.6f}")

    section("4. The trained network's computation graph")
    draw_trained_graph(classifier, X, notebook.Y_XOR, graph_path)
    return {"perceptron": first[0], "perceptron_xor": xor_single[0], "fitted": result,
            "prediction": prediction[0], "classifier": classifier}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The origin notebook, on autonet.")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the notebook's training iterations to run")
    parser.add_argument("--graph", default="xor_graph.svg", help="where to draw the graph")
    arguments = parser.parse_args()
    main(arguments.scale, arguments.graph)
