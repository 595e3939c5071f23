"""The public hypothesis strategies are themselves tested, as good test libraries do."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import autonet
from autonet.testing import DISTINCT_GAP, arrays, assert_gradients_match, broadcastable_shapes, tensors


@given(arrays())
def test_default_values_are_finite_normal_floats_within_ten(a):
    assert a.dtype == np.float64 and a.ndim <= 3
    assert np.all(np.isfinite(a)) and np.all(np.abs(a) <= 10)
    tiny = (a != 0) & (np.abs(a) < np.finfo(np.float64).tiny)
    assert not tiny.any()


@given(arrays(shape=(3, 2), dtype=np.float32, min_value=0.5, max_value=2.0))
def test_shape_dtype_and_bounds_are_honoured(a):
    assert a.shape == (3, 2) and a.dtype == np.float32
    assert np.all((a >= 0.5) & (a <= 2.0))


@given(arrays(shape=(5,), min_magnitude=0.25), arrays(shape=(6,), distinct=True))
def test_min_magnitude_and_distinct(a, b):
    assert np.all(np.abs(a) >= 0.25)
    assert np.diff(np.sort(b)).min() >= DISTINCT_GAP


@given(st.integers(1, 4).flatmap(lambda n: st.tuples(st.just(n), broadcastable_shapes(n))))
def test_broadcastable_shapes_really_broadcast(case):
    n, shapes = case
    assert isinstance(shapes, tuple) and len(shapes) == n
    assert all(isinstance(s, tuple) for s in shapes)
    np.broadcast_shapes(*shapes)   # raises if they do not broadcast


@given(broadcastable_shapes(2, min_dims=1, max_dims=2, max_side=3))
def test_broadcastable_shapes_respect_limits(shapes):
    assert all(1 <= len(s) <= 2 and all(1 <= n <= 3 for n in s) for s in shapes)


@given(tensors(shape=(2,)), tensors(shape=(2,), requires_grad=False, dtype=np.float32))
def test_tensors_strategy(t, constant):
    assert isinstance(t, autonet.Tensor) and t.requires_grad and t.is_leaf
    assert not constant.requires_grad and constant.dtype == np.float32


def test_bad_strategy_arguments_are_rejected():
    with pytest.raises(TypeError):
        arrays(dtype=np.int64)
    with pytest.raises(ValueError):
        arrays(min_value=1.0, max_value=0.0)


def test_assert_gradients_match_reports_input_and_element():
    class Wrong(autonet.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 3

    x = autonet.Tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(autonet.GradcheckError, match=r"input 0 of shape \(1, 2\) at element \(0, 0\)"):
        assert_gradients_match(Wrong.apply, x)


def test_import_without_hypothesis_says_how_to_install():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import autonet\n"
            "try:\n    import autonet.testing\nexcept ImportError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install autonet[test]" in result.stdout


def test_import_autonet_never_imports_hypothesis():
    code = "import sys, autonet; print('hypothesis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
