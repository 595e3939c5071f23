"""Issue 24's findings, one test each, with PyTorch's documented behaviour as the oracle
(its closed forms, its derivatives.yaml formulas, its error rules), computed independently here."""
import gc
import json
import math
import os
import signal
import subprocess
import sys
import types
import weakref
import zipfile

import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.data import DataLoader
from autonet.optim import SGD, Adam, lr_scheduler as schedulers


# ----------------------------------------------------------------- chained schedulers
def _chained_rates(makers, steps, lr=1.0):
    w = Tensor([1.0], requires_grad=True)
    optimizer = SGD([w], lr=lr)
    made = [make(optimizer) for make in makers]
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps):
        optimizer.step()
        for scheduler in made:
            scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return np.array(rates)


def test_warmup_then_cosine_gives_pytorchs_rates_after_the_first_period():
    # PyTorch: both recurrences multiply the current rate, so the product of the closed forms
    # holds; at t = T + 1 cosine adds (initial_lr - eta_min)(1 - cos(pi / T)) / 2, initial_lr
    # being the rate before any scheduler (1.0), not the warmed-up one
    rates = _chained_rates([lambda o: schedulers.LinearLR(o, start_factor=0.1, total_iters=5),
                            lambda o: schedulers.CosineAnnealingLR(o, T_max=10)], steps=35)
    t = np.arange(36)
    warmup = 0.1 + 0.9 * np.minimum(t, 5) / 5
    expected = warmup * (1 + np.cos(np.pi * t / 10)) / 2
    np.testing.assert_allclose(rates, expected, rtol=1e-10, atol=1e-15)
    assert rates[11] > 0.02   # 10 % of it (0.0024) before the fix


def test_warmup_then_lambda_trains_at_lambdas_rate():
    # PyTorch's LambdaLR sets initial_lr * lambda(t), whatever ran before it
    rates = _chained_rates([lambda o: schedulers.LinearLR(o, start_factor=0.5, total_iters=4),
                            lambda o: schedulers.LambdaLR(o, lambda epoch: 0.9 ** epoch)],
                           steps=12, lr=0.2)
    np.testing.assert_allclose(rates, 0.2 * 0.9 ** np.arange(13), rtol=1e-13)


def test_the_first_scheduler_records_initial_lr_in_the_groups():
    w = Tensor([1.0], requires_grad=True)
    optimizer = SGD([w], lr=0.3)
    schedulers.ExponentialLR(optimizer, gamma=0.5)
    optimizer.step()
    assert optimizer.param_groups[0]["initial_lr"] == 0.3
    second = schedulers.StepLR(optimizer, step_size=2)
    assert second.base_lrs == [0.3]


# ----------------------------------------------------------------- DataLoader
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_are_copies_of_the_dataset(shuffle):
    X = np.arange(12.0).reshape(6, 2)
    original = X.copy()
    for (batch,) in DataLoader(X, batch_size=4, shuffle=shuffle, rng=0):
        assert not np.shares_memory(batch, X)
        batch -= batch.mean()
    np.testing.assert_array_equal(X, original)


# ----------------------------------------------------------------- clip_grad_norm_
def _with_grads(*grads):
    params = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = np.array(g, dtype=float)
    return params


def test_clip_grad_norm_minus_inf_is_the_smallest_magnitude():
    params = _with_grads([3.0, -4.0], [0.5, -2.0])
    total = nn.utils.clip_grad_norm_(params, max_norm=0.1, norm_type=-math.inf)
    assert total == 0.5                                          # min |g| over all gradients
    factor = 0.1 / (0.5 + 1e-6)
    np.testing.assert_allclose(params[0].grad, [3.0 * factor, -4.0 * factor], rtol=1e-15)
    np.testing.assert_allclose(params[1].grad, [0.5 * factor, -2.0 * factor], rtol=1e-15)


@pytest.mark.parametrize("norm_type", [0.5, 1.0, 3.0, math.inf])
def test_clip_grad_norm_takes_any_positive_order(norm_type):
    grads = [np.array([3.0, -4.0]), np.array([0.5, -2.0])]
    everything = np.abs(np.concatenate(grads))
    expected = (everything.max() if norm_type == math.inf
                else (everything ** norm_type).sum() ** (1 / norm_type))
    total = nn.utils.clip_grad_norm_(_with_grads(*grads), max_norm=1e9, norm_type=norm_type)
    np.testing.assert_allclose(total, expected, rtol=1e-14)


