"""Ops against PyTorch itself (float64 values and gradients within 1e-10, special
values included), when torch is installed; skipped cleanly without it (the shared venv has none:
run with a venv that has torch, e.g. PYTHONPATH=. <torch-venv>/bin/python -m pytest this file)."""
import numpy as np
import pytest

import autonet
from autonet import Tensor

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")

pytestmark = pytest.mark.host_only("torch's CPU tensors are compared with host arrays")

_RNG = np.random.default_rng(0)
_X = _RNG.uniform(-0.9, 0.9, (3, 4))
_Y = _RNG.uniform(0.5, 2, (3, 4))
_SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 0.5])
_A = np.array([0.0, 0.0, 1.0, -np.inf, np.inf, 5.0, -5.0, 5.0, -5.0, 1e300, 0.0])
_B = np.array([0.0, 1.0, -0.0, -np.inf, np.inf, 3.0, 3.0, -3.0, -3.0, 1e300, -2.0])
_UNARY = [("tan", "tan"), ("arcsin", "asin"), ("arccos", "acos"), ("arctan", "atan"), ("arcsinh", "asinh"),
          ("arctanh", "atanh"), ("sinh", "sinh"), ("cosh", "cosh"), ("log2", "log2"), ("log10", "log10"),
          ("exp2", "exp2"), ("reciprocal", "reciprocal")]
_BINARY = [("logaddexp", "logaddexp"), ("logaddexp2", "logaddexp2"), ("arctan2", "atan2"),
           ("hypot", "hypot"), ("mod", "remainder"), ("fmod", "fmod")]
_INDEX = np.array([[0, 3, 3], [1, 1, 0], [2, 0, 1]])
_PAIRS = np.array([[0, 0], [1, 3], [2, 2]])
_DISTINCT = np.array([[0, 1], [3, 2], [2, 0]])
_PAD = ((0, 0), (0, 0), (2, 3), (1, 4))

CASES = {f"{ours}_{name}": (getattr(autonet, ours), getattr(torch, theirs), (values,))
         for ours, theirs in _UNARY for name, values in (("uniform", _X), ("special", _SPECIAL))}
CASES.update({f"{ours}_{name}": (getattr(autonet, ours), getattr(torch, theirs), values)
              for ours, theirs in _BINARY for name, values in (("uniform", (_X, _Y)), ("special", (_A, _B)))})
CASES.update({
    "arccosh": (autonet.arccosh, torch.acosh, (np.array([1.0, 0.5, np.inf, np.nan, 2.0, 1.7]),)),
    "float_power": (autonet.float_power, torch.float_power, (_Y, _X)),
    "power_at_zero": (lambda a, b: a ** b, lambda a, b: a ** b,
                      (np.array([0.0, 0, 0, 2, -2, 0]), np.array([-1.0, 0, 2, -1, 2, np.nan]))),
    "clip_tensor_bounds": (autonet.clip, torch.clamp, (np.array([0.0, 1, 2, 3, np.nan, 1.5]),
                                                       np.array([1.0, 1, 1, 1, 0, 2]), np.array([1.0, 1, 1, 2, 1, 1]))),
    "cumprod_zeros": (lambda t: t.cumprod(axis=1), lambda t: torch.cumprod(t, 1),
                      (np.array([[2.0, 0, 3, 4], [0, 0, 1, 2], [1, 2, 3, 0]]),)),
    "sort": (lambda t: t.sort(axis=1), lambda t: torch.sort(t, 1)[0], (_X,)),
    "topk": (lambda t: autonet.topk(t, 2, axis=0)[0], lambda t: torch.topk(t, 2, 0)[0], (_X,)),
    "topk_smallest": (lambda t: autonet.topk(t, 2, largest=False)[0],
                      lambda t: torch.topk(t, 2, largest=False)[0], (_X,)),
    "median_odd": (lambda t: autonet.median(t, axis=1), lambda t: torch.median(t, 1)[0], (_RNG.normal(size=(3, 5)),)),
    "gather": (lambda t: autonet.take_along_axis(t, _INDEX, 1), lambda t: torch.gather(t, 1, torch.tensor(_INDEX)),
               (_X,)),
    "scatter_add": (lambda t, v: autonet.scatter(t, _PAIRS, v, 1, reduce="add"),
                    lambda t, v: torch.scatter_add(t, 1, torch.tensor(_PAIRS), v), (_X, _Y[:, :2])),
    "scatter": (lambda t, v: autonet.scatter(t, _DISTINCT, v, 1),
                lambda t, v: torch.scatter(t, 1, torch.tensor(_DISTINCT), v), (_X, _Y[:, :2])),
    "tril": (lambda t: t.tril(1), lambda t: torch.tril(t, 1), (_X,)),
    "triu": (lambda t: t.triu(-1), lambda t: torch.triu(t, -1), (_X,)),
    "diagonal": (lambda t: t.diagonal(1), lambda t: torch.diagonal(t, 1), (_X,)),
    "diag": (lambda t: autonet.diag(t, -1), lambda t: torch.diag(t, -1), (_X[0],)),
    "einsum_bii": (lambda t: autonet.einsum("bii->bi", t), lambda t: torch.einsum("bii->bi", t),
                   (_RNG.normal(size=(2, 3, 3)),)),
    "tile": (lambda t: t.tile((2, 1, 3)), lambda t: t.repeat(2, 1, 3), (_X,)),
    "roll": (lambda t: t.roll((1, -5), (0, 1)), lambda t: torch.roll(t, (1, -5), (0, 1)), (_X,)),
    "flip": (lambda t: t.flip(), lambda t: torch.flip(t, (0, 1)), (_X,)),
})
CASES.update({f"pad_{mode}": (lambda t, mode=mode: t.pad(_PAD, mode=mode),
                              lambda t, theirs=theirs: F.pad(t, (1, 4, 2, 3), mode=theirs),
                              (_RNG.normal(size=(1, 2, 4, 5)),))
              for mode, theirs in (("reflect", "reflect"), ("edge", "replicate"), ("wrap", "circular"))})


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_equal_pytorchs(name):
    ours, theirs, arrays = CASES[name]
    mine = [Tensor(a, requires_grad=True) for a in arrays]
    reference = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    with np.errstate(all="ignore"):
        out = ours(*mine)
        expected = theirs(*reference)
        upstream = np.random.default_rng(1).standard_normal(expected.shape)
        (out * upstream).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for t, r in zip(mine, reference):
        grad = t.grad if t.grad is not None else np.zeros(t.shape)
        np.testing.assert_allclose(grad, r.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
