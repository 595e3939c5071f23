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
    for op in ("@", "sigmoid", "-", "sum axis=(0, 1)"):   # each op says what it did; X @ W0, not nn.Linear
        assert f'label="{op}\n' in source
    assert 'label="x ** 2\n' in source and 'label="0.5 * x\n' in source   # scalar constants shown
    assert "W0\n(3, 4) float64" in source and "W1\n(4, 1) float64" in source
    assert "(4, 3) float64" in source   # the constant input X is drawn too
    assert re.search(r"-> op\d+ \[label=0\]", source) and re.search(r"-> op\d+ \[label=1\]", source)
    # tensors: X, Y, W0, W1; ops (each one box with its result): 8
    assert len(_node_ids(source)) == 4 + 8


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
    assert "31 more nodes" in source and "max_nodes=20" in source   # 50 ops and x: 51 boxes
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
        assert len(nodes) == len(expected) + 1   # plus the legend


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
    assert "0: conv2d 3x3 s1 p1" in layers and "BatchNorm2d" in layers   # what each layer does
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


# ----------------------------------------------------------------- models drawn as users write them
class SmallCNN(nn.Module):
    """Two convolutions sharing one pooling module, called twice."""

    def __init__(self, rng):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, rng=rng)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1, rng=rng)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8 * 2 * 2, 10, rng=rng)

    def forward(self, x):
        x = self.pool(self.conv1(x).relu())
        x = self.pool(self.conv2(x).relu())
        return self.head(x.reshape(x.shape[0], -1))


class GRUCell(nn.Module):
    """A GRU step written from primitives: matmuls, slices, sigmoid, tanh, ``1 - z``."""

    def __init__(self, n_in, n_hidden, rng):
        super().__init__()
        self.W = nn.Parameter(rng.normal(scale=0.3, size=(n_in, 3 * n_hidden)))
        self.U = nn.Parameter(rng.normal(scale=0.3, size=(n_hidden, 3 * n_hidden)))
        self.b = nn.Parameter(np.zeros(3 * n_hidden))
        self.n = n_hidden

    def forward(self, x, h):
        n = self.n
        gx, gh = x @ self.W + self.b, h @ self.U
        z = (gx[:, :n] + gh[:, :n]).sigmoid()
        r = (gx[:, n:2 * n] + gh[:, n:2 * n]).sigmoid()
        c = (gx[:, 2 * n:] + r * gh[:, 2 * n:]).tanh()
        return (1 - z) * c + z * h


class GRU(nn.Module):
    def __init__(self, n_in, n_hidden, rng):
        super().__init__()
        self.embed = nn.Linear(n_in, n_in, rng=rng)
        self.cell = GRUCell(n_in, n_hidden, rng)
        self.head = nn.Linear(n_hidden, 1, rng=rng)

    def forward(self, xs):
        batch, steps, features = xs.shape
        e = self.embed(xs.reshape(batch * steps, features)).reshape(batch, steps, features)
        h = autonet.Tensor(np.zeros((xs.shape[0], self.cell.n)))
        for t in range(steps):
            h = self.cell(e[:, t], h)
        return self.head(h)


def cnn_loss():
    rng = np.random.default_rng(0)
    model = SmallCNN(rng)
    images = autonet.Tensor(rng.normal(size=(8, 1, 8, 8)), name="images")
    return model, nn.CrossEntropyLoss()(model(images), here(rng.integers(0, 10, 8)))


def gru_loss(steps=3):
    rng = np.random.default_rng(0)
    model = GRU(4, 5, rng)
    return model, (model(autonet.Tensor(rng.normal(size=(2, steps, 4)), name="xs")) ** 2).mean()


