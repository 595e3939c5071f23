"""autonet.compile: replays equal eager mode bit for bit, and changes are refused clearly."""
import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import CompileError, Tensor, notebook
from autonet.models import TwoLayerNNClassifier
from autonet.optim import SGD, Adam
from device_double import passed


def _xor_setup():
    model = TwoLayerNNClassifier(rng=3)
    optimizer = SGD(model.parameters(), lr=1.0)
    X, Y = Tensor(notebook.X), Tensor(notebook.Y_XOR)

    def step():
        loss = 0.5 * ((Y - model(X)) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return model, step


def _mlp_setup(dtype=np.float64):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(6, 16, rng=rng), nn.Tanh(), nn.Linear(16, 8, rng=rng), nn.ReLU(),
                          nn.Linear(8, 3, rng=rng))
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    optimizer = Adam(model.parameters(), lr=0.01, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, labels):
        loss = loss_fn(model(x), labels)
        model.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return model, step


@pytest.mark.parametrize("setup", [_xor_setup])
def test_compiled_xor_equals_eager_bit_for_bit(setup):
    eager_model, eager_step = setup()
    compiled_model, compiled = setup()
    compiled = autonet.compile(compiled)
    for _ in range(300):
        eager_loss = eager_step()
        compiled_loss = compiled()
        assert compiled_loss.data == eager_loss.data
    for a, b in zip(eager_model.parameters(), compiled_model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.grad, b.grad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_mlp_with_arguments_equals_eager(dtype):
    eager_model, eager_step = _mlp_setup(dtype)
    compiled_model, step = _mlp_setup(dtype)
    compiled = autonet.compile(step)
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = Tensor(rng.standard_normal((10, 6)), dtype=dtype)
        labels = passed(rng.integers(0, 3, 10))
        np.testing.assert_array_equal(compiled(x, labels).data, eager_step(x, labels).data)
    for a, b in zip(eager_model.parameters(), compiled_model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
        assert b.dtype == dtype and b.grad.dtype == dtype


def test_replayed_gradients_are_fresh_arrays():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)

    @autonet.compile
    def step():
        a.zero_grad()
        b.zero_grad()
        (a + b).sum().backward()        # add hands one array to both leaves

    for _ in range(3):
        step()
        assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)
        np.testing.assert_array_equal(a.grad, [1.0, 1.0])


def test_grad_arrays_baked_into_the_replay_are_refused():
    w = Tensor([1.0, -2.0], requires_grad=True)

    def manual(weight):
        loss = (weight * weight).sum()
        weight.zero_grad()
        loss.backward()
        with autonet.no_grad():
            weight -= Tensor(weight.grad) * 0.25   # copied into a Tensor: an op input, not .grad itself
        return loss

    reference = Tensor(w.data, requires_grad=True)
    with pytest.raises(CompileError, match=r"\.grad"):
        autonet.compile(manual)(w)

    def manual_operand(weight):
        loss = (weight * weight).sum()
        weight.zero_grad()
        loss.backward()
        with autonet.no_grad():
            weight -= 0.25 * weight.grad
        weight.zero_grad()    # even when .grad is gone by the end of the step

    with pytest.raises(CompileError, match=r"\.grad"):
        autonet.compile(manual_operand)(w)
    # the supported way: an optimizer
    optimizer = SGD([w], lr=0.25)
    eager_optimizer = SGD([reference], lr=0.25)

    def with_optimizer(weight, opt):
        loss = (weight * weight).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    w.data[:] = reference.data
    step = autonet.compile(lambda: with_optimizer(w, optimizer))
    for _ in range(5):
        step()
        with_optimizer(reference, eager_optimizer)
    np.testing.assert_array_equal(w.data, reference.data)


