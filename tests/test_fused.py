"""The fused backend: compiled steps as one numba kernel, checked against eager mode.

Needs the ``fast`` extra (numba, scipy), which ``make test`` installs.
"""
import os
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


def _sgd_step(model, loss, lr=0.1):
    """``(model, step)``: ``step(*args)`` takes one SGD step on ``loss(model, *args)``."""
    parameters = model.parameters() if isinstance(model, nn.Module) else [model]
    optimizer = SGD(parameters, lr=lr)

    def step(*args):
        value = loss(model, *args)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        return value

    return model, step


def _regression(activation):
    def make():
        rng = np.random.default_rng(0)
        model = nn.Sequential(nn.Linear(3, 8, rng=rng), activation(), nn.Linear(8, 2, rng=rng))
        return _sgd_step(model, lambda m, x, y: ((m(x) - y) ** 2).mean()
                         + 0.01 * (m[0].weight * m[0].weight).sum(), lr=0.05)

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

        def loss(m, x, labels):
            logits = m(x)
            return nn.functional.cross_entropy(logits, labels) + extra_loss(logits)

        return _sgd_step(model, loss)

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
    fused, _ = _run_classifier(lambda logits: logits.erf().sum(), calls=3)   # erf: math.erf per element
    assert "not fused" in fused.programs[0].backend and "erf" in fused.programs[0].backend


def test_basic_indexing_is_lowered_from_getitems_own_formulas():
    fused, _ = _run_classifier(lambda logits: logits[:, 0].sum(), calls=3)
    assert fused.programs[0].backend == "fused"


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
from hypothesis import event, given, settings, strategies as st  # noqa: E402

import test_compile_fuzz as fuzz  # noqa: E402

LOWERED = ["tanh", "sigmoid", "relu", "add", "mul", "matmul", "bias", "number", "leaf", "ndarray",
           "tensor_from_array"]


def _values(world, loss, leaf):
    return [loss.data, leaf.grad] + [a for n in ("W", "b") for a in (world[n].data, world[n].grad)]


def _world(optimizer, dtype):
    world = fuzz._world(optimizer)
    for name in ("W", "b"):   # in place of the data: the optimizer holds these very tensors
        world[name].data = world[name].data.astype(dtype)
    return world


def _arguments(drawn, dtype):
    x, array, idx, k, flag, leaf = fuzz._arguments(drawn)
    return (Tensor(x.data.astype(dtype)), array.astype(dtype), idx, k, flag,
            Tensor(leaf.data.astype(dtype), requires_grad=True))


TOLERANCE = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=1e-5, atol=1e-6)}


