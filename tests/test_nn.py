"""nn: Module discovery and naming, Linear, activations, init, state dicts, modules' bookkeeping."""
import math

import numpy as np
import pytest
from hypothesis import given

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.core import device as devices
from autonet.testing import assert_gradients_match, tensors


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(1))
        self.hidden = nn.Linear(3, 4, rng=0)
        self.blocks = [nn.Linear(4, 4, rng=1), nn.Linear(4, 2, bias=False, rng=2)]
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(2, 1, rng=3))

    def forward(self, x):
        x = self.hidden(x).sigmoid()
        for block in self.blocks:
            x = block(x)
        return self.head(x) * self.scale


def test_parameters_are_found_in_assignment_order_own_first_with_dotted_names():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["scale", "hidden.weight", "hidden.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.weight", "head.1.weight", "head.1.bias"]
    assert [p.name for p in net.parameters()] == names
    assert iter(net.parameters()) is not None and not isinstance(net.parameters(), list)


def test_children_and_modules():
    net = Net()
    assert [type(c).__name__ for c in net.children()] == ["Linear", "Linear", "Linear", "Sequential"]
    modules = list(net.modules())
    assert modules[0] is net and len(modules) == 7
    assert [name for name, _ in net.named_modules()][:3] == ["", "hidden", "blocks.0"]


def test_shared_parameter_is_listed_once():
    shared = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    assert len(list(model.parameters())) == 2


