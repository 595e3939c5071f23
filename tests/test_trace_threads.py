"""Tracing watches ``.data`` / ``.grad`` through a per-thread context, never by patching Tensor.

While one thread traces a step, another thread's eager work is untouched: its reads of
``.data`` and ``.grad`` are plain arrays it may branch on, its writes are allowed, and none of
its ops reach the trace. ``Tensor.data`` and ``Tensor.grad`` stay the same descriptors
throughout.
"""
import threading
import traceback

import numpy as np
import pytest

import autonet
from autonet import CompileError, Tensor
from autonet.compiler.marks import Marked
from autonet.optim import SGD


def _same(a, b):
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _make(pause=None):
    """A parameter, and a step that optionally waits (``pause``: (started, resume) events)."""
    w = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    optimizer = SGD([w], lr=0.1)

    def step(x):
        loss = ((w * x).tanh() ** 2).sum()
        if pause is not None:
            started, resume = pause
            started.set()              # another thread runs eager work now ...
            assert resume.wait(10)     # ... while this trace is half done
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return w, step


def _op_names(program):
    return [getattr(getattr(i, "fn", None), "name", type(i).__name__) for i in program.instructions]


def test_a_trace_in_one_thread_does_not_observe_another_threads_eager_work():
    started, resume = threading.Event(), threading.Event()
    w, step = _make((started, resume))
    compiled = autonet.compile(step)
    x = Tensor(np.array([1.0, 0.5, -0.25]))
    errors = []

    def trace():
        try:
            compiled(x)
        except BaseException:   # reported by the main thread
            errors.append(traceback.format_exc())

    tracing = threading.Thread(target=trace)
    tracing.start()
    try:
        assert started.wait(10), errors
        # eager work here, while the other thread's trace is running
        v = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        assert type(v.data) is np.ndarray and type(w.data) is np.ndarray   # not marked
        assert float(v.data.sum()) == 3.0                                   # a value read is fine
        v.grad = np.array([10.0, 20.0])                                     # so is a write
        loss = (v * v * 3.0).sum()
        loss.backward()
        _same(v.grad, np.array([10.0 + 6.0, 20.0 + 12.0]))                  # d(3 v^2)/dv = 6 v
        assert loss.item() == 15.0
    finally:
        resume.set()
        tracing.join(10)
    assert not errors, errors

    # the trace holds its own thread's work only: the same as a trace made alone
    _, alone = _make()
    alone = autonet.compile(alone)
    alone(Tensor(np.array([1.0, 0.5, -0.25])))
    assert _op_names(compiled.programs[0]) == _op_names(alone.programs[0])

    # and it replays as eager mode runs the step
    w_eager, eager = _make()
    eager(Tensor(np.array([1.0, 0.5, -0.25])))
    for value in (0.3, -0.7, 1.1):
        x = Tensor(np.full(3, value))
        _same(compiled(x).data, eager(x).data)
        _same(w.data, w_eager.data)
        _same(w.grad, w_eager.grad)


def test_the_tracing_thread_sees_marked_reads_and_refused_writes_without_patched_descriptors():
    data_descriptor, grad_descriptor = Tensor.__dict__["data"], Tensor.__dict__["grad"]
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = {}

    @autonet.compile
    def reads(x):
        seen["data"], seen["descriptors"] = w.data, (Tensor.__dict__["data"], Tensor.__dict__["grad"])
        return (w * x).sum()

    reads(Tensor(np.ones(2)))
    assert isinstance(seen["data"], Marked)
    assert seen["descriptors"] == (data_descriptor, grad_descriptor)   # nothing swapped
    assert type(w.data) is np.ndarray                                  # the trace is over

    @autonet.compile
    def branches(x):
        if w.data.sum() > 0:   # a Python branch on values: refused while tracing
            return (w * x).sum()
        return x.sum()

    with pytest.raises(CompileError, match="value"):
        branches(Tensor(np.ones(2)))

    @autonet.compile
    def writes(x):
        w.grad = np.zeros(2)
        return (w * x).sum()

    with pytest.raises(CompileError, match="sets a tensor's .grad"):
        writes(Tensor(np.ones(2)))
    assert w.grad is None   # refused before the write


def test_a_trace_that_fails_leaves_no_watch_behind():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    @autonet.compile
    def fails(x):
        raise RuntimeError("inside the step")

    with pytest.raises(RuntimeError, match="inside the step"):
        fails(Tensor(np.ones(2)))
    assert type(w.data) is np.ndarray
    w.grad = np.ones(2)   # a write outside any trace is allowed again
    _same(w.grad, np.ones(2))
