"""viz: DOT source of known graphs, clusters, truncation, rendering, and life without dot."""
import os
import re
import shutil
import subprocess
import sys
import time
import weakref
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import viz
from autonet.models import TwoLayerNNClassifier
from autonet.notebook import X, Y_XOR
from device_double import here

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz 'dot' is not installed (make test installs it)")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4, rng=0)
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(4, 1, rng=1))

    def forward(self, x):
        return self.head(self.hidden(x))


def _xor_loss():
    model = TwoLayerNNClassifier(rng=0)
    loss = 0.5 * ((autonet.Tensor(Y_XOR) - model(autonet.Tensor(X))) ** 2).sum()
    return model, loss


def _node_ids(source):
    """Ids of the graph's nodes (tensors, ops, marker), without the legend."""
    ids = set(re.findall(r"^\s*(\w+) \[label=", source, flags=re.M))
    return {i for i in ids if not i.startswith("legend_")}


def test_source_has_every_op_parameter_shape_and_operand_positions():
    model, loss = _xor_loss()
    source = viz.draw_graph(loss).source
    for op in ("matmul", "sigmoid", "sub", "sum"):   # the notebook's X @ W0, not nn.Linear
        assert f"label={op} " in source
    assert 'label="pow 2"' in source and 'label="mul 0.5"' in source   # scalar constants shown
    assert "W0\n(3, 4) float64" in source and "W1\n(4, 1) float64" in source
    assert "(4, 3) float64" in source   # the constant input X is drawn too
    assert re.search(r"-> op\d+ \[label=0\]", source) and re.search(r"-> op\d+ \[label=1\]", source)
    # tensors: X, Y, W0, W1 and 8 results; ops: 8
    assert len(_node_ids(source)) == 12 + 8


def test_grads_and_values_are_shown_when_present():
    model, loss = _xor_loss()
    before = viz.draw_graph(loss).source
    assert "grad" not in before.replace("legend", "")
    loss.backward()
    after = viz.draw_graph(loss, show_values=True).source
    w1_label = after[after.index("W1\n"):].split('"')[0]
    for value in np.asarray(model.W1.grad).ravel():   # every element, to 3 significant digits
        assert f"{value:.3g}" in w1_label
    w0_label = after[after.index("W0\n"):].split('"')[0]
    assert f"grad norm {np.linalg.norm(np.asarray(model.W0.grad)):.3g}" in w0_label   # 12 elements: summarised
    assert "value " in after
    assert "grad " not in viz.draw_graph(loss, show_grads=False).source


def test_clusters_nest_by_module_path():
    net = Net()
    loss = net(autonet.Tensor(np.ones((2, 3)))).sum()
    source = viz.draw_graph(loss).source
    assert 'label="hidden: Linear(3 -> 4)"' in source
    assert 'label="head: Sequential()"' in source and 'label="head.1: Linear(4 -> 1)"' in source
    head = _cluster_body(source, 'label="head: Sequential()"')
    inner = _cluster_body(source, 'label="head.1: Linear(4 -> 1)"')
    assert inner in head and 'label="head.0: Tanh()"' in head
    assert "head.1.weight" in inner and "hidden.weight" not in head
    assert "hidden.weight" in _cluster_body(source, 'label="hidden: Linear(3 -> 4)"')
    assert "cluster_" not in viz.draw_graph(loss, group_modules=False).source.replace("cluster_legend", "")


def _cluster_body(source, label):
    """The text between the braces of the cluster carrying ``label``."""
    start = source.index("{", source.rfind("subgraph cluster_", 0, source.index(label)))
    depth = 0
    for end in range(start, len(source)):
        depth += {"{": 1, "}": -1}.get(source[end], 0)
        if depth == 0:
            return source[start:end]
    raise AssertionError("unbalanced braces")


def test_truncation_marker_past_max_nodes():
    x = autonet.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(50):
        y = y * 1.0
    source = viz.draw_graph(y, max_nodes=20).source
    assert "81 more nodes" in source and "max_nodes=20" in source
    assert len(_node_ids(source)) == 20 + 1


def test_long_chain_draws_quickly_truncated():
    x = autonet.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    start = time.perf_counter()
    source = viz.draw_graph(y).source
    elapsed = time.perf_counter() - start
    assert "more nodes" in source
    assert elapsed < 30   # a sanity bound against runaway walks, not a benchmark


