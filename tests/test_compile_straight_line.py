"""The replay as generated straight-line Python: readable, inspectable, and still eager's twin.

A compiled step's replay is one generated function (``step.source``) named after the step,
whose lines tracebacks show; 0-d results become arrays as eager mode makes them, and the
replay equals eager mode bit for bit over calls with changing inputs.
"""
import gc
import linecache
import traceback

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.optim import SGD


def _same(a, b):
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _classifier_step():
    model = nn.Linear(3, 4, rng=0)
    optimizer = SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    x = Tensor(np.linspace(-1.0, 1.0, 6).reshape(2, 3))

    def train_step(labels):
        loss = loss_fn(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return model, train_step


@pytest.mark.host_only("labels are host arrays")
def test_the_generated_source_is_named_after_the_step_and_shown_in_tracebacks():
    _, train_step = _classifier_step()
    compiled = autonet.compile(train_step)
    assert compiled.source is None   # nothing traced yet
    compiled(np.array([0, 1]))
    source = compiled.source
    assert source == compiled.programs[0].source
    assert "def replay_train_step(args):" in source
    assert "def replay_train_step_backward0():" in source
    replay = compiled.programs[0].replay
    assert replay.__name__ == "replay_train_step"
    assert "train_step" in replay.__code__.co_filename
    try:
        compiled(np.array([0, 9]))   # a label out of range raises inside the replay
    except ValueError:
        text = traceback.format_exc()
    else:
        raise AssertionError("the out-of-range label was not refused")
    assert "in replay_train_step" in text
    # the generated line itself, as linecache gives it to the traceback
    assert "cross_entropy_forward0(" in text


def test_the_generated_lines_leave_linecache_with_their_program():
    w = Tensor(np.ones(3), requires_grad=True)

    def square_step():
        loss = (w * w).sum()
        loss.backward()
        return loss

    compiled = autonet.compile(square_step)
    compiled()
    filename = compiled.programs[0].replay.__code__.co_filename
    assert linecache.getline(filename, 1).startswith("def ")
    del compiled
    gc.collect()
    assert filename not in linecache.cache


def _zero_d_twins(loss_of):
    """Eager and compiled twins of a step whose loss is ``loss_of(w, x)``; returns both."""
    def make():
        w = Tensor(np.array([0.3, -1.2, 0.7]), requires_grad=True)
        optimizer = SGD([w], lr=0.05)

        def step(x):
            loss = loss_of(w, x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return w, step

    (w_eager, eager), (w_compiled, step) = make(), make()
    return (w_eager, eager), (w_compiled, autonet.compile(step))


@pytest.mark.parametrize("loss_of", [
    lambda w, x: (w * x).sum() * 0.5,                  # 0-d outputs no formula saves
    lambda w, x: ((w * x).sum() ** 3).exp() * 0.25,    # 0-d outputs pow and exp save
    lambda w, x: (w * x).sum().tanh().sigmoid(),       # ... and tanh, sigmoid
], ids=["unsaved", "pow-exp", "tanh-sigmoid"])
def test_zero_d_results_replay_bit_for_bit(loss_of):
    (w_eager, eager), (w_compiled, compiled) = _zero_d_twins(loss_of)
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = Tensor(rng.uniform(-0.5, 0.5, 3))
        expected, got = eager(x), compiled(x)
        assert got.data.shape == () and type(got.data) is type(expected.data)   # an array
        _same(got.data, expected.data)
        _same(w_compiled.data, w_eager.data)
        _same(w_compiled.grad, w_eager.grad)
    # the loss is a fresh array each call: a later call must not change an earlier result
    first = compiled(Tensor(np.full(3, 0.1)))
    kept = first.data.copy()
    compiled(Tensor(np.full(3, -0.4)))
    _same(first.data, kept)


def test_the_value_of_a_zero_d_result_matches_an_independent_formula():
    """``0.5 * sum(w * x)`` and its gradient ``0.5 * x``, written out in NumPy."""
    (_, _), (w, compiled) = _zero_d_twins(lambda w, x: (w * x).sum() * 0.5)
    start = w.data.copy()
    x = np.array([0.2, -0.1, 0.4])
    loss = compiled(Tensor(x))
    assert loss.item() == pytest.approx(0.5 * float(start @ x), rel=1e-15)
    loss = compiled(Tensor(x))   # the replay
    after_one_step = start - 0.05 * 0.5 * x
    assert loss.item() == pytest.approx(0.5 * float(after_one_step @ x), rel=1e-15)
    np.testing.assert_allclose(w.grad, 0.5 * x, rtol=1e-15)
