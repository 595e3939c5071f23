"""A griffe extension for the API reference: doctest examples (``>>>`` lines and their
output) in docstrings become fenced ``pycon`` blocks, so Markdown shows them as code
instead of reading ``[...]`` in their output as links."""
from __future__ import annotations

import re

import griffe

_PROMPT = re.compile(r"^(\s*)>>> ")


def fenced(text: str) -> str:
    """``text`` with each doctest (a prompt line up to the next blank line) fenced."""
    lines, out, index = text.splitlines(), [], 0
    while index < len(lines):
        prompt = _PROMPT.match(lines[index])
        if not prompt:
            out.append(lines[index])
            index += 1
            continue
        indent = prompt.group(1)
        end = index
        while end < len(lines) and lines[end].strip():
            end += 1
        out += [f"{indent}```pycon", *lines[index:end], f"{indent}```"]
        index = end
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctests of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fenced(obj.docstring.value)
