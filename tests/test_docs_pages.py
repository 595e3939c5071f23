"""Every Python block in every docs page runs as written (the README's run in test_docs.py)."""
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(page.name for page in DOCS.glob("*.md") if page.name != "graphs.md")   # graphs.md: test_viz_docs, in order
GUIDES = {"tensors.md", "models.md", "drawing.md", "compile.md", "devices.md", "func.md", "interop.md",
          "index.md", "from_pytorch.md", "from_numpy.md", "training.md", "custom_ops.md"}
BLOCKS = [(page, number, block) for page in PAGES for number, block in
          enumerate(re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S))]


def test_every_guide_has_examples():
    assert GUIDES <= {page for page, _, _ in BLOCKS}


@pytest.mark.parametrize("page, number, block", BLOCKS, ids=[f"{p}-{n}" for p, n, _ in BLOCKS])
def test_docs_page_block_runs(page, number, block, tmp_path, monkeypatch):
    if page == "interop.md" and "safetensors" in block:
        pytest.importorskip("safetensors", reason="the 'interop' extra is not installed")
    if page == "interop.md" and "autonet.onnx" in block:
        pytest.importorskip("onnxruntime", reason="the 'onnx' extra is not installed")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, f"docs/{page} block {number}", "exec"), {"__name__": "docs"})
