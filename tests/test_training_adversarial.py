"""Trying to break the training kit, with PyTorch's documented behaviour as the specification:
schedulers (chained, resumed mid-schedule), clipping, DataLoader, optimizers' state_dict,
checkpoints and modules' bookkeeping, on empty and degenerate inputs, NaN and inf, wrong
dtypes and crafted files. Expected values come from PyTorch's closed forms and rules, computed
here independently of the code under test."""
import json
import math
import zipfile

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.data import DataLoader
from autonet.optim import SGD, Adam, AdamW, lr_scheduler as schedulers
from autonet.core import device as devices
from device_double import here


# ----------------------------------------------------------------- schedulers
def _optimizer(lr=1.0):
    return SGD([Tensor([1.0], requires_grad=True)], lr=lr)


def _step_all(optimizer, made, steps):
    rates = []
    for _ in range(steps):
        optimizer.step()
        for scheduler in made:
            scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def _warmup_cosine(optimizer):
    return [schedulers.LinearLR(optimizer, start_factor=0.25, total_iters=3),
            schedulers.CosineAnnealingLR(optimizer, T_max=6, eta_min=0.0)]


@pytest.mark.parametrize("stop", [1, 3, 6, 7, 11])
def test_chained_schedulers_resume_mid_schedule_through_a_checkpoint(tmp_path, stop):
    straight = _optimizer(0.5)
    expected = _step_all(straight, _warmup_cosine(straight), 20)
    first = _optimizer(0.5)
    made = _warmup_cosine(first)
    _step_all(first, made, stop)
    autonet.save({"optimizer": first.state_dict(), "schedulers": [s.state_dict() for s in made]},
                 tmp_path / "resume.npz")
    checkpoint = autonet.load(tmp_path / "resume.npz")
    resumed = _optimizer(0.5)
    again = _warmup_cosine(resumed)                       # PyTorch's order: make, then load
    resumed.load_state_dict(checkpoint["optimizer"])
    for scheduler, state in zip(again, checkpoint["schedulers"]):
        scheduler.load_state_dict(state)
    assert _step_all(resumed, again, 20 - stop) == expected[stop:]   # bit for bit


def test_an_optimizer_loaded_before_its_scheduler_is_made_keeps_the_saved_initial_lr():
    first = _optimizer(0.8)
    schedulers.ExponentialLR(first, gamma=0.5)
    _step_all(first, [], 0)
    state = first.state_dict()
    assert state["param_groups"][0]["initial_lr"] == 0.8
    resumed = _optimizer(0.1)                             # no scheduler yet: no initial_lr
    resumed.load_state_dict(state)
    assert resumed.param_groups[0]["initial_lr"] == 0.8
    assert schedulers.LambdaLR(resumed, lambda epoch: 1.0).base_lrs == [0.8]   # setdefault, as PyTorch


def test_lambda_then_warmup_multiplies_by_the_warmups_ratio_each_step():
    # PyTorch: LambdaLR sets initial * lambda(t), then LinearLR multiplies by f(t) / f(t - 1)
    optimizer = _optimizer(2.0)
    made = [schedulers.LambdaLR(optimizer, lambda epoch: 0.5 ** epoch),
            schedulers.LinearLR(optimizer, start_factor=0.2, total_iters=4)]
    rates = [optimizer.param_groups[0]["lr"]] + _step_all(optimizer, made, 8)
    f = lambda t: 0.2 + 0.8 * min(t, 4) / 4  # noqa: E731 - the warmup's closed form
    expected = [2.0 * 0.2] + [2.0 * 0.5 ** t * f(t) / f(t - 1) for t in range(1, 9)]
    np.testing.assert_allclose(rates, expected, rtol=1e-13)