@pytest.mark.parametrize("norm_type", [0, -1.0, -2, math.nan, "fro"])
def test_clip_grad_norm_refuses_other_orders(norm_type):
    params = _with_grads([3.0, 4.0])
    with pytest.raises((ValueError, TypeError), match="norm_type|could not convert"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
    np.testing.assert_array_equal(params[0].grad, [3.0, 4.0])


def test_clip_grad_norm_error_if_nonfinite():
    params = _with_grads([1.0, math.inf], [2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(params[0].grad, [1.0, math.inf])   # nothing changed
    np.testing.assert_array_equal(params[1].grad, [2.0])
    # PyTorch's default: scaled by max_norm / (inf + 1e-6) = 0 (inf * 0 is NaN)
    with np.errstate(invalid="ignore"):
        assert nn.utils.clip_grad_norm_(params, 1.0) == math.inf
    np.testing.assert_array_equal(params[0].grad, [0.0, math.nan])
    np.testing.assert_array_equal(params[1].grad, [0.0])


# ----------------------------------------------------------------- optimizer state
def _adam_after(steps, start, grads):
    w = Tensor(start.copy(), requires_grad=True)
    optimizer = Adam([w], lr=0.01)
    for g in grads[:steps]:
        w.grad = g.copy()
        optimizer.step()
    return w, optimizer


def test_adam_state_is_cast_to_the_parameters_dtype_on_load():
    rng = np.random.default_rng(0)
    start, grads = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(3)]
    _, trained = _adam_after(2, start, grads)
    state = trained.state_dict()
    for name in ("exp_avg", "exp_avg_sq"):
        state["state"][0][name] = state["state"][0][name].astype(np.float32)
    w, optimizer = _adam_after(0, start, grads)
    optimizer.load_state_dict(state)
    loaded = optimizer.state[w]
    assert loaded["exp_avg"].dtype == loaded["exp_avg_sq"].dtype == np.float64
    np.testing.assert_array_equal(loaded["exp_avg"], state["state"][0]["exp_avg"].astype(np.float64))
    assert loaded["step"] == 2.0   # the counter is kept as it is


@pytest.mark.parametrize("name, bad", [("exp_avg", np.zeros(4, dtype=np.int64)),
                                       ("exp_avg_sq", np.zeros(4, dtype=bool)),
                                       ("exp_avg", np.array(["a"] * 4)),
                                       ("step", np.array(True))])
def test_adam_state_that_is_not_floating_point_is_refused_before_anything_changes(name, bad):
    rng = np.random.default_rng(1)
    start, grads = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(3)]
    w, optimizer = _adam_after(1, start, grads)
    before = {k: v.copy() for k, v in optimizer.state[w].items()}
    state = optimizer.state_dict()
    state["state"][0][name] = bad
    state["param_groups"][0]["lr"] = 0.5
    with pytest.raises(ValueError, match=name):
        optimizer.load_state_dict(state)
    assert optimizer.param_groups[0]["lr"] == 0.01
    for key, value in before.items():
        np.testing.assert_array_equal(optimizer.state[w][key], value)
    w.grad = grads[1].copy()
    optimizer.step()   # still works, and counts from 1
    assert optimizer.state[w]["step"] == 2


# ----------------------------------------------------------------- memory after backward
_STOP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def _memory_of(array):
    while array.base is not None:
        array = array.base
    return array


def _arrays_reachable_from(*roots):
    """Every ndarray reachable from ``roots`` through instances (not classes, modules or
    functions, which lead everywhere)."""
    seen, found, stack = set(), [], list(roots)
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, _STOP):
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            found.append(item)
            if item.base is not None:
                stack.append(item.base)
        else:
            stack.extend(gc.get_referents(item))
    return found


def _small_cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(3, stride=2), nn.Dropout(0.5, rng=1), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 3, rng=2))


def _forward_arrays_left(model, kept):
    """Arrays reachable from ``kept`` that are neither the model's state nor the kept tensors'
    own values (a stand-in of one value broadcast to a shape holds no memory and passes)."""
    own = [t.data for t in list(model.parameters()) + list(model.buffers()) + list(kept)]
    own += [p.grad for p in model.parameters() if p.grad is not None]
    allowed = {id(_memory_of(a)) for a in own}
    return [(a.shape, a.dtype) for a in _arrays_reachable_from(*kept)
            if id(_memory_of(a)) not in allowed and _memory_of(a).size > 1]


