"""The fused backend on real models: ops that do not lower run in Python between kernels (per
region), the rest stays fused, and every step equals eager mode (to 1e-12 in float64)."""
import sys

import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.core.function import Function
from autonet.compiler import fused as fused_backend
from autonet.optim import SGD, Adam, AdamW

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed; make test installs it")
pytestmark = pytest.mark.host_only("the fused kernel runs on the CPU")


def _close(a, b, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=1e-13)


def _cnn(seed=0, dropout=0.25):
    """conv-BN-ReLU-pool, dropout and a linear head: ops that lower and ops that do not."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout, rng=rng),
                         nn.Linear(64, 10, rng=rng))


def _step(model, optimizer, x, labels):
    def step():
        loss = F.cross_entropy(model(Tensor(x)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    return step


def _twin_steps(make_optimizer, dtype=np.float64, dropout=0.25):
    data = np.random.default_rng(1)
    x, labels = data.normal(size=(8, 1, 8, 8)).astype(dtype), data.integers(0, 10, 8)
    made = []
    for backend in (None, "fused"):
        model = _cnn(dropout=dropout).astype(dtype)
        step = _step(model, make_optimizer(model.parameters()), x, labels)
        made.append((model, step if backend is None else autonet.compile(step, backend=backend)))
    return made


def _same_model(fused_model, eager_model, rtol=1e-12):
    for (name, got), (_, want) in zip(fused_model.state_dict().items(), eager_model.state_dict().items()):
        _close(got, want, rtol)


def test_a_cnn_step_fuses_what_lowers_and_runs_the_rest_in_python_as_eager_mode():
    (eager_model, eager), (fused_model, fused) = _twin_steps(lambda p: SGD(p, lr=0.1))
    for _ in range(4):
        _close(fused().data, eager().data)
        _same_model(fused_model, eager_model)   # parameters and BatchNorm's running statistics
    backend = fused.programs[0].backend
    assert backend.startswith("fused, ") and "not fused (run in Python between kernels)" in backend, backend
    assert "def kernel" in fused.programs[0].fused_source


def test_dropout_in_a_python_region_draws_eager_modes_masks_and_lowering_draws_none():
    (eager_model, eager), (fused_model, fused) = _twin_steps(lambda p: SGD(p, lr=0.1))
    for _ in range(3):
        _close(fused().data, eager().data)
    eager_rng, fused_rng = eager_model[5].rng, fused_model[5].rng
    assert fused_rng.bit_generator.state == eager_rng.bit_generator.state   # as many draws, no more


def test_an_op_whose_forward_lowers_and_backward_does_not_runs_both_in_python():
    class Doubled(Function):   # a backward that branches on values cannot be lowered
        name = "doubled"

        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, grad):
            return grad * 2.0 if (grad == grad).all() else grad

    def make():
        w = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
        optimizer = SGD([w], lr=0.1)

        def step(x):
            loss = (Doubled.apply(x @ w).tanh() ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        return w, step

    (w_eager, eager), (w_fused, fused) = make(), make()
    fused = autonet.compile(fused, backend="fused")
    x = np.random.default_rng(2).normal(size=(4, 2))
    for _ in range(3):
        _close(fused(x).data, eager(x).data)
        _close(w_fused.data, w_eager.data)
    assert fused.programs[0].backend.startswith("fused, 1 of 5 ops not fused"), fused.programs[0].backend


def test_python_regions_side_effects_are_put_back_when_a_later_kernel_cannot_compile(monkeypatch):
    """numba compiles a kernel on its first call; where it cannot, the NumPy replay runs the
    whole step: the dropout masks drawn and the running statistics written before are undone."""
    import numba
    from autonet.compiler import fused as backend

    compiled = backend._compiled

    def refusing(source):
        kernel = compiled(source)
        if "grad0" not in source:   # the first kernels compile; the last one (gradients out) refuses
            return kernel

        def call(*arguments):
            raise numba.core.errors.TypingError("no implementation for these argument types")
        return call

    monkeypatch.setattr(backend, "_compiled", refusing)
    (eager_model, eager), (fused_model, fused) = _twin_steps(lambda p: SGD(p, lr=0.1))
    for _ in range(3):
        np.testing.assert_array_equal(fused().data, eager().data)   # the replay: bit for bit
        _same_model(fused_model, eager_model, rtol=0)
    assert fused.programs[0].backend.startswith("NumPy replay (not fused: numba")
    assert fused_model[5].rng.bit_generator.state == eager_model[5].rng.bit_generator.state


def _mlp():
    """The same 3-5-2 tanh MLP on every call (seeded)."""
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(3, 5, rng=rng), nn.Tanh(), nn.Linear(5, 2, rng=rng))


def _twin_mlp_steps(make_optimizer, loss_of):
    """An MLP's training step on ``loss_of(model, *arguments)``, eager and fused (small
    kernels, quick to compile): ``[(model, step), (model, compiled step)]``."""
    def make():
        model = _mlp()
        optimizer = make_optimizer(model.parameters())

        def step(*arguments):
            loss = loss_of(model, *arguments)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        step.optimizer = optimizer   # for the tests that change its settings
        return model, step

    (eager_model, eager), (fused_model, fused) = make(), make()
    return [(eager_model, eager), (fused_model, autonet.compile(fused, backend="fused"))]


def _twin_mlps(make_optimizer):
    """An MLP's regression step, eager and fused."""
    data = np.random.default_rng(1)
    x, y = data.normal(size=(6, 3)), data.normal(size=(6, 2))
    return _twin_mlp_steps(make_optimizer, lambda model: ((model(Tensor(x)) - Tensor(y)) ** 2).mean())


