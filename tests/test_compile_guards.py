"""compile v3: what the step reads besides its arguments is guarded, and what compiles now.

Each test runs a step eagerly in one world and compiled in a twin world and
compares them bit for bit, or checks the ``CompileError`` a replay could not
honour. The differential fuzzer over the same guards is test_compile_guards_fuzz.py.
"""
import collections
import functools

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import CompileError, Tensor
from autonet.nn.utils import clip_grad_norm_
from autonet.optim import SGD


def _same(a, b):
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _twins(make, calls, between=lambda state, call: None):
    """Run ``make()``'s step eagerly and compiled, ``calls`` times; ``between`` mutates each
    world's state before every call. Returns the compiled step."""
    eager_state, eager = make()
    compiled_state, step = make()
    compiled = autonet.compile(step)
    for call in range(calls):
        between(eager_state, call)
        between(compiled_state, call)
        _same(compiled().data, eager().data)
        for a, b in zip(eager_state["tensors"], compiled_state["tensors"]):
            _same(a.data, b.data)
            assert (a.grad is None) == (b.grad is None)
            if a.grad is not None:
                _same(a.grad, b.grad)
    return compiled


def _quadratic(extra):
    """A one-parameter step whose loss adds ``extra(w, state)``."""
    def make():
        w = Tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
        state = {"tensors": [w], "optimizer": SGD([w], lr=0.1)}

        def step():
            loss = (w * w).sum() + extra(w, state)
            state["optimizer"].zero_grad()
            loss.backward()
            state["optimizer"].step()
            return loss

        return state, step

    return make


class _Decay(SGD):
    def step(self):
        for group in self.param_groups:
            group["lr"] *= 0.5
        super().step()


def test_an_optimizer_subclass_replays_its_own_step():
    def make():
        w = Tensor(np.array([1.0, -2.0]), requires_grad=True)
        optimizer = _Decay([w], lr=0.4)

        def step():
            loss = (w * w).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return {"tensors": [w], "optimizer": optimizer}, step

    compiled = _twins(make, 5)
    assert len(compiled.programs) == 1
    # by hand: w <- w - lr * 2w with lr 0.2, 0.1, 0.05, 0.025, 0.0125
    expected = np.array([1.0, -2.0])
    for lr in (0.2, 0.1, 0.05, 0.025, 0.0125):
        expected = expected - lr * 2 * expected
    state, step = make()
    compiled = autonet.compile(step)
    for _ in range(5):
        compiled()
    np.testing.assert_allclose(state["tensors"][0].data, expected, rtol=1e-15)


@pytest.mark.parametrize("read", [lambda a: a[0], lambda a: a.sum(), lambda a: a[1:].mean(),
                                  lambda a: float(a[2])])
def test_scalars_taken_from_an_outside_ndarray_are_never_stale(read):
    table = {}

    def make():
        array = np.array([1.0, 2.0, 3.0])
        make.arrays.append(array)
        return _quadratic(lambda w, state: (w * read(array)).sum())()

    make.arrays = []

    def change(state, call):
        for array in make.arrays:
            array[call % 3] += 0.5

    compiled = _twins(make, 6, change)
    assert len(compiled.programs) == 6   # read as a Python value: each new content is a trace
    del table


@pytest.mark.host_only("Tensor(host array) in a step moves it to the device double each call")
def test_an_outside_ndarray_read_whole_by_an_op_is_read_afresh_without_retracing():
    def make():
        array = np.array([1.0, 2.0, 3.0])
        state, step = _quadratic(lambda w, state: (w * Tensor(array)).sum())()
        state["array"] = array
        return state, step

    compiled = _twins(make, 4, lambda state, call: state["array"].__setitem__(0, call))
    assert len(compiled.programs) == 1


def test_retain_graph_with_two_backward_passes_over_one_graph():
    def make():
        w = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
        optimizer = SGD([w], lr=0.1)

        def step():
            loss = (w * w * w).sum()
            optimizer.zero_grad()
            loss.backward(retain_graph=True)
            loss.backward()    # gradients add up: 2 * 3 w**2
            optimizer.step()
            return loss

        return {"tensors": [w]}, step

    compiled = _twins(make, 4)
    state, step = make()
    autonet.compile(step)()
    np.testing.assert_array_equal(state["tensors"][0].grad, 6 * np.array([1.0, 4.0, 9.0]))
    assert len(compiled.programs) == 1


_COUNT = {"calls": 0}


def test_a_counter_changed_inside_the_step_retraces_then_names_the_change():
    history = []
    _COUNT["calls"] = 0
    w = Tensor(np.ones(2), requires_grad=True)

    def step():
        _COUNT["calls"] += 1
        history.append(1)
        return (w * _COUNT["calls"]).sum() + len(history)

    compiled = autonet.compile(step)
    for call in range(compiled.MAX_PROGRAMS):
        assert compiled().item() == 2 * (call + 1) + call + 1   # as eager: never a stale count
    with pytest.raises(CompileError, match=r"MAX_PROGRAMS.*'calls'\] is no longer 0"):
        compiled()


