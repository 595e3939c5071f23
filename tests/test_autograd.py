"""The engine: accumulation, fan-out, graph freeing, grad modes, grad(), deep graphs, memory."""
import gc
import threading
import weakref

import numpy as np
import pytest

import autonet
from autonet import Tensor


def test_fan_out_counts_every_path():
    a = Tensor(3.0, requires_grad=True)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0
    x = Tensor(2.0, requires_grad=True)
    (x * x * x).backward()
    assert x.grad == 12.0


def test_leaf_grads_accumulate_across_backward_calls():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_second_backward_with_retained_graph_does_not_double_count_intermediates():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    y = (h * h).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * first)
    np.testing.assert_array_equal(h.grad, 2 * (2 * h.data))


def test_freed_graph_raises_mentioning_retain_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x.sigmoid() * 2).sum()
    y.backward()
    grad_before = x.grad.copy()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad, grad_before)


def test_nodes_that_saved_nothing_can_be_traversed_again():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_graph_structure_stays_readable_after_backward():
    w = Tensor([[1.0]], requires_grad=True, name="w")
    y = (Tensor([[2.0]]) @ w).sigmoid().sum()
    y.backward()
    sig = y.grad_fn.inputs[0]           # edges lead to the nodes that made the inputs
    assert y.grad_fn.name == "sum" and sig.name == "sigmoid" and sig.shape == (1, 1)
    matmul = sig.inputs[0]
    assert matmul.name == "matmul" and matmul.inputs[1] is w   # and to leaves themselves


def test_backward_errors():
    with pytest.raises(RuntimeError, match="one-element"):
        (Tensor([1.0, 2.0], requires_grad=True) * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"backward.*\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_takes_ndarray_tensor_or_number():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(np.array([1.0, 10.0]))
    (x * 2).backward(Tensor([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [4.0, 40.0])
    s = Tensor(1.5, requires_grad=True)
    (s * 2).backward(3)
    assert s.grad == 6.0


def test_error_in_a_custom_backward_leaves_grads_untouched():
    class Broken(autonet.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            raise ArithmeticError("boom")

    x = Tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    with pytest.raises(ArithmeticError):
        ((x * 3) + Broken.apply(x)).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0])


def test_grads_are_fresh_arrays_never_views():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0, 4.0], requires_grad=True)
    upstream = np.array([1.0, 1.0])
    (x + y).backward(upstream)
    x.grad[0] = 100.0
    assert y.grad[0] == 1.0 and upstream[0] == 1.0


def test_retain_grad_on_a_tensor_that_does_not_require_grad_is_refused():
    """PyTorch raises there; autonet returned, and the tensor's grad stayed None silently."""
    x = Tensor([1.0, 2.0], requires_grad=True)
    with autonet.no_grad():
        h = x * 2
    for tensor in (h, Tensor([1.0, 2.0])):
        with pytest.raises(RuntimeError, match="does not require grad"):
            tensor.retain_grad()
    assert x.retain_grad() is x   # a leaf keeps its grad anyway


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_element_broadcast_against_its_tensor_backpropagates(dtype):
    """``y * y[0]``: the 0-d element's gradient is summed over every axis, which NumPy returns
    as a scalar, not an array; getitem's backward then failed ("The `like` argument must be an
    array-like"). Hand-derived: d/dy sum(y * y0) = y0 everywhere, plus sum(y) at 0."""
    y = Tensor(np.array([1.0, 2.0, 3.0], dtype=dtype), requires_grad=True)
    (y * y[0]).sum().backward()
    np.testing.assert_array_equal(y.grad, [7.0, 1.0, 1.0])
    assert y.grad.dtype == dtype
    m = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=dtype), requires_grad=True)
    (m[:, 0] * m[1, 1] + m[0, 1]).sum().backward()   # 4 (m00 + m10) + 2 m01
    np.testing.assert_array_equal(m.grad, [[4.0, 2.0], [4.0, 4.0]])
    (first,) = autonet.grad((y * y[0]).sum(), y, create_graph=True)
    (second,) = autonet.grad(first.sum(), y)          # d/dy (sum(y) + 3 y0)
    np.testing.assert_array_equal(second.data, [4.0, 1.0, 1.0])


def test_a_leaf_frozen_between_forward_and_backward_gets_no_grad():
    """As PyTorch: requires_grad_(False) after the forward pass keeps the leaf's .grad None
    (autonet delivered it anyway); the other leaves get theirs."""
    w = Tensor([1.0, 2.0], requires_grad=True)
    u = Tensor([3.0, 4.0], requires_grad=True)
    loss = (w * u).sum()
    w.requires_grad_(False)
    loss.backward()
    assert w.grad is None
    np.testing.assert_array_equal(u.grad, [1.0, 2.0])


