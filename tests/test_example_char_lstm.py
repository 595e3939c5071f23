"""examples/char_lstm.py runs in short form (as tests/test_examples.py runs the others)."""
from test_examples import run_example


def test_char_lstm_beats_the_unigram_baseline_and_samples(tmp_path):
    out = run_example("char_lstm.py", "--steps", "15", cwd=tmp_path)
    result = out.split("validation loss ")[-1]
    loss, baseline = float(result.split()[0]), float(result.split("baseline ")[1].split()[0])
    assert loss < baseline
    assert out.split("sample:\n")[1].startswith("ROMEO:\n")
    assert len(out.split("sample:\n")[1]) > 300