def test_a_global_changed_between_calls_retraces():
    w = Tensor(np.ones(2), requires_grad=True)
    globals()["_SCALE"] = 2.0

    @autonet.compile
    def step():
        return (w * _SCALE).sum()

    assert step().item() == 4.0
    globals()["_SCALE"] = 3.0
    assert step().item() == 6.0
    assert "the global '_SCALE'" in step.programs[0].fits(())


def test_batch_norm_momentum_and_dropout_p_changed_between_calls():
    def make():
        model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4), nn.Dropout(0.5, rng=1),
                              nn.Linear(4, 1, rng=2))
        optimizer = SGD(model.parameters(), lr=0.1)
        x = np.random.default_rng(0).normal(size=(6, 3))

        def step():
            loss = model(Tensor(x)).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return {"tensors": list(model.parameters()) + [model[1].running_mean], "model": model}, step

    def change(state, call):
        state["model"][1].momentum = (0.1, 0.5, 0.5, 0.9)[call]
        state["model"][2].p = (0.5, 0.5, 0.0, 0.25)[call]

    compiled = _twins(make, 4, change)
    assert len(compiled.programs) == 4


def test_a_dict_entry_replaced_by_a_new_tensor_gets_the_gradient():
    def make():
        weights = {"w": Tensor(np.ones(2), requires_grad=True)}

        def step():
            loss = (weights["w"] * 3.0).sum()
            loss.backward()
            return loss

        return {"tensors": [], "weights": weights}, step

    eager_state, eager = make()
    state, step = make()
    compiled = autonet.compile(step)
    compiled(), eager()
    new = Tensor(np.full(2, 2.0), requires_grad=True)
    state["weights"]["w"] = new
    compiled()
    np.testing.assert_array_equal(new.grad, [3.0, 3.0])


def test_constructors_inside_a_step_compile():
    def make():
        w = Tensor(np.array([1.0, -1.0, 2.0]), requires_grad=True)

        def step():
            h = autonet.zeros(3) + autonet.ones(3) * autonet.full(3, 0.5) + autonet.arange(3)
            loss = ((w + h) * w).sum() + autonet.eye(3).sum() + autonet.linspace(0, 1, 3).sum()
            loss.backward()
            return loss

        return {"tensors": [w]}, step

    compiled = _twins(make, 3)
    assert len(compiled.programs) == 1


@pytest.mark.host_only("reads .data in the step's code (marked views are the CPU's)")
def test_a_constructor_filled_from_a_tensors_data_is_refused():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    @autonet.compile
    def step():
        return (w * autonet.full(2, w.data.sum())).sum()

    with pytest.raises(CompileError):
        step()


def test_a_compiled_step_called_inside_another_is_inlined():
    def make(inner_compiled):
        w = Tensor(np.array([1.0, -1.0]), requires_grad=True)
        inner = lambda: (w * w).sum()   # noqa: E731
        inner = autonet.compile(inner) if inner_compiled else inner
        optimizer = SGD([w], lr=0.1)

        def step():
            loss = inner() * 3.0
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return w, step, inner

    w_eager, eager, _ = make(False)
    w, step, inner = make(True)
    compiled = autonet.compile(step)
    for _ in range(3):
        _same(compiled().data, eager().data)
        _same(w.data, w_eager.data)
    assert inner.programs == []   # its ops are the outer trace's


@pytest.mark.parametrize("read", [lambda t: t.item(), lambda t: float(t), lambda t: bool(t > 0)])
def test_value_reads_say_data_dependent_python_cannot_be_replayed(read):
    w = Tensor(np.array([1.0]), requires_grad=True)

    @autonet.compile
    def step():
        loss = (w * 2).sum()
        return loss * 2 if read(loss) else loss

    with pytest.raises(CompileError, match="data-dependent Python cannot be replayed.*autonet.where"):
        step()


def test_the_norm_clip_grad_norm_returns_refuses_to_be_used_but_may_be_ignored():
    def make(use):
        w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
        optimizer = SGD([w], lr=0.1)

        def step():
            loss = (w * w).sum()
            optimizer.zero_grad()
            loss.backward()
            norm = clip_grad_norm_([w], 1.0)
            optimizer.step()
            return loss * norm if use else loss

        return {"tensors": [w]}, step

    _twins(lambda: make(False), 3)
    with pytest.raises(CompileError, match="number returned by a replayed call.*clip_grad_norm_"):
        autonet.compile(make(True)[1])()


