"""The engine's lean paths: the plan's order, routes read from the nodes, constants made
only for recorded ops, and the observed (slow) path agreeing with the fast one."""
import numpy as np
import pytest

import autonet
from autonet import Tensor
from autonet.core import backward as engine
from autonet.core import function
from autonet.core.context import Context
from autonet.core.function import RELEASED, ConstantInput
from autonet.core.state import Observer, observing
from autonet.ops.shape import GetItem

UNARY = ("sigmoid", "tanh", "exp_small", "square", "neg")
BINARY = ("add", "sub", "mul", "div", "matmul_t")


def _unary(name, x):
    if name == "sigmoid":
        return x.sigmoid()
    if name == "tanh":
        return x.tanh()
    if name == "exp_small":
        return (x * 0.1).exp()
    if name == "square":
        return x ** 2
    return -x


def _binary(name, x, y):
    if name == "add":
        return x + y
    if name == "sub":
        return x - y
    if name == "mul":
        return x * y
    if name == "div":
        return x / (y * y + 1.0)
    return (x @ y.T) @ y / 4.0   # (3, 3) @ (3, 3): mixes the rows


def random_graph(seed):
    """A random DAG of ops over three leaves and a constant: each new tensor reads one or two
    earlier ones (fan-out and reuse of one tensor twice included). Returns (loss, leaves)."""
    rng = np.random.default_rng(seed)
    leaves = [autonet.Tensor(rng.uniform(-1, 1, (3, 3)), requires_grad=True) for _ in range(3)]
    pool = leaves + [autonet.Tensor(rng.uniform(-1, 1, (3, 3)))]   # the last one: a constant
    for _ in range(int(rng.integers(4, 12))):
        if rng.random() < 0.4:
            pool.append(_unary(UNARY[rng.integers(len(UNARY))], pool[rng.integers(len(pool))]))
        else:
            a, b = pool[rng.integers(len(pool))], pool[rng.integers(len(pool))]
            pool.append(_binary(BINARY[rng.integers(len(BINARY))], a, b))
    loss = sum((t * (k + 1.0)).sum() for k, t in enumerate(pool[-3:]) if t.requires_grad)
    if not isinstance(loss, autonet.Tensor):   # no tensor in the last three needed a gradient
        loss = (pool[0] * pool[-1]).sum()
    return loss, leaves


def reachable_nodes(root):
    """Every node reachable from ``root`` (recursively, written apart from the engine's walk)."""
    found = {}

    def visit(node):
        if id(node) in found:
            return
        found[id(node)] = node
        for edge in node.inputs:
            if type(edge) is Context:
                visit(edge)

    visit(root)
    return found


@pytest.mark.parametrize("seed", range(25))
def test_plan_is_every_reachable_node_once_in_a_topological_order(seed):
    loss, _ = random_graph(seed)
    nodes = engine.plan((loss._node,)).nodes
    assert {id(n) for n in nodes} == set(reachable_nodes(loss._node))
    assert len(nodes) == len({id(n) for n in nodes})
    where = {id(n): i for i, n in enumerate(nodes)}
    for node in nodes:   # every consumer runs before the node that made its input
        for edge in node.inputs:
            if type(edge) is Context:
                assert where[id(node)] < where[id(edge)]


def _kahn_order(root):
    """A reference topological order (consumers first) by Kahn's algorithm on consumer counts."""
    nodes = reachable_nodes(root)
    consumers = {key: 0 for key in nodes}
    for node in nodes.values():
        for edge in node.inputs:
            if type(edge) is Context:
                consumers[id(edge)] += 1
    ready, order = [root], []
    while ready:
        node = ready.pop()
        order.append(node)
        for edge in node.inputs:
            if type(edge) is Context:
                consumers[id(edge)] -= 1
                if consumers[id(edge)] == 0:
                    ready.append(edge)
    return order