def test_forgetting_super_init_is_explained():
    class Forgetful(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Forgetful()


def test_train_eval_zero_grad_and_repr():
    net = Net()
    assert net.training is True
    assert net.eval() is net and not any(m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    net(autonet.Tensor(np.ones((2, 3)))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    text = repr(net)
    assert "(hidden): Linear(3 -> 4)" in text and "(blocks.1): Linear(4 -> 2, bias=False)" in text
    assert "(head): Sequential(\n    (0): Tanh()\n    (1): Linear(2 -> 1)\n  )" in text


def test_linear_layout_init_and_seed():
    layer = nn.Linear(5, 3, rng=7)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)   # PyTorch's (out, in)
    bound = 1 / math.sqrt(5)
    assert np.all(np.abs(layer.weight.data) <= bound) and np.all(np.abs(layer.bias.data) <= bound)
    np.testing.assert_array_equal(nn.Linear(5, 3, rng=7).weight.data, layer.weight.data)
    assert not np.array_equal(nn.Linear(5, 3).weight.data, nn.Linear(5, 3).weight.data)
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data.T + layer.bias.data)
    assert layer(x).grad_fn.name == "linear"


@given(x=tensors(shape=(4, 3)), w=tensors(shape=(2, 3)), b=tensors(shape=(2,)), upstream=tensors(shape=(4, 2)))
def test_linear_gradients_closed_form(x, w, b, upstream):
    nn.functional.linear(x, w, b).backward(upstream.data)   # x @ w.T + b, w of shape (out, in)
    np.testing.assert_allclose(w.grad, upstream.data.T @ x.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad, upstream.data.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad, upstream.data @ w.data, rtol=1e-12, atol=1e-12)
    assert_gradients_match(nn.functional.linear, x, w, b)


@pytest.mark.parametrize("module, function", [
    (nn.Sigmoid(), autonet.sigmoid), (nn.Tanh(), autonet.tanh), (nn.ReLU(), autonet.relu),
    (nn.Softmax(axis=0), lambda t: autonet.softmax(t, axis=0))])
def test_activation_modules_match_functions(module, function):
    x = autonet.Tensor(np.linspace(-2, 2, 6).reshape(3, 2))
    np.testing.assert_array_equal(module(x).data, function(x).data)


def test_sequential_indexing_and_type_check():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    assert len(model) == 2 and isinstance(model[1], nn.ReLU) and [type(m) for m in model][0] is nn.Linear
    with pytest.raises(TypeError):
        nn.Sequential(nn.Linear(2, 2), lambda x: x)


def test_init_functions():
    t = nn.Parameter(np.empty((40, 60)))
    assert nn.init.uniform_(t, -0.5, 0.5, rng=0) is t and np.all(np.abs(t.data) <= 0.5)
    nn.init.normal_(t, 2.0, 0.1, rng=0)
    assert abs(t.data.mean() - 2.0) < 0.01 and abs(t.data.std() - 0.1) < 0.01
    nn.init.xavier_uniform_(t, gain=2.0, rng=0)
    assert np.abs(t.data).max() <= 2.0 * math.sqrt(6 / 100) and np.abs(t.data).max() > 0.9 * 2.0 * math.sqrt(6 / 100)
    nn.init.kaiming_uniform_(t, nonlinearity="relu", rng=0)
    assert np.abs(t.data).max() <= math.sqrt(2) * math.sqrt(3 / 40)
    nn.init.kaiming_uniform_(t, a=math.sqrt(5), rng=0)
    assert np.abs(t.data).max() <= 1 / math.sqrt(40)
    assert nn.init.zeros_(t) is t and not t.data.any()
    with pytest.raises(ValueError):
        nn.init.xavier_uniform_(nn.Parameter(np.empty(3)))


def test_init_takes_pytorchs_other_gains_and_leaves_empty_weights_alone():
    """PyTorch's calculate_gain: 1 for every convolution name, 3/4 for selu (autonet raised
    'unknown nonlinearity'); a weight with no elements is left as it is (it raised
    ZeroDivisionError: its fan-in is 0)."""
    t = nn.Parameter(np.empty((30, 20, 3)))
    for name, gain in (("conv1d", 1.0), ("conv_transpose2d", 1.0), ("selu", 0.75)):
        nn.init.kaiming_uniform_(t, nonlinearity=name, rng=0)
        bound = gain * math.sqrt(3 / 60)
        assert bound * 0.95 < np.abs(t.data).max() <= bound
    for empty in ((3, 0), (0, 0), (0, 4, 3)):
        weight = nn.Parameter(np.empty(empty))
        assert nn.init.kaiming_uniform_(weight) is weight and nn.init.xavier_uniform_(weight) is weight


def test_state_dict_round_trip_and_copies():
    a, b = Net(), Net()
    for p in b.parameters():
        p.data += 1.0
    state = a.state_dict()
    assert list(state) == [name for name, _ in a.named_parameters()]
    state["scale"][0] = 42.0
    assert a.scale.data[0] == 1.0
    b.load_state_dict(a.state_dict())
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def _snapshot(module):
    return {k: v.copy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("damage, error, match", [
    (lambda s: s.pop("hidden.bias"), KeyError, "hidden.bias"),
    (lambda s: s.update(extra=np.ones(1)), KeyError, "extra"),
    (lambda s: s.update({"blocks.0.weight": np.ones((4, 5))}), ValueError, r"blocks.0.weight.*\(4, 5\).*\(4, 4\)"),
])
def test_rejected_state_dict_leaves_the_module_unchanged(damage, error, match):
    target = Net()
    before = _snapshot(target)
    state = {k: v + 5.0 for k, v in Net().state_dict().items()}
    damage(state)
    with pytest.raises(error, match=match):
        target.load_state_dict(state)
    for name, value in target.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_non_strict_load_reports_keys():
    target = Net()
    result = target.load_state_dict({"scale": np.array([3.0]), "other": np.ones(2)}, strict=False)
    assert target.scale.data[0] == 3.0
    assert result.unexpected_keys == ["other"] and "hidden.weight" in result.missing_keys


def test_save_and_load(tmp_path):
    net = Net()
    path = tmp_path / "weights.bin"
    autonet.save(net.state_dict(), path)
    assert path.exists() and not (tmp_path / "weights.bin.npz").exists()
    loaded = autonet.load(path)
    assert isinstance(loaded, dict) and all(isinstance(v, np.ndarray) for v in loaded.values())
    fresh = Net()
    for p in fresh.parameters():
        p.data *= 0
    fresh.load_state_dict(loaded)
    for p, q in zip(net.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_refuses_object_arrays_and_save_refuses_them(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, weight=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="weight"):
        autonet.load(path)
    with pytest.raises(TypeError):
        autonet.save({"weight": np.array(["text"])}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


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


def test_a_batchnorm_state_without_its_batch_count_loads_and_keeps_the_count():
    """PyTorch loads a dict without version metadata (an older checkpoint, one passed through
    safetensors) that lacks num_batches_tracked, keeping the module's count (5 here, as
    PyTorch 2.13 does); every other missing key is still refused."""
    def trained(steps):
        model = nn.Sequential(nn.Linear(2, 2, rng=0), nn.BatchNorm1d(2))
        for seed in range(steps):
            model(Tensor(np.random.default_rng(seed).normal(size=(4, 2))))
        return model

    saved = trained(3).state_dict()
    del saved["1.num_batches_tracked"]
    model = trained(5)
    result = model.load_state_dict(saved)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert int(model[1].num_batches_tracked) == 5
    np.testing.assert_array_equal(model[1].running_mean.data, saved["1.running_mean"])
    del saved["1.running_mean"]
    with pytest.raises(KeyError, match=r"missing keys \['1.running_mean'\]"):
        model.load_state_dict(saved)


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


def test_dicts_and_sets_of_modules_are_refused_with_the_container_to_use():
    class Holder(nn.Module):
        """A module with no layers of its own."""

    holder = Holder()
    with pytest.raises(TypeError, match="ModuleDict"):
        holder.blocks = {"a": nn.Linear(2, 2, rng=0)}
    with pytest.raises(TypeError, match="ModuleDict"):
        holder.weights = {nn.Parameter(np.ones(2))}
    holder.settings = {"depth": 2}                 # a plain dict of settings is fine
    assert list(holder.parameters()) == []


def test_underscore_attributes_register_like_any_other():
    class Private(nn.Module):
        def __init__(self):
            super().__init__()
            self._scale = nn.Parameter(np.ones(2))
            self._inner = nn.Linear(2, 1, rng=0)

    model = Private()
    assert [name for name, _ in model.named_parameters()] == [
        "_scale", "_inner.weight", "_inner.bias"]
    assert set(model.state_dict()) == {"_scale", "_inner.weight", "_inner.bias"}
    assert model._inner.weight.name == "_inner.weight" and "(_inner): Linear" in repr(model)


def test_module_list_and_module_dict_register_their_modules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3, rng=i) for i in range(2)])
            self.layers.append(nn.Tanh())
            self.heads = nn.ModuleDict({"a": nn.Linear(3, 1, rng=5)})
            self.heads["b"] = nn.Linear(3, 2, rng=6)

    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                     "heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias"]
    assert len(net.layers) == 3 and isinstance(net.layers[-1], nn.Tanh)
    assert len(net.layers[:2]) == 2 and [type(m) for m in net.layers][2] is nn.Tanh
    assert list(net.heads) == ["a", "b"] and "b" in net.heads and net.heads["b"].out_features == 2
    with pytest.raises(KeyError):
        net.heads["a.b"] = nn.Tanh()
    with pytest.raises(TypeError):
        net.layers.append(lambda x: x)
    x = Tensor(np.ones((4, 3)))
    out = net.heads["a"](net.layers[1](net.layers[0](x)).tanh())
    out.sum().backward()
    assert net.layers[0].weight.grad is not None and net.heads["b"].weight.grad is None


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