class _LastStep(nn.Module):
    """An LSTM's (seq, batch, 4) output read at its last step, as class scores."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 4, num_layers=2, rng=0)
        self.head = nn.Linear(4, 3, rng=1)

    def forward(self, x):
        output, _ = self.lstm(x)
        return self.head(output[-1])


class _Attending(nn.Module):
    """A transformer encoder layer over (batch, seq, 8), its first position as class scores."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.25,
                                                  batch_first=True, rng=0)
        self.head = nn.Linear(8, 3, rng=1)

    def forward(self, x):
        return self.head(self.encoder(x)[:, 0])


# each model, and the shape of a batch of 5 for it
MODELS = {"cnn": (_small_cnn, (5, 2, 7, 7)), "lstm": (_LastStep, (6, 5, 2)),
          "attention": (_Attending, (5, 4, 8))}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_after_backward_no_forward_array_is_reachable_from_the_loss(name):
    make, shape = MODELS[name]
    rng = np.random.default_rng(0)
    model, losses, batches = make(), [], []
    for _ in range(3):                                   # a loop that keeps its losses
        x = Tensor(rng.standard_normal(shape))
        batches.append(weakref.ref(x.data))
        loss = F.cross_entropy(model(x), rng.integers(0, 3, 5))
        loss.backward()
        losses.append(loss)
        del x, loss
    gc.collect()
    assert [batch() for batch in batches] == [None] * 3   # the graph kept no batch alive
    assert _forward_arrays_left(model, losses) == []      # nor im2col matrices, masks, activations


def test_after_backward_the_graph_still_names_and_shapes_its_constants():
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    x = Tensor(np.arange(6.0).reshape(2, 3), name="X")
    loss = (x @ w).sum()
    loss.backward()
    del x
    gc.collect()
    constant = loss.grad_fn.inputs[0].inputs[0]
    assert constant.name == "X" and constant.shape == (2, 3) and constant.dtype == np.float64
    assert _memory_of(constant.data).size == 1           # a stand-in, not the batch


@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_steps_keep_no_forward_array_either(name):
    make, shape = MODELS[name]
    rng = np.random.default_rng(1)
    model = make()
    optimizer = SGD(model.parameters(), lr=0.1)

    def step(x, labels):
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    compiled, losses, batches = autonet.compile(step), [], []
    for _ in range(4):
        x = Tensor(rng.standard_normal(shape))
        batches.append(weakref.ref(x.data))
        losses.append(compiled(x, rng.integers(0, 3, 5)))
        del x
    gc.collect()
    assert [batch() for batch in batches] == [None] * 4
    assert _forward_arrays_left(model, losses) == []


def test_retain_graph_keeps_what_a_second_backward_needs():
    model = _small_cnn()
    loss = F.cross_entropy(model(Tensor(np.ones((2, 2, 7, 7)))), [0, 1])
    loss.backward(retain_graph=True)
    first = [p.grad.copy() for p in model.parameters()]
    loss.backward()
    for p, g in zip(model.parameters(), first):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)


# ----------------------------------------------------------------- empty batches
@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_overlapping_pools_take_an_empty_batch(pool):
    x = Tensor(np.zeros((0, 2, 5, 5)), requires_grad=True)
    out = pool(x, 3, stride=2)
    assert out.shape == (0, 2, 2, 2)                      # PyTorch's shape
    out.sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)


def test_an_empty_batch_goes_through_a_cnn_in_eval_mode():
    model = _small_cnn().eval()
    x = Tensor(np.zeros((0, 2, 7, 7)), requires_grad=True)
    out = model(x)
    assert out.shape == (0, 3)                             # PyTorch's: Flatten gives (0, 36)
    out.sum().backward()
    assert x.grad.shape == (0, 2, 7, 7)
    np.testing.assert_array_equal(model[0].weight.grad, np.zeros(model[0].weight.shape))


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_and_min_over_a_non_empty_axis_of_an_empty_tensor_are_empty(op):
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    out = getattr(x, op)(axis=1)
    assert out.shape == getattr(np, op)(np.zeros((0, 3)), axis=1).shape == (0,)
    out.sum().backward()
    assert x.grad.shape == (0, 3)
    with pytest.raises(ValueError, match="empty axis"):
        getattr(x, op)(axis=0)                            # NumPy refuses this one too


