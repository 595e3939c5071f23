"""autonet.compile, one test per pattern the review found: eager's result, or CompileError.

Each test runs the same step eagerly in one world and compiled in a twin world
on changing arguments, and compares the two bit for bit.
"""
import random

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import CompileError, Tensor
from autonet.nn.functional import mse_loss
from autonet.optim import SGD
from device_double import here, passed


def _twins(make):
    """``(eager world, compiled world)``: ``make()`` returns ``(state, step)``."""
    eager_state, eager = make()
    compiled_state, step = make()
    return (eager_state, eager), (compiled_state, autonet.compile(step))


def _same(a, b):
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _linear_regression():
    model = nn.Linear(3, 1, rng=0)
    optimizer = SGD(model.parameters(), lr=0.1)

    def step(x, y):
        loss = mse_loss(model(x), y)      # model(x) and the loss wrap ndarray arguments
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return model, step


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_ndarray_arguments_wrapped_in_tensors_read_each_calls_batch():
    (eager_model, eager), (compiled_model, compiled) = _twins(_linear_regression)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
        _same(compiled(x, y).data, eager(x, y).data)
    for a, b in zip(eager_model.parameters(), compiled_model.parameters()):
        _same(a.data, b.data)


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
@pytest.mark.parametrize("index_kind", ["integers", "mask"])
def test_index_and_mask_arguments_are_read_on_every_call(index_kind):
    def make():
        w = Tensor(np.arange(5.0), requires_grad=True)

        def step(table, index):
            loss = (Tensor(table)[index] * w[index]).sum()
            w.zero_grad()
            loss.backward()
            return loss

        return w, step

    (w_eager, eager), (w_compiled, compiled) = _twins(make)
    rng = np.random.default_rng(1)
    for _ in range(4):
        table = rng.normal(size=5)
        index = rng.integers(0, 5, 3) if index_kind == "integers" else table > 0
        _same(compiled(table, index).data, eager(table, index).data)
        _same(w_compiled.grad, w_eager.grad)


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_op_settings_taken_from_arguments_are_read_on_every_call():
    def make():
        w = Tensor([0.5, -2.0, 3.0], requires_grad=True)
        return w, lambda bound, hi: (w.clip(-bound, hi) * w[[0, 2]].sum()).sum()

    (_, eager), (_, compiled) = _twins(make)
    for bound, hi in [(1.0, np.array([0.2, 0.3, 0.4])), (2.5, np.array([1.0, -1.0, 9.0])),
                      (1.0, np.array([3.0, 3.0, 0.0]))]:
        _same(compiled(bound, hi).data, eager(bound, hi).data)


def test_python_branches_on_ndarray_arguments_are_refused():
    w = Tensor([1.0, 2.0], requires_grad=True)
    for branch in (lambda x: x.sum() > 0, lambda x: x[0] > 0, lambda x: x.max() == 3,
                   lambda x: np.array_equal(x, x), lambda x: float(x.mean()) > 0):
        compiled = autonet.compile(lambda x: w * 2.0 if branch(x) else w * 3.0)
        with pytest.raises(CompileError, match="argument 0"):
            compiled(np.array([1.0, -2.0]))


def test_python_branches_on_data_and_grad_are_refused():
    w = Tensor([1.0, 2.0], requires_grad=True)
    on_data = autonet.compile(lambda x: (x * w) * 2.0 if w.data.sum() > 0 else x * w)
    with pytest.raises(CompileError, match=r"\.data"):
        on_data(Tensor([1.0, 1.0]))

    def on_grad(x):
        loss = (x * w).sum()
        loss.backward()
        if np.abs(w.grad).max() > 1.0:
            return loss * 2.0
        return loss

    with pytest.raises(CompileError, match=r"\.grad"):
        autonet.compile(on_grad)(Tensor([1.0, 1.0]))


def test_value_reads_of_results_computed_from_data_are_refused():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(CompileError, match="NumPy"):
        autonet.compile(lambda x: x * np.exp(w.data))(Tensor([1.0, 1.0]))   # computed, handed in
    with pytest.raises(CompileError, match="NumPy"):
        autonet.compile(lambda x: x * (x.data > 0))(Tensor([1.0, -1.0]))