def test_drawing_keeps_no_arrays_alive():
    x = autonet.Tensor(np.ones(3), requires_grad=True)
    h = x.exp()
    probe = weakref.ref(h.data)
    loss = h.sum()
    loss.backward()
    graph = viz.draw_graph(loss, show_values=True)
    del h, loss
    assert probe() is None and graph.source


def test_source_formats_need_no_dot(tmp_path):
    _, loss = _xor_loss()
    for suffix in (".gv", ".dot"):
        path = viz.save_graph(loss, tmp_path / f"graph{suffix}")
        assert open(path).read().startswith("digraph autonet {")
    with pytest.raises(ValueError, match="suffix"):
        viz.save_graph(loss, tmp_path / "graph.txt")


@needs_dot
@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf"])
def test_pictures_are_rendered(tmp_path, suffix):
    _, loss = _xor_loss()
    loss.backward()
    path = viz.save_graph(loss, tmp_path / f"graph{suffix}")
    content = open(path, "rb").read()
    if suffix == ".png":
        assert content[:8] == b"\x89PNG\r\n\x1a\n"
    elif suffix == ".pdf":
        assert content[:5] == b"%PDF-"
    else:
        root = ElementTree.fromstring(content)
        nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
        expected = _node_ids(viz.draw_graph(loss).source)
        titles = {g.find("{http://www.w3.org/2000/svg}title").text for g in nodes}
        assert expected <= titles
        assert len(nodes) == len(expected) + 6   # plus the legend's six samples


def test_without_dot_pictures_raise_the_install_hint_and_write_nothing(tmp_path):
    code = f"""
import os, autonet
from autonet import viz
os.environ["PATH"] = ""
x = autonet.Tensor([1.0], requires_grad=True)
loss = (x * 2).sum()
viz.save_graph(loss, {str(tmp_path / "ok.gv")!r})
try:
    viz.save_graph(loss, {str(tmp_path / "no.svg")!r})
except viz.GraphvizNotFound as error:
    print("raised", isinstance(error, RuntimeError), error)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "raised True" in result.stdout
    assert "apt-get install graphviz" in result.stdout and "brew install graphviz" in result.stdout
    assert (tmp_path / "ok.gv").exists() and not (tmp_path / "no.svg").exists()


def test_rankdir_sets_the_layout_direction():
    _, loss = _xor_loss()
    assert "rankdir=LR" in viz.draw_graph(loss).source
    assert "rankdir=TB" in viz.draw_graph(loss, rankdir="TB").source


def _cnn_loss():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=rng), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3, rng=rng))
    x = autonet.Tensor(rng.normal(size=(2, 1, 4, 4)))
    loss_fn = nn.CrossEntropyLoss()
    return (model, loss_fn), loss_fn(model(x), here(np.array([0, 2])))   # modules alive while drawn


def test_depth_collapses_deeper_modules_into_one_box_each():
    modules, loss = _cnn_loss()
    full = viz.draw_graph(loss).source
    assert "normalize" in full and "max_pool" in full
    layers = viz.draw_graph(loss, depth=1).source
    boxes = re.findall(r"^\s*(module\d+) \[label=", layers, flags=re.M)
    assert len(boxes) == 6                           # one per layer of the model
    assert "max_pool" not in layers and "normalize" not in layers
    assert "Conv2d" in layers and "BatchNorm2d" in layers
    assert len(_node_ids(layers)) < len(_node_ids(full)) / 2
    whole = viz.draw_graph(loss, depth=0).source
    assert len(re.findall(r"^\s*(module\d+) \[label=", whole, flags=re.M)) == 2   # model, loss


def test_leaves_outside_modules_are_inputs_and_long_chains_run_top_to_bottom():
    x = autonet.Tensor([1.0, 2.0], requires_grad=True, name="x")
    w = nn.Parameter([0.5, 0.5])
    source = viz.draw_graph((x * w).sum()).source
    assert re.search(r'label="x\n\(2,\) float64"[^\]]*fillcolor="#CC79A7"', source)   # input
    assert re.search(r'label="\(2,\) float64"[^\]]*fillcolor="#E69F00"', source)      # Parameter
    chain = x
    for _ in range(30):
        chain = chain.tanh()
    assert "rankdir=TB" in viz.draw_graph(chain.sum()).source
    assert "rankdir=LR" in viz.draw_graph((x * w).sum()).source