def test_step_and_exponential_chain_multiply():
    optimizer = _optimizer(0.3)
    made = [schedulers.StepLR(optimizer, step_size=3, gamma=0.5),
            schedulers.ExponentialLR(optimizer, gamma=0.9)]
    rates = _step_all(optimizer, made, 10)
    t = np.arange(1, 11)
    np.testing.assert_allclose(rates, 0.3 * 0.5 ** (t // 3) * 0.9 ** t, rtol=1e-13)


def test_cosine_with_one_step_periods_alternates_between_the_bounds():
    optimizer = _optimizer(0.7)
    made = [schedulers.CosineAnnealingLR(optimizer, T_max=1, eta_min=0.1)]
    rates = _step_all(optimizer, made, 6)
    t = np.arange(1, 7)
    np.testing.assert_allclose(rates, 0.1 + 0.6 * (1 + np.cos(np.pi * t)) / 2, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("make", [lambda o: schedulers.CosineAnnealingLR(o, T_max=0),
                                  lambda o: schedulers.StepLR(o, step_size=1.5),
                                  lambda o: schedulers.LinearLR(o, start_factor=0.0),
                                  lambda o: schedulers.LinearLR(o, end_factor=1.5),
                                  lambda o: schedulers.LambdaLR(o, [lambda e: 1.0] * 2)],
                         ids=["T_max=0", "float step_size", "start_factor=0", "end_factor>1", "2 lambdas"])
def test_degenerate_scheduler_settings_are_refused_and_leave_the_rate(make):
    optimizer = _optimizer(0.4)
    with pytest.raises(ValueError):
        make(optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.4


@pytest.mark.parametrize("bad", [math.nan, -1.0])
def test_a_saved_initial_lr_that_is_no_rate_is_refused(bad):
    optimizer = _optimizer(0.4)
    schedulers.ExponentialLR(optimizer, gamma=0.9)
    state = optimizer.state_dict()
    state["param_groups"][0]["initial_lr"] = bad
    with pytest.raises(ValueError, match="initial_lr"):
        optimizer.load_state_dict(state)
    assert optimizer.param_groups[0]["initial_lr"] == 0.4


# ----------------------------------------------------------------- clipping
def _grads(*arrays):
    params = [Tensor(np.zeros(np.shape(a), dtype=np.asarray(a).dtype), requires_grad=True) for a in arrays]
    for p, a in zip(params, arrays):
        p.grad = here(np.array(a))
    return params


def test_clipping_nothing_returns_zero_and_changes_nothing():
    assert nn.utils.clip_grad_norm_([], 1.0) == 0.0
    bare = Tensor([1.0], requires_grad=True)
    assert nn.utils.clip_grad_norm_([bare], 1.0) == 0.0 and bare.grad is None


def test_mixed_dtype_gradients_clip_jointly_and_keep_their_dtypes():
    params = _grads(np.array([3.0], dtype=np.float32), np.array([4.0]))
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert total == 5.0
    assert params[0].grad.dtype == np.float32 and params[1].grad.dtype == np.float64
    np.testing.assert_allclose(devices.to_host(params[1].grad), [4.0 / (5.0 + 1e-6)])


@pytest.mark.parametrize("norm_type", [2.0, math.inf, -math.inf])
def test_a_nan_gradient_makes_a_nan_norm_that_error_if_nonfinite_refuses(norm_type):
    params = _grads(np.array([1.0, math.nan]), np.array([2.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    np.testing.assert_array_equal(devices.to_host(params[1].grad), [2.0])


def test_the_minus_inf_norm_of_an_empty_gradient_is_refused():
    params = _grads(np.zeros(0), np.array([2.0]))
    with pytest.raises(ValueError, match="-inf norm"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type=-math.inf)
    assert nn.utils.clip_grad_norm_(params, 10.0, norm_type=math.inf) == 2.0   # max over nothing is 0


def test_max_norm_zero_zeroes_the_gradients():
    params = _grads(np.array([3.0, 4.0]))
    assert nn.utils.clip_grad_norm_(params, 0.0) == 5.0
    np.testing.assert_array_equal(devices.to_host(params[0].grad), [0.0, 0.0])


def test_clip_grad_value_refuses_a_negative_bound():
    params = _grads(np.array([3.0, -4.0]))
    with pytest.raises(ValueError, match="clip_value"):
        nn.utils.clip_grad_value_(params, -1.0)
    np.testing.assert_array_equal(devices.to_host(params[0].grad), [3.0, -4.0])


# ----------------------------------------------------------------- DataLoader
def test_an_empty_dataset_yields_no_batch():
    loader = DataLoader(np.zeros((0, 3)), np.zeros(0), batch_size=4, shuffle=True, rng=0)
    assert len(loader) == 0 and list(loader) == []


def test_drop_last_with_fewer_rows_than_a_batch_yields_nothing():
    loader = DataLoader(np.arange(3.0), batch_size=4, drop_last=True)
    assert len(loader) == 0 and list(loader) == []
    assert [b[0].tolist() for b in DataLoader(np.arange(3.0), batch_size=4)] == [[0.0, 1.0, 2.0]]


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, None])
def test_batch_sizes_that_are_not_positive_ints_are_refused(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.arange(3.0), batch_size=batch_size)


def test_a_zero_dimensional_array_is_refused():
    with pytest.raises(ValueError, match="first axes"):
        DataLoader(np.float64(3.0))


def test_a_seeded_shuffle_repeats_and_covers_every_row_once_per_pass():
    X = np.arange(10.0)
    first, second = (np.concatenate([b for (b,) in DataLoader(X, batch_size=3, shuffle=True, rng=7)])
                     for _ in range(2))
    np.testing.assert_array_equal(first, second)
    assert sorted(first.tolist()) == X.tolist()


# ----------------------------------------------------------------- optimizer state_dict
@pytest.mark.host_only("compares dtypes of state made on the host")
def test_float64_state_loaded_into_float32_parameters_is_cast_down():
    source = Tensor(np.ones(3), requires_grad=True)
    adam = Adam([source], lr=0.1)
    source.grad = np.array([0.1, 0.2, 0.3])
    adam.step()
    target = Tensor(np.ones(3, dtype=np.float32), requires_grad=True, dtype=np.float32)
    other = Adam([target], lr=0.1)
    other.load_state_dict(adam.state_dict())
    assert other.state[target]["exp_avg"].dtype == np.float32
    np.testing.assert_array_equal(other.state[target]["exp_avg"],
                                  adam.state[source]["exp_avg"].astype(np.float32))


@pytest.mark.parametrize("key", [5, -1, "zero"])
def test_state_for_a_parameter_that_does_not_exist_is_refused(key):
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9)
    state = optimizer.state_dict()
    state["state"] = {key: {"momentum_buffer": np.zeros(1)}}
    with pytest.raises(ValueError, match="parameter index"):
        optimizer.load_state_dict(state)
    assert optimizer.state == {}


@pytest.mark.parametrize("make, setting, value", [
    (lambda p: Adam(p), "eps", math.nan), (lambda p: Adam(p), "weight_decay", math.nan),
    (lambda p: Adam(p), "betas", (math.nan, 0.999)), (lambda p: AdamW(p), "lr", math.nan),
    (lambda p: SGD(p, lr=0.1, momentum=0.9), "momentum", math.nan),
    (lambda p: SGD(p, lr=0.1), "weight_decay", math.nan), (lambda p: SGD(p, lr=0.1), "lr", math.nan)],
    ids=["adam-eps", "adam-wd", "adam-betas", "adamw-lr", "sgd-momentum", "sgd-wd", "sgd-lr"])
def test_nan_and_inf_hyper_parameters_are_refused_at_construction_and_on_load(make, setting, value):
    optimizer = make([Tensor([1.0], requires_grad=True)])
    state = optimizer.state_dict()
    before = dict(optimizer.param_groups[0])
    state["param_groups"][0][setting] = value
    with pytest.raises(ValueError):
        optimizer.load_state_dict(state)
    assert optimizer.param_groups[0] == before
    group = {k: v for k, v in before.items() if k != "params"}
    with pytest.raises(ValueError):
        type(optimizer)([Tensor([1.0], requires_grad=True)], **{**group, setting: value})


def test_a_loaded_integer_step_counts_on_as_pytorch_keeps_it():
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(2) for _ in range(3)]
    w = Tensor(np.ones(2), requires_grad=True)
    adam = Adam([w], lr=0.1)
    for g in grads[:2]:
        w.grad = here(g)
        adam.step()
    state = adam.state_dict()
    state["state"][0]["step"] = np.array(2)              # an int counter, as another tool may save it
    twin = Tensor(w.data.copy(), requires_grad=True)
    other = Adam([twin], lr=0.1)
    other.load_state_dict(state)
    w.grad, twin.grad = here(grads[2]), here(grads[2].copy())
    adam.step()
    other.step()
    np.testing.assert_array_equal(devices.to_host(twin.data), devices.to_host(w.data))


# ----------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("array", [np.zeros((0, 3), dtype=np.float32), np.array(7, dtype=np.int8),
                                   np.array([np.nan, -0.0, np.inf, -np.inf]), np.ones((2, 3), order="F"),
                                   np.arange(12.0).reshape(3, 4)[:, ::2], np.array([True, False]),
                                   np.array([2 ** 63 + 1], dtype=np.uint64), np.ones(2, dtype=np.float16)],
                         ids=["empty", "0-d int8", "nan-inf-negzero", "fortran", "strided", "bool",
                              "uint64", "float16"])
def test_arrays_round_trip_bit_for_bit(tmp_path, array):
    autonet.save({"a": array}, tmp_path / "a.npz")
    loaded = autonet.load(tmp_path / "a.npz")["a"]
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    assert loaded.tobytes() == np.ascontiguousarray(array).tobytes()


def test_plain_values_round_trip_exactly(tmp_path):
    state = {"nan": math.nan, "negzero": -0.0, "inf": -math.inf, "big": 2 ** 70, 2 ** 70: "key",
             -3: None, "text": "a\x00b\n/é", "empty": {}, "nested": [(), [], {"": 1}]}
    autonet.save(state, tmp_path / "plain.npz")
    loaded = autonet.load(tmp_path / "plain.npz")
    assert math.isnan(loaded["nan"]) and math.copysign(1.0, loaded["negzero"]) == -1.0
    assert loaded["inf"] == -math.inf and loaded["big"] == 2 ** 70 and loaded[2 ** 70] == "key"
    assert loaded[-3] is None and loaded["text"] == state["text"] and loaded["empty"] == {}
    assert loaded["nested"] == [(), [], {"": 1}]


def test_an_empty_dict_saves_and_loads(tmp_path):
    autonet.save({}, tmp_path / "empty.npz")
    assert autonet.load(tmp_path / "empty.npz") == {}
    with np.load(tmp_path / "empty.npz") as archive:
        assert archive.files == ["autonet"]


def _crafted(path, manifest, members=()):
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("autonet.npy", "w") as member:
            np.lib.format.write_array(member, manifest)
        for name, array in members:
            with archive.open(name, "w") as member:
                np.lib.format.write_array(member, array)
    return path


@pytest.mark.parametrize("manifest, message", [
    (np.array(['{"format": 2, "tree": {"dict": []}}'] * 2), "one string"),
    (np.arange(3), "holds int64"),
    (np.array('{"format": 3, "tree": {"dict": []}}'), "format 3"),
    (np.array("not json"), "not valid JSON"),
    (np.array('{"format": 2, "tree": {"dict": [[{"str": "w"}, {"array": "../../etc/passwd"}]]}}'),
     "does not hold"),
    (np.array('{"format": 2, "tree": {"dict": [[{"str": "w"}, {"array": 0}]]}}'), "does not hold"),
    (np.array('{"format": 2, "tree": {"dict": [[{"str": "w"}, {"float": "1.5"}]]}}'), "'float' entry"),
    (np.array('{"format": 2, "tree": {"dict": [[{"str": "w"}]]}}'), "malformed dict entry"),
], ids=["two strings", "int manifest", "future format", "not json", "traversal name", "int reference",
        "string float", "short pair"])
def test_crafted_manifests_are_refused_saying_what(tmp_path, manifest, message):
    path = _crafted(tmp_path / "crafted.npz", manifest, [("w.npy", np.ones(2))])
    with pytest.raises(ValueError, match=message):
        autonet.load(path)


def test_a_failed_save_into_a_directory_leaves_no_temporary(tmp_path):
    (tmp_path / "taken.npz").mkdir()
    with pytest.raises(OSError):
        autonet.save({"w": np.ones(2)}, tmp_path / "taken.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.npz"]


def test_a_cut_archive_is_refused(tmp_path):
    autonet.save({"w": np.arange(1000.0)}, tmp_path / "whole.npz")
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not an .npz archive|truncated or corrupt"):
        autonet.load(tmp_path / "cut.npz")


def test_the_manifest_is_readable_json_naming_every_member(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1))
    autonet.save({"model": model.state_dict(), "step": 12}, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as archive:
        tree = json.loads(str(archive["autonet"]))["tree"]
        names = set(archive.files) - {"autonet"}
    referenced = {entry[1]["array"][:-4] for entry in tree["dict"][0][1]["dict"]}
    assert referenced == names == {f"model/{key}" for key in model.state_dict()}


# ----------------------------------------------------------------- module bookkeeping
def test_a_parameter_replaces_a_buffer_as_in_pytorch():
    module = nn.Module()
    module.register_buffer("scale", np.ones(2))
    module.scale = nn.Parameter(np.ones(2))
    assert [n for n, _ in module.named_parameters()] == ["scale"]
    assert list(module.named_buffers()) == []


def test_a_buffer_takes_a_tensor_or_none_only():
    module = nn.Module()
    module.register_buffer("count", np.zeros(1))
    with pytest.raises(TypeError, match="buffer 'count'"):
        module.count = np.ones(1)
    module.count = None
    assert list(module.state_dict()) == []
    module.count = Tensor([3.0])
    assert list(module.state_dict()) == ["count"]


def test_a_module_cannot_contain_itself():
    outer = nn.Sequential(nn.Linear(2, 2, rng=0))
    with pytest.raises(ValueError, match="contain itself"):
        outer.loop = outer
    with pytest.raises(ValueError, match="contain itself"):
        outer[0].back = outer
    assert [name for name, _ in outer.named_modules()] == ["", "0"]


def test_train_and_eval_reach_a_module_registered_twice_once_and_all_others():
    shared = nn.Dropout(0.5)
    model = nn.Sequential(shared, nn.Sequential(shared, nn.Linear(2, 2, rng=0)))
    model.eval()
    assert all(not m.training for m in [model, shared, model[1], model[1][1]])
    model.train(True)
    assert all(m.training for m in [model, shared, model[1], model[1][1]])


def test_load_state_dict_refuses_strings_and_copies_nan_as_pytorch():
    layer = nn.Linear(2, 2, rng=0)
    before = {k: v.copy() for k, v in layer.state_dict().items()}
    bad = dict(before, weight=np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(TypeError, match="weight"):
        layer.load_state_dict(bad)
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    nan_weights = dict(before, weight=np.full((2, 2), math.nan))   # PyTorch copies NaN as it is
    layer.load_state_dict(nan_weights)
    assert np.isnan(layer.state_dict()["weight"]).all()


def test_state_dict_keys_are_pytorchs_for_a_small_cnn():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2, 1, rng=1))
    assert list(model.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked", "4.weight", "4.bias"]


def test_saving_a_module_state_with_a_shared_layer_round_trips(tmp_path):
    shared = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    autonet.save({"model": model.state_dict()}, tmp_path / "shared.npz")
    fresh_shared = nn.Linear(2, 2, rng=5)
    fresh = nn.Sequential(fresh_shared, nn.Tanh(), fresh_shared)
    fresh.load_state_dict(autonet.load(tmp_path / "shared.npz")["model"])
    np.testing.assert_array_equal(devices.to_host(fresh_shared.weight.data),
                                  devices.to_host(shared.weight.data))