# ----------------------------------------------------------------- crafted checkpoints
def _archive(path, manifest, members=(), manifest_name="autonet.npy"):
    with zipfile.ZipFile(path, "w") as archive:
        if manifest_name == "autonet.npy":
            with archive.open(manifest_name, "w") as member:
                np.lib.format.write_array(member, np.array(manifest))
        else:
            archive.writestr(manifest_name, manifest)
        for name, array in members:
            with archive.open(name, "w") as member:
                np.lib.format.write_array(member, array)
    return path


_CRAFTED = {
    "not a dict": "[]",
    "an int at the top": json.dumps({"format": 2, "tree": {"int": 1}}),
    "a missing member": json.dumps({"format": 2, "tree": {"dict": [[{"str": "w"}, {"array": "gone.npy"}]]}}),
    "a dict of a string": json.dumps({"format": 2, "tree": {"dict": "x"}}),
    "two kinds in a node": json.dumps({"format": 2, "tree": {"dict": [], "list": []}}),
    "a list as a key": json.dumps({"format": 2, "tree": {"dict": [[{"list": []}, {"int": 1}]]}}),
    "a bool for an int": json.dumps({"format": 2, "tree": {"dict": [[{"str": "a"}, {"int": True}]]}}),
    "an unknown kind": json.dumps({"format": 2, "tree": {"dict": [[{"str": "a"}, {"pickle": "x"}]]}}),
    "deep nesting": '{"format": 2, "tree": {"dict": [[{"str": "a"}, ' + '{"list": [' * 3000
                    + ']}' * 3000 + ']]}}',
    "absurd JSON nesting": "[" * 100_000 + "]" * 100_000,
    "no tree": json.dumps({"format": 2}),
    "format as a string": json.dumps({"format": "2", "tree": {"dict": []}}),
}


@pytest.mark.parametrize("manifest_name", ["autonet.npy", "autonet.json"])
@pytest.mark.parametrize("case", sorted(_CRAFTED))
def test_load_refuses_a_crafted_manifest_clearly(tmp_path, case, manifest_name):
    text = _CRAFTED[case]
    if manifest_name == "autonet.json":   # the first format, arrays numbered
        text = text.replace('"format": 2', '"format": 1').replace('"gone.npy"', "7")
    path = _archive(tmp_path / "crafted.npz", text, [("w.npy", np.ones(2))], manifest_name)
    with pytest.raises(ValueError, match="load: "):
        autonet.load(path)


def test_one_member_referred_to_twice_is_refused(tmp_path):
    tree = {"dict": [[{"str": "a"}, {"array": "w.npy"}], [{"str": "b"}, {"array": "w.npy"}]]}
    path = _archive(tmp_path / "twice.npz", json.dumps({"format": 2, "tree": tree}), [("w.npy", np.ones(2))])
    with pytest.raises(ValueError, match="twice"):
        autonet.load(path)


@pytest.mark.parametrize("array", [np.ones(2, dtype=complex), np.zeros(2, dtype="i4,f8"),
                                   np.array(["2026-01-01"], dtype="datetime64[D]"), np.array(["text"])],
                         ids=["complex", "structured", "datetime", "string"])
def test_load_refuses_members_that_save_refuses(tmp_path, array):
    with pytest.raises(TypeError):
        autonet.save({"w": array}, tmp_path / "refused.npz")
    np.savez(tmp_path / "plain.npz", w=array)
    with pytest.raises(ValueError, match="'w.npy' holds"):
        autonet.load(tmp_path / "plain.npz")
    tree = {"dict": [[{"str": "w"}, {"array": "w.npy"}]]}
    path = _archive(tmp_path / "crafted.npz", json.dumps({"format": 2, "tree": tree}), [("w.npy", array)])
    with pytest.raises(ValueError, match="'w.npy' holds"):
        autonet.load(path)


