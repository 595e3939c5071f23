"""Trust by construction: each way a gradient could silently go wrong gives PyTorch's answer or refuses.

Each test compares two independent ways of getting the same number (an in-place
program against its out-of-place twin, finite differences), or checks the
refusal.
"""
import gc
import weakref

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.core.function import RELEASED
from device_double import here


# ---------------------------------------------------------------- in place and aliasing
SELF_ALIASING = {   # in-place program on y, and the same computed out of place
    "y += y": (lambda y: y.__iadd__(y), lambda y: y + y),
    "y -= y": (lambda y: y.__isub__(y), lambda y: y - y),
    "y *= y": (lambda y: y.__imul__(y), lambda y: y * y),
    "y /= y + 1": (lambda y: y.__itruediv__(y + 1), lambda y: y / (y + 1)),
    "y[...] = y": (lambda y: y.__setitem__(Ellipsis, y) or y, lambda y: y * 1),
    "y[0] = y[2]": (lambda y: y.__setitem__(0, y[2]) or y,
                    lambda y: autonet.concatenate([y[2:3], y[1:]])),
    "y += y[::-1]": (lambda y: y.__iadd__(y[::-1]), lambda y: y + y[::-1]),
}


@pytest.mark.parametrize("name", sorted(SELF_ALIASING))
def test_self_aliasing_in_place_ops_match_their_out_of_place_twins(name):
    in_place, out_of_place = SELF_ALIASING[name]
    weights = here(np.array([1.0, -2.0, 3.0]))
    x = Tensor([0.5, 1.5, -2.0], requires_grad=True)
    y = x.exp()
    y = in_place(y)
    (y * weights).sum().backward()          # terminates: the node is not its own parent
    x2 = Tensor(x.data, requires_grad=True)
    expected = out_of_place(x2.exp())
    (expected * weights).sum().backward()
    np.testing.assert_allclose(y.data, expected.data)
    np.testing.assert_allclose(x.grad, x2.grad)


def test_a_write_into_a_base_makes_earlier_views_refuse():
    a = Tensor(np.zeros(4))
    view = a[0:2]                            # taken before the write
    w = Tensor([1.0, 2.0], requires_grad=True)
    a[0:2] = w                               # a now depends on w; view's history does not
    with pytest.raises(RuntimeError, match="view of a tensor that was since modified"):
        (view * 3).sum()
    with autonet.no_grad():                  # without recording, the values are simply current
        np.testing.assert_array_equal((view * 3).data, [3.0, 6.0])
    fresh = a[0:2]                           # a view taken after the write is fine
    (a.sum() + (fresh * 3).sum()).backward()
    np.testing.assert_array_equal(w.grad, [4.0, 4.0])   # PyTorch's answer


def test_arrays_a_formula_reads_are_owned_or_checked():
    x = Tensor([3.0, 4.0, 5.0], requires_grad=True)
    operand = here(np.array([1.0, 2.0, 3.0]))
    product = (x * operand).sum()
    index = Tensor(np.array([0, 0, 1]), dtype=np.int64)
    picked = x[index].sum() + x[None][0, index].sum()   # a lone index and one inside a tuple
    condition = here(np.array([True, False, True]))
    chosen = autonet.where(condition, x, 0.0).sum()
    bounds = here(np.array([3.5, 3.5, 3.5]))
    clipped = x.clip(bounds, None).sum()
    operand[:] = 100.0                        # the caller changes every array afterwards
    index.data[:] = 2
    condition[:] = False
    bounds[:] = 0.0
    for loss, expected in ((product, [1, 2, 3]), (picked, [4, 2, 0]), (chosen, [1, 0, 1]),
                           (clipped, [0, 1, 1])):
        x.grad = None
        loss.backward()
        np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("write", [
    lambda model: model.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)}),
    lambda model: nn.init.uniform_(model.weight, rng=0),
    lambda model: nn.init.zeros_(model.weight),
])
def test_writing_parameters_between_forward_and_backward_is_detected(write):
    model = nn.Linear(3, 2, rng=0)
    x = Tensor(np.ones((4, 3)), requires_grad=True)   # x's gradient reads the weight ...
    loss = model(x).tanh().sum()                       # ... so linear saved it
    write(model)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_an_operand_no_gradient_reads_may_be_overwritten():
    w = Tensor([1.0, 2.0])
    x = Tensor([3.0, 4.0], requires_grad=True)
    loss = (x * w).sum() + (w * 0.5).sum()   # x's gradient reads w, not x
    x.data[...] = 0.0                        # (a write NumPy makes behind autonet's back)
    with autonet.no_grad():
        x += 1.0                             # x was not saved: nothing to refuse
    loss.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


