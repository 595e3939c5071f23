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
    assert "batch_norm" in full and "max_pool" in full
    layers = viz.draw_graph(loss, depth=1).source
    boxes = re.findall(r"^\s*(module\d+) \[label=", layers, flags=re.M)
    assert len(boxes) == 6                           # one per layer of the model
    assert "max_pool" not in layers and "batch_norm" not in layers
    assert "0: conv2d 3x3 s1 p1" in layers and "BatchNorm2d" in layers   # what each layer does
    assert len(_node_ids(layers)) < len(_node_ids(full))   # conv2d and batch_norm are one op each
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


def cnn_parts():
    """The CNN, a batch of eight 8 x 8 images and their labels."""
    rng = np.random.default_rng(0)
    model = SmallCNN(rng)
    images = autonet.Tensor(rng.normal(size=(8, 1, 8, 8)), name="images")
    return model, images, here(rng.integers(0, 10, 8))


def cnn_loss():
    """The CNN and its loss on a batch that is freed on return, as after a training step."""
    model, images, labels = cnn_parts()
    return model, nn.CrossEntropyLoss()(model(images), labels)


def gru_loss(steps=3):
    rng = np.random.default_rng(0)
    model = GRU(4, 5, rng)
    return model, (model(autonet.Tensor(rng.normal(size=(2, steps, 4)), name="xs")) ** 2).mean()