@pytest.mark.host_only("labels are host arrays")
def test_an_exception_inside_a_replay_leaves_the_state_as_eager_mode_does():
    def make():
        model = nn.Linear(3, 4, rng=0)
        optimizer = SGD(model.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss()
        x = Tensor(np.ones((2, 3)))

        def step(labels):
            logits = model(x)
            optimizer.zero_grad()
            loss = loss_fn(logits, labels)
            loss.backward()
            optimizer.step()
            return loss

        return model, step

    eager_model, eager = make()
    model, step = make()
    compiled = autonet.compile(step)
    good, bad = np.array([0, 1]), np.array([0, 9])
    for labels in (good, good, bad, good):
        outcomes = []
        for function in (eager, compiled):
            try:
                function(labels)
                outcomes.append(None)
            except (ValueError, IndexError) as error:
                outcomes.append(type(error))
        assert outcomes[0] == outcomes[1]
        for a, b in zip(eager_model.parameters(), model.parameters()):
            _same(a.data, b.data)
            assert (a.grad is None) == (b.grad is None)


def test_the_cache_limit_error_says_what_changed_and_what_to_do():
    w = Tensor(np.ones(2), requires_grad=True)

    @autonet.compile
    def step(k):
        return (w * k).sum()

    for k in range(step.MAX_PROGRAMS):
        step(float(k))
    with pytest.raises(CompileError, match=r"8 different call signatures.*Pass numbers that change"):
        step(99.0)


@pytest.mark.parametrize("second_order", ["grad", "create_graph"])
def test_second_order_steps_compile_or_say_what_to_use(second_order):
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    def step():
        loss = (w * w * w).sum()
        if second_order == "grad":
            (g,) = autonet.grad(loss, [w], create_graph=True)
        else:
            loss.backward(create_graph=True)
            g = w.grad
        return (g * g).sum()

    if second_order == "grad":   # g = 3 w^2: sum(9 w^4) = 9 + 144
        assert autonet.compile(step)().item() == step().item() == 153.0
        return
    with pytest.raises(CompileError, match=r"backward\(create_graph=True\).*autonet.grad"):
        autonet.compile(step)()


def test_attributes_of_slotted_objects_and_properties_are_guarded():
    class Config:
        __slots__ = ("gain",)

        def __init__(self):
            self.gain = 2.0

    class Scaled:
        def __init__(self):
            self._scale = 3.0

        @property
        def scale(self):
            return self._scale

    config, scaled = Config(), Scaled()
    w = Tensor(np.ones(2), requires_grad=True)

    @autonet.compile
    def step():
        return (w * config.gain * scaled.scale).sum()

    assert step().item() == 12.0
    config.gain = 5.0
    assert step().item() == 30.0
    scaled._scale = 1.0
    assert step().item() == 10.0
    assert len(step.programs) == 3


def test_containers_nested_too_deep_to_guard_are_refused():
    chain = []
    for _ in range(300):
        chain = [chain]
    w = Tensor(np.ones(2), requires_grad=True)

    @autonet.compile
    def step():
        return (w * len(chain)).sum()

    with pytest.raises(CompileError, match="nested 200 objects deep"):
        step()


def test_a_layer_added_to_a_model_retraces():
    def make():
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.first = nn.Linear(2, 2, rng=0)

            def forward(self, x):
                for name, layer in self.named_children():   # reads its layers by iterating
                    x = layer(x)
                return x

        model = Net()
        optimizer = SGD(model.parameters(), lr=0.1)
        x = Tensor(np.array([[1.0, -1.0]]))

        def step():
            loss = (model(x) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return {"tensors": list(model.parameters()), "model": model}, step

    def grow(state, call):
        if call == 2:
            state["model"].second = nn.Linear(2, 2, rng=1)

    compiled = _twins(make, 4, grow)
    assert len(compiled.programs) == 2


def test_a_large_outside_array_read_in_python_is_refused_one_a_module_keeps_unread_is_not():
    big = np.ones(20000)
    w = Tensor(np.ones(2), requires_grad=True)
    model = nn.Linear(2, 1, rng=0)
    model.dataset = np.zeros(20000)   # kept on the module, never read by the step

    @autonet.compile
    def step():
        return (model(w.reshape(1, 2)) * big[0]).sum()

    step()
    with pytest.raises(CompileError, match="an ndarray of 160000 bytes.*read by the step in Python"):
        for _ in range(step.MAX_PROGRAMS):
            step()

    @autonet.compile
    def step_without_reads():
        return model(w.reshape(1, 2)).sum()

    for _ in range(3):
        step_without_reads()
    assert len(step_without_reads.programs) == 1


class _ClassScaled(nn.Module):
    """A layer whose gain is a class attribute (read as ``self.GAIN``), and a property of it."""
    GAIN = 2.0
    OFFSETS = (0.0, 1.0)

    def forward(self, x):
        return x * self.GAIN + self.OFFSETS[1]

    @property
    def doubled(self):
        return 2 * self.GAIN


def test_class_attributes_read_through_self_are_guarded_as_instance_ones():
    """``self.GAIN`` found on the class (a float, a tuple) was not guarded: setting
    ``_ClassScaled.GAIN = 3.0`` replayed the trace's 2.0, silently unlike eager mode."""
    layer = _ClassScaled()
    w = Tensor(np.ones(2), requires_grad=True)

    @autonet.compile
    def step():
        return (layer(w) * layer.doubled).sum()

    try:
        assert step().item() == 2 * (2.0 + 1.0) * 4.0
        _ClassScaled.GAIN = 3.0
        assert step().item() == 2 * (3.0 + 1.0) * 6.0   # by hand: sum of (w * 3 + 1) * (2 * 3)
        _ClassScaled.OFFSETS = (0.0, -1.0)
        assert step().item() == 2 * (3.0 - 1.0) * 6.0
        assert len(step.programs) == 3
        assert "_ClassScaled.OFFSETS is another object" in step.programs[1].fits(())
    finally:
        _ClassScaled.GAIN, _ClassScaled.OFFSETS = 2.0, (0.0, 1.0)


def test_default_arguments_of_the_step_and_of_functions_it_calls_are_guarded():
    """Values of omitted arguments are read on every eager call: rebinding ``__defaults__`` or
    ``__kwdefaults__`` replayed the trace's values."""
    w = Tensor(np.ones(2), requires_grad=True)

    def scaled(t, gain=2.0, *, shift=0.0):
        return t * gain + shift

    @autonet.compile
    def step(t=w):
        return scaled(t).sum()

    assert step().item() == 4.0
    scaled.__defaults__ = (5.0,)
    assert step().item() == 10.0
    scaled.__kwdefaults__ = {"shift": 1.0}
    assert step().item() == 12.0
    step.step.__defaults__ = (Tensor(np.full(2, 2.0), requires_grad=True),)
    assert step().item() == 22.0   # by hand: sum of 2 * 5 + 1
    assert len(step.programs) == 4
    assert "the default arguments of test_default_arguments" in step.programs[0].fits(())


_Config = collections.namedtuple("_Config", "gains")


class _Gains(dict):
    pass


def _holders():
    """``(holder, read, change)``: containers the step reads a gain of 2.0 from, and a change
    of it to 5.0 in place; each was read by the replay as traced (2.0), unlike eager mode."""
    partial = functools.partial(lambda t, gain: t * gain, gain=2.0)
    return {
        "functools.partial's keywords": (partial, lambda h, w: h(w),
                                         lambda h: h.keywords.__setitem__("gain", 5.0)),
        "a namedtuple's list": (_Config([2.0]), lambda h, w: w * h.gains[0],
                                lambda h: h.gains.__setitem__(0, 5.0)),
        "an OrderedDict": (collections.OrderedDict(gain=2.0), lambda h, w: w * h["gain"],
                           lambda h: h.__setitem__("gain", 5.0)),
        "a defaultdict": (collections.defaultdict(float, gain=2.0), lambda h, w: w * h["gain"],
                          lambda h: h.__setitem__("gain", 5.0)),
        "a dict subclass": (_Gains(gain=2.0), lambda h, w: w * h["gain"],
                            lambda h: h.__setitem__("gain", 5.0)),
        "a deque": (collections.deque([2.0]), lambda h, w: w * h[0], lambda h: h.__setitem__(0, 5.0)),
        "a set": ({2.0}, lambda h, w: w * max(h), lambda h: (h.clear(), h.add(5.0))),
    }


@pytest.mark.parametrize("kind", list(_holders()))
def test_containers_of_library_and_subclass_types_are_guarded_by_their_entries(kind):
    holder, read, change = _holders()[kind]
    w = Tensor(np.ones(2), requires_grad=True)

    @autonet.compile
    def step():
        return read(holder, w).sum()

    assert step().item() == 4.0
    change(holder)
    assert step().item() == 10.0   # by hand: 2 elements times 5.0
    assert len(step.programs) == 2


def test_attributes_read_by_getattr_with_a_literal_name_are_guarded():
    """``getattr(config, "gain")`` names ``gain`` in a constant, not in an attribute load: it
    was not guarded, and a changed gain replayed the traced one."""
    class Config:
        gain = 2.0

    config = Config()
    w = Tensor(np.ones(2), requires_grad=True)

    @autonet.compile
    def step():
        return (w * getattr(config, "gain") * (3.0 if hasattr(config, "bias") else 1.0)).sum()

    assert step().item() == 4.0
    config.gain = 5.0
    assert step().item() == 10.0
    config.bias = None
    assert step().item() == 30.0   # by hand: 2 elements times 5 times 3
    assert len(step.programs) == 3
