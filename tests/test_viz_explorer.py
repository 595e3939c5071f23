"""viz.explore: the facts it gathers (in Python) and the saved page, driven in headless Chromium."""
import json
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import autonet
from autonet import viz
from test_viz import Net, ZeroState, cnn_loss, gru_loss

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz 'dot' is not installed (make test installs it)")
pytestmark = needs_dot
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# ----------------------------------------------------------------- facts, without a browser
def test_the_walk_follows_the_engines_order_and_each_node_gets_the_gradient_arriving():
    x = autonet.Tensor([1.0, -2.0], requires_grad=True, name="x")
    tripled = 3.0 * x
    loss = (tripled * tripled).sum()   # d loss / d tripled = 2 * tripled; d loss / dx = 18 x
    data = viz.explore(loss).data
    steps = data["steps"]
    assert steps == [f"op{id(loss._node)}", f"op{id(loss._node.inputs[0])}", f"op{id(tripled._node)}"]
    assert data["items"][steps[0]]["grad"]["summary"] == "1"          # the seed
    assert data["items"][steps[1]]["grad"]["summary"] == "[1, 1]"     # through the sum
    assert data["items"][steps[2]]["grad"]["summary"] == "[6, -12]"
    assert data["items"][f"t{id(x)}"]["grad"]["summary"] == "[18, -36]"
    assert data["walked"] and x.grad is None   # its own pass: no .grad was set


def test_leaf_gradients_match_the_engines_backward():
    model, loss = gru_loss()
    data = viz.explore(loss).data
    loss.backward()
    for name, parameter in model.named_parameters():
        facts = next(item for item in data["items"].values() if item["name"] == name)
        grad = np.asarray(parameter.grad)
        assert facts["grad"]["norm"] == pytest.approx(np.linalg.norm(grad), rel=1e-12)
        assert facts["grad"]["mean"] == pytest.approx(grad.mean(), rel=1e-12, abs=1e-15)


def test_after_a_backward_that_freed_the_graph_leaves_keep_their_gradient():
    model, loss = cnn_loss()
    loss.backward()
    data = viz.explore(loss).data
    assert not data["walked"] and len(data["steps"]) > 5   # conv2d and batch_norm: one step each
    weight = next(item for item in data["items"].values() if item["name"] == "conv1.weight")
    assert weight["grad"]["norm"] == pytest.approx(np.linalg.norm(np.asarray(model.conv1.weight.grad)))
    assert all(data["items"][step]["grad"] is None for step in data["steps"])


def test_values_the_graph_still_holds_are_shown():
    x = autonet.Tensor([[0.5, 2.0]], requires_grad=True)
    w = autonet.Tensor([[1.0], [0.125]], requires_grad=True)
    hidden = x @ w             # 0.75, saved by the product that reads it
    squashed = (hidden * hidden).tanh()   # saved by tanh itself (its output)
    scaled = squashed * 3.0    # held by no one
    loss = scaled.sum()        # the root: at hand
    items = viz.explore(loss).data["items"]
    assert items[f"op{id(hidden._node)}"]["value"]["summary"] == "[[0.75]]"
    assert items[f"op{id(squashed._node)}"]["value"]["summary"] == f"[[{np.tanh(0.5625):.3g}]]"
    assert items[f"op{id(scaled._node)}"]["value"] is None
    assert items[f"op{id(loss._node)}"]["value"]["summary"] == f"{3 * np.tanh(0.5625):.3g}"


def _image_item(items):
    [(key, image)] = [(key, item) for key, item in items.items() if item["title"] == "images"]
    return key, image


def test_the_image_passed_is_one_item_read_by_conv1_itself():
    """conv1 (one op, nn.fused_conv) reads the images as they were passed, freed since: the
    page shows the images, and no im2col copy."""
    model, loss = cnn_loss()
    items = viz.explore(loss).data["items"]
    _, image = _image_item(items)
    assert (image["title"], image["shape"], image["kind"]) == ("images", [8, 1, 8, 8], "constant")
    assert image["path"] == "" and image.get("made") is None   # outside every module, made by no op
    assert not any(item["shape"] == [512, 9] for item in items.values())


def test_the_freed_image_passed_has_no_value():
    model, loss = cnn_loss()
    assert _image_item(viz.explore(loss).data["items"])[1]["value"] is None


def test_a_tensor_read_as_passed_and_computed_from_is_one_item_saying_only_what_was_made():
    x = autonet.Tensor(np.ones((4, 3)), name="x")
    items = viz.explore(ZeroState(times_zero=True)(x).sum()).data["items"]
    [item] = [facts for key, facts in items.items() if key.startswith("p")]
    assert (item["title"], item["made"]) == ("x", ["(4, 2) by getitem → mul"])
    model, batch = Net(), np.ones((5, 3))   # an ndarray, wrapped inside Linear: read as passed
    items = viz.explore(model(batch).sum()).data["items"]
    [item] = [facts for key, facts in items.items() if key.startswith("p")]
    assert item["shape"] == [5, 3] and item["made"] is None


