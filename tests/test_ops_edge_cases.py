"""Ops beyond their op_db rows (tests/op_db.py): PyTorch's edge rules, zeros, the four bugs of issue 22, the
choices at kinks, NaN and empty inputs (PyTorch's float64 numbers, derived by hand here),
list operands, transpose's refusals, constructors' dtypes, and every refusal of bad input
(docs/bad_inputs.md)."""
import math

import numpy as np
import pytest
from hypothesis import given

import autonet
from autonet import Tensor
from autonet.testing import arrays, assert_gradients_match


def _grads(f, *tensors):
    for t in tensors:
        t.grad = None
    f(*tensors).sum().backward()
    return [t.grad for t in tensors]


# ------------------------------------------------------------- the four bugs of issue 22
def test_the_gradient_of_zero_to_a_negative_power_in_the_exponent_is_minus_inf():
    # PyTorch's pow_backward_exponent: 0 where base == 0 and exponent >= 0, else out * log(base)
    b = Tensor([-1.0, -0.5, 0.0, 2.0, -1.0], requires_grad=True)
    a = Tensor([0.0, 0.0, 0.0, 0.0, 2.0])
    with np.errstate(divide="ignore"):
        (grad,) = _grads(lambda b: a ** b, b)
    np.testing.assert_array_equal(grad[:4], [-np.inf, -np.inf, 0.0, 0.0])
    np.testing.assert_allclose(grad[4], 0.5 * np.log(2.0), rtol=1e-15)


def test_an_integer_tensor_to_a_float_power_is_float64_as_numpy():
    t = Tensor([1, 2, 3], dtype=np.int32)
    expected = np.array([1, 2, 3], dtype=np.int32) ** 2.0
    out = t ** 2.0
    assert out.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(out.data, expected)
    assert (t ** 2).dtype == np.int32   # an int exponent keeps the int dtype, as NumPy


def test_repeat_of_a_zero_d_tensor_follows_numpy():
    x = Tensor(3.0, requires_grad=True)
    for axis in (None, 0, -1):
        out = x.repeat(2, axis=axis)
        np.testing.assert_array_equal(out.data, np.repeat(np.array(3.0), 2, axis=axis))
    x.repeat(3, axis=0).sum().backward()
    assert x.grad == 3.0
    with pytest.raises(np.exceptions.AxisError):
        x.repeat(2, axis=1)   # as NumPy


def test_clip_with_tensor_bounds_routes_the_gradient_as_pytorch():
    # torch.clamp(x, lo, hi) with lo == hi == 1 (torch 2.13, float64): x.grad [0, 1, 0, 0],
    # lo.grad 0, hi.grad 2: below lo == hi the gradient goes nowhere
    x = Tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
    lo, hi = Tensor(1.0, requires_grad=True), Tensor(1.0, requires_grad=True)
    gx, glo, ghi = _grads(autonet.clip, x, lo, hi)
    np.testing.assert_array_equal(gx, [0.0, 1.0, 0.0, 0.0])
    assert (glo, ghi) == (0.0, 2.0)
    # lo > hi: the result is hi everywhere, and so is the gradient
    lo, hi = Tensor(2.0, requires_grad=True), Tensor(1.0, requires_grad=True)
    gx, glo, ghi = _grads(autonet.clip, x, lo, hi)
    np.testing.assert_array_equal(gx, np.zeros(4))
    assert (glo, ghi) == (0.0, 4.0)
    # a NaN x: NaN out, no gradient anywhere
    x = Tensor([np.nan, 0.5], requires_grad=True)
    lo, hi = Tensor([0.0, 0.0], requires_grad=True), Tensor([1.0, 1.0], requires_grad=True)
    out = autonet.clip(x, lo, hi)
    assert np.isnan(out.data[0]) and out.data[1] == 0.5
    gx, glo, ghi = _grads(autonet.clip, x, lo, hi)
    np.testing.assert_array_equal(np.stack([gx, glo, ghi]), [[0, 1], [0, 0], [0, 0]])


def test_clip_with_one_tensor_bound_and_a_number():
    x = Tensor([-1.0, 0.5, 2.0], requires_grad=True)
    lo = Tensor([0.0, 0.0, 0.0], requires_grad=True)
    gx, glo = _grads(lambda x, lo: autonet.clip(x, lo, 1.0), x, lo)
    np.testing.assert_array_equal(gx, [0, 1, 0])
    np.testing.assert_array_equal(glo, [1, 0, 0])