def test_create_graph_gives_each_leaf_a_grad_of_its_own():
    """add hands one gradient Tensor to both inputs and sum a read-only broadcast: under
    create_graph two leaves shared one .grad (scaling one scaled the other; clipping them
    failed on the read-only array). PyTorch clones there; the copies stay differentiable."""
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 5.0], requires_grad=True)
    ((a + b) ** 2).sum().backward(create_graph=True)   # both grads 2 (a + b) = [8, 14]
    assert a.grad is not b.grad and not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[...] *= 0.5
    np.testing.assert_array_equal(b.grad.data, [8.0, 14.0])
    (second,) = autonet.grad(b.grad.sum(), a)           # d/da sum(2 (a + b)) = 2
    np.testing.assert_array_equal(second.data, [2.0, 2.0])
    c = Tensor([1.0, 2.0], requires_grad=True)
    d = Tensor([3.0, 4.0], requires_grad=True)
    (c + d).sum().backward(create_graph=True)           # ones, broadcast from the scalar
    for leaf in (c, d):
        assert leaf.grad.data.flags.writeable
    autonet.nn.utils.clip_grad_norm_([c, d], 1.0)       # norm 2: each scaled by 1 / 2
    np.testing.assert_allclose(c.grad.data, [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(d.grad.data, [0.5, 0.5], rtol=1e-6)


def test_no_grad_and_enable_grad_as_contexts_and_decorators():
    x = Tensor([1.0], requires_grad=True)
    with autonet.no_grad():
        assert not autonet.is_grad_enabled()
        assert not (x * 2).requires_grad
        with autonet.enable_grad():
            assert (x * 2).requires_grad
        assert not autonet.is_grad_enabled()
    assert autonet.is_grad_enabled()

    @autonet.no_grad()
    def predict(t):
        return t * 2

    @autonet.no_grad
    def predict_bare(t):
        return t * 2

    assert not predict(x).requires_grad and not predict_bare(x).requires_grad
    assert autonet.is_grad_enabled()


def test_grad_mode_decorators_cover_a_generators_body_and_not_its_caller():
    """PyTorch's decorators run a generator's body in their mode each time it resumes, and the
    caller's code between two items in the caller's mode (values as torch 2.13 gives them)."""
    x = Tensor([1.0], requires_grad=True)

    @autonet.no_grad()
    def doubled(t):
        received = yield (t * 2).requires_grad
        yield received, (t * 2).requires_grad
        return "done"

    items = doubled(x)
    first = next(items)
    between = (x * 2).requires_grad
    assert (first, between, items.send("sent")) == (False, True, ("sent", False))
    with pytest.raises(StopIteration) as stop:
        next(items)
    assert stop.value.value == "done" and autonet.is_grad_enabled()

    @autonet.enable_grad
    def recording(t):
        try:
            yield (t * 2).requires_grad
        except KeyError:
            yield "caught", (t * 2).requires_grad

    with autonet.no_grad():
        items = recording(x)
        assert next(items) is True and not (x * 2).requires_grad
        assert items.throw(KeyError()) == ("caught", True)
        items.close()
        assert not autonet.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with autonet.no_grad():
            inside.set()
            release.wait(5)
            seen["worker"] = autonet.is_grad_enabled()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    seen["main"] = autonet.is_grad_enabled()
    release.set()
    thread.join()
    assert seen == {"main": True, "worker": False}


def test_grad_function_returns_tuple_and_leaves_dot_grad_alone():
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([3.0, 4.0], requires_grad=True)
    h = x * w
    out = (h * h).sum()
    gx, gh = autonet.grad(out, [x, h], retain_graph=True)
    np.testing.assert_allclose(gx.data, 2 * h.data * w.data)
    np.testing.assert_allclose(gh.data, 2 * h.data)
    assert x.grad is None and w.grad is None
    (gw,) = autonet.grad(out, w, grad_outputs=2.0)
    np.testing.assert_allclose(gw.data, 2 * 2 * h.data * x.data)


def test_grad_unused_inputs():
    x = Tensor([1.0], requires_grad=True)
    unused = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        autonet.grad((x * 2).sum(), [x, unused])
    gx, gu = autonet.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.data.tolist() == [2.0]
    with pytest.raises(RuntimeError, match="does not require grad"):
        autonet.grad((x * 2).sum(), Tensor([1.0]))


def test_higher_order_closed_forms():
    x = Tensor([0.3, -1.2, 2.0], requires_grad=True)
    (d1,) = autonet.grad(x.sigmoid().sum(), x, create_graph=True)
    (d2,) = autonet.grad(d1.sum(), x, create_graph=True)
    (d3,) = autonet.grad(d2.sum(), x)
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(d1.data, s * (1 - s), rtol=1e-12)
    np.testing.assert_allclose(d2.data, s * (1 - s) * (1 - 2 * s), rtol=1e-12)
    np.testing.assert_allclose(d3.data, s * (1 - s) * (1 - 6 * s + 6 * s ** 2), rtol=1e-10)


def test_backward_create_graph_gives_a_differentiable_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    first = x.grad
    assert isinstance(first, Tensor) and first.requires_grad
    np.testing.assert_allclose(first.data, 3 * x.data ** 2)
    with pytest.raises(TypeError, match="requires grad"):
        np.asarray(first)   # would leave the graph: refused, as PyTorch
    (g2,) = autonet.grad(first.sum(), x)
    np.testing.assert_allclose(g2.data, 6 * x.data)


def test_long_chain_backpropagates_without_recursion():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0


def test_intermediates_are_freed_without_gc():
    gc.disable()
    try:
        x = Tensor(np.ones(3), requires_grad=True)
        h = x.sigmoid()
        probe = weakref.ref(h)
        data_probe = weakref.ref(h.data)
        node_probe = weakref.ref(h.grad_fn)
        y = (h * 2).sum()
        del h
        assert probe() is None        # the graph holds nodes, not intermediate tensors ...
        assert data_probe() is not None   # ... but keeps the array mul saved, until backward
        y.backward()
        assert data_probe() is None and node_probe() is not None   # freed; y's graph remains
        del y
        assert node_probe() is None
    finally:
        gc.enable()


def test_backward_releases_saved_arrays_unless_retained():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x.exp().sum()
    node = y.grad_fn.inputs[0]
    assert len(node.saved) == 1
    y.backward(retain_graph=True)
    assert len(node.saved) == 1
    y.backward()
    assert node.saved is not None and not isinstance(node.saved, tuple)


def test_custom_function_and_its_second_derivative():
    class Cube(autonet.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            return grad * 3 * x ** 2

    x = Tensor([1.0, -2.0], requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn.name == "Cube" and "grad_fn=Cube" in repr(y)
    assert autonet.gradcheck(Cube.apply, x)
    assert autonet.gradgradcheck(Cube.apply, x)


def test_custom_backward_returning_the_wrong_count_is_explained():
    class TwoGrads(autonet.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(RuntimeError, match="returned 2 gradient"):
        TwoGrads.apply(Tensor([1.0], requires_grad=True)).sum().backward()


def test_grads_never_alias_arrays_held_elsewhere():
    kept = np.array([5.0, 6.0])

    class Constant(autonet.Function):
        """A backward that returns an array its context keeps."""

        @staticmethod
        def forward(ctx, x):
            ctx.kept = kept
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return ctx.kept

    x = Tensor([1.0, 2.0], requires_grad=True)
    Constant.apply(x).sum().backward()
    assert x.grad is not kept and not np.shares_memory(x.grad, kept)
    Constant.apply(x).sum().backward()          # accumulates with +=, in place
    np.testing.assert_array_equal(kept, [5.0, 6.0])
    a = Tensor([1.0], requires_grad=True)
    b = Tensor([1.0], requires_grad=True)
    (a + b).sum().backward()                    # add hands one array to both
    assert a.grad is not b.grad


@pytest.mark.host_only("counts NumPy's copies; test_devices counts the device's")
def test_fresh_gradients_are_handed_over_without_copies(monkeypatch):
    import types

    from autonet.core import ownership

    copies = []   # counts deliver's copies without holding the arrays themselves
    counting = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    counting.array = lambda *args, **kwargs: (kwargs.get("copy") and copies.append(1)) or np.array(*args, **kwargs)
    monkeypatch.setattr(ownership, "np", counting)
    x = Tensor(np.ones((3, 3)), requires_grad=True)
    (x * 2.0).sum().backward()           # mul's fresh result reaches only x: no copy
    assert copies == []
    y, z = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    (y + z).sum().backward()             # add hands one array to both: one of them copies
    assert len(copies) == 1 and y.grad is not z.grad


def test_an_element_used_twice_sums_its_0_d_gradients_into_an_array():
    """Fan-out of a 0-d value: NumPy's 0-d sum is a scalar, which indexing's backward could not
    take (found through autonet.func.hessian); eager and compiled alike."""
    x = autonet.Tensor([0.3, 0.7], requires_grad=True)

    def loss(x):
        y = x[0]
        return y.sin() + y.cos()

    loss(x).backward()
    np.testing.assert_allclose(x.grad, [np.cos(0.3) - np.sin(0.3), 0.0], rtol=1e-15)
    twin = autonet.Tensor([0.3, 0.7], requires_grad=True)

    def step(t):
        value = loss(t)
        value.backward()
        return value

    compiled = autonet.compile(step)
    for _ in range(2):
        twin.grad = None
        compiled(twin)
        np.testing.assert_array_equal(twin.grad, x.grad)