def _labels(source):
    """Every node's label text, by node id."""
    return dict(re.findall(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', source, flags=re.M))


def _labelled_edges(source):
    """(source, target, label) of every drawn edge."""
    return [(a, b, "".join(re.search(r'label=(?:"([^"]*)"|([^\s\]]+))', attributes).groups(""))
             if "label=" in attributes else "")
            for a, b, attributes in re.findall(r"^\s*(\w+) -> (\w+)(.*)$", source, flags=re.M)
            if "invis" not in attributes]


def _passed_boxes(source):
    """id -> label of the boxes drawn for tensors passed that the graph does not hold."""
    return {name: label for name, label in _labels(source).items() if name.startswith("p")}


def _edges_from(source, box):
    """(target, label) of the edges leaving ``box``."""
    return [(b, label) for a, b, label in _labelled_edges(source) if a == box]


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


# ----------------------------------------------------------------- inputs as they were passed
def _boxes_named(source, name):
    """id -> label of the boxes drawn for the tensor called ``name`` (held or passed)."""
    return {box: label for box, label in _labels(source).items() if label.startswith(f"{name}\n")}


def test_a_convolutions_input_is_drawn_as_the_image_passed_even_once_it_is_freed():
    """conv1 is one op (nn.fused_conv) that reads the images themselves (no im2col copy in the
    graph); the images need no gradient and are freed since (the graph holds constants weakly,
    the op only their array): they are drawn by name and shape (freed: no values), with one
    edge into conv1's op (docs/graphs.md)."""
    model, loss = cnn_loss()
    source = viz.draw_graph(loss, show_values=True).source
    labels = _labels(source)
    assert not any(label.startswith("(512, 9)") for label in labels.values())   # no im2col drawn
    [(box, label)] = _boxes_named(source, "images").items()
    assert label == "images\n(8, 1, 8, 8) float64"
    [(target, text)] = _edges_from(source, box)
    # 8 images, 4 output channels, 8 x 8 kept by padding 1
    assert labels[target] == "conv2d\n(8, 4, 8, 8) float64" and text == "0"
    assert list(_boxes_named(viz.draw_graph(loss, depth=1).source, "images").values()) == [label]   # into conv1's box


def test_the_image_passed_shows_the_callers_values_while_the_caller_holds_it():
    model, images, labels = cnn_parts()
    loss = nn.CrossEntropyLoss()(model(images), labels)
    [label] = _boxes_named(viz.draw_graph(loss, show_values=True).source, "images").values()
    values = images.numpy()
    assert label == (f"images\n(8, 1, 8, 8) float64\nvalue norm {np.sqrt((values ** 2).sum()):.3g}, "
                     f"min {values.min():.3g}, max {values.max():.3g}")


def test_drawing_the_image_passed_keeps_no_batch_alive():
    model = SmallCNN(np.random.default_rng(0))
    probes = []

    def step():
        images = autonet.Tensor(np.random.default_rng(1).normal(size=(8, 1, 8, 8)), name="batch")
        probes.append(weakref.ref(images))
        loss = model(images).sum()
        loss.backward(retain_graph=True)
        return loss

    loss = step()
    assert probes[0]() is None   # freed at the end of the step, the graph still alive
    [(box, label)] = _boxes_named(viz.draw_graph(loss, show_values=True).source, "batch").items()
    assert label == "batch\n(8, 1, 8, 8) float64"


def test_two_batches_are_two_boxes():
    model, images, labels = cnn_parts()
    rng = np.random.default_rng(2)
    criterion = nn.CrossEntropyLoss()

    def two_batches():   # both named alike and freed on return: told apart by identity
        first, second = (autonet.Tensor(rng.normal(size=(8, 1, 8, 8)), name="batch") for _ in range(2))
        return criterion(model(first), labels) + criterion(model(second), labels)

    source = viz.draw_graph(two_batches()).source
    boxes = _boxes_named(source, "batch")
    assert sorted(boxes.values()) == ["batch\n(8, 1, 8, 8) float64"] * 2
    targets = [target for box in boxes for target, _ in _edges_from(source, box)]
    assert len(targets) == len(set(targets)) == 2   # each into its own call's conv1


def test_one_batch_used_twice_is_one_box():
    model, images, labels = cnn_parts()
    criterion = nn.CrossEntropyLoss()
    twice = viz.draw_graph(criterion(model(images), labels) + criterion(model(images), labels)).source
    [box] = _boxes_named(twice, "images")
    targets = {target for target, _ in _edges_from(twice, box)}
    assert len(targets) == 2 and {_labels(twice)[t] for t in targets} == {"conv2d\n(8, 4, 8, 8) float64"}


def test_a_constant_made_inside_a_module_is_drawn_as_made_and_a_reshaped_input_as_passed():
    model, loss = gru_loss()
    source = viz.draw_graph(loss).source
    labels = _labels(source)
    assert "(2, 5) float64" in labels.values()   # h0, made in GRU.forward from nothing
    [(box, label)] = _passed_boxes(source).items()
    assert label == "xs\n(2, 3, 4) float64"     # reshaped to (6, 4) in GRU.forward, for embed
    [(target, text)] = _edges_from(source, box)
    assert labels[target] == "linear\n(6, 4) float64" and text == "0: reshape → (6, 4)"


class FlatImages(nn.Module):
    """Rows of 16 pixels, shaped into 4 x 4 images inside, then convolved."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, rng=np.random.default_rng(0))

    def forward(self, rows):
        return self.conv(rows.reshape(rows.shape[0], 1, 4, 4))


def test_a_reshaped_input_passed_on_to_a_layer_is_drawn_as_the_models_input():
    """The farthest tensor back that a call was given: the model's rows, not conv's images."""
    model = FlatImages()

    def loss():   # the rows are freed on return
        return model(autonet.Tensor(np.ones((3, 16)), name="rows")).sum()

    source = viz.draw_graph(loss()).source
    [(box, label)] = _passed_boxes(source).items()
    assert label == "rows\n(3, 16) float64"
    # reshaped without recording (the rows need no gradient) into 3 images of 1 x 4 x 4
    [(_, text)] = _edges_from(source, box)
    assert text == "0: reshape → (3, 1, 4, 4)"


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.full((2, 3), 2.0))

    def forward(self, x, mask):   # mask: an ndarray, wrapped here
        return x * self.w * autonet.Tensor(mask)


def test_a_freed_argument_is_drawn_as_itself_not_as_an_other_argument_of_its_shape():
    model, mask = Masked(), np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])

    def loss():   # x is freed on return; the caller keeps the mask
        return model(autonet.Tensor(np.ones((2, 3)), name="x"), mask).sum()

    labels = _labels(viz.draw_graph(loss(), show_values=True).source)
    assert "x\n(2, 3) float64" in labels.values()   # by identity, though freed
    [mask_box] = _passed_boxes(viz.draw_graph(loss(), show_values=True).source).values()
    assert mask_box == "(2, 3) float64\nvalue [[1, 0, 1], [0, 1, 0]]"


class ZeroState(nn.Module):
    """A recurrent step from a zero state it makes itself, as ``zeros`` or ``x * 0``."""

    def __init__(self, times_zero):
        super().__init__()
        self.W = nn.Parameter(np.full((3, 2), 0.5))
        self.U = nn.Parameter(np.eye(2))
        self.times_zero = times_zero

    def forward(self, x):
        h = x[:, :2] * 0.0 if self.times_zero else autonet.zeros((x.shape[0], 2))
        return x @ self.W + h @ self.U


def test_a_zero_state_made_from_nothing_is_drawn_as_made_and_one_made_from_the_input_says_so():
    x = autonet.Tensor(np.ones((4, 3)), name="x")
    source = viz.draw_graph(ZeroState(times_zero=False)(x).sum()).source
    assert _passed_boxes(source) == {}
    assert "(4, 2) float64" in _labels(source).values()    # the zeros, in the module's frame
    source = viz.draw_graph(ZeroState(times_zero=True)(x).sum()).source
    [(box, label)] = _passed_boxes(source).items()   # one box for x, read and computed from
    assert label == "x\n(4, 3) float64" and list(_labels(source).values()).count(label) == 1
    assert sorted(text for _, text in _edges_from(source, box)) == ["0", "0: getitem → mul → (4, 2)"]


def test_a_functional_convolution_outside_modules_draws_the_callers_tensor():
    rng = np.random.default_rng(0)
    x = autonet.Tensor(rng.normal(size=(2, 1, 5, 5)), name="x")
    weight = nn.Parameter(rng.normal(size=(3, 1, 3, 3)))
    loss = nn.functional.conv2d(x, weight, padding=1).sum()
    source = viz.draw_graph(loss, show_values=True).source
    [(box, label)] = _boxes_named(source, "x").items()
    assert label.startswith("x\n(2, 1, 5, 5) float64\nvalue norm ")
    [(target, text)] = _edges_from(source, box)
    assert _labels(source)[target] == "conv2d\n(2, 3, 5, 5) float64" and text == "0"
    del x   # freed: still drawn as x, by name and shape
    assert list(_boxes_named(viz.draw_graph(loss, show_values=True).source, "x").values()) == [
        "x\n(2, 1, 5, 5) float64"]


def test_constants_an_op_made_anew_are_drawn_as_made_not_as_a_tensor():
    """Interpolation weights and pooling divisors are made by a ``constant`` op from a tensor's
    dtype and device, not its values: no tensor is drawn for them."""
    x = autonet.Tensor(np.arange(10.0).reshape(1, 1, 10), requires_grad=True, name="x")
    stretched = nn.functional.interpolate(x, scale_factor=2, mode="linear")
    pooled = nn.functional.avg_pool2d(x.reshape(1, 1, 2, 5), 2, padding=1, count_include_pad=False)
    source = viz.draw_graph(stretched.sum() + pooled.sum()).source
    assert _passed_boxes(source) == {}
    assert "(2, 3) float64" in _labels(source).values()   # the divisors, as made


def test_a_plain_array_passed_to_a_model_is_drawn_once_as_passed():
    rng = np.random.default_rng(0)
    model = Net()
    batch = rng.standard_normal((5, 3))
    loss = model(batch).sum()     # Linear wraps the array in a Tensor inside its call
    labels = list(_labels(viz.draw_graph(loss, show_values=True).source).values())
    drawn = [label for label in labels if label.startswith("(5, 3) float64")]
    assert len(drawn) == 1 and "used as" not in drawn[0]
    assert f"min {batch.min():.3g}, max {batch.max():.3g}" in drawn[0]   # the caller's values


# ----------------------------------------------------------------- the provenance the engine keeps
def test_a_tensor_made_without_recording_knows_its_source_weakly():
    x = autonet.Tensor(np.ones((2, 3)), name="x")
    copy = (x * 2.0).reshape(3, 2)
    origin = copy._origin
    assert (origin.op, origin.shape, origin.name, origin.source() is None) == ("reshape", (2, 3), None, True)
    assert (origin.parent.op, origin.parent.source() is x, origin.parent.parent) == ("mul", True, None)
    probe = weakref.ref(x)
    del x
    assert probe() is None and copy._origin.parent.name == "x"
    assert autonet.Tensor(np.ones(2))._origin is None
    with_grad = autonet.Tensor(np.ones(2), requires_grad=True)
    assert (with_grad * 2.0)._origin is None                     # recorded: the graph says it
    assert (copy + copy)._origin is None                         # two tensors: no one source
    with autonet.no_grad():   # inference and optimizer updates pay nothing for drawings
        assert (copy * 2.0)._origin is None and (with_grad * 2.0)._origin is None


def test_origins_stay_short_and_do_not_travel_in_copies():
    import copy
    import pickle

    x = autonet.Tensor(np.ones(3))
    for _ in range(100):
        x = x * 1.0
    assert x._origin.depth <= 16
    links, origin = 0, x._origin
    while origin is not None:
        links, origin = links + 1, origin.parent
    assert links == x._origin.depth <= 16
    for clone in (pickle.loads(pickle.dumps(x)), copy.deepcopy(x)):   # weak references do not pickle
        assert clone._origin is None and np.array_equal(clone.numpy(), x.numpy())


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
    assert 300 < width <= 1600 and height >= width   # long models run top to bottom


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


def test_a_constant_read_as_it_is_by_two_ops_is_one_box_without_a_value_once_freed():
    """Each recorded op keeps its own weak stand-in for a constant input: they are one tensor,
    drawn once with an edge to each op; once the tensor is freed, the explorer says it has no
    value (not the stand-in's NaNs)."""
    import gc

    x = autonet.Tensor(np.arange(3.0), name="images")
    w = autonet.Tensor(np.ones(3), requires_grad=True, name="w")
    loss = (x * w).sum() + (x * w * 2).sum()
    source = viz.draw_graph(loss).source
    [box] = re.findall(r'^\s*(\w+) \[label="images', source, flags=re.M)
    assert len(re.findall(rf"^\s*{box} -> op\d+", source, flags=re.M)) == 2
    assert len(_node_ids(source)) == 2 + 6   # images, w; mul, sum, mul, mul, sum, add
    alone = (x * w).sum()
    del x
    gc.collect()
    for graph in (loss, alone):
        [item] = [i for i in viz.explore(graph).data["items"].values() if i["kind"] == "constant"]
        assert item["title"] == "images" and item["shape"] == [3] and item["value"] is None, item
