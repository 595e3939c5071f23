"""A MkDocs hook: the API reference's op page (docs/api/ops.md) gets one mkdocstrings entry
per op of the registry, by kind, under the name users call (``autonet.exp``), so every op has
its signature and docstring in the reference without a list kept by hand."""
from __future__ import annotations

import inspect
import sys

MARKER = "<!-- every registered op -->"


def entries_markdown() -> str:
    """``:::`` directives for every registered op, in the registry's kinds and order."""
    import autonet  # noqa: F401 - registers every op
    from autonet.ops.registry import KINDS, entries

    lines = []
    for kind, title in KINDS.items():
        lines += [f"## {title}", ""]
        for entry in entries(kind):
            shown = f"autonet.{entry.name}" if entry.top_level else f"Tensor.{entry.method_name}"
            lines += _entry(entry.function, shown, entry.name)
    return "\n".join(lines)


def _entry(function, shown: str, label: str) -> list[str]:
    """mkdocstrings' entry for a function defined in its module's source; written out here
    for one made at import time (a NumPy 2 alias such as ``asin``), which griffe cannot read."""
    if getattr(sys.modules[function.__module__], function.__name__, None) is function:
        return [f"::: {function.__module__}.{function.__name__}", "    options:",
                f'      heading: "{shown}"', f'      toc_label: "{label}"', ""]
    return [f"### {shown}", "", "```python", f"{label}{inspect.signature(function)}", "```", "",
            inspect.getdoc(function) or "", ""]


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    if page.file.src_uri == "api/ops.md":
        return markdown.replace(MARKER, entries_markdown())
    return markdown
