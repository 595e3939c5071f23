"""Contract v3's optimizers and schedulers against PyTorch's documented update rules, written
out here in NumPy (and, when torch is installed, against torch itself)."""
import math

import numpy as np
import pytest

import autonet
from autonet.optim import SGD, Adagrad, Adam, AdamW, RMSprop, lr_scheduler as L

START = np.array([[0.5, -1.2], [2.0, 0.1], [-0.7, 1.5]])
STEPS = 30


def gradient(p):
    """A fixed, nonlinear gradient field, independent of autonet."""
    return np.sin(3 * p) + 0.1 * p ** 3


def run(make, steps=STEPS):
    p = autonet.Tensor(START.copy(), requires_grad=True)
    optimizer = make([p])
    for _ in range(steps):
        p.grad = gradient(p.data)
        optimizer.step()
    return p.data, optimizer


def adam_by_hand(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    p, m, v, v_max = START.copy(), 0.0, 0.0, 0.0
    for t in range(1, STEPS + 1):
        g = gradient(p)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        v_max = np.maximum(v_max, v)
        v_hat = (v_max if amsgrad else v) / (1 - betas[1] ** t)
        p = p - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v_hat) + eps)
    return p


def rmsprop_by_hand(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    p, square, mean, buffer = START.copy(), 0.0, 0.0, 0.0
    for _ in range(STEPS):
        g = gradient(p) + weight_decay * p
        square = alpha * square + (1 - alpha) * g * g
        mean = alpha * mean + (1 - alpha) * g
        denominator = np.sqrt(square - mean * mean if centered else square) + eps
        if momentum:
            buffer = momentum * buffer + g / denominator
            p = p - lr * buffer
        else:
            p = p - lr * g / denominator
    return p


def adagrad_by_hand(lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10):
    p, total = START.copy(), 0.0
    for t in range(1, STEPS + 1):
        g = gradient(p) + weight_decay * p
        total = total + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(total) + eps)
    return p


CASES = [
    ("adam amsgrad", lambda ps: Adam(ps, lr=0.05, amsgrad=True), lambda: adam_by_hand(0.05, amsgrad=True)),
    ("adam amsgrad decay", lambda ps: Adam(ps, lr=0.05, weight_decay=0.1, amsgrad=True),
     lambda: adam_by_hand(0.05, weight_decay=0.1, amsgrad=True)),
    ("adamw amsgrad", lambda ps: AdamW(ps, lr=0.05, amsgrad=True),
     lambda: adam_by_hand(0.05, weight_decay=1e-2, amsgrad=True, decoupled=True)),
    ("rmsprop", lambda ps: RMSprop(ps), lambda: rmsprop_by_hand()),
    ("rmsprop centered momentum", lambda ps: RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05,
                                                     momentum=0.8, centered=True),
     lambda: rmsprop_by_hand(0.01, 0.9, 1e-6, 0.05, 0.8, True)),
    ("adagrad", lambda ps: Adagrad(ps), lambda: adagrad_by_hand()),
    ("adagrad decays", lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=0.05),
     lambda: adagrad_by_hand(0.1, 0.01, 0.05)),
]


@pytest.mark.parametrize("name, make, by_hand", CASES, ids=[c[0] for c in CASES])
def test_optimizers_follow_pytorchs_rules(name, make, by_hand):
    np.testing.assert_allclose(run(make)[0], by_hand(), rtol=1e-12, atol=1e-14)


def test_amsgrad_differs_from_adam_once_v_falls():
    assert not np.allclose(run(lambda ps: Adam(ps, lr=0.05, amsgrad=True))[0], run(lambda ps: Adam(ps, lr=0.05))[0])


