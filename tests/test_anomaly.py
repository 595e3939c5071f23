"""detect_anomaly: the first NaN/Inf names the op, the user's line and the input shapes."""
import os
import threading

import numpy as np
import pytest

import autonet
from autonet import Tensor

from device_double import here


def test_forward_nan_names_op_location_and_shapes():
    x = Tensor([[-1.0, 4.0]], requires_grad=True)
    with autonet.detect_anomaly():
        with pytest.raises(FloatingPointError) as caught:
            x.sqrt()  # the line reported
    message = str(caught.value)
    assert message.startswith("sqrt produced NaN in its forward pass")
    assert "test_anomaly.py:" in message and "(1, 2)" in message


def test_backward_inf_names_the_op_and_where_it_was_created():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with autonet.detect_anomaly():
        y = x.sqrt()          # finite forward, infinite derivative at 0
        with pytest.raises(FloatingPointError, match=r"backward of sqrt returned inf") as caught:
            y.sum().backward()
    assert "test_anomaly.py:" in str(caught.value) and "shapes (2,)" in str(caught.value)
    assert x.grad is None


def test_inputs_already_bad_are_reported_as_such():
    with autonet.detect_anomaly():
        with pytest.raises(FloatingPointError, match="inputs already held NaN"):
            Tensor([np.nan]) * 2


def test_anomaly_mode_is_off_outside_and_per_thread():
    seen = []
    with autonet.detect_anomaly():
        thread = threading.Thread(target=lambda: seen.append((Tensor([-1.0]) * np.inf).data[0]))
        thread.start()
        thread.join()
    assert seen == [-np.inf]
    assert (Tensor([1.0]) * np.inf).data[0] == np.inf   # no error outside the block


def test_second_order_works_in_anomaly_mode():
    x = Tensor([0.5, 1.5], requires_grad=True)
    with autonet.detect_anomaly():
        (g,) = autonet.grad(x.tanh().sum(), x, create_graph=True)
        (h,) = autonet.grad(g.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(h.data, -2 * t * (1 - t ** 2))


def test_anomaly_names_the_users_line_through_numpy_and_catches_inf_from_summing():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with autonet.detect_anomaly(), pytest.raises(FloatingPointError) as caught:
        np.log(np.sum(x * 0.0, axis=0, keepdims=True))
    assert f"{os.path.basename(__file__)}:" in str(caught.value) and "fromnumeric" not in str(caught.value)
    big = np.float32(3e38)
    w = Tensor(np.array([1.0], dtype=np.float32), requires_grad=True)
    y = w + here(np.zeros((2, 1), dtype=np.float32))                   # broadcast: (1,) -> (2, 1)
    with autonet.detect_anomaly(), pytest.raises(FloatingPointError, match="summed"):
        y.backward(np.full((2, 1), big, dtype=np.float32))          # the sum overflows
    assert w.grad is None
    v = Tensor(np.array([1.0], dtype=np.float32), requires_grad=True)
    both = autonet.stack([v * 1.0, v * 1.0])                        # v used twice: a fan-out
    with autonet.detect_anomaly(), pytest.raises(FloatingPointError, match="summed"):
        both.backward(np.full((2, 1), 2e38, dtype=np.float32))     # each branch finite, the sum not
