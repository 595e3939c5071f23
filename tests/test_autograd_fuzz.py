"""Engine fuzzing: random graphs from the whole op set, checked against finite differences.

A state machine grows a graph one op at a time (fan-out and reuse come free:
any earlier value may be an input, several times), with broadcasting between
shapes, detached values and no_grad islands, in-place updates (self-aliasing
ones too), writes into a base, views of views, integer casts, and custom
Functions whose backward calls NumPy (differentiated again under
create_graph in the smooth machine). At any point it may pick a value as the
root and check every leaf's gradient. Values that a non-smooth op sees
near its kink, or huge values, make that check step pass silently (they are
not differentiable there), which hypothesis records as an event.
"""
import numpy as np
import pytest
from hypothesis import event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

import autonet
from autonet import Tensor
from autonet.testing import arrays, assert_gradients_match

SHAPES = [(), (3,), (2, 3), (1, 3), (2, 1)]
KINK_MARGIN = 1e-3


class TanhTimesX(autonet.Function):
    """x tanh(x), its formulas written with NumPy: under create_graph they get Tensors."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.tanh(x) * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        t = np.tanh(x)
        return grad * (t + x * (1 - np.square(t)))


class LeakyWhere(autonet.Function):
    """x for x > 0 else x / 4, backward by np.where (a kink at 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.where(x > 0, x, x / 4)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return np.where(x > 0, grad, grad / 4)


def _fresh(x):
    return x * 1.0   # a new tensor no op has used yet: the target of in-place programs


def _self_aliasing(x):
    y = _fresh(x)
    y += y
    y *= y
    y -= y * 0.5
    return y


def _in_place_chain(a, b):
    y = _fresh(autonet.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape)))
    y += b
    y *= b * b + 0.5
    y /= b * b + 1.0
    y -= a
    return y


def _write_into_base(x):
    y = _fresh(x)
    y[0] = y[-1] * 2.0      # reads a view of itself, then writes over it
    y[1:] = y[1:] + x[:1].tanh()   # add saves nothing of y (mul would, and refuse)
    return y[::-1][..., :]  # views of views, taken after the writes

# name -> (function, smooth); functions keep every value inside its domain.
UNARY = {
    "neg": (lambda x: -x, True),
    "tanh": (lambda x: x.tanh(), True),
    "sigmoid": (lambda x: x.sigmoid(), True),
    "exp": (lambda x: x.tanh().exp(), True),
    "log": (lambda x: (x * x + 1.0).log(), True),
    "sqrt": (lambda x: (x * x + 0.5).sqrt(), True),
    "pow": (lambda x: (x * x + 0.5) ** 1.5, True),
    "square": (lambda x: x ** 2, True),
    "relu": (lambda x: x.relu(), False),
    "abs": (lambda x: x.abs(), False),
    "clip": (lambda x: x.clip(-0.5, 0.5), False),
    "custom_numpy": (TanhTimesX.apply, True),
    "custom_where": (LeakyWhere.apply, False),
    "self_aliasing": (_self_aliasing, True),
    "int_cast": (lambda x: x.astype(np.int64) * 1.0 + x, False),
}
AXIS_OPS = {   # need at least one axis
    "softmax": (lambda x: x.softmax(axis=-1), True),
    "log_softmax": (lambda x: x.log_softmax(axis=0), True),
    "reverse": (lambda x: x[::-1], True),
    "repeat_rows": (lambda x: x[[0, 0, -1]], True),
    "matmul_self": (lambda x: x @ x if x.ndim == 1 else x @ x.swapaxes(-1, -2), True),
    "transpose": (lambda x: x.T, True),
    "flatten": (lambda x: x.reshape(-1), True),
    "stack_self": (lambda x: autonet.stack([x, x * 2.0], axis=-1), True),
    "write_into_base": (_write_into_base, True),
}
BINARY = {
    "add": (lambda a, b: a + b, True),
    "sub": (lambda a, b: a - b, True),
    "mul": (lambda a, b: a * b, True),
    "div": (lambda a, b: a / (b * b + 0.5), True),
    "pow": (lambda a, b: (a * a + 0.5) ** b.tanh(), True),
    "maximum": (autonet.maximum, False),
    "minimum": (autonet.minimum, False),
    "where": (lambda a, b: autonet.where(a.data > 0, a, b), False),
    "broadcast": (lambda a, b: autonet.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape)), True),
    "in_place_chain": (_in_place_chain, True),
}
REDUCTIONS = {"sum": True, "mean": True, "var": True, "max": False, "min": False}