@pytest.mark.parametrize("name, make, by_hand", CASES, ids=[c[0] for c in CASES])
def test_state_dict_resumes_exactly(name, make, by_hand, tmp_path):
    half, optimizer = run(make, STEPS // 2)
    path = str(tmp_path / "optimizer.npz")
    autonet.save({"optimizer": optimizer.state_dict()}, path)
    p = autonet.Tensor(half.copy(), requires_grad=True)
    resumed = make([p])
    resumed.load_state_dict(autonet.load(path)["optimizer"])
    for _ in range(STEPS - STEPS // 2):
        p.grad = gradient(p.data)
        resumed.step()
    np.testing.assert_array_equal(p.data, run(make)[0])


@pytest.mark.parametrize("make, match", [
    (lambda ps: RMSprop(ps, alpha=-0.1), "alpha must be >= 0"),
    (lambda ps: RMSprop(ps, momentum=float("nan")), "momentum must be >= 0"),
    (lambda ps: Adagrad(ps, lr_decay=-1), "lr_decay must be >= 0"),
    (lambda ps: Adagrad(ps, eps=-1e-10), "eps must be >= 0"),
    (lambda ps: Adagrad(ps, lr=-1.0), "invalid learning rate"),
])
def test_bad_hyperparameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make([autonet.Tensor([1.0], requires_grad=True)])


def test_torch_agrees_when_installed():
    torch = pytest.importorskip("torch", reason="torch is not installed (the bench extra)")
    pairs = [(lambda ps: RMSprop(ps, momentum=0.5, centered=True),
              lambda ps: torch.optim.RMSprop(ps, momentum=0.5, centered=True)),
             (lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.01), lambda ps: torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.01)),
             (lambda ps: AdamW(ps, lr=0.05, amsgrad=True), lambda ps: torch.optim.AdamW(ps, lr=0.05, amsgrad=True))]
    for ours, theirs in pairs:
        p = torch.tensor(START.copy(), requires_grad=True)
        optimizer = theirs([p])
        for _ in range(STEPS):
            p.grad = torch.tensor(gradient(p.detach().numpy()))
            optimizer.step()
        np.testing.assert_allclose(run(ours)[0], p.detach().numpy(), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ schedulers
def _rates(make_scheduler, steps, make_optimizer=lambda ps: SGD(ps, lr=0.1, momentum=0.9), metrics=None):
    """The first group's (lr, momentum or beta1) after construction and after each step."""
    optimizer = make_optimizer([autonet.Tensor([1.0], requires_grad=True)])
    scheduler = make_scheduler(optimizer)
    group = optimizer.param_groups[0]
    momentum = lambda: group.get("momentum", group.get("betas", (None,))[0])
    rates = [(group["lr"], momentum())]
    for k in range(steps):
        scheduler.step(*(() if metrics is None else (metrics[k],)))
        rates.append((group["lr"], momentum()))
    return np.array(rates)


def test_multistep_lr_counts_repeated_milestones():
    lrs = _rates(lambda o: L.MultiStepLR(o, [3, 7, 7], gamma=0.5), 10)[:, 0]
    expected = [0.1 * 0.5 ** sum(m <= t for m in (3, 7, 7)) for t in range(11)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)


def _one_cycle_by_hand(t, total, peak, pct=0.3, div=25.0, final_div=1e4, cos=True, three_phase=False):
    """PyTorch's documented OneCycleLR phases, the rate and momentum at step t."""
    low, floor, top = peak / div, peak / div / final_div, pct * total
    if three_phase:
        phases = [(top - 1, low, peak, 0.95, 0.85), (2 * top - 2, peak, low, 0.85, 0.95),
                  (total - 1, low, floor, 0.95, 0.95)]
    else:
        phases = [(top - 1, low, peak, 0.95, 0.85), (total - 1, peak, floor, 0.85, 0.95)]
    start = 0.0
    for number, (end, a, b, ma, mb) in enumerate(phases):
        if t <= end or number == len(phases) - 1:
            f = (t - start) / (end - start)
            anneal = (lambda x, y: y + (x - y) / 2 * (math.cos(math.pi * f) + 1)) if cos else \
                (lambda x, y: (y - x) * f + x)
            return anneal(a, b), anneal(ma, mb)
        start = end


@pytest.mark.parametrize("cos, three_phase", [(True, False), (False, True)])
def test_one_cycle_lr_and_momentum(cos, three_phase):
    rates = _rates(lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=20, anneal_strategy="cos" if cos else "linear",
                                          three_phase=three_phase), 19)
    expected = [_one_cycle_by_hand(t, 20, 1.0, cos=cos, three_phase=three_phase) for t in range(20)]
    np.testing.assert_allclose(rates, expected, rtol=1e-13)
    adam = _rates(lambda o: L.OneCycleLR(o, max_lr=1.0, epochs=4, steps_per_epoch=5), 19,
                  make_optimizer=lambda ps: Adam(ps, lr=0.1))
    np.testing.assert_allclose(adam, [_one_cycle_by_hand(t, 20, 1.0) for t in range(20)], rtol=1e-13)


