"""The examples run (in a short mode) so they never rot."""
import pathlib
import shutil
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args, cwd=None):
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_notebook_xor_retells_the_notebook(tmp_path):
    out = run_example("notebook_xor.py", "--scale", "0.1", cwd=tmp_path)
    assert out.count("minus the notebook's hand-coded update") == 4
    assert "prediction after threshold: 1" in out
    perceptron_line = [line for line in out.splitlines() if "prediction for [1, 0, 0]" in line]
    assert float(perceptron_line[0].split()[-1]) > 0.99
    assert abs(float(perceptron_line[1].split()[-1]) - 0.5) < 0.01
    if shutil.which("dot"):
        assert (tmp_path / "xor_graph.svg").read_text().lstrip().startswith("<?xml")
        assert f"graph written to {tmp_path / 'xor_graph.svg'}" in out
    else:
        assert "apt-get install graphviz" in out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed (make test installs it)")
def test_visualize_draws_three_svgs(tmp_path):
    out = run_example("visualize.py", "--out", str(tmp_path), cwd=tmp_path)
    for name in ("plain.svg", "values_and_grads.svg", "grouped.svg"):
        assert (tmp_path / name).read_text().lstrip().startswith("<?xml") and name in out
    assert "cluster" in (tmp_path / "grouped.svg").read_text()
    assert "grad" in (tmp_path / "values_and_grads.svg").read_text()


def test_custom_model_loss_falls(tmp_path):
    out = run_example("custom_model.py", "--steps", "300", cwd=tmp_path)
    first, last = (float(x) for x in out.split("mse fell from ")[1].split(" (")[0].split(" to "))
    assert last < first / 10


def test_digits_reaches_95_percent_and_reloads_identically(tmp_path):
    pytest.importorskip("sklearn", reason="the 'examples' extra (scikit-learn) is not installed")
    pytest.importorskip("matplotlib", reason="the 'examples' extra (matplotlib) is not installed")
    out = run_example("digits.py", "--out", str(tmp_path), cwd=tmp_path)
    accuracy = float(out.split("test accuracy ")[-1].split()[0])
    assert accuracy >= 0.95
    assert "identical predictions: True" in out
    assert (tmp_path / "digits_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "digits_mlp.npz").exists()


def test_benchmarks_run_and_every_engine_matches_numpy(tmp_path):
    """The benchmark's own check: autonet, compiled and (if installed) torch reach the
    hand-written NumPy step's parameters on every workload, fused on the first (XOR), then
    each is timed for one step (``--smoke``; ``make bench`` times rounds of many). No time is
    asserted."""
    script = EXAMPLES.parent / "benchmarks" / "run.py"
    result = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" us |") >= 3 and "disagrees" not in result.stdout
    xor = next(line for line in result.stdout.splitlines() if line.startswith("notebook XOR"))
    assert xor.split(" | ")[5].strip().endswith("x"), xor   # the fused engine's time and ratio


def test_custom_op_example_passes_and_reports_the_wrong_backward(tmp_path):
    out = run_example("custom_op.py", cwd=tmp_path)
    assert "matches finite differences" in out and "second derivatives too: True" in out
    assert "WrongSoftplus is caught" in out and "input 0 ('x')" in out and "numeric" in out


def test_cnn_digits_learns_and_draws_its_curves_and_graph(tmp_path):
    pytest.importorskip("sklearn", reason="the 'examples' extra (scikit-learn) is not installed")
    pytest.importorskip("matplotlib", reason="the 'examples' extra (matplotlib) is not installed")
    out = run_example("cnn_digits.py", "--epochs", "3", "--out", str(tmp_path), cwd=tmp_path)
    assert float(out.split("test accuracy ")[-1].split()[0]) >= 0.9   # 20 epochs reach 0.99
    assert (tmp_path / "cnn_digits_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if shutil.which("dot"):
        svg = (tmp_path / "cnn_digits_graph.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "Conv2d" in svg and "windows" not in svg


def test_tiny_gpt_beats_the_unigram_baseline_and_samples(tmp_path):
    out = run_example("tiny_gpt.py", "--steps", "30", cwd=tmp_path)
    result = out.split("validation loss ")[-1]
    loss, baseline = float(result.split()[0]), float(result.split("baseline ")[1].split()[0])
    assert loss < baseline
    assert out.split("sample:\n")[1].startswith("ROMEO:\n")


def test_char_lstm_beats_the_unigram_baseline_and_samples(tmp_path):
    out = run_example("char_lstm.py", "--steps", "8", cwd=tmp_path)   # below the baseline from step 5 on
    result = out.split("validation loss ")[-1]
    loss, baseline = float(result.split()[0]), float(result.split("baseline ")[1].split()[0])
    assert loss < baseline
    assert out.split("sample:\n")[1].startswith("ROMEO:\n")
    assert len(out.split("sample:\n")[1]) > 300


def test_gpu_benchmark_script_is_ready_and_says_when_there_is_no_gpu(tmp_path):
    import autonet

    script = EXAMPLES.parent / "benchmarks" / "gpu.py"
    if autonet.cuda.is_available():
        pytest.skip("a GPU is here: run benchmarks/gpu.py itself (minutes)")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and "no CUDA GPU" in result.stdout


def _perf_works():
    probe = shutil.which("perf") and subprocess.run(["perf", "stat", "--quiet", "true"], capture_output=True)
    return bool(probe) and probe.returncode == 0


@pytest.mark.skipif(not _perf_works(), reason="Linux perf is missing or not permitted here "
                                              "(apt-get install linux-perf; perf_event_paranoid <= 2)")
def test_the_step_profiler_sees_blas_in_the_hand_written_digits_step():
    """benchmarks/perf_profile.py's shares by library add up, and a step of matrix products
    shows BLAS among them (docs/performance.md's profiles come from it)."""
    sys.path.insert(0, str(EXAMPLES.parent / "benchmarks"))
    import perf_profile

    summary, shares, hottest = perf_profile.profile("digits", "numpy", seconds=0.5, symbols=5)
    assert summary.startswith("steps ") and 95 <= sum(shares.values()) <= 100.5, shares
    assert shares["BLAS"] > 10 and shares["BLAS"] == max(shares.values()), shares
    assert len(hottest) == 5 and any("gemm" in function for _, _, function in hottest), hottest
