"""Optimizers' state_dict and load_state_dict: PyTorch's rules for dtypes, steps and hyper-parameters, and refusals that leave the optimizer unchanged."""
import math

import numpy as np
import pytest

from autonet import Tensor
from autonet.core import device as devices
from autonet.optim import Adam, AdamW, RMSprop, SGD

from device_double import here


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


@pytest.mark.parametrize("make, saved, loaded", [
    (Adam, dict(lr=0.1, amsgrad=True), dict(lr=0.1)), (Adam, dict(lr=0.1), dict(lr=0.1, amsgrad=True)),
    (RMSprop, dict(lr=0.1, momentum=0.9, centered=True), dict(lr=0.1))], ids=["amsgrad", "plain", "rmsprop"])
def test_a_state_dict_loads_into_an_optimizer_made_with_other_settings(make, saved, loaded):
    """As PyTorch, load_state_dict takes the saved settings with the saved state: the state is
    checked against the saved settings, not the loading optimizer's (amsgrad's state was
    refused), and training goes on exactly as the saved optimizer's."""
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal(3) for _ in range(6)]
    source = Tensor(np.ones(3), requires_grad=True)
    original = make([source], **saved)
    for g in grads[:3]:
        source.grad = here(g)
        original.step()
    target = Tensor(devices.to_host(source.data), requires_grad=True)
    resumed = make([target], **loaded)
    resumed.load_state_dict(original.state_dict())
    assert {k: v for k, v in resumed.param_groups[0].items() if k != "params"} == \
        {k: v for k, v in original.param_groups[0].items() if k != "params"}
    for g in grads[3:]:
        source.grad, target.grad = here(g), here(g)
        original.step()
        resumed.step()
    np.testing.assert_array_equal(devices.to_host(target.data), devices.to_host(source.data))


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


def test_sgd_momentum_with_weight_decay_updates_a_0d_parameter_like_a_1d_one():
    scalar = Tensor(1.5, requires_grad=True)
    vector = Tensor([1.5], requires_grad=True)
    optimizers = [SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1) for p in (scalar, vector)]
    for _ in range(20):
        for p, optimizer in zip((scalar, vector), optimizers):
            optimizer.zero_grad()
            ((p - 3.0) ** 2).sum().backward()
            optimizer.step()
    assert scalar.data.item() == vector.data.item()
    buffer = optimizers[0].state_dict()["state"][0]["momentum_buffer"]
    assert buffer.item() == optimizers[1].state_dict()["state"][0]["momentum_buffer"].item() != 0.0


def test_optimizer_state_dict_lists_no_entry_for_a_parameter_without_state():
    used, unused = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    optimizer = SGD([used, unused], lr=0.1)
    (used * 2).sum().backward()
    optimizer.step()                              # plain SGD keeps no state at all
    assert optimizer.state_dict()["state"] == {}


def _trained(optimizer_class, **settings):
    w = Tensor([1.0, -2.0], requires_grad=True)
    optimizer = optimizer_class([w], lr=0.1, **settings)
    for _ in range(2):
        optimizer.zero_grad()
        (w * w).sum().backward()
        optimizer.step()
    return optimizer


@pytest.mark.parametrize("corrupt, message", [
    (lambda s: s["state"][0].pop("exp_avg_sq"), "keeps"),                           # incomplete
    (lambda s: s["state"].__setitem__(0, {"momentum_buffer": np.zeros(2)}), "keeps"),  # SGD's
    (lambda s: s["param_groups"][0].__setitem__("lr", -5), "learning rate"),
    (lambda s: s["param_groups"][0].__setitem__("betas", (1.5, 0.999)), "betas"),
    (lambda s: s["param_groups"][0].__setitem__("momentum", 0.9), "takes"),
    (lambda s: s["state"][0].__setitem__("exp_avg", np.zeros(3)), "shape"),
])
def test_optimizer_load_state_dict_checks_everything_before_changing_anything(corrupt, message):
    from autonet.optim import Adam
    optimizer = _trained(Adam)
    before = optimizer.state_dict()
    broken = optimizer.state_dict()
    corrupt(broken)
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(broken)
    after = optimizer.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for name, value in before["state"][0].items():
        np.testing.assert_array_equal(after["state"][0][name], value)


def test_sgd_state_into_adam_and_back_is_refused_but_a_round_trip_works():
    from autonet.optim import Adam
    sgd, adam = _trained(SGD, momentum=0.9), _trained(Adam)
    with pytest.raises(ValueError, match="Adam takes"):   # its settings differ first
        adam.load_state_dict(sgd.state_dict())
    fresh = _trained(Adam)
    fresh.load_state_dict(adam.state_dict())
    np.testing.assert_array_equal(fresh.state_dict()["state"][0]["exp_avg"],
                                  adam.state_dict()["state"][0]["exp_avg"])


# ----------------------------------------------------------------- optimizer state
def _adam_after(steps, start, grads):
    w = Tensor(start.copy(), requires_grad=True)
    optimizer = Adam([w], lr=0.01)
    for g in grads[:steps]:
        w.grad = g.copy()
        optimizer.step()
    return w, optimizer


@pytest.mark.host_only("host gradients set on device parameters: refused on a device")
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


@pytest.mark.host_only("host gradients set on device parameters: refused on a device")
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