@pytest.mark.parametrize("seed", range(10))
def test_plan_runs_the_same_gradients_as_a_kahn_order(seed):
    loss, leaves = random_graph(seed)
    seed_grad = np.array(1.0)
    by_plan = engine.execute(engine.plan((loss._node,)), {loss._node: seed_grad},
                             retain_graph=True)[0]
    by_kahn = engine.execute(engine.Plan(_kahn_order(loss._node)), {loss._node: seed_grad},
                             retain_graph=True)[0]
    assert set(map(id, by_plan)) == set(map(id, by_kahn))
    for leaf in leaves:
        if leaf in by_plan:
            np.testing.assert_allclose(by_plan[leaf], by_kahn[leaf], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("seed", range(10))
def test_plan_routes_are_each_wanted_input_with_its_shape_and_dtype(seed):
    loss, _ = random_graph(seed)
    the_plan = engine.plan((loss._node,))
    for node, routes in zip(the_plan.nodes, the_plan.routes):
        expected = []
        for position, edge in enumerate(node.inputs):
            if type(edge) is Context:
                expected.append((position, edge, edge.shape, edge.dtype))
            elif edge is not None and type(edge) is not ConstantInput:   # a leaf wanting grad
                expected.append((position, edge, edge.data.shape, edge.data.dtype))
        assert [(p, id(k), s, d) for p, k, s, d in routes] == \
            [(p, id(k), s, d) for p, k, s, d in expected]


class _Watcher(Observer):
    """An observer that only takes notes: it sends ops and formulas down the observed path."""

    def __init__(self):
        self.summed = []

    def gradient_summed(self, node, position, grad):
        self.summed.append((node.name, position))


@pytest.mark.parametrize("seed", range(25))
def test_the_fast_path_and_the_observed_path_give_the_same_gradients(seed):
    loss, leaves = random_graph(seed)
    loss.backward()
    fast = [None if leaf.grad is None else leaf.grad.copy() for leaf in leaves]
    with observing(_Watcher()):
        loss, leaves = random_graph(seed)
        loss.backward()
    for plain, watched in zip(fast, leaves):
        if plain is None:
            assert watched.grad is None
        else:
            np.testing.assert_array_equal(plain, watched.grad)   # the same formulas, same bits


def test_gradients_of_a_known_graph_match_the_formula():
    """d/dx sum(sigmoid(x * x) * c) = c * s (1 - s) * 2x, from the formula, on both paths."""
    rng = np.random.default_rng(3)
    x0, c0 = rng.uniform(-2, 2, (4, 3)), rng.uniform(-1, 1, (4, 3))
    s = 1 / (1 + np.exp(-x0 * x0))
    expected = c0 * s * (1 - s) * 2 * x0
    for watcher in (None, _Watcher()):
        x, c = autonet.Tensor(x0, requires_grad=True), autonet.Tensor(c0)
        if watcher is None:
            ((x * x).sigmoid() * c).sum().backward()
        else:
            with observing(watcher):
                ((x * x).sigmoid() * c).sum().backward()
        np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_the_observed_path_names_the_input_position_that_got_a_gradient():
    x, y = autonet.Tensor([1.0, 2.0]), autonet.Tensor([3.0, 4.0], requires_grad=True)
    watcher = _Watcher()
    with observing(watcher):
        (x * y).sum().backward()
        (y / x).sum().backward()
    assert ("mul", 1) in watcher.summed and ("mul", 0) not in watcher.summed
    assert ("div", 0) in watcher.summed and ("div", 1) not in watcher.summed
    np.testing.assert_allclose(y.grad, [1.0 + 1.0, 2.0 + 0.5])


def test_constants_are_kept_for_recorded_ops_only(monkeypatch):
    made = []
    original = ConstantInput.__init__

    def counting(self, tensor):
        made.append(tensor)
        original(self, tensor)

    monkeypatch.setattr(ConstantInput, "__init__", counting)
    w = autonet.Tensor([1.0, 2.0], requires_grad=True)
    c = autonet.Tensor([3.0, 4.0])
    c * c                      # nothing wants a gradient: no node, no constant
    with autonet.no_grad():
        w * c                  # not recorded
    assert made == []
    out = w * c
    assert made == [c]
    edge = out.grad_fn.inputs[1]
    assert type(edge) is ConstantInput and out.grad_fn.needs_input_grad == (True, False)
    np.testing.assert_array_equal(edge.data, [3.0, 4.0])


def test_an_input_used_twice_gets_both_gradients():
    x = autonet.Tensor([1.5, -2.0], requires_grad=True)
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 3 * np.array([1.5, -2.0]) ** 2)


def test_a_refused_pass_changes_nothing():
    """A saved array changed in place is found before any formula runs: no leaf gets a
    gradient and no node's saved arrays are freed."""
    w = autonet.Tensor([1.0, 2.0], requires_grad=True)
    h = w * 2.0
    saved_by_sigmoid = h.sigmoid()
    other = (w * w).sum()
    loss = saved_by_sigmoid.sum() + other
    with autonet.no_grad():
        saved_by_sigmoid.data[...] = 0.0      # not a recorded write: only the version moves
        saved_by_sigmoid._bump_version()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    assert w.grad is None
    for node in reachable_nodes(loss._node).values():
        assert node.saved is not RELEASED


