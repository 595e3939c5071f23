"""In-place arithmetic and assignment: right gradients, or a clear refusal."""
import numpy as np
import pytest

import autonet
from autonet import Tensor
from autonet.optim import SGD
from autonet.testing import assert_gradients_match


def test_in_place_on_a_non_leaf_records_the_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y += x           # y = 4x
    y *= x           # y = 4x^2
    y -= 1.0
    y /= 2.0         # y = 2x^2 - 0.5
    np.testing.assert_allclose(y.data, 2 * x.data ** 2 - 0.5)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)
    assert y.grad_fn.name == "div"


def test_in_place_keeps_the_same_array():
    t = Tensor([1.0, 2.0])
    data = t.data
    t += 1
    t[0] = 10.0
    assert t.data is data and t.data.tolist() == [10.0, 3.0]


def test_setitem_gradients():
    def assign(x, v):
        y = x * 1.0
        y[1:, ::2] = v
        return y

    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    v = Tensor(np.array([5.0, 6.0]), requires_grad=True)   # broadcast into a (2, 2) region
    assert_gradients_match(assign, x, v)
    out = assign(x, v)
    out.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(x.grad, [[1, 1, 1, 1], [0, 1, 0, 1], [0, 1, 0, 1]])
    np.testing.assert_array_equal(v.grad, [2.0, 2.0])


def test_setitem_with_repeated_indices_is_refused_while_recording():
    y = Tensor([1.0, 2.0, 3.0], requires_grad=True) * 1.0
    with pytest.raises(ValueError, match="repeated"):
        y[[0, 0]] = Tensor([1.0, 2.0], requires_grad=True)


def test_modifying_a_saved_input_is_detected_at_backward():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    w = Tensor([3.0, 4.0], name="w")
    loss = (x * w).sum()
    w += 1.0                       # w was saved by mul for x's gradient
    with pytest.raises(RuntimeError, match=r"'mul'.*modified by an in-place operation.*'w'"):
        loss.backward()
    assert x.grad is None


def test_in_place_on_an_op_output_keeps_what_the_op_saved():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()                    # exp saves its output ...
    y *= 2.0                       # ... which this changes in place
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(x.data))


def test_in_place_on_a_tensor_already_used_keeps_earlier_graphs_right_or_refuses():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = y.sum()                    # z was computed from the old y (sum saved nothing)
    y *= 2.0                       # allowed, as in PyTorch; exp keeps a copy of its old output
    z.backward(retain_graph=True)  # the new y's graph goes through exp too
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]))
    x.grad = None
    y.sum().backward()             # the new y = 2 exp(x)
    np.testing.assert_allclose(x.grad, 2 * np.exp([1.0, 2.0]))
    c = Tensor([1.0, 1.0])
    loss = (c * x).sum()           # mul saved c ...
    c += x                         # ... which this overwrites: loss's backward must refuse
    with pytest.raises(RuntimeError, match=r"'mul'.*modified by an in-place operation"):
        loss.backward()
    assert c.grad_fn.name == "add" and not c.is_leaf


def test_changing_a_saved_output_under_no_grad_is_detected():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    with autonet.no_grad():
        y += 1.0
    with pytest.raises(RuntimeError, match=r"'exp'.*in-place.*output"):
        y.sum().backward()


def test_modifying_an_array_the_op_did_not_save_is_fine():
    x = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([5.0, 5.0])
    loss = (x + c).sum()           # add saves nothing
    c += 1.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_views_share_the_version_counter():
    base = Tensor(np.arange(4.0))
    view = base[1:3]
    x = Tensor([1.0, 1.0], requires_grad=True)
    loss = (x * view).sum()
    base += 1.0                    # changes view's values too
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()
    flat = base.reshape(2, 2)
    loss = (x * flat[0]).sum()
    flat[0, 0] = 7.0               # through the view, seen by the graph that used it
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_leaf_that_requires_grad_is_protected_but_updatable_under_no_grad():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w += 1.0
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 5.0
    assert w.data.tolist() == [1.0, 2.0]
    (w * w).sum().backward()
    with autonet.no_grad():
        w -= 0.5 * w.grad
    assert w.data.tolist() == [0.0, 0.0] and w.is_leaf and w.requires_grad


def test_optimizer_step_between_forward_and_backward_is_detected():
    w = Tensor([1.0, 2.0], requires_grad=True)
    optimizer = SGD([w], lr=0.1)
    (w * w).sum().backward()
    loss = (w * w).sum()
    optimizer.step()
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_in_place_shape_errors_leave_the_tensor_unchanged():
    t = Tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(2,\)"):
        t += np.ones((2, 2), like=t.data)
    assert t.data.tolist() == [1.0, 2.0] and t._version[0] == 0


def test_in_place_on_a_view_while_recording_is_refused():
    y = Tensor([1.0, 2.0, 3.0], requires_grad=True) * 2
    view = y[:2]
    with pytest.raises(RuntimeError, match="view"):
        view += 1.0


def test_failed_in_place_on_a_computed_tensor_changes_nothing():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    saved = y.grad_fn.saved
    with pytest.raises(ValueError, match="in-place"):
        y += np.ones((2, 2), like=y.data)
    assert y.grad_fn.name == "exp" and y.grad_fn.saved is saved and saved[0] is y.data
    assert y._version[0] == 0


# ----------------------------------------------------------------- retain_grad and in-place
def test_retain_grad_survives_an_in_place_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    y += 1.0
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad, 2 * np.array([4.0, 7.0]))   # d(y^2)/dy at the new y
    np.testing.assert_allclose(x.grad, 3 * 2 * np.array([4.0, 7.0]))
