"""PyTorch habits: each either raises an error naming both meanings, or keeps NumPy's meaning
and is listed on docs/from_pytorch.md (checked here against NumPy itself)."""
import copy
import json
import operator
import pathlib
import pickle

import numpy as np
import pytest

import autonet

FROM_PYTORCH = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "from_pytorch.md").read_text()


def batch():
    return autonet.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)


# ----------------------------------------------------------------- t.size: NumPy's int, not callable
@pytest.mark.parametrize("call", [lambda t: t.size(), lambda t: t.size(0), lambda t: t.size(dim=1)])
def test_calling_size_says_it_is_numpys_element_count_and_to_use_shape(call):
    t = batch()
    with pytest.raises(TypeError) as error:
        call(t)
    message = str(error.value)
    assert "element count" in message and "t.shape" in message and "t.shape[d]" in message
    assert t.shape == (2, 3) and t.grad is None and t.data.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_size_is_the_element_count_as_numpys():
    for shape in [(), (0,), (4,), (2, 3), (2, 0, 5)]:
        assert autonet.Tensor(np.zeros(shape)).size == np.zeros(shape).size == int(np.prod(shape))


def test_size_behaves_as_an_int_everywhere():
    n = batch().size
    assert isinstance(n, int) and not isinstance(n, bool)
    assert (n == 6, n != 7, n < 7, hash(n) == hash(6), {6: "six"}[n] == "six", n in {6}) == (True,) * 6
    assert (repr(n), str(n), f"{n:03d}", f"{n!r}", "%d" % n) == ("6", "6", "006", "6", "6")
    assert (n + 1, n - 1, n * 2, n // 4, n % 4, n ** 2, -n, 6 / n, n / 4) == (7, 5, 12, 1, 2, 36, -6, 1.0, 1.5)
    assert type(n + 1) is int and type(n * 1) is int and type(-n) is int
    assert json.dumps({"n": n}) == '{"n": 6}' and json.loads(json.dumps([n])) == [6]
    assert np.array(n).dtype == np.array(6).dtype and np.zeros(n).shape == (6,)
    assert list(range(n)) == [0, 1, 2, 3, 4, 5] and "abcdefgh"[n] == "g" and [0] * n == [0] * 6
    assert operator.index(n) == 6 and int(n) == 6 and float(n) == 6.0
    for restored in (pickle.loads(pickle.dumps(n)), copy.copy(n), copy.deepcopy(n)):
        assert restored == 6 and type(restored) is int
    assert "ElementCount" not in repr(pickle.dumps(n))   # a pickle never needs autonet to load


def test_size_as_an_operand_and_a_shape_gives_what_an_int_gives():
    t = batch()
    mean = t.sum() / t.size
    mean.backward()
    np.testing.assert_array_equal(t.grad, np.full((2, 3), 1 / 6))
    np.testing.assert_array_equal((t.size * t).data, 6 * t.data)
    assert t.reshape(t.size).shape == (6,) and autonet.zeros(t.size).shape == (6,)


def test_size_in_a_checkpoint_round_trips_as_an_int(tmp_path):
    autonet.save({"elements": batch().size}, tmp_path / "checkpoint.npz")
    restored = autonet.load(tmp_path / "checkpoint.npz")["elements"]
    assert restored == 6 and type(restored) is int


# ----------------------------------------------------------------- refused: both meanings named
@pytest.mark.parametrize("shape, axes", [((2, 3), (0, 1)), ((2, 2), (0, 1)), ((2, 3, 4), (1, 2))])
def test_two_axis_transpose_points_to_swapaxes(shape, axes):
    t = autonet.Tensor(np.ones(shape))
    with pytest.raises(ValueError, match=rf"swapaxes\({axes[0]}, {axes[1]}\)"):
        t.transpose(*axes)
    np.testing.assert_array_equal(t.swapaxes(*axes).data, np.swapaxes(np.ones(shape), *axes))


@pytest.mark.parametrize("call, spelling", [
    (lambda t: t.view(3, 2), "reshape"), (lambda t: t.sum(dim=0), "axis="),
    (lambda t: t.sum(0, keepdim=True), "keepdims="), (lambda t: t.unsqueeze(0), "expand_dims"),
    (lambda t: t.permute(1, 0), "transpose"), (lambda t: t.clamp(0, 1), "clip"),
    (lambda t: t.float(), "astype"), (lambda t: t.to(np.float32), "astype"),
    (lambda t: t.numel(), "size"), (lambda t: t.dim(), "ndim"), (lambda t: t.mm(t.T), "matmul"),
    (lambda t: t.gather(1, np.zeros((2, 1), int)), "take_along_axis"),
    (lambda t: t.masked_fill(t.data > 1, 0.0), "where"), (lambda t: t.clone(), "copy"),
    (lambda t: autonet.cat([t, t]), "concatenate"), (lambda t: autonet.tensor([1.0]), "Tensor"),
    (lambda t: autonet.stack([t, t], dim=0), "axis="),
    (lambda t: autonet.nn.functional.softmax(t, dim=1), "axis="),
    (lambda t: autonet.max(t, t), "maximum"), (lambda t: t.min(t), "minimum"),
])
def test_pytorch_spellings_name_autonets(call, spelling):
    t = batch()
    with pytest.raises((TypeError, AttributeError, ValueError), match=spelling.replace("(", r"\(")):
        call(t)
    assert t.data.tolist() == [[0, 1, 2], [3, 4, 5]] and t.grad is None


# ----------------------------------------------------------------- kept: NumPy's meaning, documented
def test_a_list_operand_works_as_numpys():
    t = batch()
    np.testing.assert_array_equal(([1, 2, 3] * t).data, [1, 2, 3] * np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal((t - [1, 2, 3]).data, np.arange(6.0).reshape(2, 3) - [1, 2, 3])


def test_habits_that_keep_numpys_meaning_give_numpys_answer_and_are_on_the_page():
    t, a = batch(), np.arange(6.0).reshape(2, 3)
    kept = {   # the PyTorch call, autonet's answer, NumPy's answer
        "t.max(1)": (t.max(1), a.max(1)), "t.min(1)": (t.min(1), a.min(1)),
        "t.sort(1)": (t.sort(1), np.sort(a, 1)),
        "t.repeat(2, 1)": (t.repeat(2, 1), a.repeat(2, 1)),
        "t.std()": (t.std(), a.std()), "t.var(1, True)": (t.var(1, True), a.var(1, keepdims=True)),
        "t.median()": (t.median(), np.median(a)),
        "autonet.pad(x, (1, 1))": (autonet.pad(t, (1, 1)), np.pad(a, (1, 1))),
    }
    for call, (ours, numpys) in kept.items():
        assert f"`{call}`" in FROM_PYTORCH, f"{call} is not listed on docs/from_pytorch.md"
        np.testing.assert_allclose(ours.data, numpys, rtol=1e-15)
    assert [part.shape for part in autonet.Tensor(np.zeros(4)).split(2)] == [(2,), (2,)]
    assert [part.shape for part in autonet.Tensor(np.zeros(6)).split(2)] == [(3,), (3,)]   # sections
    assert "`t.split(2)`" in FROM_PYTORCH


def test_max_over_an_axis_unpacks_silently_on_a_batch_of_two_so_the_page_warns_first():
    values, second = batch().max(1)   # PyTorch's (values, indices) habit: no error, wrong meaning
    assert (values.item(), second.item()) == (2.0, 5.0)
    warning = FROM_PYTORCH.index("values, idx = t.max(1)")
    assert warning < FROM_PYTORCH.index("## ")   # before the first section: prominent