def test_one_cycle_refuses_a_step_past_the_end_and_optimizers_without_momentum():
    optimizer = SGD([autonet.Tensor([1.0], requires_grad=True)], lr=0.1)
    scheduler = L.OneCycleLR(optimizer, max_lr=1.0, total_steps=2)
    scheduler.step()
    scheduler.step()
    with pytest.raises(ValueError, match="past total_steps=2"):
        scheduler.step()
    with pytest.raises(ValueError, match="cycle_momentum"):
        L.OneCycleLR(Adagrad([autonet.Tensor([1.0], requires_grad=True)]), max_lr=1.0, total_steps=5)


def _plateau_by_hand(metrics, lr, factor, patience, threshold, cooldown, mode="min", relative=True, min_lr=0.0):
    """PyTorch's documented ReduceLROnPlateau, one metric at a time."""
    best, bad, rest, out = (math.inf if mode == "min" else -math.inf), 0, 0, [lr]
    for value in metrics:
        if mode == "min":
            better = value < (best * (1 - threshold) if relative else best - threshold)
        else:
            better = value > (best * (1 + threshold) if relative else best + threshold)
        best, bad = (value, 0) if better else (best, bad + 1)
        if rest > 0:
            rest, bad = rest - 1, 0
        if bad > patience:
            if lr - max(lr * factor, min_lr) > 1e-8:
                lr = max(lr * factor, min_lr)
            rest, bad = cooldown, 0
        out.append(lr)
    return out


@pytest.mark.parametrize("options", [dict(), dict(mode="max", threshold_mode="abs", threshold=0.5, min_lr=0.02)])
def test_reduce_lr_on_plateau(options):
    metrics = [3, 2, 2, 2, 2, 1.9, 1.9, 1.9, 1.9, 1.9, 1, 1, 1, 1, 1, 1, 1, 1, 4, 5]
    lrs = _rates(lambda o: L.ReduceLROnPlateau(o, patience=2, factor=0.5, cooldown=1, **options), len(metrics),
                 metrics=metrics)[:, 0]
    expected = _plateau_by_hand(metrics, 0.1, 0.5, 2, options.get("threshold", 1e-4), 1, options.get("mode", "min"),
                                options.get("threshold_mode", "rel") == "rel", options.get("min_lr", 0.0))
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)
    assert min(expected) < 0.1   # it did reduce


def test_sequential_lr_warmup_then_cosine_restarts_at_the_milestone():
    lrs = _rates(lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=4), L.CosineAnnealingLR(o, T_max=10)],
                                          milestones=[4]), 14)[:, 0]
    warmup = [0.1 * (0.1 + 0.9 * min(t, 4) / 4) for t in range(4)]
    cosine = [0.05 * (1 + math.cos(math.pi * t / 10)) for t in range(11)]
    np.testing.assert_allclose(lrs, warmup + cosine, rtol=1e-13)


