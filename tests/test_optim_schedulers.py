"""AdamW, the learning-rate schedulers and DataLoader: against closed forms and NumPy loops."""
import math

import numpy as np
import pytest

import autonet
from autonet import Tensor
from autonet.data import DataLoader
from autonet.optim import SGD, AdamW, lr_scheduler as schedulers


def test_adamw_is_adam_with_decoupled_weight_decay():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4))
    w = Tensor(start, requires_grad=True)
    optimizer = AdamW([w], lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1)
    p, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t in range(1, 21):
        g = rng.normal(size=(3, 4))
        w.grad = np.array(g, like=w.data)   # a copy, where w lives
        optimizer.step()
        p = p * (1 - 0.01 * 0.1)
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        p = p - 0.01 / (1 - 0.8 ** t) * m / (np.sqrt(v) / math.sqrt(1 - 0.99 ** t) + 1e-8)
    np.testing.assert_allclose(w.data, p, rtol=1e-12, atol=1e-15)
    assert AdamW([Tensor([1.0], requires_grad=True)]).param_groups[0]["weight_decay"] == 1e-2


def _rates(make, steps=25, lr=0.3):
    w = Tensor([1.0], requires_grad=True)
    optimizer = SGD([w], lr=lr)
    scheduler = make(optimizer)
    rates = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
        assert optimizer.param_groups[0]["lr"] == rates[-1]
    return np.array(rates)


@pytest.mark.parametrize("make, closed_form", [
    (lambda o: schedulers.StepLR(o, step_size=3, gamma=0.5), lambda t: 0.3 * 0.5 ** (t // 3)),
    (lambda o: schedulers.ExponentialLR(o, gamma=0.9), lambda t: 0.3 * 0.9 ** t),
    (lambda o: schedulers.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
     lambda t: 0.01 + (0.3 - 0.01) * (1 + np.cos(np.pi * t / 7)) / 2),
    (lambda o: schedulers.LinearLR(o), lambda t: 0.3 * (1 / 3 + (2 / 3) * np.minimum(t, 5) / 5)),
    (lambda o: schedulers.LinearLR(o, start_factor=0.5, end_factor=0.1, total_iters=4),
     lambda t: 0.3 * (0.5 - 0.4 * np.minimum(t, 4) / 4)),
    (lambda o: schedulers.LambdaLR(o, lambda epoch: 1 / (1 + epoch)), lambda t: 0.3 / (1 + t)),
], ids=["step", "exponential", "cosine", "linear", "linear-down", "lambda"])
def test_schedulers_follow_their_closed_forms(make, closed_form):
    rates = _rates(make)
    np.testing.assert_allclose(rates, closed_form(np.arange(len(rates))), rtol=1e-12, atol=1e-15)


def test_scheduler_state_round_trips_and_refuses_other_keys():
    w = Tensor([1.0], requires_grad=True)
    optimizer = SGD([w], lr=1.0)
    scheduler = schedulers.CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(4):
        scheduler.step()
    state = scheduler.state_dict()
    other = schedulers.CosineAnnealingLR(SGD([Tensor([1.0], requires_grad=True)], lr=1.0), T_max=10)
    other.load_state_dict(state)
    assert other.last_epoch == 4 and other.get_last_lr() == scheduler.get_last_lr()
    with pytest.raises(ValueError, match="keys"):
        other.load_state_dict({"last_epoch": 3})
    with pytest.raises(ValueError):
        schedulers.StepLR(optimizer, step_size=0)


def test_a_scheduler_step_inside_a_compiled_step_is_replayed():
    def make():
        w = Tensor([1.0, -2.0], requires_grad=True)
        optimizer = SGD([w], lr=0.5)
        scheduler = schedulers.ExponentialLR(optimizer, gamma=0.5)

        def step():
            optimizer.zero_grad()
            (w * w).sum().backward()
            optimizer.step()
            scheduler.step()

        return w, scheduler, step

    w_eager, s_eager, eager = make()
    w_compiled, s_compiled, compiled = make()
    compiled = autonet.compile(compiled)
    for _ in range(4):
        eager()
        compiled()
    np.testing.assert_array_equal(w_compiled.data, w_eager.data)
    assert s_compiled.get_last_lr() == s_eager.get_last_lr() == [0.5 * 0.5 ** 4]


def test_dataloader_batches_in_order_and_shuffles_each_pass():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    loader = DataLoader(X, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(DataLoader(X, y, batch_size=4, drop_last=True)) == 2
    shuffled = DataLoader(X, y, batch_size=3, shuffle=True, rng=0)
    first, second = [np.concatenate([b[1] for b in shuffled]) for _ in range(2)]
    assert sorted(first) == sorted(second) == list(range(10)) and first.tolist() != second.tolist()
    for bx, by in shuffled:
        np.testing.assert_array_equal(bx, X[by])          # rows stay paired


def test_dataloader_refuses_mismatched_arrays_and_bad_batch_sizes():
    with pytest.raises(ValueError, match="first axes"):
        DataLoader(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.ones(3), batch_size=0)
    with pytest.raises(ValueError):
        DataLoader()


@pytest.mark.parametrize("call, spelling", [
    (lambda t: t.sum(dim=0), "axis="), (lambda t: t.mean(axis=0, keepdim=True), "keepdims="),
    (lambda t: autonet.nn.functional.softmax(t, dim=1), "axis="),
    (lambda t: autonet.max(t, dim=1), "axis="), (lambda t: t.view(4), "reshape"),
    (lambda t: t.unsqueeze(0), "expand_dims"), (lambda t: t.float(), "astype"),
    (lambda t: t.to(np.float32), "astype"), (lambda t: autonet.cat([t, t]), "concatenate"),
    (lambda t: t.permute(1, 0), "transpose"), (lambda t: autonet.tensor([1.0]), "autonet.Tensor"),
])
def test_pytorch_spellings_name_autonets(call, spelling):
    t = Tensor(np.ones((2, 2)))
    with pytest.raises((TypeError, AttributeError), match=spelling):
        call(t)
    with pytest.raises(AttributeError, match="nonsense"):
        t.nonsense
