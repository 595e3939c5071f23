"""DataLoader: batches in order or shuffled, copies of the dataset, empty and degenerate datasets, clear refusals."""
import numpy as np
import pytest

from autonet.data import DataLoader


def test_dataloader_batches_in_order_and_shuffles_each_pass():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    loader = DataLoader(X, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(DataLoader(X, y, batch_size=4, drop_last=True)) == 2
    shuffled = DataLoader(X, y, batch_size=3, shuffle=True, rng=0)
    first, second = [np.concatenate([b[1] for b in shuffled]) for _ in range(2)]
    assert sorted(first) == sorted(second) == list(range(10)) and first.tolist() != second.tolist()
    for bx, by in shuffled:
        np.testing.assert_array_equal(bx, X[by])          # rows stay paired


def test_dataloader_refuses_mismatched_arrays_and_bad_batch_sizes():
    with pytest.raises(ValueError, match="first axes"):
        DataLoader(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.ones(3), batch_size=0)
    with pytest.raises(ValueError):
        DataLoader()


# ----------------------------------------------------------------- DataLoader
def test_an_empty_dataset_yields_no_batch():
    loader = DataLoader(np.zeros((0, 3)), np.zeros(0), batch_size=4, shuffle=True, rng=0)
    assert len(loader) == 0 and list(loader) == []


def test_drop_last_with_fewer_rows_than_a_batch_yields_nothing():
    loader = DataLoader(np.arange(3.0), batch_size=4, drop_last=True)
    assert len(loader) == 0 and list(loader) == []
    assert [b[0].tolist() for b in DataLoader(np.arange(3.0), batch_size=4)] == [[0.0, 1.0, 2.0]]


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, None])
def test_batch_sizes_that_are_not_positive_ints_are_refused(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.arange(3.0), batch_size=batch_size)


def test_a_zero_dimensional_array_is_refused():
    with pytest.raises(ValueError, match="first axes"):
        DataLoader(np.float64(3.0))


def test_a_seeded_shuffle_repeats_and_covers_every_row_once_per_pass():
    X = np.arange(10.0)
    first, second = (np.concatenate([b for (b,) in DataLoader(X, batch_size=3, shuffle=True, rng=7)])
                     for _ in range(2))
    np.testing.assert_array_equal(first, second)
    assert sorted(first.tolist()) == X.tolist()


# ----------------------------------------------------------------- DataLoader
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_are_copies_of_the_dataset(shuffle):
    X = np.arange(12.0).reshape(6, 2)
    original = X.copy()
    for (batch,) in DataLoader(X, batch_size=4, shuffle=shuffle, rng=0):
        assert not np.shares_memory(batch, X)
        batch -= batch.mean()
    np.testing.assert_array_equal(X, original)


@pytest.mark.parametrize("flag", ["shuffle", "drop_last"])
@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_shuffle_and_drop_last_take_only_booleans(flag, value):
    # drop_last="no" was truthy: 10 rows in batches of 3 gave 3 batches, the last row dropped
    # (PyTorch's BatchSampler refuses a drop_last that is not a bool with ValueError too)
    with pytest.raises(ValueError, match=f"{flag} must be True or False"):
        DataLoader(np.arange(10.0), batch_size=3, **{flag: value})


def test_numpy_booleans_are_booleans():
    loader = DataLoader(np.arange(10.0), batch_size=3, drop_last=np.bool_(False), shuffle=np.bool_(False))
    assert len(loader) == 4 and [b.tolist() for (b,) in loader][-1] == [9.0]


@pytest.mark.parametrize("shuffle", [False, True])
def test_arrays_where_the_tensors_are_batch_there(shuffle):
    # a device's own array (the double in its run, a CuPy array likewise) went through np.asarray:
    # "implicit conversion of a DeviceArray to NumPy"; PyTorch's DataLoader takes CUDA tensors
    from device_double import here
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    plain = list(DataLoader(X, y, batch_size=4, shuffle=shuffle, rng=3))
    placed = list(DataLoader(here(X), here(y), batch_size=4, shuffle=shuffle, rng=3))
    assert len(placed) == len(plain) == 3
    for (xb, yb), (px, py) in zip(plain, placed):
        assert type(px) is type(here(X)) and type(py) is type(here(y))
        np.testing.assert_array_equal(np.asarray(px.get() if hasattr(px, "get") else px), xb)
        np.testing.assert_array_equal(np.asarray(py.get() if hasattr(py, "get") else py), yb)