def test_module_views_open_one_call_at_a_time():
    model, loss = cnn_loss()
    data = viz.explore(loss).data
    calls = {facts["label"]: key for key, facts in data["calls"].items()}
    conv = calls["conv1: conv2d 3x3 s1 p1"]
    opened = data["layouts"][data["views"][f"open:{conv}"]]
    base = data["layouts"][data["views"]["base"]]
    assert f"<title>module{conv}</title>" in base and f"<title>cluster_{conv}</title>" not in base
    assert f"<title>cluster_{conv}</title>" in opened and f"<title>module{conv}</title>" not in opened
    assert data["views"][f"close:{conv}"] == data["views"]["base"]
    assert "<title>module" not in data["layouts"][data["views"]["all"]]


def test_the_page_is_self_contained_and_shows_inline(tmp_path):
    model, loss = cnn_loss()
    explorer = viz.explore(loss)
    page = open(explorer.save(tmp_path / "graph.html"), encoding="utf-8").read()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", page)
    assert not re.search(r"https?://(?!www\.w3\.org/)", page)   # only SVG's namespace names
    inline = explorer._repr_html_()
    assert inline.startswith('<div class="autonet-explorer"') and "autonetExplorer(" in inline
    assert "<!DOCTYPE" not in inline


def test_without_dot_explore_raises_the_install_hint():
    code = """
import os, autonet
from autonet import viz
os.environ["PATH"] = ""
x = autonet.Tensor([1.0], requires_grad=True)
try:
    viz.explore((x * 2).sum())
except viz.GraphvizNotFound as error:
    print("raised", error)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "raised" in result.stdout and "apt-get install graphviz" in result.stdout


# ----------------------------------------------------------------- in a real browser
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser, tmp_path):
    """Open an explorer's saved page; fails the test on any script error or network request."""
    opened = []

    def open_explorer(explorer):
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        problems = []
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("request", lambda request: problems.append(f"request: {request.url}")
                if not request.url.startswith("file://") else None)
        page.goto(pathlib.Path(explorer.save(tmp_path / "graph.html")).as_uri())
        opened.append((page, problems))
        return page

    yield open_explorer
    for page, problems in opened:
        assert problems == []
        page.close()


def _titles(page, selector):
    return page.eval_on_selector_all(f".ae-graph {selector} > title", "ts => ts.map(t => t.textContent)")


def _node(page, title):
    return page.locator(".ae-graph g.node").filter(has=page.locator(f"title:text-is('{title}')"))


@pytest.mark.host_only("drives a browser; the device double changes nothing it shows")
def test_open_a_module_hover_an_op_and_read_its_shape(open_page):
    model, loss = cnn_loss()
    explorer = viz.explore(loss)
    page = open_page(explorer)
    conv = next(k for k, c in explorer.data["calls"].items() if c["label"].startswith("conv1:"))
    assert f"module{conv}" in _titles(page, "g.node")          # depth=1: conv1 is a box
    _node(page, f"module{conv}").click()
    assert f"cluster_{conv}" in _titles(page, "g.cluster")     # ... now open
    product = next(key for key, item in explorer.data["items"].items()
                   if item["title"] == "conv2d" and item["path"].endswith("conv1: conv2d 3x3 s1 p1"))
    _node(page, product).hover()
    # 8 images, 4 output channels, 8 x 8 kept by padding 1
    assert page.locator(".ae-info .ae-shape").inner_text() == "(8, 4, 8, 8)"
    assert page.locator(".ae-info .ae-module").inner_text() == "SmallCNN() › conv1: conv2d 3x3 s1 p1"
    assert page.locator(".ae-info .ae-gradient").inner_text().startswith("norm ")
    cluster = page.locator(".ae-graph g.cluster").filter(has=page.locator(f"title:text-is('cluster_{conv}')"))
    cluster.locator("text").first.click()                     # its label closes it
    assert f"module{conv}" in _titles(page, "g.node")          # closed again


@pytest.mark.host_only("drives a browser; the device double changes nothing it shows")
def test_the_image_passed_is_drawn_into_conv1_and_described_on_hover(open_page):
    model, loss = cnn_loss()
    explorer = viz.explore(loss)
    page = open_page(explorer)
    image, _ = _image_item(explorer.data["items"])
    conv = next(k for k, c in explorer.data["calls"].items() if c["label"].startswith("conv1:"))
    assert f"{image}->module{conv}" in _titles(page, "g.edge")   # depth=1: into conv1's box
    page.locator(".ae-view[data-view=all]").click()
    product = next(key for key, item in explorer.data["items"].items()
                   if item["title"] == "conv2d" and item["path"].endswith("conv1: conv2d 3x3 s1 p1"))
    assert [t for t in _titles(page, "g.edge") if t.startswith(f"{image}->")] == [f"{image}->{product}"]
    _node(page, image).hover()
    assert page.locator(".ae-info h3").inner_text() == "images"
    assert page.locator(".ae-info .ae-shape").inner_text() == "(8, 1, 8, 8)"


