"""The examples run (in a short mode) so they never rot."""
import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args, cwd=None):
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_notebook_xor_learns_xor(tmp_path):
    out = run_example("notebook_xor.py", "--epochs", "3000", cwd=tmp_path)
    assert "[[0]\n [1]\n [1]\n [0]]" in out