# ------------------------------------------------------------- elementwise
def test_mod_and_fmod_follow_numpy_signs_and_pytorchs_gradients():
    a = Tensor([5.0, -5.0, 5.0, -5.0], requires_grad=True)
    b = Tensor([3.0, 3.0, -3.0, -3.0], requires_grad=True)
    np.testing.assert_array_equal((a % b).data, [2.0, 1.0, -1.0, -2.0])   # Python's %
    np.testing.assert_array_equal(autonet.fmod(a, b).data, [2.0, -2.0, 2.0, -2.0])   # C's fmod
    ga, gb = _grads(lambda a, b: a % b, a, b)
    np.testing.assert_array_equal(ga, np.ones(4))
    np.testing.assert_array_equal(gb, [-1.0, 2.0, 2.0, -1.0])   # -floor(a / b)
    ga, gb = _grads(autonet.fmod, a, b)
    np.testing.assert_array_equal(gb, [-1.0, 1.0, 1.0, -1.0])   # -trunc(a / b)


def test_floor_divide_is_a_constant_and_the_operators_reflect():
    a = Tensor([7.0, -7.0], requires_grad=True)
    out = a // 2
    assert not out.requires_grad and out.is_leaf
    np.testing.assert_array_equal(out.data, [3.0, -4.0])
    np.testing.assert_array_equal((9.0 // Tensor([2.0, -2.0])).data, [4.0, -5.0])
    np.testing.assert_array_equal((9.0 % Tensor([2.0, -2.0])).data, [1.0, -1.0])
    assert not np.floor_divide(a, 2).requires_grad


def test_aliases_are_the_same_functions_under_numpy_2s_names():
    x = Tensor([0.25, -0.5])
    for alias, name in [("asin", "arcsin"), ("acos", "arccos"), ("atan", "arctan"),
                        ("asinh", "arcsinh"), ("atanh", "arctanh")]:
        np.testing.assert_array_equal(getattr(autonet, alias)(x).data, getattr(np, name)(x.data))
        np.testing.assert_array_equal(getattr(x, alias)().data, getattr(np, name)(x.data))
    np.testing.assert_array_equal(autonet.acosh(Tensor([2.0])).data, np.arccosh([2.0]))
    assert isinstance(np.asin(Tensor([0.5], requires_grad=True)), Tensor)


def test_float_power_computes_in_float64():
    x = Tensor([2.0, 3.0], dtype=np.float32, requires_grad=True)
    out = autonet.float_power(x, 2)
    assert out.dtype == np.float64
    out.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [4.0, 6.0])


def test_logaddexp_is_finite_where_exp_overflows():
    a, b = Tensor([1000.0, -np.inf], requires_grad=True), Tensor([1000.0, 0.0], requires_grad=True)
    out = autonet.logaddexp(a, b)
    np.testing.assert_allclose(out.data, [1000.0 + np.log(2.0), 0.0])
    ga, gb = _grads(autonet.logaddexp, a, b)
    np.testing.assert_array_equal(ga, [0.5, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 1.0])


# ------------------------------------------------------------- list operands
def test_a_list_or_tuple_of_numbers_is_an_operand_like_an_ndarray():
    t = Tensor([3.0, 4.0], requires_grad=True)
    for out, expected in [([1, 2] * t, [3.0, 8.0]), (t + (1, 2), [4.0, 6.0]), ([1, 2] - t, [-2.0, -2.0]),
                          (t / [1, 2], [3.0, 2.0]), ([2, 2] ** t, [8.0, 16.0]),
                          (autonet.maximum(t, [5, 0]), [5.0, 4.0]), (t @ [1, 2], 11.0),
                          ([[1, 0], [0, 2]] @ t, [3.0, 8.0]), (t % [2, 3], [1.0, 1.0])]:
        np.testing.assert_array_equal(out.data, expected)
        assert out.requires_grad
    ([1, 2] * t).sum().backward()
    np.testing.assert_array_equal(t.grad, [1.0, 2.0])
    f32 = Tensor([1.0, 2.0], dtype=np.float32)
    assert ([1, 2] * f32).dtype == (np.ones(2, np.float32) * [1, 2]).dtype   # NumPy's promotion


# ------------------------------------------------------------- scans and order statistics
def test_cumprod_gradient_is_exact_at_zeros():
    x = Tensor([2.0, 0.0, 3.0], requires_grad=True)
    autonet.cumprod(x).sum().backward()
    # d/dx0 (x0 + x0 x1 + x0 x1 x2) = 1 + x1 + x1 x2 = 1; d/dx1 = x0 + x0 x2 = 8; d/dx2 = x0 x1 = 0
    np.testing.assert_array_equal(x.grad, [1.0, 8.0, 0.0])
    x = Tensor([[0.0, 0.0, 2.0]], requires_grad=True)
    autonet.cumprod(x, axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 0.0]])


