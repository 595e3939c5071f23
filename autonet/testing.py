"""Property-based gradient testing for your own ops and models (needs hypothesis).

>>> from hypothesis import given
>>> import autonet
>>> from autonet.testing import tensors, assert_gradients_match
>>> @given(tensors(shape=(2, 3)))
... def test_softplus(x):
...     assert_gradients_match(lambda t: (1 + t.exp()).log(), x)
>>> test_softplus()

The strategies draw well-conditioned values: finite, no subnormals, in
[-10, 10] unless told. ``min_magnitude`` keeps values away from a kink at 0
(relu, abs) and ``distinct`` keeps them apart (max, min). Importing this module
registers two hypothesis profiles, ``ci`` (fast) and ``thorough``; select one
with ``settings.load_profile`` (the project's tests read ``HYPOTHESIS_PROFILE``).
"""
from __future__ import annotations

from typing import Any, Callable

try:
    from hypothesis import settings, strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "autonet.testing needs hypothesis: pip install autonet[test] "
        "(or pip install hypothesis)") from error

import numpy as np

from .debug.gradcheck import _float64_copies, check_vjp
from .core.tensor import Tensor
from .core.types import Array, DTypeLike

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=400, deadline=None)

_DEFAULT_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def arrays(shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
           dtype: DTypeLike = np.float64, elements: st.SearchStrategy[float] | None = None, *,
           min_value: float = -10.0, max_value: float = 10.0, min_magnitude: float = 0.0,
           distinct: bool = False) -> st.SearchStrategy[Array]:
    """A strategy for ndarrays of well-conditioned floats.

    ``shape`` is a tuple, a strategy of tuples, or None (0 to 3 axes of 1 to 4).
    ``elements`` replaces the value strategy entirely when given; otherwise
    values lie in [min_value, max_value] with ``|v| >= min_magnitude``.
    ``distinct`` keeps every two values at least ``DISTINCT_GAP`` apart, away
    from the ties where max, min and sorting are not differentiable.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"arrays: dtype must be a float dtype, not {dtype}")
    if shape is None:
        shape = _DEFAULT_SHAPES
    if elements is None:
        elements = _floats(dtype, min_value, max_value, min_magnitude)
    strategy = hnp.arrays(dtype, shape, elements=elements, unique=distinct)
    return strategy.filter(_well_separated) if distinct else strategy


DISTINCT_GAP = 1e-3


def _well_separated(array):
    return array.size < 2 or np.diff(np.sort(array, axis=None)).min() >= DISTINCT_GAP


def _floats(dtype, min_value, max_value, min_magnitude):
    if min_value > max_value:
        raise ValueError(f"min_value {min_value} is above max_value {max_value}")

    def floats(lo, hi):
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                         width=dtype.itemsize * 8)

    if min_magnitude <= 0:
        return floats(min_value, max_value)
    # Draw from the one or two ranges outside (-min_magnitude, min_magnitude): no rejection.
    ranges = [floats(lo, hi) for lo, hi in ((min_value, min(max_value, -min_magnitude)),
                                            (max(min_value, min_magnitude), max_value)) if lo <= hi]
    if not ranges:
        raise ValueError("no value in range has the requested min_magnitude")
    return st.one_of(*ranges)


def tensors(shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
            dtype: DTypeLike = np.float64, elements: st.SearchStrategy[float] | None = None,
            requires_grad: bool = True, **bounds: Any) -> st.SearchStrategy[Tensor]:
    """A strategy for Tensors; takes the arguments of :func:`arrays`."""
    return arrays(shape, dtype, elements, **bounds).map(
        lambda a: Tensor(a, requires_grad=requires_grad))


def broadcastable_shapes(n: int = 2, *, min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
                         max_side: int = 4) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """A strategy for tuples of ``n`` shapes that broadcast together (NumPy rules).

    Shapes differ in rank and contain size-1 axes, as broadcasting allows.
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side).map(lambda result: result.input_shapes)


def assert_gradients_match(fn: Callable[..., Any], *inputs: Tensor, eps: float = 1e-6, atol: float = 1e-5,
                           rtol: float = 1e-3) -> None:
    """Assert the analytic gradients of ``fn(*inputs)`` match finite differences.

    Checks the vector-Jacobian product with a random upstream gradient, for
    every element of every input that requires grad (in float64). Raises
    :class:`autonet.GradcheckError` naming the input, the element, the numeric
    and analytic values and the shapes.
    """
    check_vjp(fn, _float64_copies(inputs), eps, atol, rtol, np.random.default_rng(0))