def test_in_place_updates_under_no_grad_are_replayed():
    w = Tensor([1.0, -2.0], requires_grad=True)
    shift = Tensor([0.5, 0.5])

    @autonet.compile
    def step():
        nonlocal w, shift
        with autonet.no_grad():
            w -= shift * 2.0
            shift *= 0.5

    for _ in range(3):
        step()
    np.testing.assert_allclose(w.data, [1.0 - 1.0 - 0.5 - 0.25, -2.0 - 1.75])
    np.testing.assert_allclose(shift.data, [0.0625, 0.0625])


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_new_argument_shapes_and_dtypes_are_traced_again_up_to_the_cache_size():
    eager_model, eager = _mlp_setup()
    compiled_model, step = _mlp_setup()
    compiled = autonet.compile(step)
    rng = np.random.default_rng(1)
    # a new dtype: of the labels (a float32 batch into this float64 model is refused, contract v3)
    batches = [(10, np.int64), (4, np.int64), (10, np.int64), (4, np.int32), (10, np.int64)]
    for size, dtype in batches:
        x, labels = rng.normal(size=(size, 6)), rng.integers(0, 3, size).astype(dtype)
        assert compiled(Tensor(x), labels).data == eager(Tensor(x), labels).data
    assert len(compiled.programs) == 3
    for a, b in zip(eager_model.parameters(), compiled_model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(TypeError):
        compiled(x)   # traced again: the step itself takes two arguments
    for size in range(11, 11 + autonet.compiler.CompiledStep.MAX_PROGRAMS - 3):
        compiled(Tensor(np.ones((size, 6))), np.zeros(size, dtype=int))
    with pytest.raises(CompileError, match="8 different call signatures"):
        compiled(Tensor(np.ones((2, 6))), np.zeros(2, dtype=int))


def test_captured_tensor_changing_shape_is_traced_again():
    def make():
        w = Tensor(np.ones(3), requires_grad=True, name="w")
        optimizer = SGD([w], lr=0.1)

        def step():
            optimizer.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            optimizer.step()
            return loss

        return w, optimizer, step

    w_eager, opt_eager, eager = make()
    w, optimizer, step = make()
    compiled = autonet.compile(step)
    np.testing.assert_array_equal(compiled().data, eager().data)
    for twin in (w, w_eager):
        twin.data = np.arange(4.0)
    np.testing.assert_array_equal(compiled().data, eager().data)   # not the 3-element trace
    np.testing.assert_array_equal(w.data, w_eager.data)
    assert len(compiled.programs) == 2
    assert "'w' read by the step is no longer (3,)" in compiled.programs[0].fits(())


@pytest.mark.parametrize("read", [lambda t: t.item(), lambda t: float(t), lambda t: bool(t.sum() > 0),
                                  lambda t: t.numpy(), lambda t: np.asarray(t)])
def test_value_dependent_python_is_refused_while_tracing(read):
    w = Tensor([1.0], requires_grad=True)

    @autonet.compile
    def step():
        loss = (w * 2).sum()
        if read(loss):
            loss = loss * 2
        return loss

    with pytest.raises(CompileError, match="reads a tensor's value"):
        step()


def test_unsupported_autograd_features_are_refused():
    w = Tensor([1.0, 2.0], requires_grad=True)
    outside = w * 3   # computed before the step

    for body in (lambda: (w * w).sum().backward(create_graph=True),
                 lambda: (outside * 2).sum().backward()):
        with pytest.raises(CompileError):
            autonet.compile(body)()

    def retains():
        h = w * 2
        h.retain_grad()
        h.sum().backward()

    with pytest.raises(CompileError, match="retain_grad"):
        autonet.compile(retains)()
    with pytest.raises(CompileError, match="return"):
        autonet.compile(lambda: 3.0)()


def test_values_reads_outside_the_step_still_work():
    _, step = _xor_setup()
    compiled = autonet.compile(step)
    losses = [compiled().item() for _ in range(50)]
    assert losses[-1] < losses[0]
    assert (Tensor([1.0]) * 2).item() == 2.0   # tracing is over: reads are fine


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_arrays_computed_inside_the_step_are_refused_but_outside_ones_are_fine():
    w = Tensor([1.0, 2.0], requires_grad=True)
    offset = np.array([0.5, 0.5])   # made outside: a constant the step may use

    with pytest.raises(CompileError, match="NumPy"):
        autonet.compile(lambda: (w * np.ones(2)).sum())()
    with pytest.raises(CompileError, match="NumPy"):
        autonet.compile(lambda: autonet.where(w.data > 1, w, 0.0).sum())()
    step = autonet.compile(lambda: (w + offset).sum())
    assert step().item() == 4.0
    offset[:] = 1.0                 # the same array, new values: the replay sees them
    assert step().item() == 5.0


def test_a_step_may_return_a_tuple_of_tensors():
    w = Tensor([1.0, 2.0], requires_grad=True)
    step = autonet.compile(lambda: (w * 2.0, (w * w).sum()))
    for _ in range(2):
        doubled, total = step()
        assert doubled.data.tolist() == [2.0, 4.0] and total.item() == 5.0


def test_freezing_a_parameter_traces_again():
    eager_model, eager = _xor_setup()
    model, step = _xor_setup()
    compiled = autonet.compile(step)
    for frozen in (False, True, True, False, False):   # freezing a layer changes the backward pass
        for twin in (model, eager_model):
            twin.W0.requires_grad_(not frozen)
        np.testing.assert_array_equal(compiled().data, eager().data)
        for a, b in zip(model.parameters(), eager_model.parameters()):
            np.testing.assert_array_equal(a.data, b.data)
            assert (a.grad is None) == (b.grad is None)
    assert len(compiled.programs) == 2
    w = Tensor([1.0, 2.0], requires_grad=True)

    def step(x):
        loss = (x * w).sum()
        loss.backward()
        return loss

    by_argument = autonet.compile(step)
    by_argument(Tensor([1.0, 1.0]))
    x = Tensor([3.0, 4.0], requires_grad=True)       # another signature: traced again
    by_argument(x)
    by_argument(x)
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])   # two replays' worth, as eager
    assert len(by_argument.programs) == 2