def _clipping_step(write):
    def make():
        w = Tensor([3.0, -4.0, 0.5], requires_grad=True, name="w")
        optimizer = SGD([w], lr=0.1)

        def step(x):
            loss = ((x * w) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            write(w)
            optimizer.step()
            return loss

        return w, step

    return make


@pytest.mark.parametrize("write", [
    lambda w: np.clip(w.grad, -0.5, 0.5, out=w.grad),
    lambda w: w.grad.__setitem__(Ellipsis, np.clip(w.grad, -0.5, 0.5)),
    lambda w: setattr(w, "grad", np.clip(w.grad, -0.5, 0.5)),
    lambda w: w.grad.fill(0.0),
    lambda w: np.copyto(w.grad, 0.0),
    lambda w: w.data.__isub__(0.1),
], ids=["clip-out", "setitem", "assign", "fill", "copyto", "data-isub"])
def test_numpy_writes_into_grad_or_data_are_refused(write):
    _, step = _clipping_step(write)()
    with pytest.raises(CompileError, match=r"\.grad|\.data"):
        autonet.compile(step)(Tensor([1.0, 1.0, 1.0]))


@pytest.mark.parametrize("clip", [
    lambda w: autonet.nn.utils.clip_grad_norm_([w], max_norm=1.0),
    lambda w: autonet.nn.utils.clip_grad_value_(w, 0.5),
    lambda w: autonet.nn.utils.clip_grad_norm_((p for p in [w]), max_norm=2.0, norm_type=np.inf),
], ids=["norm", "value", "inf-norm-from-a-generator"])
def test_gradient_clipping_is_replayed(clip):
    (w_eager, eager), (w_compiled, compiled) = _twins(_clipping_step(clip))
    for scale in (1.0, 0.1, 3.0, 0.01, 2.0):
        x = Tensor(np.full(3, scale))
        _same(compiled(x).data, eager(x).data)
        _same(w_compiled.data, w_eager.data)
        _same(w_compiled.grad, w_eager.grad)


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_tensors_made_from_lasting_arrays_are_read_afresh():
    table = np.array([1.0, 2.0, 3.0])
    w = Tensor([0.5, 0.5, 0.5], requires_grad=True)
    compiled = autonet.compile(lambda: (Tensor(table) * w).sum())
    compiled()
    table[:] = [10.0, 20.0, 30.0]                 # the array lives across calls: read by reference
    assert compiled().item() == 30.0


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_arrays_made_with_numpy_inside_the_step_are_refused_even_when_a_module_keeps_them():
    class HandMadeDropout(nn.Module):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(0)
            self.mask = None

        def forward(self, x):
            self.mask = (self.rng.random(x.shape) > 0.5) / 0.5   # kept by the module
            return x * self.mask

    layer = HandMadeDropout()
    with pytest.raises(CompileError, match="NumPy"):
        autonet.compile(lambda x: layer(x).sum())(Tensor(np.ones(4)))
    with pytest.raises(CompileError, match="NumPy"):
        autonet.compile(lambda x: (x * np.ones(4)).sum())(Tensor(np.ones(4)))


def test_other_objects_are_guarded_by_identity():
    def step(model, x):
        return model(x).sum()

    compiled = autonet.compile(step)
    first, second = nn.Linear(2, 1, rng=0), nn.Linear(2, 1, rng=1)
    x = Tensor(np.ones((3, 2)))
    for model in (first, second, first):
        _same(compiled(model, x).data, model(x).sum().data)
    assert len(compiled.programs) == 2


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_nested_arguments_are_paths():
    w = Tensor([1.0, 2.0], requires_grad=True)

    def step(batch):
        x, (y, index) = batch["x"], batch["target"]
        loss = ((x * w)[index] - y).sum()
        w.zero_grad()
        loss.backward()
        return loss

    compiled = autonet.compile(step)
    for value in (1.0, 2.0, 5.0):
        batch = {"x": np.full(2, value), "target": (Tensor([value]), np.array([1]))}
        expected = step(batch).item()
        eager_grad = w.grad.copy()
        assert compiled(batch).item() == expected
        _same(w.grad, eager_grad)


def test_a_program_lists_its_inputs_guards_and_code():
    (_, _), (model, compiled) = _twins(_linear_regression)
    compiled(np.ones((4, 3)), np.ones((4, 1)))
    (program,) = compiled.programs
    listing = program.listing()
    for expected in ("argument 0 (an ndarray)", "argument 1 (an ndarray)", "read by reference",
                     "guards", "linear_forward", "def replay_step(args):", "step_"):
        assert expected in listing, expected
    assert sum(type(i).__name__ == "Backward" for i in program.instructions) == 1


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_views_of_lasting_arrays_are_read_by_reference_but_fresh_arrays_are_refused():
    table = np.arange(6.0).reshape(2, 3)
    w = Tensor(np.ones(2), requires_grad=True)
    compiled = autonet.compile(lambda n: (w * table[:, n]).sum())      # a view: fine
    assert compiled(1).item() == 1.0 + 4.0
    table[:, 1] = [10.0, 20.0]
    assert compiled(1).item() == 30.0
    with pytest.raises(CompileError, match="NumPy"):
        autonet.compile(lambda: (w * (table[:, 0] + 1.0)).sum())()     # computed: refused


def _cnn_world():
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3, rng=rng), nn.Linear(16, 3, rng=rng))
    optimizer = autonet.optim.AdamW(model.parameters(), lr=0.01)
    schedule = autonet.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

    def step(x, labels):
        loss = nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        autonet.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        schedule.step()
        return loss

    return model, step