def kink_distance(name, inputs):
    """How far the inputs of a non-smooth op are from its kink (inf for smooth ops)."""
    values = [x.data for x in inputs]
    if name in ("relu", "abs", "custom_where"):
        return np.abs(values[0]).min(initial=np.inf)
    if name == "clip":
        return np.minimum(np.abs(values[0] - 0.5), np.abs(values[0] + 0.5)).min(initial=np.inf)
    if name in ("maximum", "minimum"):
        return np.abs(values[0] - values[1]).min(initial=np.inf)
    if name == "where":
        return np.abs(values[0]).min(initial=np.inf)
    if name == "int_cast":   # truncation jumps at the integers
        return np.abs(values[0] - np.round(values[0])).min(initial=np.inf)
    return np.inf


def reduction_kink(name, x, axis):
    if name not in ("max", "min") or x.size < 2:
        return np.inf
    ordered = np.sort(x.data.reshape(-1) if axis is None else np.moveaxis(x.data, axis, -1), axis=-1)
    ends = ordered[..., -2:] if name == "max" else ordered[..., :2]
    return np.abs(ends[..., 1] - ends[..., 0]).min() if ordered.shape[-1] > 1 else np.inf


class GraphMachine(RuleBasedStateMachine):
    """Grows a graph; ``check`` compares autonet's gradients with finite differences."""

    smooth_only = False

    def __init__(self):
        super().__init__()
        self.leaves = []   # (array, requires_grad)
        self.specs = []    # how each value is made: ("leaf", k) | ("op", name, fn, inputs) | ...

    # ------------------------------------------------------------ evaluation
    def evaluate(self, leaves, frozen=None):
        """All values from leaf tensors; ``frozen`` fixes detached / no_grad values."""
        values, margin = [], np.inf
        for position, spec in enumerate(self.specs):
            kind = spec[0]
            if kind == "leaf":
                value = leaves[spec[1]]
            elif frozen is not None and kind in ("detach", "island"):
                value = Tensor(frozen[position])
            elif kind == "detach":
                value = values[spec[1]].detach()
            elif kind == "island":
                with autonet.no_grad():
                    value = values[spec[1]].tanh() * 2.0
            else:
                _, name, fn, inputs = spec
                args = [values[i] for i in inputs]
                margin = min(margin, kink_distance(name, args) if callable(fn) else
                             reduction_kink(name, args[0], fn[1]))
                value = fn[0](args[0]) if not callable(fn) else fn(*args)
            values.append(value)
        return values, margin

    def _current(self):
        return self.evaluate([Tensor(a, requires_grad=rg) for a, rg in self.leaves])[0]

    def _pick(self, data, where=lambda value: True):
        values = self._current()
        candidates = [i for i, value in enumerate(values) if where(value)]
        return data.draw(st.sampled_from(candidates)) if candidates else None

    def _allowed(self, smooth):
        return smooth or not self.smooth_only

    # ------------------------------------------------------------ rules
    @initialize(data=st.data(), shape=st.sampled_from(SHAPES))
    def first_leaf(self, data, shape):
        self.leaf(data, shape, requires_grad=True)

    @rule(data=st.data(), shape=st.sampled_from(SHAPES), requires_grad=st.booleans())
    def leaf(self, data, shape, requires_grad):
        array = data.draw(arrays(shape=shape, min_value=-2, max_value=2, min_magnitude=0.05))
        self.specs.append(("leaf", len(self.leaves)))
        self.leaves.append((array, requires_grad))

    @rule(data=st.data(), name=st.sampled_from(sorted(UNARY)))
    def unary(self, data, name):
        fn, smooth = UNARY[name]
        if self._allowed(smooth):
            self.specs.append(("op", name, fn, [self._pick(data)]))

    @rule(data=st.data(), name=st.sampled_from(sorted(AXIS_OPS)))
    def with_axes(self, data, name):
        fn, _ = AXIS_OPS[name]
        index = self._pick(data, lambda v: 1 <= v.ndim and (name != "repeat_rows" or v.shape[0] >= 1))
        if index is not None:
            self.specs.append(("op", name, fn, [index]))

    @rule(data=st.data(), name=st.sampled_from(sorted(BINARY)))
    def binary(self, data, name):
        fn, smooth = BINARY[name]
        if not self._allowed(smooth):
            return
        values = self._current()
        pairs = [(i, j) for i in range(len(values)) for j in range(len(values))
                 if _broadcastable(values[i].shape, values[j].shape)]
        i, j = data.draw(st.sampled_from(pairs))   # i == j reuses one value twice
        self.specs.append(("op", name, fn, [i, j]))

    @rule(data=st.data(), name=st.sampled_from(sorted(REDUCTIONS)), keepdims=st.booleans())
    def reduce(self, data, name, keepdims):
        if not self._allowed(REDUCTIONS[name]):
            return
        index = self._pick(data, lambda v: v.ndim >= 1)
        if index is None:
            return
        ndim = self._current()[index].ndim
        axis = data.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1)))
        method = lambda x, name=name, axis=axis, keepdims=keepdims: getattr(x, name)(axis=axis, keepdims=keepdims)
        self.specs.append(("op", name, (method, axis), [index]))

    @rule(data=st.data())
    def stale_view_is_refused(self, data):
        """A view taken before a recorded write into its base refuses to enter a graph."""
        index = self._pick(data, lambda v: v.ndim >= 1)
        if index is None:
            return
        base = _fresh(self._current()[index])
        view = base[::-1]
        base[0] = base[0] * 3.0
        if base.requires_grad:
            with pytest.raises(RuntimeError, match="view of a tensor that was since modified"):
                view * 1.0
        else:
            np.testing.assert_array_equal((view * 1.0).data, base.data[::-1])

    @rule(data=st.data(), kind=st.sampled_from(["detach", "island"]))
    def cut(self, data, kind):
        self.specs.append((kind, self._pick(data)))

    @rule(data=st.data())
    def check(self, data):
        leaves = [Tensor(a, requires_grad=rg) for a, rg in self.leaves]
        values, margin = self.evaluate(leaves)
        root = data.draw(st.integers(0, len(values) - 1), label="root")
        largest = max(np.abs(v.data).max(initial=0) for v in values)
        if margin < KINK_MARGIN or largest > 1e3 or not values[root].requires_grad:
            event("check skipped: near a kink, huge values, or root needs no grad")
            return
        frozen = {i: v.data for i, v in enumerate(values) if self.specs[i][0] in ("detach", "island")}

        def fn(*xs):
            return self.evaluate(list(xs), frozen)[0][root]

        event("checked")
        assert_gradients_match(fn, *leaves)
        self.check_backward_agrees_with_grad(fn, leaves, data)
        if self.smooth_only:
            assert autonet.gradgradcheck(fn, leaves)

    def check_backward_agrees_with_grad(self, fn, leaves, data):
        """``backward()`` into ``.grad`` and ``grad()`` walk the same graph alike."""
        out = fn(*leaves)
        upstream = data.draw(arrays(shape=out.shape), label="upstream")
        wanted = [leaf for leaf in leaves if leaf.requires_grad]
        expected = autonet.grad(out, wanted, grad_outputs=upstream, retain_graph=True, allow_unused=True)
        out.backward(upstream)
        for leaf, grad in zip(wanted, expected):
            if grad is None:
                assert leaf.grad is None
            else:
                np.testing.assert_allclose(leaf.grad, grad.data, rtol=1e-12, atol=1e-12)


def _broadcastable(a, b):
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


class SmoothGraphMachine(GraphMachine):
    """The same graphs from smooth ops only, with second derivatives checked too."""

    smooth_only = True


# Each example is cheap, so even the ci profile runs a good number of graphs.
EXAMPLES = max(150, settings.default.max_examples)
TestRandomGraphs = GraphMachine.TestCase
TestRandomGraphs.settings = settings(settings.default, max_examples=EXAMPLES, stateful_step_count=12)
TestRandomSmoothGraphsSecondOrder = SmoothGraphMachine.TestCase
TestRandomSmoothGraphsSecondOrder.settings = settings(settings.default, max_examples=EXAMPLES // 2,
                                                      stateful_step_count=8)