@settings(max_examples=max(8, settings.default.max_examples // 3), deadline=None)
@given(program=st.lists(st.tuples(st.sampled_from(LOWERED), st.integers(0, 50), st.integers(0, 50)),
                        min_size=1, max_size=6),
       optimizer=st.sampled_from(["sgd", "momentum", "adam"]),
       clip=st.sampled_from(["none", "norm"]),
       dtype=st.sampled_from([np.float64, np.float32]),
       calls=st.lists(fuzz.call_arguments, min_size=3, max_size=3))
def test_random_lowerable_steps_agree_with_eager_mode(program, optimizer, clip, dtype, calls):
    eager_world, fused_world = _world(optimizer, dtype), _world(optimizer, dtype)
    eager = fuzz._step(program, eager_world, clip, False)
    fused = autonet.compile(fuzz._step(program, fused_world, clip, False), backend="fused")
    for drawn in calls:
        eager_args, fused_args = _arguments(drawn, dtype), _arguments(drawn, dtype)
        eager_loss, eager_error = fuzz._call(eager, eager_args)
        fused_loss, fused_error = fuzz._call(fused, fused_args)
        assert type(fused_error) is type(eager_error), (eager_error, fused_error)
        if eager_error is not None:
            return
        for got, want in zip(_values(fused_world, fused_loss, fused_args[-1]),
                             _values(eager_world, eager_loss, eager_args[-1])):
            assert (got is None) == (want is None)
            if want is not None:
                assert np.asarray(got).dtype == np.asarray(want).dtype
                np.testing.assert_allclose(got, want, **TOLERANCE[dtype])
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


_ONE_OP_STEP = """
import autonet
from autonet.optim import SGD

w = autonet.Tensor([0.5, -1.0, 2.0], requires_grad=True)
optimizer = SGD([w], lr=0.1)


def step():
    loss = (w * w.tanh()).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
"""
_REPORT_CACHE_USE = """
import sys
fused = autonet.compile(step, backend="fused")
fused()
kernel = next(module for name, module in sys.modules.items() if name.startswith("autonet_fused_")).kernel
print(fused().item(), fused.programs[0].backend, sum(kernel.stats.cache_hits.values()),
      sum(kernel.stats.cache_misses.values()))
"""


def test_kernels_are_cached_on_disk_for_later_processes_or_compiled_in_memory(tmp_path, monkeypatch):
    """A first process compiles the kernel and writes numba's cache; a second one loads its machine
    code from there (numba counts a cache hit, no miss). A small step keeps numba's compiles short:
    the cache works on the kernel's file, whatever the step computes."""
    cache = tmp_path / "cache"
    # numba's own defaults, as users run it: no NUMBA_CACHE_DIR (the suite's would hold the index)
    environment = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_OPT")}
    runs = [subprocess.run([sys.executable, "-c", _ONE_OP_STEP + _REPORT_CACHE_USE], capture_output=True,
                           text=True, timeout=300, env={**environment, "AUTONET_CACHE_DIR": str(cache)})
            for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr + runs[1].stderr
    (first_value, first_backend, *first_counts), (second_value, _, *second_counts) = (
        run.stdout.split() for run in runs)
    assert first_backend == "fused" and first_value == second_value
    assert first_counts == ["0", "1"] and second_counts == ["1", "0"]   # compiled, then loaded
    assert len(list(cache.glob("kernel_*.py"))) == 1
    assert list((cache / "__pycache__").glob("*.nbi"))            # numba's index of compiled code
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("AUTONET_CACHE_DIR", str(blocked / "x"))   # no cache there: compiled in memory
    eager, fused = {}, {}
    exec(_ONE_OP_STEP, eager)
    exec(_ONE_OP_STEP, fused)
    fused_step = autonet.compile(fused["step"], backend="fused")
    for _ in range(3):
        _close(fused_step().data, eager["step"]().data)
    assert fused_step.programs[0].backend == "fused" and blocked.read_text() == "not a directory"


_MODEL_STEPS = """
import sys
import warnings

import numba
import numpy as np

warnings.simplefilter("error", numba.NumbaWarning)   # numba's "Cannot cache compiled function" too
import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet.optim import SGD, Adam

rng = np.random.default_rng(0)
mlp = nn.Sequential(nn.Linear(128, 256, rng=rng), nn.Tanh(), nn.Linear(256, 10, rng=rng))
cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(64, 10, rng=rng))
x, images, labels = rng.normal(size=(256, 128)), rng.normal(size=(8, 1, 8, 8)), rng.integers(0, 10, 256)
steps = []
for model, inputs, optimizer in ((mlp, x, Adam(mlp.parameters(), lr=0.01)),
                                 (cnn, images, SGD(cnn.parameters(), lr=0.1))):
    def step(model=model, inputs=inputs, optimizer=optimizer):
        loss = F.cross_entropy(model(autonet.Tensor(inputs)), labels[:len(inputs)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    steps.append(autonet.compile(step, backend="fused"))
losses = [[float(step().data) for _ in range(3)] for step in steps]
kernels = [module.kernel for name, module in sys.modules.items() if name.startswith("autonet_fused_")]
print(repr((losses, [step.programs[0].backend.split(",")[0] for step in steps],
            [(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values())) for kernel in kernels])))
"""


def test_every_kernel_of_model_steps_is_cached_on_disk_and_none_trips_numbas_cache_warning(tmp_path):
    """An MLP step (Adam; matrix products small, through BLAS, and large) and a conv step: a first
    process compiles each of their kernels, warning about none (numba warns, and does not cache,
    a kernel it cannot: one with object mode inside, say); a second process loads every one from
    disk, compiling none (Adam's step kernel, once per layout: twice). Unoptimised (as the suite
    compiles), where an unused address left in a kernel stays and stops numba caching it."""
    environment = {**__import__("os").environ, "AUTONET_CACHE_DIR": str(tmp_path),
                   "NUMBA_OPT": "0"}   # strictest: LLVM's optimiser would drop an unused dynamic global
    runs = [subprocess.run([sys.executable, "-c", _MODEL_STEPS], capture_output=True, text=True, timeout=600,
                           env=environment) for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr[-3000:] + runs[1].stderr[-3000:]
    (first_losses, first_backends, first_counts), (second_losses, _, second_counts) = (
        eval(run.stdout) for run in runs)   # noqa: S307 - our own subprocess's repr
    assert first_backends == ["fused", "fused"] and first_losses == second_losses
    assert len(first_counts) == len(list(tmp_path.glob("kernel_*.py"))) > 2
    assert all(hits == 0 and misses >= 1 for hits, misses in first_counts), first_counts   # compiled
    assert [(misses, 0) for _, misses in first_counts] == second_counts, second_counts     # each loaded


@pytest.mark.parametrize("costs, kept", [({"fused": 2.0, "replay": 1.0}, "replay"),
                                         ({"fused": 1.0, "replay": 3.0}, "fused")])
def test_a_fused_program_keeps_whichever_of_its_kernels_and_the_replay_runs_faster(costs, kept, monkeypatch):
    """After its warm calls a fused program times its kernels and its NumPy replay in turn, then
    keeps the faster: here with a clock that moves on by a set cost for each (both really run),
    so the choice is the costs', not the machine's."""
    from autonet.compiler import fused as backend

    now = [0.0]
    monkeypatch.setattr(backend, "clock", lambda: now[0])
    (eager_model, eager), (fused_model, fused) = _twins(_classifier(lambda logits: 0))
    rng = np.random.default_rng(3)

    def call():
        x, labels = rng.normal(size=(6, 3)), rng.integers(0, 4, 6)
        got, want = fused(x, labels).data, eager(x, labels).data
        _close(got, want)
        return got, want

    call()   # traced
    choice = fused.programs[0].replay
    ran = []
    for which, run in list(choice.runs.items()):
        def costly(args, which=which, run=run):
            ran.append(which)
            now[0] += costs[which]
            return run(args)
        choice.runs[which] = costly
    for _ in range(backend.WARM_CALLS + 2 * backend.TIMED_CALLS):
        call()
    program = fused.programs[0]
    assert ran == ["fused"] * backend.WARM_CALLS + ["replay", "fused"] * backend.TIMED_CALLS
    assert program.replay is choice.runs[kept]   # from now on, without timing
    assert program.choice.startswith({"fused": "fused: ", "replay": "NumPy replay: "}[kept])
    assert (program.backend == "fused") == (kept == "fused")
    assert "faster here than fused: fused 2000000.0 us" in program.backend or kept == "fused"
    del ran[:]
    for _ in range(3):
        got, want = call()
        if kept == "replay":   # the replay computes as eager mode, bit for bit
            np.testing.assert_array_equal(got, want)
    assert ran == [kept] * 3
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        _close(b.data, a.data)


def test_no_choice_is_timed_when_timed_calls_is_0(monkeypatch):
    from autonet.compiler import fused as backend

    monkeypatch.setattr(backend, "TIMED_CALLS", 0)
    monkeypatch.setattr(backend, "clock", lambda: pytest.fail("timed"))
    fused, _ = _run_classifier(lambda logits: 0, calls=20)
    assert fused.programs[0].backend == "fused" and fused.programs[0].choice is None


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


def _float32_classifier():
    model = nn.Sequential(nn.Linear(6, 16, rng=0), nn.ReLU(), nn.Linear(16, 16, rng=1), nn.Tanh(),
                          nn.Linear(16, 4, rng=2))
    for p in model.parameters():
        p.data = p.data.astype(np.float32)

    def loss(m, x, labels):
        logits = m(x)
        return (nn.functional.cross_entropy(logits, labels) + 0.01 * (m[0].weight ** 2).sum()
                + ((logits.sigmoid() - 0.5) ** 2).mean())

    return _sgd_step(model, loss)


def test_float32_steps_are_fused_in_float32_and_agree_with_eager_mode_to_1e_5():
    (eager_model, eager), (fused_model, fused) = _twins(_float32_classifier)
    rng = np.random.default_rng(5)
    for _ in range(10):
        x, labels = Tensor(rng.normal(size=(8, 6)).astype(np.float32)), rng.integers(0, 4, 8)
        got, want = fused(x, labels).data, eager(x, labels).data
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5)
    assert fused.programs[0].backend == "fused"
    assert "real = np.float32" in fused.programs[0].fused_source
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        assert b.data.dtype == b.grad.dtype == np.float32
        np.testing.assert_allclose(b.data, a.data, rtol=1e-5, atol=1e-6)


def test_each_call_delivers_fresh_gradients_and_results_that_later_calls_leave_alone():
    (eager_model, eager), (fused_model, fused) = _twins(_xor)
    held = []
    for _ in range(4):
        loss, grads = fused(), [p.grad for p in fused_model.parameters()]
        eager_loss, eager_grads = eager(), [p.grad for p in eager_model.parameters()]
        held.append((loss, grads, eager_loss, eager_grads))
        assert all(g.base is None for g in grads)    # the arrays the kernel wrote: handed over uncopied
    for loss, grads, eager_loss, eager_grads in held:   # nothing a call returned was written again
        _close(loss.data, eager_loss.data)
        for got, want in zip(grads, eager_grads):
            _close(got, want)


def _kernels_numba_refuses(monkeypatch, refuses):
    """Kernels that raise numba's typing error, as numba does when it cannot compile a kernel
    for the arguments of a call, whenever ``refuses(arguments)``."""
    import numba
    from autonet.compiler import fused as backend

    compiled = backend._compiled

    def refusing(source):
        kernel = compiled(source)

        def call(*arguments):
            if refuses(arguments):
                raise numba.core.errors.TypingError("no implementation for these argument types")
            return kernel(*arguments)
        return call

    monkeypatch.setattr(backend, "_compiled", refusing)


def test_a_kernel_numba_cannot_compile_leaves_the_step_to_the_numpy_replay(monkeypatch):
    _kernels_numba_refuses(monkeypatch, lambda arguments: True)
    (eager_model, eager), (fused_model, fused) = _twins(_xor)
    for _ in range(4):
        np.testing.assert_array_equal(fused().data, eager().data)   # the replay: bit for bit
    program = fused.programs[0]
    assert program.backend.startswith("NumPy replay (not fused: numba"), program.backend
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        np.testing.assert_array_equal(b.data, a.data)
        np.testing.assert_array_equal(b.grad, a.grad)


@given(rows=st.integers(1, 40), inner=st.integers(1, 40), columns=st.integers(1, 40),
       layout=st.sampled_from(["C", "transposed", "strided"]),
       dtype=st.sampled_from([np.float64, np.float32]))
@settings(max_examples=60, deadline=None)
def test_the_kernels_matrix_product_agrees_with_numpy_for_loops_blas_and_any_layout(
        rows, inner, columns, layout, dtype):
    import numba
    from autonet.compiler import kernels

    dot = numba.njit(lambda a, b: kernels.dot(a, b))   # as a kernel calls it
    rng = np.random.default_rng(rows * 1600 + inner * 40 + columns)
    arrange = {"C": lambda m: m, "transposed": lambda m: np.ascontiguousarray(m.T).T,
               "strided": lambda m: np.repeat(m, 2, axis=1)[:, ::2]}[layout]
    a = arrange(rng.normal(size=(rows, inner)).astype(dtype))
    b = arrange(rng.normal(size=(inner, columns)).astype(dtype))
    got = dot(a, b)
    assert got.dtype == dtype and got.shape == (rows, columns)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, a @ b, rtol=tolerance, atol=tolerance * inner)
    event(f"{'loops' if rows * inner * columns <= kernels.SMALL_PRODUCT else 'BLAS'}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgds_in_kernel_step_rounds_as_numpy(dtype):
    """SGD's own formula, written into a kernel on symbolic arrays, takes NumPy's two roundings
    (``lr * grad``, then the subtraction), on a strided parameter too."""
    import numba
    from autonet.compiler.symbolic import Symbol, Writer
    from autonet.optim.sgd import _descend_one

    writer = Writer(dtype)
    params = [Symbol(writer, name, (7, 5), dtype) for name in ("p0", "p1")]
    grads = [Symbol(writer, name, (7, 5), dtype) for name in ("g0", "g1")]
    for k, rate in enumerate(("r0", "r1")):
        _descend_one(k, params[k], grads[k], [Symbol(writer, rate, (), np.float64)])
    source = "def kernel(p0, p1, g0, g1, r0, r1):\n    real = np.{}\n{}\n".format(
        np.dtype(dtype).name, "\n".join(writer.lines))
    namespace = {"np": np}
    exec(source, namespace)
    kernel = numba.njit(namespace["kernel"])

    rng = np.random.default_rng(6)
    param, grad = rng.normal(size=(7, 5)).astype(dtype), rng.normal(size=(7, 5)).astype(dtype)
    want = param.copy()
    want -= 0.37 * grad   # a Python float, as group["lr"]
    view = np.zeros((7, 10), dtype)[:, ::2]   # a strided parameter too
    view[...] = param
    kernel(param, view, grad, grad, 0.37, 0.37)
    np.testing.assert_array_equal(param, want)
    np.testing.assert_array_equal(view, want)


def test_a_kernels_file_names_the_helpers_it_was_compiled_with(monkeypatch, tmp_path):
    from autonet.compiler import fused as backend

    monkeypatch.setenv("AUTONET_CACHE_DIR", str(tmp_path))
    (_, eager), (_, fused) = _twins(_xor)
    fused(), fused()
    [kernel_file] = tmp_path.glob("kernel_*.py")
    assert backend._helpers_digest() in kernel_file.read_text()


def test_kernels_compiled_at_another_numba_optimisation_level_are_other_files(monkeypatch, tmp_path):
    """numba's cache does not tell optimisation levels apart: a kernel compiled with NUMBA_OPT=0
    (as the suite compiles) must not be the one a later optimised process loads."""
    import numba

    from autonet.compiler import fused as backend

    monkeypatch.setenv("AUTONET_CACHE_DIR", str(tmp_path))
    source = "def kernel(x):\n    return x + 1\n"
    for level in (0, 3):
        monkeypatch.setattr(numba.core.config, "OPT", type(numba.core.config.OPT)(level))   # numba's own kind
        assert backend._compiled(source)(1) == 2
    unoptimised, optimised = (path.read_text() for path in sorted(tmp_path.glob("kernel_*.py"),
                                                                   key=lambda path: "level: 2" in path.read_text()))
    assert "optimisation level: 0" in unoptimised
    assert f"optimisation level: {backend.KERNEL_OPTIMISATION}" in optimised   # -O3 asked: -O2 compiles


def test_kernels_run_and_compile_at_numbas_level_2_and_the_callers_level_is_put_back(monkeypatch):
    import numba

    from autonet.compiler import fused as backend

    seen, compiled = [], backend._compiled

    def watched(source):
        kernel = compiled(source)
        return lambda *args: seen.append(int(numba.core.config.OPT)) or kernel(*args)

    monkeypatch.setattr(backend, "_compiled", watched)
    monkeypatch.setattr(numba.core.config, "OPT", type(numba.core.config.OPT)(3))
    (_, eager), (_, fused) = _twins(_xor)
    for _ in range(3):
        _close(fused().data, eager().data)
    assert seen == [backend.KERNEL_OPTIMISATION] * 2 and numba.core.config.OPT == 3


def test_transcendentals_of_large_arrays_run_as_numpys_between_kernels():
    """numba's exp/tanh are scalar calls, 10x NumPy's: on arrays of LARGE_TRANSCENDENTAL elements
    and more they run in Python (NumPy's own, eager mode's), smaller ones in the kernel."""
    from autonet.compiler.symbolic import LARGE_TRANSCENDENTAL

    def make():
        rng = np.random.default_rng(0)
        model = nn.Sequential(nn.Linear(16, 128, rng=rng), nn.Tanh(), nn.Linear(128, 4, rng=rng), nn.Sigmoid())
        return _sgd_step(model, lambda m, x: (m(x) ** 2).mean())

    assert 16 * 128 >= LARGE_TRANSCENDENTAL > 16 * 4
    (eager_model, eager), (fused_model, fused) = _twins(make)
    x = Tensor(np.random.default_rng(1).normal(size=(16, 16)))
    for _ in range(3):
        _close(fused(x).data, eager(x).data)
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        _close(b.data, a.data)
    wrapper, *kernels = fused.programs[0].fused_source.split("# kernel")
    assert "np.tanh(" in wrapper and not any("np.tanh(" in kernel for kernel in kernels)
    assert any("np.logaddexp(" in kernel for kernel in kernels)   # the sigmoid of 16x4 stays


def test_large_matrix_products_run_as_numpys_matmul_between_kernels():
    from autonet.compiler.symbolic import LARGE_PRODUCT

    def make():
        w = Tensor(np.random.default_rng(7).normal(size=(128, 256)) / 16, requires_grad=True)

        def step(x):
            loss = (x @ w).tanh().sum()   # 256x128x256: 8.4M multiply-adds, and so backward's
            w.zero_grad()
            loss.backward()
            return loss

        return w, step

    assert 256 * 128 * 256 > LARGE_PRODUCT
    (w_eager, eager), (w_fused, fused) = _twins(make)
    x = Tensor(np.random.default_rng(8).normal(size=(256, 128)))
    for _ in range(3):
        _close(fused(x).data, eager(x).data)
        _close(w_fused.grad, w_eager.grad)
    program = fused.programs[0]
    assert program.backend == "fused"
    wrapper, *kernels = program.fused_source.split("# kernel")
    assert wrapper.count("= matmul(") == 2 and not any("dot(" in kernel for kernel in kernels)


def test_products_of_float32_and_float64_operands_run_in_python_and_the_rest_is_fused():
    def make():   # float64, as NumPy promotes float32 @ float64
        w = Tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)
        return _sgd_step(w, lambda w, x: (x @ w).tanh().sum())

    (w_eager, eager), (w_fused, fused) = _twins(make)
    x = Tensor(np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32))
    for _ in range(3):
        _close(fused(x).data, eager(x).data)
    assert fused.programs[0].backend == ("fused, 1 of 3 ops not fused (run in Python between kernels): "
                                         "matmul (forward): a matrix product of float32 and float64 operands")
    _close(w_fused.data, w_eager.data)


def test_a_kernel_numba_cannot_compile_for_a_later_calls_arguments_falls_back_then(monkeypatch):
    _kernels_numba_refuses(monkeypatch, lambda arguments: not all(
        a.flags.c_contiguous for a in arguments if isinstance(a, np.ndarray)))   # a strided argument

    def make():
        return _sgd_step(Tensor([[0.5, -0.25], [1.5, 0.75]], requires_grad=True),
                         lambda w, x: (x * w).tanh().sum())

    (w_eager, eager), (w_fused, fused) = _twins(make)
    x = np.random.default_rng(9).normal(size=(2, 4))
    for argument in (x[:, :2].copy(), x[:, :2].copy(), x[:, ::2], x[:, :2].copy()):
        _close(fused(argument).data, eager(argument).data)
        _close(w_fused.data, w_eager.data)
        _close(w_fused.grad, w_eager.grad)
    assert fused.programs[0].backend.startswith("NumPy replay (not fused: numba"), fused.programs[0].backend


def test_float32_sums_are_as_accurate_as_numpys():
    def make():   # numba alone adds float32 one by one: a million 0.1s would sum to 100958
        w = Tensor(np.array([0.5], np.float32), requires_grad=True)
        b = Tensor(np.array([0.25], np.float32), requires_grad=True)

        def step(x):
            loss = (x * w + b).sum()   # a whole sum forward, a sum over rows for w's gradient
            w.zero_grad()
            b.zero_grad()
            loss.backward()
            return loss

        return (w, b), step

    ((w_eager, b_eager), eager), ((w_fused, b_fused), fused) = _twins(make)
    x = Tensor(np.full((10 ** 6, 1), 0.1, np.float32))
    for _ in range(2):
        np.testing.assert_allclose(fused(x).data, eager(x).data, rtol=1e-6)
    assert fused.programs[0].backend == "fused"
    np.testing.assert_allclose(w_fused.grad, w_eager.grad, rtol=1e-6)
    np.testing.assert_allclose(b_fused.grad, b_eager.grad, rtol=1e-6)


def test_the_kernels_sgd_step_leaves_parameters_removed_from_the_optimizer_alone():
    def make():
        model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 1, rng=1))
        return _sgd_step(model, lambda m, x: (m(x) ** 2).mean())

    (eager_model, eager), (fused_model, fused) = _twins(make)
    x = np.random.default_rng(10).normal(size=(5, 3))
    for call in range(6):
        if call == 3:   # freeze the first layer's weight from now on
            for optimizer in _optimizers(eager, fused):
                optimizer.param_groups[0]["params"].pop(0)
        _close(fused(x).data, eager(x).data)
    assert fused.programs[0].backend == "fused"
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        _close(b.data, a.data)