def _labels(source):
    """Every node's label text, by node id."""
    return dict(re.findall(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', source, flags=re.M))


def _edges(source):
    """(source, target) of every drawn edge (invisible layout edges left out)."""
    return {(a, b) for a, b, attributes in re.findall(r"^\s*(\w+) -> (\w+)(.*)$", source, flags=re.M)
            if "invis" not in attributes}


def _has_cycle(edges):
    """Kahn's algorithm: True when some nodes can never be ordered."""
    nodes = {n for edge in edges for n in edge}
    incoming = {n: 0 for n in nodes}
    for _, target in edges:
        incoming[target] += 1
    ready = [n for n in nodes if incoming[n] == 0]
    ordered = 0
    while ready:
        node = ready.pop()
        ordered += 1
        for source, target in edges:
            if source == node:
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)
    return ordered != len(nodes)


@pytest.mark.parametrize("depth", [None, 0, 1, 2])
def test_each_call_of_a_module_is_its_own_box_and_no_drawing_has_a_cycle(depth):
    model, loss = cnn_loss()
    source = viz.draw_graph(loss, depth=depth).source
    labels = set(_labels(source).values()) | set(re.findall(r'label="([^"]*)" style=rounded', source))
    if depth != 0:
        assert "pool #1: maxpool2d 2x2 s2 p0" in labels and "pool #2: maxpool2d 2x2 s2 p0" in labels
        assert not any(label.startswith("pool:") for label in labels)
    assert not _has_cycle(_edges(source))
    _, gru = gru_loss()
    assert not _has_cycle(_edges(viz.draw_graph(gru, depth=depth).source))


def test_cycle_check_finds_a_loop():
    assert _has_cycle({("a", "b"), ("b", "c"), ("c", "a"), ("x", "a")})
    assert not _has_cycle({("a", "b"), ("b", "c"), ("a", "c")})


def test_an_unrolled_loop_is_a_chain_of_calls_sharing_one_weight_box():
    model, loss = gru_loss()
    source = viz.draw_graph(loss, depth=1).source
    boxes = {label: name for name, label in _labels(source).items() if name.startswith("module")}
    cells = [boxes[f"cell #{k}: GRUCell()"] for k in (1, 2, 3)]
    edges = _edges(source)
    assert (cells[0], cells[1]) in edges and (cells[1], cells[2]) in edges   # the recurrence
    weight = next(name for name, label in _labels(source).items() if label.startswith("cell.W\n"))
    assert {(weight, cell) for cell in cells} <= edges   # one weight, used by every step
    assert len([label for label in _labels(source).values() if label.startswith("cell.W")]) == 1


def test_a_convolutions_freed_im2col_input_is_drawn_by_its_shape_without_values():
    """The graph holds constants weakly (no batch outlives its step), so the im2col copy made
    inside conv1 is freed by the time the graph is drawn: it is drawn once, by shape, as the
    conv's matrix product's input, never with stale values (docs/graphs.md)."""
    model, loss = cnn_loss()
    source = viz.draw_graph(loss, show_values=True).source
    labels = _labels(source)
    copies = [name for name, label in labels.items() if label.startswith("(512, 9) float64")]
    assert len(copies) == 1 and "min" not in labels[copies[0]] and "nan" not in labels[copies[0]]
    consumers = [target for source_, target in _edges(source) if source_ == copies[0]]
    assert [labels[c].split("\n")[0] for c in consumers] == ["@"]   # the conv's matrix product


def test_a_constant_the_user_made_is_drawn_as_made():
    model, loss = gru_loss()
    labels = _labels(viz.draw_graph(loss).source).values()
    assert any(label == "(2, 5) float64" for label in labels)   # h0, made in GRU.forward from nothing
    assert any(label == "(6, 4) float64" for label in labels)   # xs reshaped inside, freed since
    assert sum("used as" in label for label in labels) == 0


def test_labels_say_what_the_op_did():
    z = autonet.Tensor(np.ones((3, 5)), requires_grad=True)
    ops = [(1 - z, "1 - x"), (z - 1, "x - 1"), (2.0 ** z, "2.0 ** x"), (z / 4, "x / 4"),
           (z[:, 3], "x[:, 3]"), (z[1:, ::2], "x[1:, ::2]"), (z[..., None], "x[..., None]"),
           (z[np.array([0, 2])], "x[array(2,)]"), (z @ z.T, "@"), (z.T, "transpose axes=(1, 0)"),
           (z.sum(axis=0), "sum axis=(0,)")]
    for result, expected in ops:
        label = _labels(viz.draw_graph(result).source)[f"op{id(result._node)}"]
        assert label.split("\n")[0] == expected, (label, expected)


def _svg_size_px(svg):
    """The picture's width and height in CSS pixels (Graphviz writes points: 96 px = 72 pt)."""
    root = ElementTree.fromstring(svg)
    return tuple(float(root.get(side).removesuffix("pt")) * 96 / 72 for side in ("width", "height"))


@needs_dot
@pytest.mark.parametrize("make", [cnn_loss, gru_loss])
def test_the_full_graph_of_a_cnn_and_a_3_step_gru_fits_1600_px(make):
    model, loss = make()
    width, height = _svg_size_px(viz.draw_graph(loss).pipe(format="svg"))
    assert 300 < width <= 1600 and height > width   # long models run top to bottom


@needs_dot
def test_truncation_is_stated_in_the_picture():
    model, loss = gru_loss(steps=8)
    svg = viz.draw_graph(loss, max_nodes=40).pipe(format="svg").decode()
    texts = " ".join(t.text or "" for t in ElementTree.fromstring(svg).iter("{http://www.w3.org/2000/svg}text"))
    assert re.search(r"\d+ more nodes not drawn", texts) and "(max_nodes=40)" in texts


def test_edges_leaving_a_closed_module_say_the_shape_that_leaves_it():
    model, loss = cnn_loss()
    source = viz.draw_graph(loss, depth=1).source
    labels = _labels(source)
    conv, pool = (next(n for n, label in labels.items() if label.startswith(prefix))
                  for prefix in ("conv1:", "pool #1:"))
    relu = next(n for n, label in labels.items() if label == "relu\n(8, 4, 8, 8) float64")
    # 8 images, 4 channels, 8 x 8 kept by padding 1; pooling halves each side
    assert re.search(rf"{conv} -> {relu} \[label=\"\(8, 4, 8, 8\)\"\]", source)
    assert re.search(rf"{pool} -> module\d+ \[label=\"\(8, 4, 4, 4\)\"\]", source)


def test_render_retries_with_dots_newer_ranking_where_the_old_one_fails():
    import graphviz

    class Flaky:
        """A graph whose first layout fails as Graphviz 2.43's 'trouble in init_rank' does."""

        def __init__(self):
            self.settings, self.calls = {}, 0

        def attr(self, **settings):
            self.settings.update(settings)

        def pipe(self, format, quiet=False):
            self.calls += 1
            if not self.settings.get("newrank"):
                raise graphviz.CalledProcessError(1, ["dot"], stderr=b"trouble in init_rank")
            return b"<svg/>"

    graph = Flaky()
    assert viz.draw.render(graph, "svg") == b"<svg/>" and graph.calls == 2


def test_a_plain_array_passed_to_a_model_is_drawn_once_as_passed():
    rng = np.random.default_rng(0)
    model = Net()
    batch = rng.standard_normal((5, 3))
    loss = model(batch).sum()     # Linear wraps the array in a Tensor inside its call
    labels = list(_labels(viz.draw_graph(loss, show_values=True).source).values())
    drawn = [label for label in labels if label.startswith("(5, 3) float64")]
    assert len(drawn) == 1 and "used as" not in drawn[0]
    assert f"min {batch.min():.3g}, max {batch.max():.3g}" in drawn[0]   # the caller's values