def test_a_freed_graph_is_refused_before_any_formula_runs():
    w = autonet.Tensor([1.0, 2.0], requires_grad=True)
    loss = (w.sigmoid() * w).sum()
    loss.backward()
    first = w.grad.copy()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()
    np.testing.assert_array_equal(w.grad, first)


def test_sequence_numbers_grow_with_creation():
    x = autonet.Tensor([1.0], requires_grad=True)
    a = x * 2.0
    b = a.exp()
    c = a + b
    assert a.grad_fn.seq < b.grad_fn.seq < c.grad_fn.seq
    assert next(function.sequence) > c.grad_fn.seq


class _Scale(autonet.Function):
    """x * factor, saving the factor (a NumPy scalar) and x."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.save_for_backward(x, factor)
        return x * factor

    @staticmethod
    def backward(ctx, grad):
        _, factor = ctx.saved
        return grad * factor, None


def test_a_saved_number_is_kept_as_it_is_and_unchecked():
    x = autonet.Tensor([1.0, 2.0], requires_grad=True)
    factor = np.float64(3.0)
    y = _Scale.apply(x, factor)
    assert y.grad_fn.saved[1] is factor
    assert y.grad_fn.saved_versions[1] is None
    assert y.grad_fn.saved_versions[0][:3] == (0, x._version, 0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


# ------------------------------------------------- Function.apply: the common case against the general
# An observer that does nothing sends every op through ``_apply_general``; without one, the ops
# below take the common-case reading in ``Function.apply`` (test_the_fast_path_is_taken checks
# that they do). Each test builds one computation both ways and compares what a user can see.


def _both(build):
    """``build()`` run on the fast path and on the general path (under a silent observer)."""
    fast = build()
    with observing(Observer()):
        general = build()
    return fast, general


def _xor_like():
    """The notebook's step with a constant batch, Python numbers, settings, a reduction."""
    rng = np.random.default_rng(3)
    x = Tensor(rng.uniform(-1, 1, (4, 3)))
    y = Tensor(rng.integers(0, 2, (4, 1)))
    w0 = Tensor(rng.uniform(-1, 1, (3, 4)), requires_grad=True)
    w1 = Tensor(rng.uniform(-1, 1, (4, 1)), requires_grad=True)
    out = ((x @ w0).sigmoid() @ w1).sigmoid()
    loss = 0.5 * ((y - out) ** 2).sum() + (w0 * 2.0).sum(axis=0, keepdims=True).mean()
    return loss, (x, y, w0, w1)


def _describe(edge):
    """What a node's input edge is, in words a comparison can use."""
    if edge is None:
        return None
    if type(edge) is Context:
        return ("node", edge.name, edge.shape, edge.dtype)
    if isinstance(edge, ConstantInput):
        return ("constant", edge.shape, edge.dtype, edge.name)
    return ("leaf", edge.shape, edge.dtype, edge.requires_grad)


def _graph(tensor):
    """Every node behind ``tensor``, newest first, as comparable tuples."""
    described, seen, todo = [], set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        saved = [None if entry is None else (entry[0], entry[2], entry[3])
                 for entry in node.saved_versions]
        described.append((node.seq, node.name, node.shape, node.dtype, node.needs_input_grad,
                           tuple(_describe(edge) for edge in node.inputs), node.constants,
                           len(node.saved), tuple(saved), node.scope))
        todo.extend(edge for edge in node.inputs if type(edge) is Context)
    return [entry[1:] for entry in sorted(described, key=lambda entry: -entry[0])]


def test_the_fast_path_is_taken(monkeypatch):
    calls = []
    general = function._apply_general
    monkeypatch.setattr(function, "_apply_general", lambda *a: calls.append(a[0].name) or general(*a))
    _xor_like()
    assert calls == []
    with observing(Observer()):
        _xor_like()
    assert "matmul" in calls and "sigmoid" in calls and "sum" in calls


def test_the_same_graph_values_and_gradients_on_both_paths():
    (fast, fast_inputs), (general, general_inputs) = _both(_xor_like)
    assert _graph(fast) == _graph(general)
    assert fast.data.tobytes() == general.data.tobytes()
    fast.backward()
    general.backward()
    for a, b in zip(fast_inputs, general_inputs):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            assert a.grad.tobytes() == b.grad.tobytes()


def test_a_constant_input_is_held_weakly_on_both_paths():
    def build():
        x = Tensor(np.ones((2, 3)), name="batch")
        w = Tensor(np.ones((3, 1)), requires_grad=True)
        return x @ w

    for out in _both(build):   # the batch is gone: the node keeps its name, shape and dtype
        edge = out.grad_fn.inputs[0]
        assert isinstance(edge, ConstantInput) and edge.name == "batch"
        assert edge.shape == (2, 3) and np.isnan(edge.data).all()


