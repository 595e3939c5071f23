"""clip_grad_norm_ and clip_grad_value_: PyTorch's norms and rules, dtypes, NaN and empty gradients, refusals."""
import math

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.core import device as devices

from device_double import here


# ----------------------------------------------------------------- clipping
def _grads(*arrays):
    params = [Tensor(np.zeros(np.shape(a), dtype=np.asarray(a).dtype), requires_grad=True) for a in arrays]
    for p, a in zip(params, arrays):
        p.grad = here(np.array(a))
    return params


def test_clipping_nothing_returns_zero_and_changes_nothing():
    assert nn.utils.clip_grad_norm_([], 1.0) == 0.0
    bare = Tensor([1.0], requires_grad=True)
    assert nn.utils.clip_grad_norm_([bare], 1.0) == 0.0 and bare.grad is None


def test_mixed_dtype_gradients_clip_jointly_and_keep_their_dtypes():
    params = _grads(np.array([3.0], dtype=np.float32), np.array([4.0]))
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert total == 5.0
    assert params[0].grad.dtype == np.float32 and params[1].grad.dtype == np.float64
    np.testing.assert_allclose(devices.to_host(params[1].grad), [4.0 / (5.0 + 1e-6)])


@pytest.mark.parametrize("norm_type", [2.0, math.inf, -math.inf])
def test_a_nan_gradient_makes_a_nan_norm_that_error_if_nonfinite_refuses(norm_type):
    params = _grads(np.array([1.0, math.nan]), np.array([2.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    np.testing.assert_array_equal(devices.to_host(params[1].grad), [2.0])


def test_the_minus_inf_norm_of_an_empty_gradient_is_refused():
    params = _grads(np.zeros(0), np.array([2.0]))
    with pytest.raises(ValueError, match="-inf norm"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type=-math.inf)
    assert nn.utils.clip_grad_norm_(params, 10.0, norm_type=math.inf) == 2.0   # max over nothing is 0


def test_max_norm_zero_zeroes_the_gradients():
    params = _grads(np.array([3.0, 4.0]))
    assert nn.utils.clip_grad_norm_(params, 0.0) == 5.0
    np.testing.assert_array_equal(devices.to_host(params[0].grad), [0.0, 0.0])


def test_clip_grad_value_clips_a_gradient_made_with_create_graph():
    """After backward(create_graph=True) the gradient is a Tensor: its values are clipped in
    place, as PyTorch clips them (numpy.clip with out= on a Tensor refused before)."""
    x = Tensor(here(np.array([-3.0, 4.0, 0.5])), requires_grad=True)
    (x * x).sum().backward(create_graph=True)   # grad 2x = [-6, 8, 1]
    gradient = x.grad
    nn.utils.clip_grad_value_([x], 5.0)
    assert x.grad is gradient
    np.testing.assert_array_equal(devices.to_host(x.grad.data), [-5.0, 5.0, 1.0])


def test_clip_grad_value_refuses_a_negative_bound():
    params = _grads(np.array([3.0, -4.0]))
    with pytest.raises(ValueError, match="clip_value"):
        nn.utils.clip_grad_value_(params, -1.0)
    np.testing.assert_array_equal(devices.to_host(params[0].grad), [3.0, -4.0])


def test_gradient_clipping_refuses_bad_settings():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="norm_type"):
        autonet.nn.utils.clip_grad_norm_([w], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="clip_value"):
        autonet.nn.utils.clip_grad_value_([w], -1.0)
    assert autonet.nn.utils.clip_grad_norm_([w], 1.0) == 0.0   # no gradients yet


# ----------------------------------------------------------------- clip_grad_norm_
def _with_grads(*grads):
    params = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = np.array(g, dtype=float)
    return params


def test_clip_grad_norm_minus_inf_is_the_smallest_magnitude():
    params = _with_grads([3.0, -4.0], [0.5, -2.0])
    total = nn.utils.clip_grad_norm_(params, max_norm=0.1, norm_type=-math.inf)
    assert total == 0.5                                          # min |g| over all gradients
    factor = 0.1 / (0.5 + 1e-6)
    np.testing.assert_allclose(params[0].grad, [3.0 * factor, -4.0 * factor], rtol=1e-15)
    np.testing.assert_allclose(params[1].grad, [0.5 * factor, -2.0 * factor], rtol=1e-15)


@pytest.mark.parametrize("norm_type", [0.5, 1.0, 3.0, math.inf])
def test_clip_grad_norm_takes_any_positive_order(norm_type):
    grads = [np.array([3.0, -4.0]), np.array([0.5, -2.0])]
    everything = np.abs(np.concatenate(grads))
    expected = (everything.max() if norm_type == math.inf
                else (everything ** norm_type).sum() ** (1 / norm_type))
    total = nn.utils.clip_grad_norm_(_with_grads(*grads), max_norm=1e9, norm_type=norm_type)
    np.testing.assert_allclose(total, expected, rtol=1e-14)


@pytest.mark.parametrize("norm_type", [0, -1.0, -2, math.nan, "fro"])
def test_clip_grad_norm_refuses_other_orders(norm_type):
    params = _with_grads([3.0, 4.0])
    with pytest.raises((ValueError, TypeError), match="norm_type|could not convert"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
    np.testing.assert_array_equal(params[0].grad, [3.0, 4.0])


def test_clip_grad_norm_error_if_nonfinite():
    params = _with_grads([1.0, math.inf], [2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(params[0].grad, [1.0, math.inf])   # nothing changed
    np.testing.assert_array_equal(params[1].grad, [2.0])
    # PyTorch's default: scaled by max_norm / (inf + 1e-6) = 0 (inf * 0 is NaN)
    with np.errstate(invalid="ignore"):
        assert nn.utils.clip_grad_norm_(params, 1.0) == math.inf
    np.testing.assert_array_equal(params[0].grad, [0.0, math.nan])
    np.testing.assert_array_equal(params[1].grad, [0.0])


@pytest.mark.parametrize("fixed", ["numpy scalar", "read-only"])
def test_gradients_that_cannot_change_in_place_are_clipped_too(fixed):
    """A NumPy scalar gradient (``w.grad = np.float64(5.0)`` on a 0-d parameter) or a read-only
    one is replaced by its clipped copy, as PyTorch's (always writable) gradients are clipped:
    clip_grad_norm_ left the scalar unclipped, and both refused a read-only gradient."""
    if fixed == "numpy scalar":
        w = Tensor(0.0, requires_grad=True)
        value, clipped_to_norm_1 = np.float64(5.0), 5.0 / (5.0 + 1e-6)
    else:
        w = Tensor([0.0, 0.0], requires_grad=True)
        value = devices.to_host(np.array([6.0, 8.0]))
        value.setflags(write=False)
        clipped_to_norm_1 = np.array([6.0, 8.0]) / (10.0 + 1e-6)
    w.grad = value
    assert nn.utils.clip_grad_norm_([w], max_norm=1.0) == np.sqrt(np.sum(np.square(value)))
    np.testing.assert_allclose(devices.to_host(w.grad), clipped_to_norm_1, rtol=1e-15)
    w.grad = value
    nn.utils.clip_grad_value_([w], 5.5)
    np.testing.assert_array_equal(devices.to_host(w.grad), np.minimum(value, 5.5))
    w.grad.flat[0] = 0.0   # the clipped gradient is an array of its own


def test_clip_grad_norm_scales_a_gradient_made_with_create_graph_out_of_its_graph():
    """After backward(create_graph=True) PyTorch's clip_grad_norm_ measures and scales the
    gradient's values under no_grad: the gradient object stays, and differentiating it later
    gives its unclipped expression's derivative. autonet recorded the norm's abs and the scaling
    in the gradient's graph, which then refused to differentiate ('modified by an in-place
    operation')."""
    x = Tensor(here(np.array([3.0, 4.0])), requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)   # grad 3 x^2 = [27, 48]
    gradient = x.grad
    total = nn.utils.clip_grad_norm_([x], max_norm=1.0)
    assert total == pytest.approx(math.sqrt(27.0 ** 2 + 48.0 ** 2), rel=1e-15)
    assert x.grad is gradient
    np.testing.assert_allclose(devices.to_host(gradient.data), np.array([27.0, 48.0]) / (total + 1e-6), rtol=1e-15)
    (second,) = autonet.grad(gradient.sum(), [x])   # d/dx sum(3 x^2) = 6 x
    np.testing.assert_allclose(devices.to_host(second.data), [18.0, 24.0], rtol=1e-15)