def _optimizer_of(step):
    """The optimizer of a ``_twin_mlps`` step (eager, or compiled: its ``.step``)."""
    return getattr(step, "step", step).optimizer


@pytest.mark.parametrize("make_optimizer", [
    lambda p: Adam(p, lr=0.01),
    lambda p: Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True),
    lambda p: AdamW(p, lr=0.01, weight_decay=0.1),
], ids=["adam", "adam-l2-amsgrad", "adamw"])
def test_adams_step_runs_inside_the_kernel_from_its_own_formula(make_optimizer, monkeypatch):
    monkeypatch.setattr(fused_backend, "TIMED_CALLS", 0)   # the kernels on every call, never the replay
    (eager_model, eager), (fused_model, fused) = _twin_mlps(make_optimizer)
    _close(fused().data, eager().data)   # traced: this step makes Adam's state
    adam, calls = _optimizer_of(fused), []
    adam.update = lambda *arguments, _update=adam.update: calls.append(1) or _update(*arguments)
    for _ in range(4):
        _close(fused().data, eager().data)
        _same_model(fused_model, eager_model)
        for p, q in zip(fused_model.parameters(), eager_model.parameters()):
            _close(adam.state[p]["exp_avg_sq"], _optimizer_of(eager).state[q]["exp_avg_sq"])
            assert adam.state[p]["step"] == _optimizer_of(eager).state[q]["step"]
    assert not calls, "Python took Adam's step: the kernel should have"
    source = fused.programs[0].fused_source   # one step kernel for the 4 parameters, compiled
    [step_source] = source.split("# step kernel\n")[1:]   # once per layout: 2-d weights, 1-d biases
    [step_kernel] = [module.kernel for name, module in list(sys.modules.items())
                     if name.startswith("autonet_fused_") and module.__file__ and step_source in _text(module.__file__)]
    assert len(step_kernel.signatures) == 2, step_kernel.signatures


def _text(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


def test_adams_kernel_step_follows_the_learning_rate_and_leaves_changed_betas_to_python():
    (eager_model, eager), (fused_model, fused) = _twin_mlps(lambda p: Adam(p, lr=0.01))
    _close(fused().data, eager().data)
    optimizers = [_optimizer_of(eager), _optimizer_of(fused)]
    for lr, betas in ((0.01, (0.9, 0.999)), (0.05, (0.9, 0.999)), (0.05, (0.5, 0.9)), (0.02, (0.9, 0.999))):
        for optimizer in optimizers:
            optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["betas"] = lr, betas
        _close(fused().data, eager().data)
        _same_model(fused_model, eager_model)


def _twin_in_place_steps(update):
    """An MLP step that first updates, under ``no_grad``, what ``update(x)`` returns in place
    (an argument Tensor, or ``Tensor(x)`` of it), eager and fused."""
    def loss_of(model, x):
        with autonet.no_grad():
            t = update(x)
            t[:, 0] = t[:, 0] * 2.0 + 1.0   # twice would differ
        return (model(t) ** 2).mean()

    return _twin_mlp_steps(lambda parameters: SGD(parameters, lr=0.1), loss_of)


@pytest.mark.parametrize("update", [Tensor, lambda x: x], ids=["Tensor(x)", "the argument"])
def test_in_place_updates_under_no_grad_fuse_and_equal_eager(update):
    """An in-place update of ``Tensor(x)`` made in the step, or of the argument itself, ran in
    Python before the kernel; the wrapper's snapshot of it failed (``'int' object has no
    attribute 'copy'`` for ``Tensor(x)``, ``'tuple'`` for the argument) on every replay."""
    (eager_model, eager), (fused_model, fused) = _twin_in_place_steps(update)
    data = np.random.default_rng(3)
    for _ in range(4):
        x = data.normal(size=(4, 3))
        eager_x, fused_x = (Tensor(x.copy()) for _ in range(2))
        _close(fused(fused_x).data, eager(eager_x).data)
        _close(fused_x.data, eager_x.data)
        _same_model(fused_model, eager_model)
    assert fused.programs[0].backend == "fused", fused.programs[0].backend


def test_an_argument_updated_in_place_is_put_back_when_a_later_kernel_cannot_compile(monkeypatch):
    """Where the last kernel cannot compile, the NumPy replay runs the whole step again: the
    argument's in-place update made before the kernel is undone first, so it happens once."""
    import numba
    from autonet.compiler import fused as backend

    compiled = backend._compiled

    def refusing(source):
        kernel = compiled(source)
        if "grad0" not in source:
            return kernel

        def call(*arguments):
            raise numba.core.errors.TypingError("no implementation for these argument types")
        return call

    monkeypatch.setattr(backend, "_compiled", refusing)
    (eager_model, eager), (fused_model, fused) = _twin_in_place_steps(lambda x: x)
    x = np.random.default_rng(3).normal(size=(4, 3))
    for _ in range(3):
        eager_x, fused_x = Tensor(x.copy()), Tensor(x.copy())
        np.testing.assert_array_equal(fused(fused_x).data, eager(eager_x).data)
        np.testing.assert_array_equal(fused_x.data, eager_x.data)
        _same_model(fused_model, eager_model, rtol=0)
    assert fused.programs[0].backend.startswith("NumPy replay (not fused: numba")
