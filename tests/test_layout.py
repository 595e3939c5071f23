"""The dependency rule of docs/design.md: every module imports only from its own layer or below.

Imports are read from the source (anywhere in a file, inside functions too),
so a late import cannot hide an upward dependency.
"""
import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "autonet"

# Bottom up; a module belongs to the first layer whose prefix it starts with.
LAYERS = [
    ("core", ("autonet.core", "autonet.random")),
    ("ops", ("autonet.ops",)),
    ("methods", ("autonet._methods", "autonet._numpy")),
    ("features", ("autonet.nn", "autonet.optim", "autonet.debug", "autonet.compiler",
                  "autonet.func", "autonet.interop", "autonet.files", "autonet.onnx",
                  "autonet.viz", "autonet.serialization", "autonet.testing", "autonet.notebook",
                  "autonet.data", "autonet.cuda")),
    ("applications", ("autonet.models",)),
    ("package", ("autonet",)),
]


def layer_of(module):
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and docs/design.md")


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source, name, is_package=False):
    """Every autonet module that ``source`` (the text of module ``name``) imports."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    resolved = set()
    for target in found:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def upward_imports(path, source=None):
    """``(importer, imported)`` pairs that break the rule in the module at ``path``."""
    name = module_name(path)
    if name == "autonet":
        return []   # the package's __init__ assembles everything
    targets = imported_modules(source or path.read_text(), name, path.name == "__init__.py")
    return [(name, t) for t in sorted(targets) if layer_of(t) > layer_of(name)]


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_module_imports_from_a_layer_above_it(path):
    assert upward_imports(path) == []


def test_the_rule_catches_an_upward_import_even_inside_a_function():
    path = PACKAGE / "core" / "tensor.py"
    source = path.read_text() + "\n\ndef late():\n    from ..ops import shape\n"
    assert ("autonet.core.tensor", "autonet.ops.shape") in upward_imports(path, source)


def test_importing_autonet_loads_no_optional_package():
    code = ("import sys, autonet, autonet.nn, autonet.optim, autonet.func, autonet.interop; "
            "print(sorted(m for m in ('graphviz', 'hypothesis', 'torch', 'numba', 'cupy', "
            "'sklearn', 'matplotlib', 'scipy', 'safetensors', 'jax', 'onnx') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
