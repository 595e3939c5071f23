"""Shape ops: reshape, transpose, indexing in every NumPy form, joining, broadcasting."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autonet
from autonet.testing import assert_gradients_match, tensors

# Each index is applied to a (4, 3, 2) tensor.
INDICES = {
    "int": 1,
    "negative_int": -1,
    "slice": slice(1, 3),
    "negative_step": slice(None, None, -2),
    "tuple": (slice(None), 0),
    "ellipsis": (Ellipsis, 1),
    "newaxis": (None, slice(None), 0),
    "int_array_repeats": np.array([0, 2, 0, 0]),
    "int_list_repeats": [3, 3, 1],
    "bool_mask": np.array([True, False, True, True]),
    "elementwise_mask": "mask",
    "mixed": (np.array([0, 0, 2]), slice(None, 2), 1),
    "two_arrays": (np.array([[0, 1], [1, 0]]), np.array([[2, 2], [0, 0]])),
    "tensor_index": autonet.Tensor([1, 1, 3], dtype=np.int64),
}


@pytest.mark.parametrize("name", sorted(INDICES))
@given(x=tensors(shape=(4, 3, 2)))
def test_getitem_matches_numpy_and_accumulates(name, x):
    index = INDICES[name]
    if isinstance(index, str):
        index = x.data > 0
    expected_index = index.data if isinstance(index, autonet.Tensor) else index
    np.testing.assert_array_equal(x[index].data, x.data[expected_index])
    assert_gradients_match(lambda t: t[index], x)
    assert autonet.gradgradcheck(lambda t: t[index] ** 2, x)


def test_repeated_indices_accumulate_exactly():
    x = autonet.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


@given(x=tensors(shape=(2, 3, 4)), shape=st.sampled_from([(24,), (4, 6), (-1, 2), (2, 3, 2, 2)]))
def test_reshape(x, shape):
    assert x.reshape(*shape).shape == x.data.reshape(shape).shape
    assert x.reshape(shape).shape == x.data.reshape(shape).shape
    assert_gradients_match(lambda t: t.reshape(shape), x)


@given(x=tensors(shape=(2, 3, 4)), axes=st.permutations([0, 1, -1]))
def test_transpose(x, axes):
    np.testing.assert_array_equal(x.transpose(*axes).data, x.data.transpose(axes))
    np.testing.assert_array_equal(x.transpose(axes).data, x.data.transpose(axes))
    assert_gradients_match(lambda t: t.transpose(axes), x)
    assert_gradients_match(lambda t: t.T, x)
    assert_gradients_match(lambda t: t.swapaxes(0, -1), x)


@given(x=tensors(shape=(2, 3)))
def test_flatten_and_astype(x):
    assert x.flatten().shape == (6,)
    assert_gradients_match(lambda t: t.flatten(), x)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float64


@given(data=st.data(), axis=st.integers(-2, 1), n=st.integers(1, 3))
def test_concatenate_and_stack(data, axis, n):
    if axis in (1, -1):
        shapes = [(2, data.draw(st.integers(1, 3))) for _ in range(n)]
    else:
        shapes = [(data.draw(st.integers(1, 3)), 3) for _ in range(n)]
    pieces = [data.draw(tensors(shape=s)) for s in shapes]
    joined = autonet.concatenate(pieces, axis=axis)
    np.testing.assert_array_equal(joined.data, np.concatenate([p.data for p in pieces], axis=axis))
    assert_gradients_match(lambda *ts: autonet.concatenate(ts, axis=axis), *pieces)
    same = [data.draw(tensors(shape=(2, 3))) for _ in range(n)]
    stack_axis = data.draw(st.integers(-3, 2))
    np.testing.assert_array_equal(autonet.stack(same, axis=stack_axis).data,
                                  np.stack([p.data for p in same], axis=stack_axis))
    assert_gradients_match(lambda *ts: autonet.stack(ts, axis=stack_axis), *same)
    assert autonet.gradgradcheck(lambda *ts: autonet.stack(ts, axis=stack_axis) ** 2, same)


@given(x=tensors(shape=(3, 1)))
def test_broadcast_to(x):
    assert autonet.broadcast_to(x, (2, 3, 4)).shape == (2, 3, 4)
    assert_gradients_match(lambda t: autonet.broadcast_to(t, (2, 3, 4)), x)


@pytest.mark.host_only("mixes host lists and ndarrays into ops, which a device refuses")
@given(a=tensors(shape=(2, 3)), b=tensors(shape=(3,)))
def test_where_takes_lists_tensors_numbers_and_arrays(a, b):
    condition = [[True, False, True], [False, False, True]]
    out = autonet.where(condition, a, b)
    np.testing.assert_array_equal(out.data, np.where(condition, a.data, b.data))
    assert_gradients_match(lambda s, t: autonet.where(autonet.Tensor(condition, dtype=bool), s, t), a, b)
    np.testing.assert_array_equal(autonet.where(condition, a, 0.0).data, np.where(condition, a.data, 0.0))
    np.testing.assert_array_equal(autonet.where(condition, 1.0, np.zeros(3)).data,
                                  np.where(condition, 1.0, 0.0))


def test_float_index_is_rejected():
    with pytest.raises(IndexError):
        autonet.Tensor([1.0, 2.0])[np.array([0.0])]