def _refused_alike(setup, refused_by):
    """``refused_by(made)``, for ``(made, leaf) = setup()``, raises the same RuntimeError on
    both paths and leaves the same ``leaf.grad``: the message and the gradient's bytes."""
    def build():
        made, leaf = setup()
        with pytest.raises(RuntimeError) as refused:
            refused_by(made)
        return str(refused.value), None if leaf is None or leaf.grad is None else leaf.grad.tobytes()

    fast, general = _both(build)
    assert fast == general
    return fast


def test_a_saved_input_changed_in_place_is_refused_alike():
    def setup():
        w = Tensor([1.0, 2.0], requires_grad=True)
        h = w * 3.0
        out = (h * h).sum()   # saves h
        with autonet.no_grad():
            h.data[0] = 5.0
        h._bump_version()
        return out, w

    message, grad = _refused_alike(setup, lambda out: out.backward())
    assert "modified by an in-place operation" in message and grad is None


def test_a_second_backward_through_a_freed_graph_is_refused_alike():
    def setup():
        w = Tensor([1.0, 2.0], requires_grad=True)
        out = (w.sigmoid() * 2.0).sum()
        out.backward()
        return out, w

    message, grad = _refused_alike(setup, lambda out: out.backward())
    assert "second time" in message and grad is not None


def test_a_stale_view_is_refused_alike():
    def setup():
        a = Tensor([1.0, 2.0, 3.0], requires_grad=True) * 1.0
        view = a[:2]
        a += Tensor([1.0, 1.0, 1.0], requires_grad=True)   # a new history for a
        return view, None

    message, _ = _refused_alike(setup, lambda view: view * 2.0)
    assert "view" in message


def test_no_grad_records_nothing_on_both_paths():
    def build():
        w = Tensor([1.0, 2.0], requires_grad=True)
        with autonet.no_grad():
            out = (w * 2.0).sigmoid()
        return out.grad_fn, out.requires_grad, out.data.tobytes()

    fast, general = _both(build)
    assert fast[:2] == (None, False) and fast == general


def test_settings_holding_arrays_are_owned_by_the_node():
    """An index array passed as a setting is copied: changing it afterwards changes nothing."""
    def build():
        w = Tensor([1.0, 2.0, 3.0], requires_grad=True)
        index = np.array([0, 0, 2])
        out = GetItem.apply(w, index=index)
        index[:] = 1
        out.sum().backward()
        return w.grad.tobytes()

    fast, general = _both(build)
    assert np.frombuffer(fast).tolist() == [2.0, 0.0, 1.0] and fast == general


def test_retain_grad_and_create_graph_agree_on_both_paths():
    def build():
        x = Tensor([0.5, -1.0], requires_grad=True)
        hidden = x.sigmoid()
        hidden.retain_grad()
        (gx,) = autonet.grad((hidden * hidden * 3.0).sum(), x, create_graph=True)
        gx.sum().backward()
        out = (x.sigmoid() ** 2).sum()
        out.backward()
        return x.grad.tobytes(), gx.data.tobytes()

    fast, general = _both(build)
    assert fast == general


def test_ops_on_a_device_array_or_a_plain_ndarray_take_the_general_path(monkeypatch):
    calls = []
    general = function._apply_general
    monkeypatch.setattr(function, "_apply_general", lambda *a: calls.append(a[0].name) or general(*a))
    w = Tensor([1.0, 2.0], requires_grad=True)
    out = w * np.array([3.0, 4.0])   # the caller's array: the node keeps a copy
    assert calls == ["mul"]
    out.sum().backward()
    assert w.grad.tolist() == [3.0, 4.0]


class _ExpOfSum(autonet.Function):
    """exp(sum(x)): NumPy returns a scalar, which forward saves."""

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x.sum())
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * out   # spread to x's shape by the engine


def test_a_saved_scalar_output_becomes_the_output_array_and_is_version_checked():
    def build():
        x = Tensor([0.5, -0.25], requires_grad=True)
        y = _ExpOfSum.apply(x)
        assert y.grad_fn.saved[0] is y.data and y.data.shape == ()
        (y * 1.0).backward(retain_graph=True)
        first = x.grad.tobytes()
        with autonet.no_grad():
            y.data[...] = 0.0
        y._bump_version()
        with pytest.raises(RuntimeError, match="modified by an in-place operation") as refused:
            y.backward()
        return first, str(refused.value)

    fast, general = _both(build)
    assert np.frombuffer(fast[0]).tolist() == [np.exp(0.25)] * 2 and fast == general
