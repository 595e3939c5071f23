"""Static types: mypy finds no error in autonet/ and in the typed usage example, and it bites.

mypy is configured in pyproject.toml ([tool.mypy]); its cache lives in .cache/mypy (ignored by
git), so later runs check only what changed. Tensor's methods are bound at import from the op
registry, so type checkers read them from generated declarations (autonet/core/tensor_ops.pyi,
autonet/_exports.pyi: ``make ops-page``); a test holds those files to the registry.
"""
import importlib
import inspect
import pathlib
import re
import subprocess
import sys
import textwrap
import types

import pytest

import autonet
import autonet._methods

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autonet"


PROBE_FILE = ROOT / ".cache" / "typing-probe" / "typing_probe.py"   # strict rules: pyproject.toml
"""Where the probe below is written: a fixed path, as mypy's cache replays messages with the path
it first saw."""


@pytest.fixture(scope="module")
def checked():
    """One mypy run, with the project's configuration, over autonet/, the typed example and the
    probe: ``(probe lines, {probe line: [messages]}, every other message, mypy's output)``."""
    pytest.importorskip("mypy", reason="the 'test' extra (mypy) is not installed")
    source = textwrap.dedent(PROBE).lstrip("\n")
    PROBE_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not PROBE_FILE.exists() or PROBE_FILE.read_text() != source:
        PROBE_FILE.write_text(source)
    probe_path = str(PROBE_FILE.relative_to(ROOT))   # as mypy names it
    result = subprocess.run([sys.executable, "-m", "mypy", "autonet", "examples/typed_usage.py", probe_path],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    probe, others = {}, []
    for line in result.stdout.splitlines()[:-1]:   # the last line is the summary
        match = re.match(rf"{re.escape(probe_path)}:(\d+): (?:note|error): (.*)", line)
        if match:
            probe.setdefault(int(match[1]), []).append(match[2])
        else:
            others.append(line)
    return source.splitlines(), probe, others, result.stdout + result.stderr


def test_mypy_finds_no_error_in_autonet_and_the_typed_example(checked):
    _, _, others, output = checked
    assert others == [], output
    summary = re.search(r"Found \d+ errors in 1 file \(checked (\d+) source files\)", output)
    assert summary and int(summary[1]) > 70, output   # every module checked; errors in the probe only


# A probe of what a checker (and so an editor) sees: each line's expected reveal or error code.
PROBE = '''
    from __future__ import annotations

    import autonet
    import autonet.nn as nn
    import autonet.nn.functional as F
    from autonet import Tensor, optim

    t = Tensor([[1.0, 2.0]])
    model = nn.Linear(2, 3)
    reveal_type(t.sum())                                  # Tensor
    reveal_type(t.shape)                                  # tuple[int, ...]
    reveal_type(t + 1)                                    # Tensor
    reveal_type(2 * t)                                    # Tensor
    reveal_type(t.T)                                      # Tensor
    reveal_type(t[0])                                     # Tensor
    reveal_type(model(t))                                 # Tensor
    reveal_type(autonet.exp(t))                           # Tensor
    reveal_type(autonet.split(t, 2, axis=1))              # list[Tensor]
    reveal_type(nn.LSTM(3, 4)(t))                         # tuple[Tensor, tuple[Tensor, Tensor]]
    reveal_type(optim.SGD(model.parameters(), lr=0.1).step())   # None
    optim.SGD(model.parameters(), lr="0.1")               # error: arg-type
    t.clamp(0, 1)                                         # error: attr-defined
    autonet.clamp(t)                                      # error: attr-defined
    t.size()                                              # error: operator
    t.sum(axis="0")                                       # error: call-overload|arg-type
    model("x")                                            # error: arg-type
    F.mse_loss(t)                                         # error: call-arg

    def untyped(x):                                       # error: no-untyped-def
        return x
'''

TENSOR = "autonet.core.tensor.Tensor"
REVEALS = {
    "Tensor": TENSOR, "tuple[int, ...]": "tuple[int, ...]", "list[Tensor]": f"list[{TENSOR}]",
    "tuple[Tensor, tuple[Tensor, Tensor]]": f"tuple[{TENSOR}, tuple[{TENSOR}, {TENSOR}]]", "None": "None",
}


def expectations(lines, marker):
    return [(number, line.rsplit("# " + marker, 1)[1].strip())
            for number, line in enumerate(lines, 1) if "# " + marker in line]


def test_a_checker_sees_the_types_of_tensor_methods_operators_layers_and_optimizers(checked):
    lines, messages, _, output = checked
    reveals = [(n, text) for n, text in expectations(lines, "") if not text.startswith("error")]
    assert len(reveals) == 11
    for number, expected in reveals:
        revealed = [f'Revealed type is "{REVEALS[expected]}"']
        assert messages.get(number) == revealed, (lines[number - 1], output)


def test_a_checker_refuses_wrong_calls_pytorch_names_and_untyped_user_code(checked):
    lines, messages, _, output = checked
    errors = expectations(lines, "error:")
    assert len(errors) == 8
    for number, codes in errors:
        found = messages.get(number, [])
        assert len(found) == 1 and re.search(rf"\[({codes})\]$", found[0]), (lines[number - 1], found)
    assert sum(len(found) for found in messages.values()) == len(errors) + 11   # nothing else
    assert f"Found {len(errors)} errors in 1 file" in output


def test_the_generated_declarations_match_the_registry():
    for relative, text in autonet._methods.stubs().items():
        assert (PACKAGE / relative).read_text() == text, (
            f"autonet/{relative} is stale: regenerate it with `make ops-page`")


def test_the_declarations_cover_every_bound_method_and_export():
    declared = set(re.findall(r"^    def (\w+)\(", (PACKAGE / "core" / "tensor_ops.pyi").read_text(), re.M))
    assert declared == set(autonet._methods.op_methods())
    exports = (PACKAGE / "_exports.pyi").read_text()
    exported = set(re.findall(r"(\w+) as (\w+),", exports)) | set(re.findall(r"^def (\w+)\(", exports, re.M))
    names = {pair[1] if isinstance(pair, tuple) else pair for pair in exported}
    assert names == set(autonet._OPS)


# ------------------------------------------------------------------ every public signature annotated
PUBLIC_MODULES = [
    "autonet", "autonet.nn", "autonet.nn.functional", "autonet.nn.init", "autonet.nn.utils", "autonet.optim",
    "autonet.optim.lr_scheduler", "autonet.data", "autonet.func", "autonet.compiler", "autonet.viz",
    "autonet.testing", "autonet.serialization", "autonet.random", "autonet.interop", "autonet.models",
    "autonet.cuda",
]


def public_names(module):
    """``__all__``, or the public names a module defines itself."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__]


def methods(cls):
    """``(qualified name, function)`` for the methods a public class has from autonet's classes:
    public ones, ``__init__``, ``__call__`` and, on Tensor, the operators."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("autonet"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") and name not in ("__init__", "__call__") and not (
                    klass is autonet.Tensor and name.endswith("__")):
                continue
            function = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if inspect.isfunction(function) and function.__module__.startswith("autonet"):
                yield f"{klass.__name__}.{name}", function