def test_sort_argsort_and_topk_agree_with_numpy_and_put_nan_where_pytorch_does():
    x = Tensor([[3.0, np.nan, 1.0, 3.0]], requires_grad=True)
    np.testing.assert_array_equal(x.sort().data, np.sort(x.data))   # NaN last
    np.testing.assert_array_equal(np.sort(x, kind="quicksort").data, np.sort(x.data))
    np.testing.assert_array_equal(np.take_along_axis(x, np.array([[2]])).data, [[1.0]])   # axis=-1
    order = x.argsort()
    assert not isinstance(order, Tensor) and order.dtype.kind == "i"   # an int array
    np.testing.assert_array_equal(order, np.argsort(x.data, kind="stable"))
    values, indices = autonet.topk(x, 3)
    np.testing.assert_array_equal(indices, [[1, 0, 3]])   # NaN largest, ties by index (PyTorch)
    np.testing.assert_array_equal(values.data, [[np.nan, 3.0, 3.0]])
    values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 1.0, 0.0, 1.0]])
    values, indices = autonet.topk(Tensor([4.0, 1.0, 2.0]), 2, largest=False)
    np.testing.assert_array_equal(values.data, [1.0, 2.0])
    np.testing.assert_array_equal(indices, [1, 2])


def test_median_is_numpys_and_splits_the_gradient_of_an_even_count():
    x = Tensor([4.0, 1.0, 3.0, 2.0], requires_grad=True)
    out = autonet.median(x)
    assert out.data == np.median(x.data) == 2.5
    out.backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.5, 0.5])
    m = Tensor([[1.0, np.nan, 0.0], [5.0, 4.0, 6.0]], requires_grad=True)
    with np.errstate(invalid="ignore"):
        expected = np.median(m.data, axis=1)
    np.testing.assert_array_equal(autonet.median(m, axis=1).data, expected)
    autonet.median(m, axis=1).sum().backward()
    np.testing.assert_array_equal(m.grad, [[0, 1, 0], [1, 0, 0]])   # the NaN takes it (PyTorch)
    assert autonet.median(m, axis=0, keepdims=True).shape == (1, 3)
    assert autonet.median(m, keepdims=True).shape == (1, 1)