def test_a_cnn_step_with_batch_norm_dropout_clipping_and_a_schedule_replays_exactly():
    (eager_model, eager), (compiled_model, compiled) = _twins(_cnn_world)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x, labels = passed(rng.normal(size=(6, 1, 4, 4))), passed(rng.integers(0, 3, 6))
        _same(compiled(x, labels).data, eager(x, labels).data)
    for (name, a), b in zip(eager_model.state_dict().items(), compiled_model.state_dict().values()):
        _same(a, b)            # parameters, running statistics, num_batches_tracked
    assert len(compiled.programs) == 1


def test_a_transformer_block_replays_exactly():
    def make():
        rng = np.random.default_rng(2)
        embed, norm = nn.Embedding(11, 8, rng=rng), nn.LayerNorm(8)
        head = nn.Linear(8, 11, rng=rng)
        params = list(embed.parameters()) + list(norm.parameters()) + list(head.parameters())
        optimizer = autonet.optim.Adam(params, lr=0.01)

        def step(tokens, targets):
            h = embed(tokens)
            scores = autonet.einsum("btd,bsd->bts", h, h) * 0.5
            h = norm(autonet.einsum("bts,bsd->btd", scores.softmax(axis=-1), h)).gelu()
            loss = nn.functional.cross_entropy(head(h).reshape(-1, 11), targets.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return embed, step

    (embed_eager, eager), (embed_compiled, compiled) = _twins(make)
    rng = np.random.default_rng(3)
    for _ in range(4):
        tokens, targets = passed(rng.integers(0, 11, (2, 5))), passed(rng.integers(0, 11, (2, 5)))
        _same(compiled(tokens, targets).data, eager(tokens, targets).data)
    _same(embed_compiled.weight.data, embed_eager.weight.data)


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_arguments_reshaped_or_sliced_by_constants_are_read_that_way_on_every_call():
    w = Tensor([1.0, 2.0, 3.0], requires_grad=True)

    def step(x, labels):
        logits = (Tensor(x.reshape(-1, 3)) * w)[:, ::-1]
        loss = nn.functional.cross_entropy(logits, labels.reshape(-1)) + (Tensor(x.T[0]) * 1.0).sum()
        w.zero_grad()
        loss.backward()
        return loss

    compiled = autonet.compile(step)
    rng = np.random.default_rng(4)
    for _ in range(3):
        x, labels = rng.normal(size=(2, 2, 3)), rng.integers(0, 3, (2, 2))
        expected = step(x, labels).data
        eager_grad = w.grad.copy()
        _same(compiled(x, labels).data, expected)
        _same(w.grad, eager_grad)
    with pytest.raises(CompileError, match="NumPy"):
        autonet.compile(lambda x: (Tensor(x[np.array([0])]) * w).sum())(np.ones((2, 3)))
    with pytest.raises(CompileError, match=r"\.grad"):
        def uses_grad(x):
            (x * w).sum().backward()
            return (x * Tensor(w.grad.reshape(1, 3))).sum()
        autonet.compile(uses_grad)(Tensor(np.ones((2, 3))))


def test_train_and_eval_modes_are_guarded():
    (eager_model, eager), (compiled_model, compiled) = _twins(_cnn_world)
    rng = np.random.default_rng(5)
    for mode in ("train", "eval", "train", "eval"):
        for model in (eager_model, compiled_model):
            getattr(model, mode)()
        x, labels = passed(rng.normal(size=(6, 1, 4, 4))), passed(rng.integers(0, 3, 6))
        _same(compiled(x, labels).data, eager(x, labels).data)   # eval: no dropout, running stats
    assert len(compiled.programs) == 2
    assert "eval mode" in compiled.programs[1].listing()


@pytest.mark.host_only("ndarray arguments and .data reads are followed on the CPU only (marked views)")
def test_arrays_a_step_keeps_behave_as_plain_arrays_after_tracing():
    kept = []
    w = Tensor([1.0, 2.0], requires_grad=True)

    def step(x):
        kept.append(x)                      # the argument as the step saw it (marked)
        return (w * x).sum()

    compiled = autonet.compile(step)
    compiled(np.array([1.0, -1.0]))
    assert bool(kept[0].sum() < 1.0) and float(kept[0][0]) == 1.0
    kept[0][...] = 3.0                      # writes are the user's business outside the step
    assert kept[0].tolist() == [3.0, 3.0]


_NUMPY_GENERATOR = np.random.default_rng(0)


@pytest.mark.parametrize("draw", [lambda: random.random(), lambda: np.random.uniform(),
                                  lambda: _NUMPY_GENERATOR.normal(),
                                  lambda: float(autonet.random.generator(None).random())],
                         ids=["random", "np.random", "a Generator", "autonet's default"])
def test_random_numbers_drawn_in_the_steps_python_are_refused(draw):
    """A number the step drew itself became a constant of the replay: every replayed call
    reused the traced draw (eager mode draws a new one each call)."""
    w = Tensor(np.ones(2), requires_grad=True)

    @autonet.compile
    def step():
        loss = (w * draw()).sum()
        loss.backward()
        return loss

    with pytest.raises(CompileError, match="draws random numbers in Python .* pass them in"):
        step()
    assert step.programs == []


@pytest.mark.parametrize("where", ["before ops", "between ops", "after the last op"])
@pytest.mark.parametrize("source", ["random", "np.random", "the dropout's generator"])
def test_a_draw_in_the_steps_python_is_refused_wherever_it_falls_among_the_ops(source, where):
    """Wherever the draw falls: among ops that take no generator, before an op that draws from
    the same generator (dropout's), or after every op. The dropout's draws are its own."""
    rng = np.random.default_rng(1)
    drop = nn.Dropout(0.5, rng=rng)
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    draw = {"random": random.random, "np.random": np.random.uniform,
            "the dropout's generator": rng.normal}[source]
    drawn = []

    def step():
        if where == "before ops":
            drawn.append(draw())
        h = (w * 2.0).tanh()
        if where == "between ops":
            drawn.append(draw())
        loss = (drop(h * 3.0) + 1.0).sum()
        if where == "after the last op":
            drawn.append(draw())
        loss.backward()
        return loss

    with pytest.raises(CompileError, match=r"draws random numbers in Python \(" + {
            "random": "Python's random", "np.random": "NumPy's global",
            "the dropout's generator": "the closure variable 'draw'"}[source]):
        autonet.compile(step)()
    assert len(drawn) == 1


class _NoisySGD(SGD):
    """SGD whose step adds noise drawn from its own generator: a replayed call draws again."""

    def __init__(self, params, lr, seed):
        super().__init__(params, lr=lr)
        self.noise = np.random.default_rng(seed)

    def step(self):
        super().step()
        with autonet.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p[...] = p + Tensor(here(self.noise.normal(size=p.shape) * 0.01))


def test_draws_of_ops_and_of_replayed_calls_are_allowed_and_replay_as_eager():
    """Dropout draws inside its op, the optimizer inside its replayed step: both run again on
    every replay, so such steps compile and equal eager mode bit for bit."""
    def make():
        model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Dropout(0.5, rng=1), nn.Linear(4, 1, rng=2))
        optimizer = _NoisySGD(model.parameters(), lr=0.1, seed=3)

        def step(x, y):
            loss = mse_loss(model(Tensor(x)), Tensor(y))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        return model, step

    (eager_model, eager), (compiled_model, compiled) = _twins(make)
    data = np.random.default_rng(4)
    for _ in range(4):
        x, y = passed(data.normal(size=(5, 3))), passed(data.normal(size=(5, 1)))
        _same(compiled(x, y).data, eager(x, y).data)
        for a, b in zip(eager_model.parameters(), compiled_model.parameters()):
            _same(a.data, b.data)
    assert len(compiled.programs) == 1
