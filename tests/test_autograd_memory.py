"""What a graph keeps: after backward no array of the forward pass is reachable from the loss (eager and
compiled), the graph still names its constants, and retain_graph keeps what a second backward needs."""
import gc
import types
import weakref

import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.optim import SGD


# ----------------------------------------------------------------- memory after backward
_STOP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def _memory_of(array):
    while array.base is not None:
        array = array.base
    return array


def _arrays_reachable_from(*roots):
    """Every ndarray reachable from ``roots`` through instances (not classes, modules or
    functions, which lead everywhere)."""
    seen, found, stack = set(), [], list(roots)
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, _STOP):
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            found.append(item)
            if item.base is not None:
                stack.append(item.base)
        else:
            stack.extend(gc.get_referents(item))
    return found


def _small_cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(3, stride=2), nn.Dropout(0.5, rng=1), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 3, rng=2))


def _forward_arrays_left(model, kept):
    """Arrays reachable from ``kept`` that are neither the model's state nor the kept tensors'
    own values (a stand-in of one value broadcast to a shape holds no memory and passes)."""
    own = [t.data for t in list(model.parameters()) + list(model.buffers()) + list(kept)]
    own += [p.grad for p in model.parameters() if p.grad is not None]
    allowed = {id(_memory_of(a)) for a in own}
    return [(a.shape, a.dtype) for a in _arrays_reachable_from(*kept)
            if id(_memory_of(a)) not in allowed and _memory_of(a).size > 1]


class _LastStep(nn.Module):
    """An LSTM's (seq, batch, 4) output read at its last step, as class scores."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 4, num_layers=2, rng=0)
        self.head = nn.Linear(4, 3, rng=1)

    def forward(self, x):
        output, _ = self.lstm(x)
        return self.head(output[-1])


class _Attending(nn.Module):
    """A transformer encoder layer over (batch, seq, 8), its first position as class scores."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.25,
                                                  batch_first=True, rng=0)
        self.head = nn.Linear(8, 3, rng=1)

    def forward(self, x):
        return self.head(self.encoder(x)[:, 0])


# each model, and the shape of a batch of 5 for it
MODELS = {"cnn": (_small_cnn, (5, 2, 7, 7)), "lstm": (_LastStep, (6, 5, 2)),
          "attention": (_Attending, (5, 4, 8))}


@pytest.mark.host_only("host labels with device inputs: refused on a device")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_after_backward_no_forward_array_is_reachable_from_the_loss(name):
    make, shape = MODELS[name]
    rng = np.random.default_rng(0)
    model, losses, batches = make(), [], []
    for _ in range(3):                                   # a loop that keeps its losses
        x = Tensor(rng.standard_normal(shape))
        batches.append(weakref.ref(x.data))
        loss = F.cross_entropy(model(x), rng.integers(0, 3, 5))
        loss.backward()
        losses.append(loss)
        del x, loss
    gc.collect()
    assert [batch() for batch in batches] == [None] * 3   # the graph kept no batch alive
    assert _forward_arrays_left(model, losses) == []      # nor im2col matrices, masks, activations


def test_after_backward_the_graph_still_names_and_shapes_its_constants():
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    x = Tensor(np.arange(6.0).reshape(2, 3), name="X")
    loss = (x @ w).sum()
    loss.backward()
    del x
    gc.collect()
    constant = loss.grad_fn.inputs[0].inputs[0]
    assert constant.name == "X" and constant.shape == (2, 3) and constant.dtype == np.float64
    assert _memory_of(constant.data).size == 1           # a stand-in, not the batch


@pytest.mark.host_only("host labels with device inputs: refused on a device")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_steps_keep_no_forward_array_either(name):
    make, shape = MODELS[name]
    rng = np.random.default_rng(1)
    model = make()
    optimizer = SGD(model.parameters(), lr=0.1)

    def step(x, labels):
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    compiled, losses, batches = autonet.compile(step), [], []
    for _ in range(4):
        x = Tensor(rng.standard_normal(shape))
        batches.append(weakref.ref(x.data))
        losses.append(compiled(x, rng.integers(0, 3, 5)))
        del x
    gc.collect()
    assert [batch() for batch in batches] == [None] * 4
    assert _forward_arrays_left(model, losses) == []


def test_retain_graph_keeps_what_a_second_backward_needs():
    model = _small_cnn()
    loss = F.cross_entropy(model(Tensor(np.ones((2, 2, 7, 7)))), [0, 1])
    loss.backward(retain_graph=True)
    first = [p.grad.copy() for p in model.parameters()]
    loss.backward()
    for p, g in zip(model.parameters(), first):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)
