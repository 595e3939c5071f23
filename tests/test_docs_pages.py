"""Every Python block in the docs pages below runs as written (the README's run in test_docs.py)."""
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = ["func.md", "interop.md"]
BLOCKS = [(page, number, block) for page in PAGES for number, block in
          enumerate(re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S))]


def test_every_page_has_examples():
    assert {page for page, _, _ in BLOCKS} == set(PAGES)


@pytest.mark.parametrize("page, number, block", BLOCKS, ids=[f"{p}-{n}" for p, n, _ in BLOCKS])
def test_docs_page_block_runs(page, number, block, tmp_path, monkeypatch):
    if page == "interop.md" and "safetensors" in block:
        pytest.importorskip("safetensors", reason="the 'interop' extra is not installed")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, f"docs/{page} block {number}", "exec"), {"__name__": "docs"})