@pytest.mark.parametrize("axis", [(0, 2), (2, 0), (-1, 1), (0, 1, 2), (1,)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_median_over_several_axes_is_numpys(axis, keepdims):
    # a tuple of axes was a TypeError ("'tuple' object cannot be interpreted as an integer")
    a = np.random.default_rng(0).permutation(24).astype(float).reshape(2, 3, 4)   # no ties
    x = Tensor(a, requires_grad=True)
    out = autonet.median(x, axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(out.data, np.median(a, axis=axis, keepdims=keepdims))
    out.sum().backward()
    # the gradient: 1/2 on each of the elements ranked (n - 1) // 2 and n // 2 in their group
    axes, last = [d % 3 for d in axis], list(range(-len(axis), 0))
    moved = np.moveaxis(a, axes, last)
    groups = moved.reshape(moved.shape[:a.ndim - len(axis)] + (-1,))
    ranks, n = groups.argsort(axis=-1).argsort(axis=-1), groups.shape[-1]
    halves = ((ranks == (n - 1) // 2).astype(float) + (ranks == n // 2)) / 2
    np.testing.assert_array_equal(x.grad, np.moveaxis(halves.reshape(moved.shape), last, axes))


# ------------------------------------------------------------- indexing
def test_scatter_replaces_or_adds_out_of_place():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    v = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    index = np.array([[0, 2], [1, 0]])
    out = autonet.scatter(x, index, v, axis=1)
    expected = np.zeros((2, 3))
    np.put_along_axis(expected, index, v.data, axis=1)
    np.testing.assert_array_equal(out.data, expected)
    assert not x.data.any()   # out of place
    gx, gv = _grads(lambda x, v: autonet.scatter(x, index, v, axis=1) * [[1, 2, 3]], x, v)
    np.testing.assert_array_equal(gx, [[0, 2, 0], [0, 0, 3]])
    np.testing.assert_array_equal(gv, [[1, 3], [2, 1]])
    repeated = np.array([[0, 0], [2, 2]])
    out = autonet.scatter(x, repeated, v, axis=1, reduce="add")
    np.testing.assert_array_equal(out.data, [[3.0, 0.0, 0.0], [0.0, 0.0, 7.0]])


def test_einsum_reads_repeated_subscripts_as_diagonals():
    m = Tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    batch = Tensor(np.arange(18.0).reshape(2, 3, 3))
    np.testing.assert_array_equal(autonet.einsum("ii->i", m).data, np.einsum("ii->i", m.data))
    np.testing.assert_array_equal(autonet.einsum("bii->bi", batch).data, np.einsum("bii->bi", batch.data))
    np.testing.assert_array_equal(autonet.einsum("ii,i->i", m, Tensor([1.0, 2.0, 3.0])).data,
                                  np.einsum("ii,i->i", m.data, [1.0, 2.0, 3.0]))
    autonet.einsum("ii", m).backward()
    np.testing.assert_array_equal(m.grad, np.eye(3))


@pytest.mark.parametrize("subscripts, shapes", [
    ("ij,j->i", [(2, 3), (1,)]), ("...,...->...", [(2, 1), (1, 3)]), ("ij,jk", [(2, 1), (3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]), ("bi,bi->b", [(1, 3), (4, 1)]),
    ("...b,...c->...c", [(1, 1), (2, 2, 2)]), ("...dba,...dc->...a", [(1, 3, 3, 1), (2, 3, 2)]),
])
def test_einsum_broadcasts_axes_of_size_one_as_numpy(subscripts, shapes):
    # they were refused ("autonet's einsum does not broadcast") where NumPy computes
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape) for shape in shapes]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    np.testing.assert_allclose(autonet.einsum(subscripts, *tensors).data, np.einsum(subscripts, *arrays),
                               rtol=1e-12)
    assert_gradients_match(lambda *ts: autonet.einsum(subscripts, *ts), *tensors)
    assert autonet.gradgradcheck(lambda *ts: autonet.einsum(subscripts, *ts), tensors)


@pytest.mark.parametrize("subscripts, shapes, match", [
    ("ij,ij->", [(3, 3), (2, 3)], "subscript 'i' has sizes 3 and 2: a size does not broadcast unless it is 1"),
    ("ii->i", [(1, 3)], "subscript 'i' has sizes 1 and 3"),   # within one operand: NumPy refuses too
    ("...i,...i->...", [(2, 3), (4, 3)], r"an axis of '\.\.\.' has sizes 2 and 4"),
])
def test_einsum_refuses_sizes_numpy_refuses(subscripts, shapes, match):
    with pytest.raises(ValueError, match=match):
        autonet.einsum(subscripts, *[Tensor(np.ones(shape)) for shape in shapes])


def test_diag_builds_and_extracts_as_numpy():
    v = Tensor([1.0, 2.0], requires_grad=True)
    for k in (-2, 0, 1):
        np.testing.assert_array_equal(autonet.diag(v, k).data, np.diag(v.data, k))
        m = Tensor(np.arange(12.0).reshape(3, 4))
        np.testing.assert_array_equal(autonet.diag(m, k).data, np.diag(m.data, k))
    np.testing.assert_array_equal(np.diagonal(Tensor(np.ones((2, 3, 4))), 1, 2, 0).data,
                                  np.diagonal(np.ones((2, 3, 4)), 1, 2, 0))


# ------------------------------------------------------------- shape
def test_meshgrid_and_flatten_follow_numpy():
    a, b = Tensor([1.0, 2.0, 3.0]), Tensor([4.0, 5.0])
    for indexing in ("xy", "ij"):
        for got, expected in zip(autonet.meshgrid(a, b, indexing=indexing),
                                 np.meshgrid(a.data, b.data, indexing=indexing)):
            np.testing.assert_array_equal(got.data, expected)
    base = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(base)
    for order in ("C", "F", "A", "K"):
        np.testing.assert_array_equal(x.flatten(order).data, base.flatten(order))
    np.testing.assert_array_equal(Tensor(np.asfortranarray(base)).flatten("A").data, base.flatten("F"))
    assert autonet.flatten(x, 1).shape == (2, 12) and x.flatten(0, 1).shape == (6, 4)
    assert x.unflatten(-1, (2, -1)).shape == (2, 3, 2, 2)


def test_transpose_keeps_numpys_meaning_and_refuses_pytorchs():
    m, cube = Tensor(np.ones((2, 3))), Tensor(np.ones((2, 3, 4)))
    assert m.transpose(1, 0).shape == (3, 2) and m.transpose().shape == (3, 2)
    assert cube.transpose(2, 0, 1).shape == (4, 2, 3) and np.transpose(m, (0, 1)).shape == (2, 3)
    for tensor, axes in [(m, (0, 1)), (cube, (0, 1)), (cube, (1, 2))]:
        with pytest.raises(ValueError, match=f"swapaxes\\({axes[0]}, {axes[1]}\\)"):
            tensor.transpose(*axes)


# ------------------------------------------------------------- constructors
def test_constructors_honour_every_dtype():
    for dtype in (np.int64, np.int32, bool, np.float32, np.float64):
        assert autonet.zeros(3, dtype=dtype).dtype == dtype
        assert autonet.ones((2,), dtype=dtype).dtype == dtype
        assert autonet.full((2,), 1, dtype=dtype).dtype == dtype
        assert autonet.eye(2, dtype=dtype).dtype == dtype
        assert autonet.empty(2, dtype=dtype).dtype == dtype
    assert autonet.zeros(3).dtype == np.float64


def test_full_like_and_empty_are_filled():
    x = Tensor(np.ones((2, 3), dtype=np.float32))
    out = autonet.full_like(x, 7.0, requires_grad=True)
    assert out.shape == (2, 3) and out.dtype == np.float32 and out.requires_grad and out.is_leaf
    np.testing.assert_array_equal(out.data, 7.0)
    assert autonet.full_like(x, 2, dtype=np.int64).dtype == np.int64
    assert not autonet.empty((3, 2)).data.any() and not autonet.empty_like(x).data.any()
    assert autonet.empty_like(x).dtype == np.float32


# ------------------------------------------------------------- refusals (docs/bad_inputs.md)
def test_v3_ops_refuse_bad_input_and_leave_objects_unchanged():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    before = x.data.copy()
    with pytest.raises(ValueError, match=r"topk: k must lie in \[0, 3\]"):
        autonet.topk(x, 4)
    with pytest.raises(ValueError, match="does not divide into 2 equal sections; use array_split"):
        autonet.split(x, 2, axis=1)
    with pytest.raises(IndexError, match=r"scatter: indices must lie in \[-3, 3\)"):
        autonet.scatter(x, np.array([[3], [0]]), 1.0, axis=1)
    with pytest.raises(ValueError, match="repeated indices"):
        autonet.scatter(x, np.array([[0, 0], [1, 2]]), 1.0, axis=1)
    with pytest.raises(ValueError, match="reduce must be 'replace' or 'add'"):
        autonet.scatter(x, np.array([[0], [1]]), 1.0, axis=1, reduce="multiply")
    with pytest.raises(TypeError, match="indices must be an integer array"):
        autonet.take_along_axis(x, np.array([[0.0], [1.0]]), axis=1)
    with pytest.raises(IndexError, match="take_along_axis: indices must lie"):
        autonet.take_along_axis(x, np.array([[5], [1]]), axis=1)
    with pytest.raises(ValueError, match="tril: needs a tensor of 2 or more dimensions"):
        autonet.tril(Tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="diag: input must be 1-D"):
        autonet.diag(Tensor(np.ones((2, 2, 2))))
    with pytest.raises(ValueError, match="median: the axis is empty"):
        autonet.median(Tensor(np.ones((2, 0))), axis=1)
    with pytest.raises(ValueError, match="pad: mode must be"):
        x.pad(1, mode="symmetric")
    with pytest.raises(TypeError, match="numpy.pad on Tensors takes mode 'constant'"):
        np.pad(x, 1, mode="symmetric")
    with pytest.raises(ValueError, match="constant_values applies to mode='constant' only"):
        x.pad(1, mode="edge", constant_values=3)
    with pytest.raises(ValueError, match="cannot extend the empty axis"):
        autonet.pad(Tensor(np.ones((0, 2))), 1, mode="wrap")
    with pytest.raises(ValueError, match="sizes .* do not multiply"):
        x.unflatten(1, (2, 2))
    with pytest.raises(ValueError, match="start_axis .* must not come after"):
        x.flatten(1, 0)
    with pytest.raises(ValueError, match="meshgrid: indexing must be"):
        autonet.meshgrid(x, indexing="yx")
    with pytest.raises(TypeError, match="pass the shape as one tuple"):
        autonet.zeros(2, 3)
    with pytest.raises(TypeError, match="sparse=False only"):
        np.meshgrid(x, x, sparse=True)
    np.testing.assert_array_equal(x.data, before)
    assert x.grad is None


# Values, gradients and second derivatives of every op: tests/op_db.py and test_ops_db.py.


def test_prod_gradient_with_zeros_is_the_product_of_the_others():
    x = Tensor([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]], requires_grad=True)
    x.prod(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]])
    assert_gradients_match(lambda t: t.prod(axis=1), x)
    assert autonet.gradgradcheck(lambda t: t.prod(axis=1), [x])


def test_pytorch_edge_rules():
    zero = Tensor([0.0], requires_grad=True)
    autonet.leaky_relu(zero, 0.1).sum().backward()
    assert zero.grad[0] == 0.1                  # the slope at 0, as torch
    zero.grad = None
    autonet.elu(zero, alpha=0.5).sum().backward()
    assert zero.grad[0] == 0.5
    big = Tensor([30.0, -800.0])
    np.testing.assert_array_equal(autonet.softplus(big).data, [30.0, 0.0])   # threshold 20, no overflow
    assert autonet.logsumexp(Tensor([-np.inf, -np.inf])).item() == -np.inf
    assert autonet.logsumexp(Tensor([1000.0, 1000.0])).item() == 1000.0 + math.log(2)
    with pytest.raises(ValueError, match="approximate"):
        autonet.gelu(big, approximate="fast")


def test_argmax_argmin_return_int_arrays_like_numpy():
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    for axis in (None, 0, 1, -1):
        np.testing.assert_array_equal(Tensor(a).argmax(axis=axis), np.argmax(a, axis=axis))
        np.testing.assert_array_equal(autonet.argmin(Tensor(a), axis=axis), np.argmin(a, axis=axis))
    t = Tensor(a)
    assert autonet.core.device.is_array(t.argmax()) and t.argmax().dtype.kind == "i"
    assert autonet.core.device.device_of(t.argmax(axis=0)) == t.device   # on the tensor's device


@pytest.mark.parametrize("axis", [None, 0, -1])
def test_argmax_argmin_keep_dims_as_numpy(axis):
    # keepdims was an unexpected keyword, for np.argmax(t, keepdims=True) too
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    t = Tensor(a)
    for ours, numpys in [(t.argmax(axis=axis, keepdims=True), np.argmax(a, axis=axis, keepdims=True)),
                         (autonet.argmin(t, axis, keepdims=True), np.argmin(a, axis=axis, keepdims=True)),
                         (np.argmax(t, axis=axis, keepdims=True), np.argmax(a, axis=axis, keepdims=True))]:
        assert np.asarray(ours).shape == numpys.shape
        np.testing.assert_array_equal(np.asarray(ours), numpys)


@pytest.mark.parametrize("make, reference", [
    (lambda: autonet.arange(5), lambda: np.arange(5.0)),
    (lambda: autonet.arange(1, 2, 0.25), lambda: np.arange(1, 2, 0.25)),
    (lambda: autonet.full((2, 3), 7.5), lambda: np.full((2, 3), 7.5)),
    (lambda: autonet.linspace(0, 1, 5), lambda: np.linspace(0, 1, 5)),
    (lambda: autonet.linspace(0, 1, 4, endpoint=False), lambda: np.linspace(0, 1, 4, endpoint=False)),
    (lambda: autonet.eye(3, 4, k=1), lambda: np.eye(3, 4, k=1)),
    (lambda: Tensor.eye(2), lambda: np.eye(2)),
])
def test_constructors_match_numpy_in_float64(make, reference):
    made = make()
    assert made.dtype == np.float64 and not made.requires_grad
    np.testing.assert_array_equal(made.data, reference())


def test_constructors_take_dtype_and_requires_grad():
    t = autonet.arange(3, dtype=np.float32, requires_grad=True)
    assert t.dtype == np.float32 and t.requires_grad
    assert autonet.full((2,), 1, dtype=np.float32).dtype == np.float32
    assert autonet.eye(2, requires_grad=True).requires_grad


@given(x=arrays((2, 3)))
def test_numpy_functions_dispatch_to_the_new_ops(x):
    t = Tensor(x, requires_grad=True)
    for np_function, expected in ((np.sin, np.sin(x)), (np.cos, np.cos(x)), (np.expm1, np.expm1(x)),
                                  (lambda a: np.cumsum(a, axis=0), np.cumsum(x, axis=0)),
                                  (lambda a: np.pad(a, 1), np.pad(x, 1))):
        out = np_function(t)
        assert isinstance(out, Tensor) and out.requires_grad
        np.testing.assert_allclose(out.data, expected, rtol=1e-15)
    with pytest.raises(TypeError, match="constant"):
        np.pad(t, 1, mode="symmetric")   # (edge, reflect and wrap are ops since contract v3)


def test_einsum_as_a_method():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(Tensor(a).einsum("ij,jk->ik", Tensor(b)).data, a @ b)


def test_pad_refuses_negative_widths():
    with pytest.raises(ValueError, match="widths"):
        Tensor(np.ones(3)).pad(-1)


def test_float16_mean_accumulates_as_numpy_does():
    data = np.full((5000, 20), 20.0, dtype=np.float16)   # the float16 sum overflows
    mean = Tensor(data).mean()
    assert mean.dtype == np.float16 and mean.item() == np.mean(data) == 20.0
    np.testing.assert_array_equal(Tensor(data).mean(axis=0).data, np.mean(data, axis=0))


def test_pow_gradients_at_zero_are_pytorchs_zeros_without_warnings():
    p = Tensor(2.0, requires_grad=True)
    (Tensor(0.0) ** p).backward()                 # d 0**p / dp, log(0) masked
    x = Tensor([0.0, 2.0], requires_grad=True)
    (x ** Tensor([0.0, 3.0])).sum().backward()    # d x**0 / dx = 0 even at x = 0
    assert p.grad == 0.0 and x.grad.tolist() == [0.0, 12.0]
    q = Tensor([0.5, 2.0], requires_grad=True)     # away from 0: the usual derivatives
    assert autonet.gradcheck(lambda a, b: a ** b, [Tensor([0.7, 1.5], requires_grad=True), q])


def test_var_with_ddof_at_or_beyond_the_count_is_infinite_and_so_is_its_gradient():
    for ddof in (2, 3):
        x = Tensor([1.0, 2.0], requires_grad=True)
        with np.errstate(divide="ignore"), pytest.warns(RuntimeWarning, match="Degrees of freedom"):
            value = x.var(ddof=ddof)
            expected = np.var(x.data, ddof=ddof)   # NumPy warns the same way
        assert value.item() == expected == np.inf
        with np.errstate(all="ignore"):
            value.backward()
        assert not np.isfinite(x.grad).any()      # no ZeroDivisionError, no finite lie


def test_assigning_a_value_with_extra_leading_size_one_axes():
    w = Tensor([1.0, 2.0], requires_grad=True) * 1.0
    y = Tensor([[5.0]], requires_grad=True)
    w[0:1] = y
    (w * Tensor([3.0, 1.0])).sum().backward()
    assert y.grad.shape == (1, 1) and y.grad.tolist() == [[3.0]]


def test_empty_axes_and_indices_behave_as_in_numpy():
    empty = Tensor(np.zeros((2, 0)), requires_grad=True)
    assert empty.softmax(axis=1).shape == empty.log_softmax(axis=1).shape == (2, 0)
    empty.softmax(axis=1).sum().backward()
    assert empty.grad.shape == (2, 0)
    t = Tensor([1.0, 2.0])
    assert t[[]].shape == np.array([1.0, 2.0])[[]].shape == (0,)
    parts = [Tensor([[1.0, 2.0]], requires_grad=True), Tensor([3.0], requires_grad=True)]
    joined = autonet.concatenate(parts, axis=None)
    np.testing.assert_array_equal(joined.data, np.concatenate([p.data for p in parts], axis=None))
    (joined * Tensor([1.0, 2.0, 3.0])).sum().backward()
    assert parts[0].grad.tolist() == [[1.0, 2.0]] and parts[1].grad.tolist() == [3.0]


def test_bad_axes_and_shapes_are_clear_errors():
    t = Tensor(np.ones((2, 3)))
    with pytest.raises(np.exceptions.AxisError):
        t.swapaxes(0, 3)
    with pytest.raises(TypeError):
        t.sum(axis=1.5)              # NumPy refuses a float axis too
    with pytest.raises(TypeError, match="needs a shape"):
        t.reshape()


def test_clip_with_tensor_bounds_passes_gradients_to_the_bounds():
    x = Tensor([-2.0, 0.5, 3.0, 1.0], requires_grad=True)
    lo = Tensor([-1.0, -1.0, -1.0, 1.0], requires_grad=True)
    hi = Tensor(2.0, requires_grad=True)
    out = x.clip(lo, hi)
    np.testing.assert_array_equal(out.data, np.clip(x.data, lo.data, hi.data))
    out.sum().backward()
    # PyTorch's clamp: x where lo <= x <= hi (closed), a bound where it was chosen
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert lo.grad.tolist() == [1.0, 0.0, 0.0, 0.0] and hi.grad == 1.0
    away = Tensor([-2.0, 0.5, 3.0], requires_grad=True)
    assert autonet.gradcheck(lambda a, b, c: a.clip(b, c),
                             [away, Tensor([-1.0, -1.5, 0.0], requires_grad=True),
                              Tensor([1.0, 2.0, 2.5], requires_grad=True)])


# ----------------------------------------------------------------- NaN routing (derivatives.yaml)
def test_max_of_a_tensor_with_nans_sends_the_gradient_to_the_nans():
    # torch.max(): evenly_distribute_backward, mask = isnan(input) when the result is NaN
    x = Tensor([1.0, np.nan, 3.0, np.nan], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.0, 0.5])
    x = Tensor([[1.0, np.nan], [3.0, 3.0]], requires_grad=True)
    x.min(axis=1).sum().backward()                      # ties still share evenly
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0], [0.5, 0.5]])


