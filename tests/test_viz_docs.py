"""docs/graphs.md: its Python blocks run, in order, as one session; its pictures exist."""
import pathlib
import re
import shutil

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGE = (DOCS / "graphs.md").read_text()


@pytest.mark.host_only("the page's examples build their own tensors on the CPU")
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed (make test installs it)")
def test_the_graphs_page_runs_and_writes_what_it_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", PAGE, flags=re.S)
    assert len(blocks) >= 4
    session = {"__name__": "graphs_page"}
    for number, block in enumerate(blocks):
        exec(compile(block, f"docs/graphs.md block {number}", "exec"), session)
    written = set(re.findall(r'"(\w+\.(?:svg|html))"', PAGE))
    assert written and all((tmp_path / name).stat().st_size > 1000 for name in written)


@pytest.mark.host_only("reads files only")
def test_every_picture_on_the_page_is_committed():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", PAGE)
    assert len(pictures) >= 6
    for picture in pictures:
        assert (DOCS / picture).is_file(), picture
