"""Numeric edges and errors from the hardening review, each against NumPy, PyTorch's rule, or a twin."""
import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.optim import SGD
from device_double import here


def test_float16_mean_accumulates_as_numpy_does():
    data = np.full((5000, 20), 20.0, dtype=np.float16)   # the float16 sum overflows
    mean = Tensor(data).mean()
    assert mean.dtype == np.float16 and mean.item() == np.mean(data) == 20.0
    np.testing.assert_array_equal(Tensor(data).mean(axis=0).data, np.mean(data, axis=0))


def test_pow_gradients_at_zero_are_pytorchs_zeros_without_warnings():
    p = Tensor(2.0, requires_grad=True)
    (Tensor(0.0) ** p).backward()                 # d 0**p / dp, log(0) masked
    x = Tensor([0.0, 2.0], requires_grad=True)
    (x ** Tensor([0.0, 3.0])).sum().backward()    # d x**0 / dx = 0 even at x = 0
    assert p.grad == 0.0 and x.grad.tolist() == [0.0, 12.0]
    q = Tensor([0.5, 2.0], requires_grad=True)     # away from 0: the usual derivatives
    assert autonet.gradcheck(lambda a, b: a ** b, [Tensor([0.7, 1.5], requires_grad=True), q])


def test_bce_gradient_follows_pytorch_at_saturation_and_inside():
    p = Tensor([0.0, 1.0, 0.3], requires_grad=True)
    target = np.array([1.0, 0.0, 1.0])
    loss = nn.functional.binary_cross_entropy(p, target, reduction="sum")
    np.testing.assert_allclose(loss.item(), 100.0 + 100.0 - np.log(0.3))
    loss.backward()
    expected = (p.data - target) / np.maximum(p.data * (1 - p.data), 1e-12)   # PyTorch's formula
    np.testing.assert_array_equal(p.grad, expected)
    assert p.grad[0] == -1e12 and p.grad[1] == 1e12
    inside = Tensor([0.2, 0.6], requires_grad=True)
    soft_target = Tensor([0.3, 0.9], requires_grad=True)
    assert autonet.gradcheck(lambda a, t: nn.functional.binary_cross_entropy(a, t), [inside, soft_target])
    assert autonet.gradgradcheck(lambda a: nn.functional.binary_cross_entropy(a, [0.0, 1.0]), inside)


def test_var_with_ddof_at_or_beyond_the_count_is_infinite_and_so_is_its_gradient():
    for ddof in (2, 3):
        x = Tensor([1.0, 2.0], requires_grad=True)
        with np.errstate(divide="ignore"), pytest.warns(RuntimeWarning, match="Degrees of freedom"):
            value = x.var(ddof=ddof)
            expected = np.var(x.data, ddof=ddof)   # NumPy warns the same way
        assert value.item() == expected == np.inf
        with np.errstate(all="ignore"):
            value.backward()
        assert not np.isfinite(x.grad).any()      # no ZeroDivisionError, no finite lie


def test_assigning_a_value_with_extra_leading_size_one_axes():
    w = Tensor([1.0, 2.0], requires_grad=True) * 1.0
    y = Tensor([[5.0]], requires_grad=True)
    w[0:1] = y
    (w * Tensor([3.0, 1.0])).sum().backward()
    assert y.grad.shape == (1, 1) and y.grad.tolist() == [[3.0]]


def test_empty_axes_and_indices_behave_as_in_numpy():
    empty = Tensor(np.zeros((2, 0)), requires_grad=True)
    assert empty.softmax(axis=1).shape == empty.log_softmax(axis=1).shape == (2, 0)
    empty.softmax(axis=1).sum().backward()
    assert empty.grad.shape == (2, 0)
    t = Tensor([1.0, 2.0])
    assert t[[]].shape == np.array([1.0, 2.0])[[]].shape == (0,)
    parts = [Tensor([[1.0, 2.0]], requires_grad=True), Tensor([3.0], requires_grad=True)]
    joined = autonet.concatenate(parts, axis=None)
    np.testing.assert_array_equal(joined.data, np.concatenate([p.data for p in parts], axis=None))
    (joined * Tensor([1.0, 2.0, 3.0])).sum().backward()
    assert parts[0].grad.tolist() == [[1.0, 2.0]] and parts[1].grad.tolist() == [3.0]


def test_bad_axes_and_shapes_are_clear_errors():
    t = Tensor(np.ones((2, 3)))
    with pytest.raises(np.exceptions.AxisError):
        t.swapaxes(0, 3)
    with pytest.raises(TypeError):
        t.sum(axis=1.5)              # NumPy refuses a float axis too
    with pytest.raises(TypeError, match="needs a shape"):
        t.reshape()


def test_clip_with_tensor_bounds_passes_gradients_to_the_bounds():
    x = Tensor([-2.0, 0.5, 3.0, 1.0], requires_grad=True)
    lo = Tensor([-1.0, -1.0, -1.0, 1.0], requires_grad=True)
    hi = Tensor(2.0, requires_grad=True)
    out = x.clip(lo, hi)
    np.testing.assert_array_equal(out.data, np.clip(x.data, lo.data, hi.data))
    out.sum().backward()
    # PyTorch's clamp: x where lo <= x <= hi (closed), a bound where it was chosen
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert lo.grad.tolist() == [1.0, 0.0, 0.0, 0.0] and hi.grad == 1.0
    away = Tensor([-2.0, 0.5, 3.0], requires_grad=True)
    assert autonet.gradcheck(lambda a, b, c: a.clip(b, c),
                             [away, Tensor([-1.0, -1.5, 0.0], requires_grad=True),
                              Tensor([1.0, 2.0, 2.5], requires_grad=True)])


def test_anomaly_names_the_users_line_through_numpy_and_catches_inf_from_summing():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with autonet.detect_anomaly(), pytest.raises(FloatingPointError) as caught:
        np.log(np.sum(x * 0.0, axis=0, keepdims=True))
    assert "test_hardening.py:" in str(caught.value) and "fromnumeric" not in str(caught.value)
    big = np.float32(3e38)
    w = Tensor(np.array([1.0], dtype=np.float32), requires_grad=True)
    y = w + here(np.zeros((2, 1), dtype=np.float32))                   # broadcast: (1,) -> (2, 1)
    with autonet.detect_anomaly(), pytest.raises(FloatingPointError, match="summed"):
        y.backward(np.full((2, 1), big, dtype=np.float32))          # the sum overflows
    assert w.grad is None
    v = Tensor(np.array([1.0], dtype=np.float32), requires_grad=True)
    both = autonet.stack([v * 1.0, v * 1.0])                        # v used twice: a fan-out
    with autonet.detect_anomaly(), pytest.raises(FloatingPointError, match="summed"):
        both.backward(np.full((2, 1), 2e38, dtype=np.float32))     # each branch finite, the sum not


def test_gradcheck_fails_where_the_numeric_derivative_overflows():
    class WrongSignExp(autonet.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.exp(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            return -grad * np.exp(x)

    edge = np.log(np.finfo(np.float64).max)
    x = Tensor([edge - 1e-7], requires_grad=True)   # exp(x) is finite, exp(x + eps) is inf
    assert np.isfinite(np.exp(x.data)).all()
    with np.errstate(over="ignore"), pytest.raises(autonet.GradcheckError, match="numeric inf"):
        autonet.gradcheck(WrongSignExp.apply, x)


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