def test_concurrent_calls_take_turns():
    import threading

    results = {}
    model, step = _xor_setup()
    compiled = autonet.compile(step)
    compiled()

    def worker(index):
        results[index] = [compiled().item() for _ in range(200)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reference_model, reference_step = _xor_setup()
    reference = [reference_step().item() for _ in range(401)][1:]
    assert sorted(results[0] + results[1]) == sorted(reference)


def test_number_arguments_are_guarded_by_value_and_never_alias_literals():
    w = Tensor([1.0, 2.0], requires_grad=True)

    def step(k):
        return (w ** 2).sum() * k        # a literal 2, and k traced as 2 first

    compiled = autonet.compile(step)
    for k in (2, 3, 2, 5, 3.5):
        assert compiled(k).item() == step(k).item()
    assert len(compiled.programs) == 4   # one trace per distinct number argument
    many = autonet.compile(lambda k: (w * k).sum())
    for k in range(autonet.compiler.CompiledStep.MAX_PROGRAMS):
        many(k)
    with pytest.raises(CompileError, match="call signatures"):
        many(100)


def test_constants_without_a_python_spelling_replay():
    import math

    w = Tensor([1.0, -2.0], requires_grad=True)

    def step():
        return (w * np.sqrt(2.0) + w.clip(-math.inf, 1.5) * np.float32(0.5)).sum()

    compiled = autonet.compile(step)
    assert [compiled().item() for _ in range(3)] == [step().item()] * 3


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_label_checks_run_on_every_replay():
    logits = Tensor(np.zeros((2, 3)), requires_grad=True)
    compiled = autonet.compile(lambda y: autonet.nn.functional.cross_entropy(logits, y))
    compiled(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        compiled(np.array([0, -1]))      # eager refuses; so must the replay


def test_detach_inside_a_step_follows_this_calls_values():
    def make():
        w = Tensor([1.0, 2.0], requires_grad=True)

        def step(x):
            y = x * w
            loss = (y.detach() * y).sum()     # detached: a constant of this call, not the trace's
            w.zero_grad()
            loss.backward()
            return loss

        return w, step

    w_eager, eager = make()
    w_compiled, compiled = make()
    compiled = autonet.compile(compiled)
    for value in (1.0, 2.0, -3.0):
        assert compiled(Tensor([value, value])).item() == eager(Tensor([value, value])).item()
        np.testing.assert_array_equal(w_compiled.grad, w_eager.grad)


def test_leaves_passed_as_arguments_get_this_calls_gradient():
    def step(p):
        loss = (p * p).sum()
        loss.backward()
        return loss

    compiled = autonet.compile(step)
    leaves = [Tensor([float(i)], requires_grad=True) for i in (1, 3, 5)]
    for leaf in leaves:
        compiled(leaf)
    assert [leaf.grad.tolist() for leaf in leaves] == [[2.0], [6.0], [10.0]]


def test_anomaly_mode_is_honoured_by_compiled_steps():
    x = Tensor([1.0, 0.0], requires_grad=True)
    compiled = autonet.compile(lambda: (x * 2.0).log().sum())
    with np.errstate(divide="ignore"):
        compiled()                        # traced: log(0) is -inf, silently, as in eager mode
    with autonet.detect_anomaly(), pytest.raises(FloatingPointError, match="log"):
        compiled()                        # the replay runs checked, as eager mode would


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_tensors_made_from_arguments_inside_the_step_read_this_calls_values():
    model = autonet.nn.Linear(2, 1, rng=0)
    by_array = autonet.compile(lambda x: model(x).sum())       # Linear wraps the ndarray
    by_tensor = autonet.compile(lambda x: (Tensor(x) * 2).sum())
    for value in (1.0, 2.0, -0.5):
        x = np.full((3, 2), value)
        assert by_array(x).item() == model(x).sum().item()
        assert by_tensor(Tensor(x)).item() == (Tensor(x) * 2).sum().item()


def _scaled_step(weight):
    def step(x, scale=1.0, shift=0.0, *, note=None):
        loss = ((weight * x * scale + shift) ** 2).sum()
        loss.backward()
        return loss
    return step


def test_keyword_arguments_are_placed_at_their_positions_and_replay_as_eager():
    """``step(x, shift=1.0)`` is ``step(x, 1.0, 1.0)`` with the default scale (it failed with
    ``__call__() got an unexpected keyword argument``); each keyword's value is guarded as a
    positional argument's."""
    eager_w, compiled_w = (Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True) for _ in range(2))
    eager, compiled = _scaled_step(eager_w), autonet.compile(_scaled_step(compiled_w))
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    calls = [((x,), {"scale": 2.0}), ((x,), {"scale": 2.0}), ((x,), {"shift": 1.0}),
             ((), {"shift": 1.0, "x": x}), ((x, 3.0), {"shift": -1.0})]
    for args, kwargs in calls:
        np.testing.assert_array_equal(compiled(*args, **kwargs).data, eager(*args, **kwargs).data)
        np.testing.assert_array_equal(compiled_w.grad, eager_w.grad)
    # by hand: sum((w x s + b)^2) at w = (0.5, -1, 2), x = (1, 2, 3), s = 3, b = -1
    assert compiled(x, 3.0, shift=-1.0).item() == 0.5 ** 2 + 7.0 ** 2 + 17.0 ** 2
    assert len(compiled.programs) == 3   # (x, 2.0), (x, 1.0, 1.0), (x, 3.0, -1.0)


def test_keyword_arguments_a_trace_cannot_place_are_refused_by_name():
    compiled = autonet.compile(_scaled_step(Tensor(np.ones(3), requires_grad=True)))
    x = Tensor(np.ones(3))
    with pytest.raises(TypeError, match="'note' is keyword-only.*positional parameter"):
        compiled(x, note="a")
    with pytest.raises(TypeError, match="step\\(\\) got an unexpected keyword argument 'bogus'"):
        compiled(x, bogus=1)
    with pytest.raises(TypeError, match="multiple values for argument 'scale'"):
        compiled(x, 2.0, scale=1.0)
    assert compiled.programs == []


def test_a_result_left_in_a_graph_that_reaches_a_differentiable_argument_is_refused():
    """A replay returns results outside any graph: ``func.grad`` of a compiled function gave
    zeros from the second call on (the first failed with ``'NoneType' object has no attribute
    '_data'``), and a backward outside the step lost the step's part. Refused while tracing;
    steps that run their backward inside, or whose arguments need no gradient, compile."""
    square = autonet.compile(lambda x: (x ** 2).sum())
    with pytest.raises(CompileError, match="returns a tensor in a graph.*argument 0.*backward"):
        autonet.func.grad(square)(Tensor([1.0, 2.0, 3.0]))
    with pytest.raises(CompileError, match="returns a tensor in a graph"):
        square(Tensor([1.0, 2.0], requires_grad=True))
    assert square.programs == []

    w = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    forward = autonet.compile(lambda x: (w * x).sum())   # an evaluation step: x needs no gradient
    for _ in range(2):
        assert forward(Tensor(np.array([3.0, 1.0]))).item() == 1.0

    def inner_step(x):
        loss = (w * x * x).sum()
        loss.backward()
        return loss
    compiled = autonet.compile(inner_step)
    for call in range(3):
        x = Tensor(np.array([3.0, 1.0]), requires_grad=True)
        assert compiled(x).item() == 7.0
        np.testing.assert_array_equal(x.grad, [6.0, -4.0])   # by hand: 2 w x
    assert len(compiled.programs) == 1


@pytest.mark.parametrize("backend", ["numpy", "fused"])
def test_backward_outside_the_step_through_its_result_refuses_on_every_call(backend):
    """PyTorch's habit of compiling the forward and differentiating outside: a replay has no
    graph into the step, so backward through its result raises, naming the fix, on the traced
    call too. Before, the traced call crashed (``'NoneType' object has no attribute '_data'``)
    and replays lost the step's part silently: w.grad [2, 4] where eager gives x + 2 w = [5, 9]."""
    if backend == "fused":
        pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed")
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([3.0, 5.0]))
    step = autonet.compile(lambda x: (w * x).sum(), backend=backend)
    for call in range(3):
        w.grad = None
        out = step(x)
        assert out.requires_grad and out.item() == 13.0   # by hand: 3 + 10
        with pytest.raises(RuntimeError, match="inside the compiled step"):
            (out + (w * w).sum()).backward()
        assert w.grad is None
    w.grad = None
    eager = (w * x).sum() + (w * w).sum()
    eager.backward()
    np.testing.assert_array_equal(w.grad, [5.0, 9.0])   # what the refusal protects