def test_chained_scheduler_and_two_schedulers_on_one_optimizer_multiply():
    expected = [0.1 * (0.1 + 0.9 * min(t, 4) / 4) * 0.9 ** t for t in range(11)]
    chained = _rates(lambda o: L.ChainedScheduler([L.LinearLR(o, 0.1, total_iters=4), L.ExponentialLR(o, 0.9)]), 10)
    np.testing.assert_allclose(chained[:, 0], expected, rtol=1e-13)

    class Both:   # two schedulers stepped side by side, as a training loop would
        def __init__(self, optimizer):
            self.schedulers = [L.StepLR(optimizer, 3, 0.5), L.ExponentialLR(optimizer, 0.95)]

        def step(self):
            for scheduler in self.schedulers:
                scheduler.step()

    both = _rates(Both, 10)[:, 0]
    np.testing.assert_allclose(both, [0.1 * 0.5 ** (t // 3) * 0.95 ** t for t in range(11)], rtol=1e-13)


def test_sequential_state_round_trips(tmp_path):
    def make(optimizer):
        return L.SequentialLR(optimizer, [L.ExponentialLR(optimizer, 0.9), L.StepLR(optimizer, 2)], milestones=[3])

    optimizer = SGD([autonet.Tensor([1.0], requires_grad=True)], lr=0.1)
    scheduler = make(optimizer)
    for _ in range(4):
        scheduler.step()
    path = str(tmp_path / "s.npz")
    autonet.save({"scheduler": scheduler.state_dict(), "optimizer": optimizer.state_dict()}, path)
    saved = autonet.load(path)
    other_optimizer = SGD([autonet.Tensor([1.0], requires_grad=True)], lr=0.1)
    other = make(other_optimizer)
    other_optimizer.load_state_dict(saved["optimizer"])
    other.load_state_dict(saved["scheduler"])
    for _ in range(3):
        scheduler.step()
        other.step()
    assert other.get_last_lr() == scheduler.get_last_lr()


@pytest.mark.parametrize("make, match", [
    (lambda o: L.MultiStepLR(o, [2, -1]), "milestones must be ints >= 0"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0), "pass total_steps"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: L.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=10), "max_lr must be a number or 1"),
    (lambda o: L.ReduceLROnPlateau(o, factor=1.5), "factor must be < 1.0"),
    (lambda o: L.ReduceLROnPlateau(o, mode="up"), "mode must be"),
    (lambda o: L.SequentialLR(o, [L.StepLR(o, 2), L.StepLR(o, 3)], milestones=[]), "need 1 increasing milestones"),
    (lambda o: L.SequentialLR(o, [L.StepLR(SGD([autonet.Tensor([1.0], requires_grad=True)], lr=1.0), 2)],
                              milestones=[]), "belong to the optimizer given"),
])
def test_bad_scheduler_arguments_are_refused(make, match):
    optimizer = SGD([autonet.Tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=match):
        make(optimizer)


@pytest.mark.parametrize("make_scheduler", [
    lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=2), L.ExponentialLR(o, 0.5)], milestones=[2]),
    lambda o: L.ChainedScheduler([L.LinearLR(o, 0.1, total_iters=2), L.ExponentialLR(o, 0.5)]),
    lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=10),
    lambda o: L.MultiStepLR(o, [1, 3]),
], ids=["sequential", "chained", "one-cycle", "multistep"])
def test_the_new_schedulers_replay_inside_a_compiled_step(make_scheduler):
    def make():
        w = autonet.Tensor([1.0, -2.0], requires_grad=True)
        optimizer = SGD([w], lr=0.5, momentum=0.5)
        scheduler = make_scheduler(optimizer)

        def step():
            optimizer.zero_grad()
            (w * w).sum().backward()
            optimizer.step()
            scheduler.step()

        return w, scheduler, step

    (w_eager, s_eager, eager), (w_compiled, s_compiled, compiled) = make(), make()
    compiled = autonet.compile(compiled)
    for _ in range(6):
        eager()
        compiled()
        assert s_compiled.get_last_lr() == s_eager.get_last_lr()
    np.testing.assert_array_equal(w_compiled.data, w_eager.data)


def test_multistep_restarts_from_its_closed_form_after_a_save_and_load(tmp_path):
    def make(optimizer):
        return L.SequentialLR(optimizer, [L.ExponentialLR(optimizer, 0.9), L.MultiStepLR(optimizer, [1, 1, 3])],
                              milestones=[2])

    optimizer = SGD([autonet.Tensor([1.0], requires_grad=True)], lr=0.1)
    scheduler = make(optimizer)
    path = str(tmp_path / "s.npz")
    autonet.save({"scheduler": scheduler.state_dict()}, path)
    loaded = make(SGD([autonet.Tensor([1.0], requires_grad=True)], lr=0.1))
    loaded.load_state_dict(autonet.load(path)["scheduler"])
    for _ in range(5):
        scheduler.step()
        loaded.step()
        assert loaded.get_last_lr() == scheduler.get_last_lr()
    assert scheduler.get_last_lr() == [pytest.approx(0.1 * 0.1 ** 3)]   # 0.1 at 2, x0.01 at 3, x0.1 at 5
