"""The documentation site builds in strict mode (a broken link, a page left out of the nav or a
docstring mkdocstrings cannot render fails), and the API reference lists every public name."""
import html
import os
import pathlib
import re
import subprocess
import sys

import pytest

import autonet.nn
import autonet.optim
from autonet.ops.registry import entries
from autonet.optim import lr_scheduler

ROOT = pathlib.Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api"


def test_the_site_builds_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs", reason="the 'docs' extra is not installed (make test installs it)")
    pytest.importorskip("mkdocstrings_handlers.python", reason="the 'docs' extra is not installed")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)})
    assert build.returncode == 0, build.stdout + build.stderr
    reference = (tmp_path / "site" / "api" / "nn" / "index.html").read_text()
    assert 'id="autonet.nn.Linear"' in reference   # mkdocstrings rendered the docstrings
    ops = html.unescape(re.sub(r"<[^>]+>", "", (tmp_path / "site" / "api" / "ops" / "index.html").read_text()))
    missing = [entry.name for entry in entries() if f"{entry.name}(" not in ops]
    assert not missing, f"ops without a signature on docs/api/ops.md: {missing}"


def documented(page):
    return set(re.findall(r"^::: ([\w.]+)", (API / page).read_text(), flags=re.M))


@pytest.mark.parametrize("module, page", [(autonet.nn, "nn.md"), (autonet.optim, "optim.md")])
def test_every_public_class_has_an_entry_in_the_api_reference(module, page):
    submodules = {"functional", "init", "utils", "lr_scheduler"}   # pages or sections of their own
    missing = {f"{module.__name__}.{name}" for name in module.__all__ if name not in submodules} \
        - documented(page)
    assert not missing, f"add these to docs/api/{page}: {sorted(missing)}"


def test_every_scheduler_has_an_entry_in_the_api_reference():
    schedulers = {f"autonet.optim.lr_scheduler.{name}" for name in lr_scheduler.__all__}
    defined = {name for name, value in vars(lr_scheduler).items()   # every class its modules define
               if isinstance(value, type) and value.__module__.startswith(lr_scheduler.__name__ + ".")}
    assert defined == set(lr_scheduler.__all__), sorted(defined ^ set(lr_scheduler.__all__))
    assert schedulers and not schedulers - documented("optim.md"), sorted(schedulers - documented("optim.md"))