def test_an_archive_of_the_first_format_still_loads(tmp_path):
    tree = {"dict": [[{"str": "w"}, {"array": 0}], [{"str": "epoch"}, {"int": 3}]]}
    path = _archive(tmp_path / "old.npz", json.dumps({"format": 1, "tree": tree}),
                    [("arrays/0.npy", np.arange(3.0))], manifest_name="autonet.json")
    loaded = autonet.load(path)
    assert loaded["epoch"] == 3
    np.testing.assert_array_equal(loaded["w"], [0.0, 1.0, 2.0])


# ----------------------------------------------------------------- checkpoint format (contract v3)
def test_every_member_is_an_array_named_by_its_key_path(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4))
    optimizer = Adam(model.parameters())
    model(Tensor(np.ones((2, 3)))).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 4}
    autonet.save(state, tmp_path / "checkpoint.npz")
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as archive:
        names = set(archive.files)
        members = {name: archive[name] for name in names}      # every member reads as an array
    assert {"model/0.weight", "model/0.bias", "model/1.running_mean", "model/1.num_batches_tracked",
            "optimizer/state/0/exp_avg", "optimizer/state/3/step", "autonet"} <= names
    np.testing.assert_array_equal(members["model/0.weight"], state["model"]["0.weight"])
    assert members["autonet"].dtype.kind == "U" and members["autonet"].shape == ()
    assert '"epoch"' in str(members["autonet"])                  # plain numbers live in the JSON
    loaded = autonet.load(tmp_path / "checkpoint.npz")
    assert loaded["epoch"] == 4 and list(loaded["model"]) == list(state["model"])
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]


def test_keys_that_would_name_one_member_twice_get_distinct_members(tmp_path):
    state = {"a/b": np.zeros(1), "a": {"b": np.ones(1)}, "autonet": np.full(1, 2.0)}
    autonet.save(state, tmp_path / "tricky.npz")
    with np.load(tmp_path / "tricky.npz") as archive:
        assert len(archive.files) == 4
    loaded = autonet.load(tmp_path / "tricky.npz")
    np.testing.assert_array_equal(loaded["a/b"], [0.0])
    np.testing.assert_array_equal(loaded["a"]["b"], [1.0])
    np.testing.assert_array_equal(loaded["autonet"], [2.0])


_KILLED_SAVE = """
import os, sys, time, numpy as np, autonet
real = np.lib.format.write_array
def slow(*args, **kwargs):
    print("writing", flush=True)
    time.sleep(60)
np.lib.format.write_array = slow
autonet.save({"w": np.ones(3)}, sys.argv[1])
"""


def test_a_save_killed_by_sigkill_leaves_a_temporary_the_next_save_removes(tmp_path):
    target = tmp_path / "model.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(target)], stdout=subprocess.PIPE,
                             env=env, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].endswith(".tmp")           # SIGKILL runs no cleanup
    autonet.save({"w": np.zeros(3)}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_a_save_in_progress_in_a_live_process_is_left_alone(tmp_path):
    target = tmp_path / "model.npz"
    in_progress = tmp_path / f".model.npz.{os.getpid()}.abcd1234.tmp"   # this process: alive
    in_progress.write_bytes(b"half written")
    other = tmp_path / ".other.npz.1.abcd1234.tmp"                      # another path's
    other.write_bytes(b"not ours")
    autonet.save({"w": np.zeros(3)}, target)
    assert in_progress.exists() and other.exists()


# ----------------------------------------------------------------- retain_grad and in-place
def test_retain_grad_survives_an_in_place_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    y += 1.0
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad, 2 * np.array([4.0, 7.0]))   # d(y^2)/dy at the new y
    np.testing.assert_allclose(x.grad, 3 * 2 * np.array([4.0, 7.0]))


# ----------------------------------------------------------------- NaN routing (derivatives.yaml)
def test_max_of_a_tensor_with_nans_sends_the_gradient_to_the_nans():
    # torch.max(): evenly_distribute_backward, mask = isnan(input) when the result is NaN
    x = Tensor([1.0, np.nan, 3.0, np.nan], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.0, 0.5])
    x = Tensor([[1.0, np.nan], [3.0, 3.0]], requires_grad=True)
    x.min(axis=1).sum().backward()                      # ties still share evenly
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0], [0.5, 0.5]])


