"""The fused backend: compiled steps as one numba kernel, checked against eager mode.

Needs the ``fast`` extra (numba, scipy), which ``make test`` installs.
"""
import subprocess
import sys

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.optim import SGD
from test_compiler import _xor_setup

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed; make test installs it")


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)


def _twins(make):
    (eager_state, eager), (fused_state, step) = make(), make()
    return (eager_state, eager), (fused_state, autonet.compile(step, backend="fused"))


_xor = _xor_setup   # the notebook's step, as test_compiler builds it


def _regression(activation):
    def make():
        rng = np.random.default_rng(0)
        model = nn.Sequential(nn.Linear(3, 8, rng=rng), activation(), nn.Linear(8, 2, rng=rng))
        optimizer = SGD(model.parameters(), lr=0.05)

        def step(x, y):
            loss = ((model(x) - y) ** 2).mean() + 0.01 * (model[0].weight * model[0].weight).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return model, step

    return make


@pytest.mark.parametrize("make, arguments", [
    (_xor, lambda rng: ()),
    (_regression(nn.Tanh), lambda rng: (Tensor(rng.normal(size=(5, 3))), Tensor(rng.normal(size=(5, 2))))),
    (_regression(nn.ReLU), lambda rng: (rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))),
    (_regression(nn.Sigmoid), lambda rng: (Tensor(rng.normal(size=(4, 3))), rng.normal(size=(4, 2)))),
], ids=["xor", "tanh-mlp", "relu-mlp-ndarrays", "sigmoid-mlp"])
def test_fused_steps_agree_with_eager_mode(make, arguments):
    (eager_model, eager), (fused_model, fused) = _twins(make)
    rng = np.random.default_rng(1)
    for _ in range(20):
        args = arguments(rng)
        _close(fused(*args).data, eager(*args).data)
    assert fused.programs[0].backend == "fused"
    assert "fused kernel:" in fused.programs[0].listing()
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        _close(b.data, a.data)
        _close(b.grad, a.grad)


def _classifier(extra_loss):
    """A tanh classifier's SGD step on cross-entropy plus ``extra_loss(logits)``."""
    def make():
        model = nn.Sequential(nn.Linear(3, 8, rng=0), nn.Tanh(), nn.Linear(8, 4, rng=1))
        optimizer = SGD(model.parameters(), lr=0.1)

        def step(x, labels):
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, labels) + extra_loss(logits)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return model, step

    return make


def _run_classifier(extra_loss, calls):
    (eager_model, eager), (fused_model, fused) = _twins(_classifier(extra_loss))
    rng = np.random.default_rng(3)
    for _ in range(calls):
        x, labels = rng.normal(size=(6, 3)), rng.integers(0, 4, 6)
        _close(fused(x, labels).data, eager(x, labels).data)
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        _close(b.data, a.data)
    return fused, x


def test_a_classifier_step_with_cross_entropy_is_fused_and_checks_labels():
    fused, x = _run_classifier(lambda logits: 0.0, calls=10)
    assert fused.programs[0].backend == "fused"
    with pytest.raises(ValueError, match="labels must lie in"):
        fused(x, np.array([0, 1, 2, 3, 4, 0]))


def test_what_cannot_be_lowered_runs_the_numpy_replay_and_says_why():
    fused, _ = _run_classifier(lambda logits: logits[:, 0].sum(), calls=3)
    assert "not fused" in fused.programs[0].backend and "getitem" in fused.programs[0].backend