def test_integer_and_bool_casts_end_differentiability():
    x = Tensor([1.7, -0.2], requires_grad=True)
    for dtype in (int, np.int32, bool):
        cast = x.astype(dtype)
        assert not cast.requires_grad and cast.is_leaf and cast.dtype == np.dtype(dtype)
    half = x.astype(np.float32)
    assert half.requires_grad and half.dtype == np.float32
    (half * 2).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [2.0, 2.0]


# ---------------------------------------------------------------- memory
def test_backward_leaves_no_activation_reachable_from_the_graph():
    gc.disable()
    try:
        rng = np.random.default_rng(0)
        model = nn.Sequential(nn.Linear(8, 16, rng=0), nn.Tanh(), nn.Linear(16, 4, rng=1))
        x = Tensor(rng.standard_normal((5, 8)))
        hidden = model[0](x)
        activation = model[1](hidden)
        hidden_probe, activation_probe = (weakref.ref(t.data) for t in (hidden, activation))
        loss = nn.functional.cross_entropy(model[2](activation), here(np.array([0, 1, 2, 3, 0])))
        del hidden, activation
        assert hidden_probe() is None            # tanh saved its output, not its input
        assert activation_probe() is not None    # saved by tanh and the last linear
        loss.backward()
        assert activation_probe() is None        # freed, though loss is alive
        stack = [loss.grad_fn]
        while stack:                                   # every node kept nothing
            node = stack.pop()
            assert node.saved in (RELEASED, ())
            stack += [e for e in node.inputs if isinstance(e, autonet.Context)]
        source = autonet.viz.draw_graph(loss).source   # the structure still draws
        assert "linear" in source and "(5, 16) float64" in source
    finally:
        gc.enable()


def test_retain_graph_keeps_what_a_second_backward_needs():
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * (np.exp(x.data) * (x.data + 1)))


def test_create_graph_refuses_a_saved_view_it_cannot_trace():
    class SavesAView(autonet.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x[::-1])        # a view of the input, not the input
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (reversed_x,) = ctx.saved
            return grad * 2 * reversed_x[::-1]

    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (first,) = autonet.grad(SavesAView.apply(x).sum(), x)      # first order: fine
    np.testing.assert_array_equal(first.data, [2.0, 4.0, 6.0])
    with pytest.raises(RuntimeError, match="saved a view of its input"):
        autonet.grad(SavesAView.apply(x).sum(), x, create_graph=True)


def test_einsum_and_norm_refuse_what_they_cannot_differentiate():
    m = Tensor(np.eye(3), requires_grad=True)
    # contract v3: a repeated subscript is a diagonal (tests/test_ops_edge_cases.py), no longer refused
    np.testing.assert_array_equal(autonet.einsum("ii->i", m).data, np.ones(3))
    with pytest.raises(TypeError, match="singular values"):
        autonet.norm(m, ord=2, axis=(0, 1))
    with pytest.raises(ValueError, match="does not broadcast"):
        autonet.einsum("ij,ij->", m, Tensor(np.ones((2, 3))))   # size 1 broadcasts, as NumPy's
