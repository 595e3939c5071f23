"""The fused backend's edges: IEEE special values, exceptions, and its kernel cache.

Needs the ``fast`` extra (numba, scipy) for the kernels; the cache file checks run without it.
"""
import os
import stat

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.compiler import fused as backend
from autonet.optim import SGD

_SPECIAL = np.array([-np.inf, -0.0, 0.0, -1.0, 2.25, np.inf, np.nan])


def _sqrt_step(w):
    optimizer = SGD([w], lr=0.0)

    def step(x):
        loss = (w * x ** 0.5).sum()
        optimizer.zero_grad()
        loss.backward()       # w.grad is x ** 0.5, element by element
        optimizer.step()
        return loss

    return step


def _same_ieee(a, b):
    """Equal values, NaN where NaN, and zeros of the same sign."""
    np.testing.assert_array_equal(a, b)
    assert (np.signbit(a) == np.signbit(b))[~np.isnan(a)].all()


@pytest.mark.host_only("the fused kernel runs on the CPU")
def test_fused_square_roots_agree_with_eager_at_inf_nan_and_signed_zero():
    pytest.importorskip("numba")
    eager_w, fused_w = (Tensor(np.ones(7), requires_grad=True) for _ in range(2))
    eager, fused = _sqrt_step(eager_w), autonet.compile(_sqrt_step(fused_w), backend="fused")
    for _ in range(2):
        with np.errstate(invalid="ignore"):
            eager(Tensor(_SPECIAL)), fused(Tensor(_SPECIAL))
        assert fused.programs[0].backend == "fused"
        # eager mode (NumPy's array ** 0.5 is sqrt): NaN at -inf and -1, -0.0 at -0.0
        _same_ieee(eager_w.grad, np.array([np.nan, -0.0, 0.0, np.nan, 1.5, np.inf, np.nan]))
        _same_ieee(fused_w.grad, eager_w.grad)


@pytest.mark.host_only("labels are host arrays; the fused kernel runs on the CPU")
def test_a_fused_kernel_that_raises_leaves_gradients_as_eager_mode_does():
    pytest.importorskip("numba")

    def make():
        model = nn.Linear(3, 4, rng=0)
        optimizer = SGD(model.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss()
        x = Tensor(np.ones((2, 3)))

        def step(labels):
            loss = loss_fn(model(x), labels)   # refuses bad labels before ...
            optimizer.zero_grad()      # ... eager mode reaches this
            loss.backward()
            optimizer.step()
            return loss

        return model, step

    eager_model, eager = make()
    model, step = make()
    fused = autonet.compile(step, backend="fused")
    good, bad = np.array([0, 1]), np.array([0, 9])
    for labels in (good, good, bad):
        raised = []
        for function in (eager, fused):
            try:
                function(labels)
            except (ValueError, IndexError) as error:
                raised.append(type(error))
        assert len(raised) in (0, 2)
    assert fused.programs[0].backend == "fused"
    for a, b in zip(eager_model.parameters(), model.parameters()):
        assert a.grad is not None and b.grad is not None   # the good call's, kept
        np.testing.assert_allclose(b.grad, a.grad, rtol=1e-12)
        np.testing.assert_allclose(b.data, a.data, rtol=1e-12)


# ---------------------------------------------------------------- the kernel cache
@pytest.mark.host_only("files only")
def test_the_cache_directory_is_created_private(tmp_path):
    directory = tmp_path / "kernels"
    backend._cached_file(str(directory), "kernel_x.py", "text\n")
    assert stat.S_IMODE(os.stat(directory).st_mode) & 0o077 == 0


@pytest.mark.host_only("files only")
@pytest.mark.parametrize("planted", ["truncated", "edited", "foreign", "binary"])
def test_a_cache_file_is_used_only_if_it_holds_exactly_its_source(tmp_path, planted):
    text = "def kernel():\n    return 1.0\n"
    path = tmp_path / "kernel_x.py"
    os.chmod(tmp_path, 0o700)
    content = {"truncated": text[:10], "edited": text.replace("1.0", "1.15"),
               "foreign": "import os\n", "binary": None}[planted]
    if content is None:
        path.write_bytes(b"\xff\xfe\x00")
    else:
        path.write_text(content)
    assert backend._cached_file(str(tmp_path), "kernel_x.py", text) == str(path)
    assert path.read_text() == text                     # written anew
    assert not list(tmp_path.glob("*.tmp"))             # atomically: no temporary left behind


@pytest.mark.host_only("files only")
def test_a_cache_directory_others_may_write_is_not_used(tmp_path):
    os.chmod(tmp_path, 0o777)
    with pytest.raises(PermissionError, match="not private"):
        backend._cached_file(str(tmp_path), "kernel_x.py", "text\n")
    assert not (tmp_path / "kernel_x.py").exists()


@pytest.mark.host_only("the fused kernel runs on the CPU")
def test_an_edited_kernel_file_is_regenerated_not_trusted(tmp_path, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("AUTONET_CACHE_DIR", str(tmp_path / "cache"))

    def make():
        w = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
        return w, _sqrt_step(w)

    x = Tensor(np.array([4.0, 9.0, 16.0]))
    _, first = make()
    first = autonet.compile(first, backend="fused")
    first(x), first(x)
    [kernel_file] = (tmp_path / "cache").glob("kernel_*.py")
    kernel_file.write_text(kernel_file.read_text().replace("np.sqrt(", "2.0 * np.sqrt("))
    for name in [name for name in list(__import__("sys").modules) if name.startswith("autonet_fused_")]:
        monkeypatch.delitem(__import__("sys").modules, name)   # as a new process would start
    w, step = make()
    compiled = autonet.compile(step, backend="fused")
    compiled(x)
    loss = compiled(x)
    assert compiled.programs[0].backend == "fused"
    np.testing.assert_array_equal(w.grad, [2.0, 3.0, 4.0])   # sqrt, not the edited 2 * sqrt
    assert loss.item() == 1.0 * 2.0 - 2.0 * 3.0 + 3.0 * 4.0
    assert "2.0 * np.sqrt(" not in kernel_file.read_text()