def test_an_unknown_backend_and_a_missing_numba_are_clear_errors():
    with pytest.raises(ValueError, match="backend"):
        autonet.compile(lambda: None, backend="xla")
    code = ("import sys; sys.modules['numba'] = None\n"
            "import autonet\n"
            "try:\n    autonet.compile(lambda: None, backend='fused')\n"
            "except ImportError as error:\n    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install autonet[fast]" in out.stdout, out.stderr


# ------------------------------------------------------------------ random lowerable steps
from hypothesis import given, settings, strategies as st  # noqa: E402

import test_compile_fuzz as fuzz  # noqa: E402

LOWERED = ["tanh", "sigmoid", "relu", "add", "mul", "matmul", "bias", "number", "leaf", "ndarray",
           "tensor_from_array"]


def _values(world, loss, leaf):
    return [loss.data, leaf.grad] + [a for n in ("W", "b") for a in (world[n].data, world[n].grad)]


@settings(max_examples=max(8, settings.default.max_examples // 3), deadline=None)
@given(program=st.lists(st.tuples(st.sampled_from(LOWERED), st.integers(0, 50), st.integers(0, 50)),
                        min_size=1, max_size=6),
       optimizer=st.sampled_from(["sgd", "momentum", "adam"]),
       clip=st.sampled_from(["none", "norm"]),
       calls=st.lists(fuzz.call_arguments, min_size=3, max_size=3))
def test_random_lowerable_steps_agree_with_eager_mode(program, optimizer, clip, calls):
    eager_world, fused_world = fuzz._world(optimizer), fuzz._world(optimizer)
    eager = fuzz._step(program, eager_world, clip, False)
    fused = autonet.compile(fuzz._step(program, fused_world, clip, False), backend="fused")
    for drawn in calls:
        eager_args, fused_args = fuzz._arguments(drawn), fuzz._arguments(drawn)
        eager_loss, eager_error = fuzz._call(eager, eager_args)
        fused_loss, fused_error = fuzz._call(fused, fused_args)
        assert type(fused_error) is type(eager_error), (eager_error, fused_error)
        if eager_error is not None:
            return
        for got, want in zip(_values(fused_world, fused_loss, fused_args[-1]),
                             _values(eager_world, eager_loss, eager_args[-1])):
            assert (got is None) == (want is None)
            if want is not None:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    assert fused.programs[0].backend == "fused", fused.programs[0].backend


def test_the_kernels_own_sgd_step_follows_settings_changed_between_calls():
    (eager_model, eager), (fused_model, fused) = _twins(_xor)
    for call in range(12):
        if call == 4:   # momentum from now on: the kernel must leave the step to Python
            for model_optimizer in _optimizers(eager, fused):
                model_optimizer.param_groups[0]["momentum"] = 0.9
        if call == 8:
            for model_optimizer in _optimizers(eager, fused):
                model_optimizer.param_groups[0]["momentum"] = 0.0
                model_optimizer.param_groups[0]["lr"] = 0.5
        _close(fused().data, eager().data)
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        _close(b.data, a.data)


def _optimizers(eager, fused):
    """The SGD instances the two steps close over."""
    step = fused.step
    return [cell.cell_contents for function in (eager, step)
            for cell in function.__closure__ if isinstance(cell.cell_contents, SGD)]


def test_kernels_are_cached_on_disk_for_later_processes_or_compiled_in_memory(tmp_path):
    code = ("import sys; sys.path.insert(0, {tests!r})\n"
            "import test_fused, autonet\n"
            "model, step = test_fused._xor()\n"
            "fused = autonet.compile(step, backend='fused')\n"
            "fused()\n"
            "print(fused().item(), fused.programs[0].backend)\n").format(tests=str(__import__("pathlib").Path(__file__).parent))
    cache = tmp_path / "cache"
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env={**__import__("os").environ, "AUTONET_CACHE_DIR": str(cache)})
            for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr + runs[1].stderr
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.split()[1] == "fused"
    assert len(list(cache.glob("kernel_*.py"))) == 1
    assert list((cache / "__pycache__").glob("*.nbi"))            # numba's index of compiled code
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "AUTONET_CACHE_DIR": str(blocked / "x")})
    assert run.returncode == 0 and run.stdout == runs[0].stdout, run.stderr


def test_gradients_accumulated_without_zero_grad_are_stepped_as_in_eager_mode():
    def make():
        w = Tensor([0.5, -1.0, 2.0], requires_grad=True)
        optimizer = SGD([w], lr=0.1)

        def step(x):
            loss = (x * w).tanh().sum()
            loss.backward()            # no zero_grad: .grad accumulates across calls
            optimizer.step()
            return loss

        return w, step

    (w_eager, eager), (w_fused, fused) = _twins(make)
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = Tensor(rng.normal(size=3))
        _close(fused(x).data, eager(x).data)
        _close(w_fused.data, w_eager.data)
        _close(w_fused.grad, w_eager.grad)


def test_tensors_made_from_integer_arrays_are_float64_in_the_kernel():
    def make():
        v = Tensor([0.5, 0.25], requires_grad=True)

        def step(n):
            loss = ((Tensor(n) * v) ** 3 / 7).sum()
            v.zero_grad()
            loss.backward()
            return loss

        return v, step

    (v_eager, eager), (v_fused, fused) = _twins(make)
    for n in ([3, 5], [7, 9], [11, 2]):
        _close(fused(np.array(n)).data, eager(np.array(n)).data)
        _close(v_fused.grad, v_eager.grad)
    assert fused.programs[0].backend == "fused"