@pytest.mark.host_only("drives a browser; the device double changes nothing it shows")
def test_the_backward_walk_runs_to_the_end_in_the_engines_order(open_page):
    model, loss = gru_loss()
    explorer = viz.explore(loss)
    page = open_page(explorer)
    steps = explorer.data["steps"]
    page.locator(".ae-walk").click()
    page.locator(".ae-next").click()
    page.locator(".ae-prev").click()   # the buttons clicked; the walk's 60-odd steps in one call:
    seen, status = page.evaluate("""limit => {   // each step read, then the next button pressed
        const status = document.querySelector(".ae-status"), next = document.querySelector(".ae-next");
        const seen = [];
        while (!status.textContent.startsWith("done") && seen.length < limit) {
            const current = document.querySelector(".ae-graph g.ae-current > title");
            seen.push([status.textContent, current && current.textContent]);
            next.click();
        }
        return [seen, status.textContent];
    }""", len(steps) + 5)
    assert [current for _, current in seen] == steps
    assert status == f"done: {len(steps)} of {len(steps)} steps; every leaf now holds its gradient"
    assert len(seen) == len(steps) == len(_titles(page, "g.ae-done")) > 60
    assert seen[0][0].startswith(f"step 1 of {len(steps)}: mean axis=(0, 1), gradient arriving: 1")
    assert all(text.startswith(f"step {k + 1} of {len(steps)}: ") for k, (text, _) in enumerate(seen))


@pytest.mark.host_only("drives a browser; the device double changes nothing it shows")
def test_search_marks_the_module_holding_a_parameter(open_page):
    model, loss = gru_loss()
    explorer = viz.explore(loss)
    page = open_page(explorer)
    page.locator(".ae-search").fill("embed.weight")
    assert page.locator(".ae-found").inner_text() == "1 match"
    embed = next(k for k, c in explorer.data["calls"].items() if c["label"].startswith("embed"))
    assert _titles(page, "g.ae-hit") == [f"module{embed}"]    # closed at depth=1: its box
    page.locator(".ae-view[data-view=all]").click()
    hits = _titles(page, "g.ae-hit")
    assert len(hits) == 1 and explorer.data["items"][hits[0]]["name"] == "embed.weight"


@pytest.mark.host_only("drives a browser; the device double changes nothing it shows")
def test_screenshot_shows_a_drawn_graph(open_page):
    model, loss = cnn_loss()
    page = open_page(viz.explore(loss))
    picture = page.locator(".ae-graph").screenshot()
    width, height, rows = _png_rows(picture)
    assert width > 200 and height > 200
    assert len(set(rows)) > height // 4          # many different rows: not a blank area
    assert len(set(b"".join(rows))) > 16        # and not two colours only


def _png_rows(png):
    """Width, height and the raw (still filtered) rows of a PNG: enough to tell blank from drawn."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], None
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        body = png[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, bits, colour = header
    channels = {2: 3, 6: 4, 0: 1, 4: 2}[colour]
    raw = zlib.decompress(b"".join(chunks))
    stride = 1 + width * channels * bits // 8
    return width, height, [raw[i * stride + 1:(i + 1) * stride] for i in range(height)]


@pytest.mark.host_only("drives a browser; the device double changes nothing it shows")
def test_two_explorers_on_one_page_work_apart(browser, tmp_path):
    _, first = cnn_loss()
    _, second = gru_loss()
    path = tmp_path / "two.html"
    path.write_text(f"<!DOCTYPE html><meta charset=utf-8>{viz.explore(first)._repr_html_()}"
                    f"{viz.explore(second)._repr_html_()}", encoding="utf-8")
    page = browser.new_page()
    page.goto(path.as_uri())
    bars = page.locator(".ae-bar")
    assert bars.count() == 2
    bars.nth(1).locator(".ae-search").fill("cell")
    assert page.locator(".ae-found").nth(0).inner_text() == ""
    assert page.locator(".ae-found").nth(1).inner_text().endswith("matches")
    page.close()


def test_explorer_data_is_plain_json():
    _, loss = gru_loss()
    data = viz.explore(loss).data
    assert json.loads(json.dumps(data)) == data


def test_bad_arguments_are_refused_by_name():
    x = autonet.Tensor([1.0], requires_grad=True)
    loss = (x * 2).sum()
    for depth in (-1, 1.5, "1", True):
        with pytest.raises(ValueError, match="depth must be an int >= 0"):
            viz.explore(loss, depth=depth)
    for max_nodes in (0, -3, 2.5):
        with pytest.raises(ValueError, match="max_nodes must be a positive int"):
            viz.draw_graph(loss, max_nodes=max_nodes)
        with pytest.raises(ValueError, match="max_nodes must be a positive int"):
            viz.explore(loss, max_nodes=max_nodes)
    with pytest.raises(TypeError, match="root must be a Tensor"):
        viz.draw_graph(np.ones(2))
    assert x.grad is None