def test_grad_mode_is_part_of_what_a_trace_is_valid_for():
    """A step traced with grad enabled, then called inside ``no_grad()``, replayed its backward
    and optimizer step (eager mode raises: the loss has no graph); each mode gets its own trace."""
    def make():
        w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        optimizer = SGD([w], lr=0.1)

        def step(x):
            loss = (w * x).sum() ** 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        return w, step

    (eager_w, eager), (compiled_w, compiled) = make(), make()
    compiled = autonet.compile(compiled)
    x = Tensor(np.array([1.0, 1.0]))
    for _ in range(2):
        np.testing.assert_array_equal(compiled(x).data, eager(x).data)
    for step, w in ((eager, eager_w), (compiled, compiled_w)):
        before = w.data.copy()
        with autonet.no_grad(), pytest.raises(RuntimeError, match="does not require grad"):
            step(x)
        np.testing.assert_array_equal(w.data, before)
    np.testing.assert_array_equal(compiled(x).data, eager(x).data)
    np.testing.assert_array_equal(compiled_w.data, eager_w.data)
    assert len(compiled.programs) == 1   # the no_grad call's trace failed, as eager mode does

    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    forward = autonet.compile(lambda x: (w * x).sum())
    with autonet.no_grad():
        forward(x)
    assert forward(x).requires_grad and len(forward.programs) == 2   # traced again, recording


def test_a_returned_argument_or_parameter_is_that_tensor_itself_on_every_call():
    """Eager mode returns the very Tensor; a replay returned a new Tensor over its array (not
    requiring grad, without its .grad); a detached alias stays a new Tensor in both."""
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    @autonet.compile
    def step(x, pair):
        loss = (w * x * pair[1]).sum()
        loss.backward()
        return x, w, pair[1], w.detach(), loss

    for call in range(3):
        x = Tensor(np.full(2, float(call + 1)), requires_grad=True)
        pair = (0, Tensor(np.array([2.0, 3.0])))
        got_x, got_w, got_pair, alias, loss = step(x, pair)
        assert got_x is x and got_w is w and got_pair is pair[1]
        assert alias is not w and not alias.requires_grad
        np.testing.assert_array_equal(alias.data, w.data)
        assert loss.item() == (2.0 + 6.0) * (call + 1)   # by hand: (1 * 2 + 2 * 3) x
    assert len(step.programs) == 1
