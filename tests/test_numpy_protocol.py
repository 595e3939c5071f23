"""NumPy on Tensors, checked against NumPy itself over its whole public namespace.

Every ufunc and every function NumPy dispatches through ``__array_function__``
is called with Tensors in the usual calling conventions. Wherever NumPy
succeeds on the plain arrays, autonet must give the same values as a Tensor
whose gradient matches finite differences, or the same non-float answer (a
shape, a bool mask, an index), or raise ``TypeError``. It must never hand back
a float array that silently left the graph.
"""
import numpy as np
import pytest

import autonet
from autonet import Tensor

NO_FILES = ("save", "load", "txt", "file", "memmap", "printoptions", "genfrom", "fromregex")


def _public(namespace, prefix):
    found = {}
    for name in dir(namespace):
        if name.startswith("_") or any(word in name for word in NO_FILES):
            continue
        value = getattr(namespace, name)
        if isinstance(value, np.ufunc) or type(value).__name__ == "_ArrayFunctionDispatcher":
            found.setdefault(id(value), (f"{prefix}{name}", value))
    return sorted(found.values())


FUNCTIONS = _public(np, "np.") + _public(np.linalg, "np.linalg.")
CALLS = {   # calling conventions, given two tensors of one shape
    "one": lambda a, b: (a,),
    "two": lambda a, b: (a, b),
    "sequence": lambda a, b: ([a, b],),
}


def _inputs():
    rng = np.random.default_rng(0)
    # In (0.55, 0.95): inside every domain, away from integers (floor, round) and ties.
    return [Tensor(rng.uniform(0.55, 0.95, (2, 3)), requires_grad=True) for _ in range(2)]


def _numpy_result(function, call):
    a, b = (t.data.copy() for t in _inputs())
    try:
        with np.errstate(all="ignore"):
            return True, function(*CALLS[call](a, b))
    except Exception:   # noqa: BLE001 - NumPy refuses this call: nothing to compare
        return False, None


def _is_float_array(value):
    return isinstance(value, (np.ndarray, np.generic)) and np.asarray(value).dtype.kind in "fc"


def _same(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        return len(ours) == len(theirs) and all(_same(o, t) for o, t in zip(ours, theirs))
    if isinstance(ours, Tensor):   # an element of a list of Tensors (np.meshgrid, np.split)
        ours = ours.data
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    numeric = ours.dtype.kind in "biufc" and theirs.dtype.kind in "biufc"
    return np.array_equal(ours, theirs, equal_nan=numeric)


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("name,function", FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_numpy_function_on_tensors_is_in_the_graph_or_refused(name, function, call):
    succeeded, expected = _numpy_result(function, call)
    inputs = _inputs()
    try:
        with np.errstate(all="ignore"):
            result = function(*CALLS[call](*inputs))
    except TypeError:
        return                      # refused: always allowed
    except Exception:               # noqa: BLE001
        if succeeded:
            raise
        return                      # NumPy refuses this call too
    assert succeeded, f"{name} accepted Tensors where NumPy refuses the arrays"
    assert not _is_float_array(result), f"{name} returned a float array outside the graph"
    if isinstance(result, Tensor):
        np.testing.assert_allclose(result.data, expected, rtol=1e-12, atol=1e-12)
        if np.all(np.isfinite(expected)):   # (np.arccosh is NaN on these inputs: no derivative)
            assert autonet.gradcheck(lambda *xs: function(*CALLS[call](*xs)), inputs)
    else:
        assert _same(result, expected), f"{name}: {result!r} != {expected!r}"


def test_the_contract_list_stays_in_the_graph():
    """The functions the API contract names return Tensors with gradients."""
    x = Tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    w = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    cases = {
        "concatenate": lambda x, w: np.concatenate([x, w]),
        "stack": lambda x, w: np.stack([x, w], axis=1),
        "reshape": lambda x, w: np.reshape(x, (3, 2)) @ w,
        "transpose": lambda x, w: np.transpose(x) @ w,
        "swapaxes": lambda x, w: np.swapaxes(x, 0, 1),
        "moveaxis": lambda x, w: np.moveaxis(x, 0, -1),
        "squeeze": lambda x, w: np.squeeze(x[None]),
        "expand_dims": lambda x, w: np.expand_dims(x, 1) * w,
        "broadcast_to": lambda x, w: np.broadcast_to(x[:1], (4, 3)),
        "clip": lambda x, w: np.clip(x * w, -0.9, 2.5),   # no value on a bound (a kink)
        "where": lambda x, w: np.where(x > 3.5, x, w),   # no value on the jump
        "dot": lambda x, w: np.dot(x, w.T),
        "matmul": lambda x, w: np.matmul(x, w.T),
        "einsum": lambda x, w: np.einsum("ij,kj->ik", x, w),
        "sum": lambda x, w: np.sum(x * w, axis=0),
        "mean": lambda x, w: np.mean(x * w, axis=1, keepdims=True),
        "max": lambda x, w: np.max(x * w, axis=0),
        "min": lambda x, w: np.min(x * w),
        "amax": lambda x, w: np.amax(x * w, axis=1),
        "amin": lambda x, w: np.amin(x * w, axis=1),
        "var": lambda x, w: np.var(x * w, axis=0),
        "std": lambda x, w: np.std(x + w, axis=1),
        "linalg.norm": lambda x, w: np.linalg.norm(x * w, axis=1),
        "outer": lambda x, w: np.outer(x, w),
        "tensordot": lambda x, w: np.tensordot(x, w, axes=([1], [1])),
        "trace": lambda x, w: np.trace(x.T @ w),
        "repeat": lambda x, w: np.repeat(x, 2, axis=1),
    }
    for name, case in cases.items():
        result = case(x, w)
        assert isinstance(result, Tensor) and result.requires_grad, name
        expected = case(x.data, w.data)
        np.testing.assert_allclose(result.data, expected, err_msg=name)
        assert autonet.gradcheck(case, [x, w]), name


def test_refusals_name_the_function_and_an_alternative():
    t = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy\.ravel.*t\.reshape\(-1\)"):
        np.ravel(t)
    with pytest.raises(TypeError, match=r"numpy\.nancumprod"):   # (cumprod is an op since contract v3)
        np.nancumprod(t)
    with pytest.raises(TypeError, match="out="):
        np.sum(t, out=np.zeros(()))
    with pytest.raises(TypeError, match="numpy.cbrt"):   # (arctan is an op since contract v3)
        np.cbrt(t)


def test_numpy_inside_a_custom_backward_is_recorded_under_create_graph():
    """A formula written with NumPy gets Tensors under create_graph and stays differentiable."""

    class SquareIfPositive(autonet.Function):   # x**2 for x > 0, x otherwise
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.where(x > 0, x * x, x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            return np.where(x > 0, grad * 2 * x, grad)

    x = Tensor([1.5, -2.0, 2.5], requires_grad=True)
    (first,) = autonet.grad((SquareIfPositive.apply(x) ** 3).sum(), x, create_graph=True)
    (second,) = autonet.grad(first.sum(), x)
    # d/dx (x^6) = 6x^5 and d2 = 30 x^4 for x > 0; d/dx x^3 = 3x^2, d2 = 6x otherwise
    np.testing.assert_allclose(first.data, [6 * 1.5 ** 5, 3 * 4.0, 6 * 2.5 ** 5])
    np.testing.assert_allclose(second.data, [30 * 1.5 ** 4, 6 * -2.0, 30 * 2.5 ** 4])
    assert autonet.gradgradcheck(SquareIfPositive.apply, x)
