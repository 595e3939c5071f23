"""The engine's lean paths: the plan's order, routes read from the nodes, constants made
only for recorded ops, and the observed (slow) path agreeing with the fast one."""
import numpy as np
import pytest

import autonet
from autonet.core import backward as engine
from autonet.core import function
from autonet.core.function import RELEASED, Context, ConstantInput
from autonet.core.state import Observer, observing

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