def unannotated(function):
    """The parameters (and ``return``) of ``function`` that have no annotation."""
    signature = inspect.signature(function)
    missing = [p.name for i, p in enumerate(signature.parameters.values())
               if p.annotation is inspect.Parameter.empty and not (i == 0 and p.name in ("self", "cls"))]
    return missing + (["return"] if signature.return_annotation is inspect.Signature.empty else [])


def api():
    """Every public function and method of the public modules, once."""
    seen = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in public_names(module):
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                continue
            if inspect.isclass(value):
                seen.update(methods(value))
            elif callable(value):
                seen.setdefault(f"{module_name}.{name}", value)
    return seen


def test_every_public_function_and_method_is_annotated():
    found = api()
    assert len(found) > 500   # the walk reaches Tensor's ops, nn, optim, ...
    missing = {name: unannotated(f) for name, f in found.items() if unannotated(f)}
    assert missing == {}


def test_the_annotation_check_notices_a_missing_annotation():
    def half_typed(x: int, y) -> int:
        return x

    def no_return(x: int):
        return x

    assert unannotated(half_typed) == ["y"]
    assert unannotated(no_return) == ["return"]
    assert ("Tensor.sum", autonet.Tensor.sum) in methods(autonet.Tensor)


# ------------------------------------------------------------------ shipped
def test_the_package_ships_its_type_information():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11 reads TOML")
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = {path for package, patterns in package_data.items()
               for pattern in patterns for path in (ROOT / package.replace(".", "/")).glob(pattern)}
    for needed in ("py.typed", "_exports.pyi", "core/tensor_ops.pyi"):
        assert PACKAGE / needed in shipped


def test_the_typed_example_runs():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "typed_usage.py"), "--steps", "3"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "d/dx sum(x**3) = [3.0, 12.0] = [3.0, 12.0]" in result.stdout
    assert "reloaded model predicts the same: True" in result.stdout


def test_tensorlike_from_its_old_module_says_where_it_lives():
    """``TensorLike`` moved from core.types to core.tensor (it names Tensor; core.types imports
    nothing of the engine): the old import refuses, naming the new one."""
    with pytest.raises(ImportError, match="from autonet.core.tensor import TensorLike"):
        from autonet.core.types import TensorLike  # noqa: F401
    from autonet.core.tensor import TensorLike
    assert "ForwardRef('Tensor')" in str(TensorLike)
