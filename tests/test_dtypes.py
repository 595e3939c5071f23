"""Dtype rules: float32 stays float32, mixing follows NumPy 2, gradients match their tensor."""
import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.optim import SGD, Adam
from device_double import here

F32 = np.float32


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a / (b + 3), lambda a, b: a @ b.T,
    lambda a, b: autonet.maximum(a, b), lambda a, b: autonet.concatenate([a, b]),
    lambda a, b: (a.sigmoid() * b.tanh()).log_softmax(), lambda a, b: nn.functional.cross_entropy(a, [0, 1]),
])
def test_float32_with_float32_stays_float32(op):
    a = Tensor(np.ones((2, 3)) * 0.5, dtype=F32, requires_grad=True)
    b = Tensor(np.ones((2, 3)) * 0.25, dtype=F32, requires_grad=True)
    out = op(a, b)
    assert out.dtype == F32
    out.sum().backward()
    assert a.grad.dtype == F32 and (b.grad is None or b.grad.dtype == F32)   # CE ignores b


@pytest.mark.parametrize("other, expected", [
    (2.0, F32), (2, F32), (np.float32(2), F32), (np.float64(2), np.float64),
    (np.ones(3), np.float64), (np.ones(3, dtype=F32), F32), (np.ones(3, dtype=np.int64), np.float64),
])
def test_mixing_follows_numpy_2(other, expected):
    a = Tensor(np.ones(3), dtype=F32, requires_grad=True)
    other = here(other) if isinstance(other, np.ndarray) else other   # where a lives
    out = a * other
    assert out.dtype == (np.ones(3, dtype=F32) * other).dtype == expected
    out.sum().backward()
    assert a.grad.dtype == F32


def test_gradients_have_their_tensors_shape_and_dtype_and_own_memory():
    a = Tensor(np.ones((2, 1)), dtype=F32, requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    upstream = np.ones((2, 3))
    out = a * b
    out.backward(upstream)
    assert a.grad.shape == (2, 1) and a.grad.dtype == F32
    assert b.grad.shape == (3,) and b.grad.dtype == np.float64
    for left, right in [(a.grad, b.grad), (a.grad, upstream), (b.grad, upstream), (b.grad, b.data)]:
        assert not np.shares_memory(left, right)
    x = Tensor(np.ones(4), requires_grad=True)
    x.reshape(2, 2).backward(upstream[:, :2])
    assert not np.shares_memory(x.grad, upstream)
    (gx,) = autonet.grad(x * 1.0, x, grad_outputs=np.ones(4))
    gx.data[0] = 99.0
    assert x.grad[0] == 1.0


def test_layers_and_optimizers_keep_float32():
    model = nn.Linear(3, 2, rng=0)
    for p in model.parameters():
        p.data = p.data.astype(F32)
    for optimizer in (SGD(model.parameters(), lr=0.1, momentum=0.9), Adam(model.parameters())):
        loss = nn.MSELoss()(model(np.ones((4, 3), dtype=F32)), np.zeros((4, 2), dtype=F32))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert loss.dtype == F32 and all(p.dtype == F32 and p.grad.dtype == F32 for p in model.parameters())
