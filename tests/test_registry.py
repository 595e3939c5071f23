"""The op registry: everything derived from it (exports, methods, NumPy tables, PyTorch hints,
the reference page) agrees with it, and it refuses malformed declarations."""
import inspect
import pathlib

import numpy as np
import pytest

import autonet
from autonet import Tensor
from autonet.ops import registry
from autonet.ops.registry import OPS, register

PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "ops.md"


def test_the_reference_page_is_generated_from_the_registry():
    assert PAGE.read_text() == registry.reference(), \
        "docs/ops.md is out of date: regenerate it with `make ops-page`"


def test_the_reference_page_lists_every_op_once():
    text = PAGE.read_text()
    for name in OPS:
        assert text.count(f"| `{name}`") == 1, name


def test_every_top_level_op_is_exported_and_listed_in_all():
    for entry in OPS.values():
        if entry.top_level:
            assert inspect.unwrap(getattr(autonet, entry.name)) is entry.function, entry.name
            assert entry.name in autonet.__all__
        else:
            assert entry.name not in autonet.__all__


def test_every_method_is_bound_and_runs_the_same_op_as_the_function():
    x = Tensor(np.linspace(0.2, 0.9, 6).reshape(2, 3), requires_grad=True)
    unary = [e for e in OPS.values() if e.kind in ("elementwise", "activation")
             and e.method_name and len(inspect.signature(e.function).parameters) == 1]
    assert len(unary) > 10
    for entry in unary:
        method = getattr(Tensor, entry.method_name)
        np.testing.assert_array_equal(method(x).data, entry.function(x).data, err_msg=entry.name)
        assert method(x).grad_fn.name == entry.function(x).grad_fn.name


def test_operators_are_bound_plain_reflected_and_in_place():
    a = Tensor([1.0, 2.0])
    assert (3.0 - a).data.tolist() == [2.0, 1.0]          # __rsub__ swaps
    assert (a - 3.0).data.tolist() == [-2.0, -1.0]
    assert (2.0 ** a).data.tolist() == [2.0, 4.0]
    b = Tensor([1.0, 2.0])
    b /= 2.0
    assert b.data.tolist() == [0.5, 1.0]
    assert not hasattr(Tensor, "__ipow__")   # declared only where the entry names it


def test_constructors_are_static_methods_too():
    assert Tensor.eye(2).data.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert "zeros_like" not in Tensor.__dict__


@pytest.mark.parametrize("pytorch, autonet_name", [("clamp", "clip"), ("unsqueeze", "expand_dims"),
                                                   ("cat", "concatenate"), ("mm", "matmul"),
                                                   ("permute", "transpose"), ("view", "reshape")])
def test_pytorch_names_point_to_autonets_on_the_module_and_on_tensors(pytorch, autonet_name):
    with pytest.raises(AttributeError, match=autonet_name):
        getattr(autonet, pytorch)
    if pytorch != "cat":   # a function only: Tensor has no cat in PyTorch either
        with pytest.raises(AttributeError, match=autonet_name):
            getattr(Tensor([1.0]), pytorch)()


def test_numpy_arguments_are_matched_by_name_and_extras_refused():
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert np.sum(t, 0).shape == (3,)                          # axis, positionally
    assert np.sum(t, 1, None, None, True).shape == (2, 1)      # keepdims, positionally
    assert np.var(t, ddof=1).item() == pytest.approx(np.var(t.data, ddof=1))
    with pytest.raises(TypeError, match="out="):
        np.sum(t, out=np.empty(3))
    with pytest.raises(TypeError, match="where="):
        np.sum(t, where=np.ones((2, 3), dtype=bool))
    with pytest.raises(TypeError, match="dtype="):
        np.mean(t, dtype=np.float32)
    with pytest.raises(TypeError, match="out="):
        np.exp(t, out=np.empty((2, 3)))


def test_register_refuses_a_duplicate_an_unknown_kind_and_a_missing_docstring(monkeypatch):
    monkeypatch.setattr(registry, "OPS", dict(OPS))

    def exp(x):
        """Again."""

    with pytest.raises(ValueError, match="declared twice"):
        register("elementwise")(exp)
    with pytest.raises(ValueError, match="kind"):
        register("no such kind")
    with pytest.raises(ValueError, match="docstring"):
        register("elementwise", name="undocumented")(lambda x: x)
