"""Every row of the op database (tests/op_db.py), tested every way.

For each row: values against an independent NumPy reference; the
vector-Jacobian product for a random upstream gradient and the second
derivatives against finite differences; NumPy's own function on Tensors
giving the same Tensor; a compiled step (the NumPy replay) equal to eager
mode bit for bit; and, for the ops the fused backend lowers, the fused kernel
equal to eager mode to rounding. The module runs on the CPU and again on the
device double (tests/conftest.py), except the checks against the reference and
finite differences: the double holds NumPy's own values, so on the device they
would repeat the CPU's arithmetic; there each row's values, first and second
derivatives are held to the CPU's instead (to 1e-12: a device's own scatter may
sum repeated indices in another order).
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import autonet
import device_double
from autonet import Tensor
from autonet.ops.registry import OPS as REGISTRY
from autonet.testing import DISTINCT_GAP, assert_gradients_match, broadcastable_shapes
from op_db import NOT_DIFFERENTIABLE, OPS

ROWS = {row.name: row for row in OPS}
NAMES = sorted(ROWS)
_SIDE = st.integers(1, 4)


def _shapes(row):
    """A strategy for the row's input shapes, one per input."""
    if row.shapes == "broadcast":
        return broadcastable_shapes(2)
    if row.shapes == "matrices":
        return st.tuples(_SIDE, _SIDE, _SIDE).map(lambda n: ((n[0], n[1]), (n[1], n[2])))
    if row.shapes == "matrices2":
        return st.tuples(_SIDE, _SIDE).map(lambda n: (n, n))
    if row.shapes == "matrix":
        return st.tuples(_SIDE, _SIDE).map(lambda n: (n,))
    if row.shapes == "wide":
        return st.tuples(_SIDE, st.integers(2, 4)).map(lambda n: (n,))
    least = 1 if row.shapes == "axis" else 0
    return st.integers(least, 3).flatmap(lambda n: st.tuples(*[_SIDE] * n)).map(lambda s: (s,))


def _draw(data, row):
    shapes = data.draw(_shapes(row), label="shapes")
    inputs = [Tensor(_values(data, shape, **bounds), requires_grad=True)
              for shape, bounds in zip(shapes, row.domains)]
    if row.ties:
        assume(np.all(np.abs(inputs[0].data - inputs[1].data) > 1e-3))
    return inputs


def _values(data, shape, min_value=-10.0, max_value=10.0, min_magnitude=0.0, distinct=False):
    """An input's values in the row's domain (``autonet.testing.arrays``' bounds). Hypothesis
    draws a seed and whether to mix in the domain's special points (its ends, 0, +-1, +-0.5,
    +-min_magnitude, as Hypothesis' floats favour them); NumPy draws the values. Drawing every
    element through Hypothesis took four fifths of this file's time."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    specials = not distinct and data.draw(st.booleans(), label="special points")
    low_side = (min_value, min(max_value, -min_magnitude))   # |v| >= min_magnitude: two ranges
    high_side = (max(min_value, min_magnitude), max_value)
    ranges = [r for r in (low_side, high_side) if r[0] <= r[1]] if min_magnitude > 0 else \
        [(min_value, max_value)]
    while True:
        which = rng.integers(len(ranges), size=shape)
        values = np.asarray(rng.uniform(np.take([r[0] for r in ranges], which),
                                        np.take([r[1] for r in ranges], which)))
        if specials:
            points = [p for p in {min_value, max_value, 0.0, 1.0, -1.0, 0.5, -0.5, min_magnitude,
                                  -min_magnitude} if min_value <= p <= max_value and abs(p) >= min_magnitude]
            values = np.where(rng.random(shape) < 0.25, rng.choice(points, size=shape), values)
        if not distinct or values.size < 2 or np.diff(np.sort(values, axis=None)).min() >= DISTINCT_GAP:
            return values


def test_every_differentiable_registered_op_has_a_row():
    tested = {row.op for row in OPS}
    assert tested <= set(REGISTRY), f"rows for ops nobody registered: {tested - set(REGISTRY)}"
    missing = set(REGISTRY) - tested - NOT_DIFFERENTIABLE
    assert not missing, f"registered ops without a row in tests/op_db.py: {sorted(missing)}"


_ON_THE_DOUBLE = ("the double's values are NumPy's: test_the_device_double_gives_the_cpus_values_and_"
                  "derivatives holds them to the CPU's, which this test checks")


@pytest.mark.host_only(_ON_THE_DOUBLE)
@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_values_match_the_reference(name, data):
    row = ROWS[name]
    inputs = _draw(data, row)
    out = row.call(*inputs)
    expected = row.reference(*(np.asarray(x.data) for x in inputs))
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.host_only(_ON_THE_DOUBLE)
@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_gradients_match_finite_differences(name, data):
    row = ROWS[name]
    assert_gradients_match(row.call, *_draw(data, row))


@pytest.mark.host_only(_ON_THE_DOUBLE)
@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_second_derivatives_match_finite_differences(name, data):
    row = ROWS[name]
    assert autonet.gradgradcheck(row.call, _draw(data, row))


def _derivatives(row, arrays, upstream, weights):
    """The row's value at ``arrays``, its vector-Jacobian product for ``upstream`` (made with
    create_graph) and the gradient of that product's inner product with ``weights``: the
    arrays forward, backward and double backward compute, wherever Tensors are made."""
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    out = row.call(*inputs)
    first = autonet.grad(out, inputs, grad_outputs=Tensor(upstream), create_graph=True)
    projected = sum((g * Tensor(w)).sum() for g, w in zip(first, weights))
    second = autonet.grad(projected, inputs, allow_unused=True) if projected.requires_grad \
        else [None] * len(inputs)   # a first derivative constant in the inputs (abs, relu)
    return out, [out.data] + [g.data for g in first] + [None if g is None else g.data for g in second]


@pytest.mark.host_only("draws on the CPU and repeats each draw on the device double itself")
@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_the_device_double_gives_the_cpus_values_and_derivatives(name, data):
    row = ROWS[name]
    arrays = [np.asarray(x.data) for x in _draw(data, row)]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed of the vectors"))
    upstream = rng.standard_normal(row.call(*(Tensor(a) for a in arrays)).shape)
    weights = [rng.standard_normal(a.shape) for a in arrays]
    _, on_the_cpu = _derivatives(row, arrays, upstream, weights)
    with device_double.default_device():
        out, on_the_double = _derivatives(row, arrays, upstream, weights)
        assert out.device == "double:0"
        for got, want in zip(on_the_double, on_the_cpu, strict=True):
            assert (got is None) == (want is None)
            if want is not None:
                assert isinstance(got, device_double.DeviceArray)
                np.testing.assert_allclose(got.get(), want, rtol=1e-12, atol=1e-12)   # a device's
                # own scatter (np.add.at, not the CPU's sorted reduceat) sums repeats in its order


@pytest.mark.parametrize("name", [n for n in NAMES if ROWS[n].numpy is not None])
@given(data=st.data())
def test_numpys_function_on_tensors_runs_the_op(name, data):
    row = ROWS[name]
    inputs = _draw(data, row)
    through_numpy = row.numpy(*inputs)
    assert isinstance(through_numpy, Tensor) and through_numpy.requires_grad
    np.testing.assert_array_equal(through_numpy.data, row.call(*inputs).data)


def test_every_numpy_callable_the_registry_names_has_a_row_calling_it(monkeypatch):
    """The registry's NumPy tables are exercised: each registered NumPy function reaches
    Tensor's protocol from some row (ufunc methods such as np.add.reduce: test_numpy_protocol)."""
    dispatched = set()
    ufunc, function = Tensor.__array_ufunc__, Tensor.__array_function__

    def spy_ufunc(self, which, method, *inputs, **kwargs):
        dispatched.add(which)
        return ufunc(self, which, method, *inputs, **kwargs)

    def spy_function(self, func, types, args, kwargs):
        dispatched.add(func)
        return function(self, func, types, args, kwargs)

    monkeypatch.setattr(Tensor, "__array_ufunc__", spy_ufunc)
    monkeypatch.setattr(Tensor, "__array_function__", spy_function)
    for row in OPS:
        if row.numpy is not None:
            row.numpy(*(Tensor(a, requires_grad=True) for a in _fixed_inputs(row, 0)))
    registered = {f for entry in REGISTRY.values() for f in entry.numpy if not isinstance(f, tuple)}
    missing = {f.__name__ for f in registered if f not in dispatched}
    assert not missing, f"no row of tests/op_db.py calls numpy.{sorted(missing)}"