def test_relu_backward_is_pytorchs_threshold_backward():
    # where(result <= 0, 0, grad): NaN <= 0 is False, so the gradient passes at NaN, and a
    # NaN gradient does not leak where the input was negative
    x = Tensor([-1.0, np.nan, 2.0, 0.0], requires_grad=True)
    x.relu().backward(np.array([np.nan, 1.0, 1.0, np.nan]))
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 0.0])


def test_abs_backward_uses_pytorchs_sign_which_is_zero_at_nan():
    # grad * sgn(x); torch.sgn(nan) == 0 (pytorch/pytorch#41245), unlike np.sign
    x = Tensor([-2.0, np.nan, 3.0, 0.0], requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0, 0.0])


def test_maximum_and_minimum_route_as_pytorchs_formula():
    # self: where(self == other, grad / 2, grad).masked_fill_(self < other, 0), other alike
    a = Tensor([1.0, np.nan, 2.0, 2.0, 0.0], requires_grad=True)
    b = Tensor([0.0, 1.0, np.nan, 2.0, 1.0], requires_grad=True)
    autonet.maximum(a, b).backward(np.array([np.nan, 1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(a.grad, [np.nan, 1.0, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 1.0, 1.0, 0.5, 1.0])
    a.grad = b.grad = None
    autonet.minimum(a, b).backward(np.ones(5))
    np.testing.assert_array_equal(a.grad, [0.0, 1.0, 1.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 1.0, 0.5, 0.0])