def test_relu_backward_is_pytorchs_threshold_backward():
    # where(result <= 0, 0, grad): NaN <= 0 is False, so the gradient passes at NaN, and a
    # NaN gradient does not leak where the input was negative
    x = Tensor([-1.0, np.nan, 2.0, 0.0], requires_grad=True)
    x.relu().backward(np.array([np.nan, 1.0, 1.0, np.nan]))
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 0.0])


def test_abs_backward_uses_pytorchs_sign_which_is_zero_at_nan():
    # grad * sgn(x); torch.sgn(nan) == 0 (pytorch/pytorch#41245), unlike np.sign
    x = Tensor([-2.0, np.nan, 3.0, 0.0], requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0, 0.0])


def test_maximum_and_minimum_route_as_pytorchs_formula():
    # self: where(self == other, grad / 2, grad).masked_fill_(self < other, 0), other alike
    a = Tensor([1.0, np.nan, 2.0, 2.0, 0.0], requires_grad=True)
    b = Tensor([0.0, 1.0, np.nan, 2.0, 1.0], requires_grad=True)
    autonet.maximum(a, b).backward(np.array([np.nan, 1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(a.grad, [np.nan, 1.0, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 1.0, 1.0, 0.5, 1.0])
    a.grad = b.grad = None
    autonet.minimum(a, b).backward(np.ones(5))
    np.testing.assert_array_equal(a.grad, [0.0, 1.0, 1.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 1.0, 0.5, 0.0])


# ----------------------------------------------------------------- smaller findings
def test_a_refused_batch_norm_batch_changes_no_buffer():
    layer = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer(Tensor(np.ones((1, 3))))
    assert int(layer.num_batches_tracked.data) == 0
    np.testing.assert_array_equal(layer.running_mean.data, np.zeros(3))
    layer(Tensor(np.arange(6.0).reshape(2, 3)))
    assert int(layer.num_batches_tracked.data) == 1


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d, F.max_pool1d, F.avg_pool1d])
def test_pooling_with_stride_zero_is_a_clear_error(pool):
    x = Tensor(np.ones((1, 1, 4, 4) if pool.__name__.endswith("2d") else (1, 1, 4)))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        pool(x, 2, stride=0)


@pytest.mark.parametrize("labels, message", [([0, 1e20], r"\[0, 3\), got 0.0..1e\+20"),
                                             ([0, np.inf], "finite class indices, got inf"),
                                             ([np.nan, 1], "finite class indices, got nan")])
def test_huge_and_non_finite_labels_are_reported_as_they_are(labels, message):
    for loss in (F.cross_entropy, F.nll_loss):
        with pytest.raises(ValueError, match=message):
            loss(Tensor(np.zeros((2, 3))), np.array(labels))


def test_bool_labels_are_refused_with_a_message_about_bools():
    with pytest.raises(TypeError, match="not bool values; convert them with labels.astype"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([True, False]))


def test_a_plain_tensor_cannot_replace_a_parameter():
    layer = nn.Linear(2, 2, rng=0)
    weight = layer.weight
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'weight'"):
        layer.weight = Tensor(np.zeros((2, 2)))
    assert layer.weight is weight and list(layer.parameters())[0] is weight
    layer.bias = None                                       # as PyTorch: None is allowed
    layer.weight = nn.Parameter(np.ones((2, 2)))            # and so is a Parameter
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


@pytest.mark.parametrize("mode", ["eval", 1, None])
def test_train_takes_a_bool_only(mode):
    model = nn.Sequential(nn.Linear(2, 2, rng=0)).eval()
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        model.train(mode)
    assert model.training is False and model[0].training is False


def test_state_dict_interleaves_parameters_and_buffers_module_by_module():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(np.ones(2))
            self.register_buffer("count", np.zeros(1))
            self.norm = nn.BatchNorm1d(2)
            self.out = nn.Linear(2, 1, rng=0)

    assert list(Block().state_dict()) == [        # torch's order for the same module
        "scale", "count", "norm.weight", "norm.bias", "norm.running_mean", "norm.running_var",
        "norm.num_batches_tracked", "out.weight", "out.bias"]


def test_a_module_registered_twice_appears_once_in_modules():
    shared = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    assert [name for name, _ in model.named_modules()] == ["", "0", "1"]
    assert len(list(model.modules())) == 3
    # state_dict lists it under both names, as PyTorch's does; both load
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    model.load_state_dict(model.state_dict())