def _step_twins(row, backend, shape):
    """An eager step and its compiled twin: ``loss = <row(inputs), upstream>``, backward."""
    upstream = Tensor(np.random.default_rng(7).standard_normal(shape))

    def step(*inputs):
        loss = (row.call(*inputs) * upstream).sum()
        loss.backward()
        return loss

    return step, autonet.compile(step, backend=backend)


def _fixed_inputs(row, seed):
    rng = np.random.default_rng(seed)
    shapes = {"broadcast": ((3, 1), (4,)), "matrices": ((3, 4), (4, 2)), "matrices2": ((3, 4), (3, 4)),
              "matrix": ((3, 3),)}.get(row.shapes, ((3, 4), (3, 4)))
    inputs = []
    for shape, bounds in zip(shapes, row.domains):
        low, high = bounds.get("min_value", -2.0), bounds.get("max_value", 2.0)
        values = rng.uniform(max(low, -2.0), min(high, 2.0), shape)   # distinct, almost surely
        magnitude = bounds.get("min_magnitude", 0.0)
        values = np.where(np.abs(values) < magnitude, np.copysign(magnitude, values), values)
        inputs.append(values)
    return inputs


def _compare(row, backend, rtol):
    shape = row.call(*(Tensor(a) for a in _fixed_inputs(row, 0))).shape
    eager, compiled = _step_twins(row, backend, shape)
    for seed in range(3):   # the trace, then two replays with new values
        arrays = _fixed_inputs(row, seed)
        eager_inputs = [Tensor(a, requires_grad=True) for a in arrays]
        compiled_inputs = [Tensor(a, requires_grad=True) for a in arrays]
        expected = eager(*eager_inputs)
        got = compiled(*compiled_inputs)
        np.testing.assert_allclose(got.data, expected.data, rtol=rtol, atol=0)
        for x, y in zip(compiled_inputs, eager_inputs):
            np.testing.assert_allclose(x.grad, y.grad, rtol=rtol, atol=1e-300)
    return compiled


@pytest.mark.parametrize("name", [n for n in NAMES if ROWS[n].compiles])
def test_a_compiled_step_equals_eager_mode_bit_for_bit(name):
    _compare(ROWS[name], "numpy", rtol=0)


@pytest.mark.host_only("the fused kernel runs on the CPU; device steps stay on the replay")
@pytest.mark.parametrize("name", [n for n in NAMES if ROWS[n].fused])
def test_the_fused_kernel_equals_eager_mode(name):
    compiled = _compare(ROWS[name], "fused", rtol=1e-12)
    program = compiled.programs[0]
    assert program.backend == "fused", program.listing()
