"""Every Python block in the README runs as written."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_block_runs(number, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[number], f"README block {number}", "exec"), {"__name__": "readme"})


def test_every_test_named_in_the_bad_input_table_exists():
    table = (README.parent / "docs" / "bad_inputs.md").read_text()
    references = re.findall(r"`(test_\w+\.py)(?:::(\w+))?`", table)
    assert len(references) > 30
    for module, function in references:
        source = (README.parent / "tests" / module).read_text()
        assert not function or f"def {function}(" in source, f"{module}::{function} is missing"
