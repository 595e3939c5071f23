"""Learning-rate schedulers against their closed forms and PyTorch's rules: chained, sequential and
resumed mid-schedule, degenerate settings, and steps inside compiled steps."""
import math

import numpy as np
import pytest

import autonet
from autonet import Tensor
from autonet.optim import Adagrad, Adam, SGD, lr_scheduler as L


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
    (lambda o: L.StepLR(o, step_size=3, gamma=0.5), lambda t: 0.3 * 0.5 ** (t // 3)),
    (lambda o: L.ExponentialLR(o, gamma=0.9), lambda t: 0.3 * 0.9 ** t),
    (lambda o: L.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
     lambda t: 0.01 + (0.3 - 0.01) * (1 + np.cos(np.pi * t / 7)) / 2),
    (lambda o: L.LinearLR(o), lambda t: 0.3 * (1 / 3 + (2 / 3) * np.minimum(t, 5) / 5)),
    (lambda o: L.LinearLR(o, start_factor=0.5, end_factor=0.1, total_iters=4),
     lambda t: 0.3 * (0.5 - 0.4 * np.minimum(t, 4) / 4)),
    (lambda o: L.LambdaLR(o, lambda epoch: 1 / (1 + epoch)), lambda t: 0.3 / (1 + t)),
], ids=["step", "exponential", "cosine", "linear", "linear-down", "lambda"])
def test_schedulers_follow_their_closed_forms(make, closed_form):
    rates = _rates(make)
    np.testing.assert_allclose(rates, closed_form(np.arange(len(rates))), rtol=1e-12, atol=1e-15)


def test_scheduler_state_round_trips_and_refuses_other_keys():
    w = Tensor([1.0], requires_grad=True)
    optimizer = SGD([w], lr=1.0)
    scheduler = L.CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(4):
        scheduler.step()
    state = scheduler.state_dict()
    other = L.CosineAnnealingLR(SGD([Tensor([1.0], requires_grad=True)], lr=1.0), T_max=10)
    other.load_state_dict(state)
    assert other.last_epoch == 4 and other.get_last_lr() == scheduler.get_last_lr()
    with pytest.raises(ValueError, match="keys"):
        other.load_state_dict({"last_epoch": 3})
    with pytest.raises(ValueError):
        L.StepLR(optimizer, step_size=0)


def _scheduled_step(make_scheduler, momentum=0.0):
    """``(w, scheduler, step)``: ``step()`` takes an SGD step on ``sum(w * w)``, then the scheduler's."""
    w = Tensor([1.0, -2.0], requires_grad=True)
    optimizer = SGD([w], lr=0.5, momentum=momentum)
    scheduler = make_scheduler(optimizer)

    def step():
        optimizer.zero_grad()
        (w * w).sum().backward()
        optimizer.step()
        scheduler.step()

    return w, scheduler, step


def test_a_scheduler_step_inside_a_compiled_step_is_replayed():
    def make():
        return _scheduled_step(lambda o: L.ExponentialLR(o, gamma=0.5))

    w_eager, s_eager, eager = make()
    w_compiled, s_compiled, compiled = make()
    compiled = autonet.compile(compiled)
    for _ in range(4):
        eager()
        compiled()
    np.testing.assert_array_equal(w_compiled.data, w_eager.data)
    assert s_compiled.get_last_lr() == s_eager.get_last_lr() == [0.5 * 0.5 ** 4]


# ------------------------------------------------------------------ MultiStepLR, OneCycleLR, plateaus, sequences
def _schedule(make_scheduler, steps, make_optimizer=lambda ps: SGD(ps, lr=0.1, momentum=0.9), metrics=None):
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
    lrs = _schedule(lambda o: L.MultiStepLR(o, [3, 7, 7], gamma=0.5), 10)[:, 0]
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
    rates = _schedule(lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=20, anneal_strategy="cos" if cos else "linear",
                                          three_phase=three_phase), 19)
    expected = [_one_cycle_by_hand(t, 20, 1.0, cos=cos, three_phase=three_phase) for t in range(20)]
    np.testing.assert_allclose(rates, expected, rtol=1e-13)
    adam = _schedule(lambda o: L.OneCycleLR(o, max_lr=1.0, epochs=4, steps_per_epoch=5), 19,
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
    lrs = _schedule(lambda o: L.ReduceLROnPlateau(o, patience=2, factor=0.5, cooldown=1, **options), len(metrics),
                 metrics=metrics)[:, 0]
    expected = _plateau_by_hand(metrics, 0.1, 0.5, 2, options.get("threshold", 1e-4), 1, options.get("mode", "min"),
                                options.get("threshold_mode", "rel") == "rel", options.get("min_lr", 0.0))
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)
    assert min(expected) < 0.1   # it did reduce


def test_reduce_lr_on_plateau_reduces_a_group_added_after_it():
    """PyTorch's rule: a group added with add_param_group is reduced too, under the single
    min_lr (autonet left it at its rate); with one min_lr per group there is none for it, so
    the next step refuses (RuntimeError, as PyTorch) and changes nothing."""
    metrics = [3, 2, 2, 2, 2, 2, 2, 2]
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
    plateau = L.ReduceLROnPlateau(optimizer, patience=1, factor=0.5, min_lr=0.02)
    optimizer.add_param_group({"params": [Tensor([1.0], requires_grad=True)], "lr": 0.3})
    rates = [[group["lr"] for group in optimizer.param_groups]]
    for value in metrics:
        plateau.step(value)
        rates.append([group["lr"] for group in optimizer.param_groups])
    for number, lr in enumerate([0.1, 0.3]):
        expected = _plateau_by_hand(metrics, lr, 0.5, 1, 1e-4, 0, min_lr=0.02)
        np.testing.assert_allclose(np.array(rates)[:, number], expected, rtol=1e-15)
    assert rates[-1][1] < 0.3

    per_group = L.ReduceLROnPlateau(optimizer, patience=1, factor=0.5, min_lr=[0.0, 0.0])
    optimizer.add_param_group({"params": [Tensor([1.0], requires_grad=True)], "lr": 0.3})
    before = per_group.state_dict()
    with pytest.raises(RuntimeError, match="min_lr gives 2"):
        per_group.step(1.0)
    assert per_group.state_dict() == before


@pytest.mark.parametrize("make, steps", [
    (lambda o: L.LambdaLR(o, lambda epoch: 0.9 ** epoch), 0),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=10), 0),
    (lambda o: L.CosineAnnealingLR(o, T_max=2), 2),   # rates scale until the restart reads base_lrs
    (lambda o: L.SequentialLR(o, [L.ExponentialLR(o, 0.9), L.StepLR(o, 2)], milestones=[2]), 1),
], ids=["lambda", "one-cycle", "cosine", "sequential-restart"])
def test_a_rule_from_the_initial_rates_refuses_a_group_added_after_the_scheduler(make, steps):
    """A group added with add_param_group has no initial rate for these rules: PyTorch fails
    with a zip's ValueError (a KeyError for OneCycleLR); autonet left the new group's rate
    as it was, silently. Now a ValueError says what to do, and nothing has changed."""
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9)
    scheduler = make(optimizer)
    optimizer.add_param_group({"params": [Tensor([1.0], requires_grad=True)], "lr": 0.7})
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
    before = (scheduler.state_dict(), [dict(group, params=None) for group in optimizer.param_groups])
    with pytest.raises(ValueError, match="after the last add_param_group"):
        scheduler.step()
    assert (scheduler.state_dict(), [dict(group, params=None) for group in optimizer.param_groups]) == before


def test_sequential_lr_with_a_milestone_at_0_starts_with_the_second_scheduler():
    """PyTorch's SequentialLR takes its first step with the scheduler meant for step 0: with
    milestones=[0] that is the second, and its StepLR runs from step 0 (autonet stepped the
    first one there, so the StepLR ran one step late)."""
    lrs = _schedule(lambda o: L.SequentialLR(o, [L.ExponentialLR(o, 0.5), L.StepLR(o, step_size=2, gamma=0.5)],
                                          milestones=[0]), 9)[:, 0]
    np.testing.assert_allclose(lrs, [0.1 * 0.5 ** (t // 2) for t in range(10)], rtol=1e-15)


def test_a_chained_scheduler_inside_a_sequential_one_is_undone_and_stepped_as_pytorchs():
    """SequentialLR takes back the first step of the schedulers inside a ChainedScheduler too
    (PyTorch's recursive_undo); then its first step steps them all again, so the chained
    ExponentialLR takes its factor at step 0 too. PyTorch 2.13's rates: 0.1 * 0.5 ** (t + 1) *
    0.5 ** (t // 2) before the milestone, then 0.1 * 0.9 ** (t - 3); autonet's chained
    ExponentialLR ran one step ahead (0.0125 at step 1)."""
    lrs = _schedule(lambda o: L.SequentialLR(o, [L.ChainedScheduler([L.ExponentialLR(o, 0.5),
                                                                      L.StepLR(o, step_size=2, gamma=0.5)]),
                                                 L.ExponentialLR(o, 0.9)], milestones=[3]), 7)[:, 0]
    expected = [0.1 * 0.5 ** (t + 1) * 0.5 ** (t // 2) for t in range(3)] + [0.1 * 0.9 ** (t - 3) for t in range(3, 8)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)


def test_sequential_lr_warmup_then_cosine_restarts_at_the_milestone():
    lrs = _schedule(lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=4), L.CosineAnnealingLR(o, T_max=10)],
                                          milestones=[4]), 14)[:, 0]
    warmup = [0.1 * (0.1 + 0.9 * min(t, 4) / 4) for t in range(4)]
    cosine = [0.05 * (1 + math.cos(math.pi * t / 10)) for t in range(11)]
    np.testing.assert_allclose(lrs, warmup + cosine, rtol=1e-13)


def test_chained_scheduler_and_two_schedulers_on_one_optimizer_multiply():
    expected = [0.1 * (0.1 + 0.9 * min(t, 4) / 4) * 0.9 ** t for t in range(11)]
    chained = _schedule(lambda o: L.ChainedScheduler([L.LinearLR(o, 0.1, total_iters=4), L.ExponentialLR(o, 0.9)]), 10)
    np.testing.assert_allclose(chained[:, 0], expected, rtol=1e-13)

    class Both:   # two schedulers stepped side by side, as a training loop would
        def __init__(self, optimizer):
            self.schedulers = [L.StepLR(optimizer, 3, 0.5), L.ExponentialLR(optimizer, 0.95)]

        def step(self):
            for scheduler in self.schedulers:
                scheduler.step()

    both = _schedule(Both, 10)[:, 0]
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
    # PyTorch refuses these too; autonet failed at the milestone (or at once) with AttributeError
    (lambda o: L.SequentialLR(o, [L.StepLR(o, 2), L.ReduceLROnPlateau(o)], milestones=[3]),
     r"schedulers\[1\] is a ReduceLROnPlateau"),
    (lambda o: L.SequentialLR(o, [L.ReduceLROnPlateau(o), L.StepLR(o, 2)], milestones=[3]),
     r"schedulers\[0\] is a ReduceLROnPlateau"),
    (lambda o: L.ChainedScheduler([L.StepLR(o, 2), L.ReduceLROnPlateau(o)]), "needs the metric"),
    # PyTorch fails with ZeroDivisionError: a warm-up of one step ends where it starts
    (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=20, pct_start=0.05), "leaves the warm-up no step"),
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
        return _scheduled_step(make_scheduler, momentum=0.5)

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


# ------------------------------------------------------------------ chained, resumed and degenerate schedules
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
    return [L.LinearLR(optimizer, start_factor=0.25, total_iters=3),
            L.CosineAnnealingLR(optimizer, T_max=6, eta_min=0.0)]


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
    L.ExponentialLR(first, gamma=0.5)
    _step_all(first, [], 0)
    state = first.state_dict()
    assert state["param_groups"][0]["initial_lr"] == 0.8
    resumed = _optimizer(0.1)                             # no scheduler yet: no initial_lr
    resumed.load_state_dict(state)
    assert resumed.param_groups[0]["initial_lr"] == 0.8
    assert L.LambdaLR(resumed, lambda epoch: 1.0).base_lrs == [0.8]   # setdefault, as PyTorch


def test_lambda_then_warmup_multiplies_by_the_warmups_ratio_each_step():
    # PyTorch: LambdaLR sets initial * lambda(t), then LinearLR multiplies by f(t) / f(t - 1)
    optimizer = _optimizer(2.0)
    made = [L.LambdaLR(optimizer, lambda epoch: 0.5 ** epoch),
            L.LinearLR(optimizer, start_factor=0.2, total_iters=4)]
    rates = [optimizer.param_groups[0]["lr"]] + _step_all(optimizer, made, 8)
    f = lambda t: 0.2 + 0.8 * min(t, 4) / 4  # noqa: E731 - the warmup's closed form
    expected = [2.0 * 0.2] + [2.0 * 0.5 ** t * f(t) / f(t - 1) for t in range(1, 9)]
    np.testing.assert_allclose(rates, expected, rtol=1e-13)


def test_step_and_exponential_chain_multiply():
    optimizer = _optimizer(0.3)
    made = [L.StepLR(optimizer, step_size=3, gamma=0.5),
            L.ExponentialLR(optimizer, gamma=0.9)]
    rates = _step_all(optimizer, made, 10)
    t = np.arange(1, 11)
    np.testing.assert_allclose(rates, 0.3 * 0.5 ** (t // 3) * 0.9 ** t, rtol=1e-13)


def test_cosine_with_one_step_periods_alternates_between_the_bounds():
    optimizer = _optimizer(0.7)
    made = [L.CosineAnnealingLR(optimizer, T_max=1, eta_min=0.1)]
    rates = _step_all(optimizer, made, 6)
    t = np.arange(1, 7)
    np.testing.assert_allclose(rates, 0.1 + 0.6 * (1 + np.cos(np.pi * t)) / 2, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("make", [lambda o: L.CosineAnnealingLR(o, T_max=0),
                                  lambda o: L.StepLR(o, step_size=1.5),
                                  lambda o: L.LinearLR(o, start_factor=0.0),
                                  lambda o: L.LinearLR(o, end_factor=1.5),
                                  lambda o: L.LambdaLR(o, [lambda e: 1.0] * 2),
                                  lambda o: L.StepLR(o, step_size=True),
                                  lambda o: L.MultiStepLR(o, milestones=[2.0])],
                         ids=["T_max=0", "float step_size", "start_factor=0", "end_factor>1", "2 lambdas",
                              "bool step_size", "float milestone"])
def test_degenerate_scheduler_settings_are_refused_and_leave_the_rate(make):
    optimizer = _optimizer(0.4)
    with pytest.raises(ValueError):
        make(optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.4


@pytest.mark.parametrize("make", [
    lambda o, n: L.StepLR(o, step_size=n(3), gamma=0.5),
    lambda o, n: L.MultiStepLR(o, milestones=[n(2), n(2), n(5)], gamma=0.5),
    lambda o, n: L.CosineAnnealingLR(o, T_max=n(4), eta_min=0.01),
    lambda o, n: L.LinearLR(o, start_factor=0.25, total_iters=n(3)),
], ids=["step", "multistep", "cosine", "linear"])
def test_numpy_integer_settings_act_as_python_ints_and_save(make, tmp_path):
    """PyTorch takes ``T_max=np.int64(4)`` (a count computed with NumPy); autonet refused it as
    'not a positive int, not 4'. The NumPy count now gives the Python int's rates, and the
    scheduler's state (Python ints) still saves."""
    as_python = _rates(lambda o: make(o, int), steps=12)
    w = Tensor([1.0], requires_grad=True)
    optimizer = SGD([w], lr=0.3)
    scheduler = make(optimizer, np.int64)
    rates = [scheduler.get_last_lr()[0]]
    for _ in range(12):
        optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    np.testing.assert_array_equal(rates, as_python)
    autonet.save({"scheduler": scheduler.state_dict()}, str(tmp_path / "s.npz"))
    restored = make(SGD([Tensor([1.0], requires_grad=True)], lr=0.3), int)
    restored.load_state_dict(autonet.load(str(tmp_path / "s.npz"))["scheduler"])
    assert restored.state_dict() == scheduler.state_dict()


@pytest.mark.parametrize("bad", [math.nan, -1.0])
def test_a_saved_initial_lr_that_is_no_rate_is_refused(bad):
    optimizer = _optimizer(0.4)
    L.ExponentialLR(optimizer, gamma=0.9)
    state = optimizer.state_dict()
    state["param_groups"][0]["initial_lr"] = bad
    with pytest.raises(ValueError, match="initial_lr"):
        optimizer.load_state_dict(state)
    assert optimizer.param_groups[0]["initial_lr"] == 0.4


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
    rates = _chained_rates([lambda o: L.LinearLR(o, start_factor=0.1, total_iters=5),
                            lambda o: L.CosineAnnealingLR(o, T_max=10)], steps=35)
    t = np.arange(36)
    warmup = 0.1 + 0.9 * np.minimum(t, 5) / 5
    expected = warmup * (1 + np.cos(np.pi * t / 10)) / 2
    np.testing.assert_allclose(rates, expected, rtol=1e-10, atol=1e-15)
    assert rates[11] > 0.02   # 10 % of it (0.0024) before the fix


def test_warmup_then_lambda_trains_at_lambdas_rate():
    # PyTorch's LambdaLR sets initial_lr * lambda(t), whatever ran before it
    rates = _chained_rates([lambda o: L.LinearLR(o, start_factor=0.5, total_iters=4),
                            lambda o: L.LambdaLR(o, lambda epoch: 0.9 ** epoch)],
                           steps=12, lr=0.2)
    np.testing.assert_allclose(rates, 0.2 * 0.9 ** np.arange(13), rtol=1e-13)


def test_the_first_scheduler_records_initial_lr_in_the_groups():
    w = Tensor([1.0], requires_grad=True)
    optimizer = SGD([w], lr=0.3)
    L.ExponentialLR(optimizer, gamma=0.5)
    optimizer.step()
    assert optimizer.param_groups[0]["initial_lr"] == 0.3
    second = L.StepLR(optimizer, step_size=2)
    assert second.base_lrs == [0.3]


# ----------------------------------------------------------------- PyTorch's other schedulers
def _sgdr_by_hand(base, eta_min, T_0, T_mult, steps):   # noqa: N803 - PyTorch's names
    """SGDR's rates, period after period written out (the cycle lengths T_0, T_0 T_mult, ...)."""
    rates, period = [], T_0
    while len(rates) <= steps:
        rates += [eta_min + (base - eta_min) * (1 + math.cos(math.pi * k / period)) / 2 for k in range(period)]
        period *= T_mult
    return rates[:steps + 1]


@pytest.mark.parametrize("make, by_hand", [
    (lambda o: L.ConstantLR(o, factor=0.25, total_iters=4), lambda t: 0.3 * (0.25 if t < 4 else 1.0)),
    (lambda o: L.PolynomialLR(o, total_iters=6, power=2.0), lambda t: 0.3 * (1 - min(t, 6) / 6) ** 2),
    (lambda o: L.PolynomialLR(o, total_iters=5), lambda t: 0.3 * (1 - min(t, 5) / 5)),
    (lambda o: L.MultiplicativeLR(o, lambda epoch: 0.95 - 0.01 * epoch),   # from step 1: none at step 0
     lambda t: 0.3 * math.prod(0.95 - 0.01 * k for k in range(1, t + 1))),
    (lambda o: L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01),
     lambda t: _sgdr_by_hand(0.3, 0.01, 3, 2, 25)[t]),
    (lambda o: L.CosineAnnealingWarmRestarts(o, T_0=4), lambda t: _sgdr_by_hand(0.3, 0.0, 4, 1, 25)[t]),
], ids=["constant", "polynomial-2", "polynomial-1", "multiplicative", "sgdr-T_mult=2", "sgdr"])
def test_pytorchs_other_schedulers_follow_their_closed_forms(make, by_hand):
    """ConstantLR, PolynomialLR, MultiplicativeLR and CosineAnnealingWarmRestarts were missing
    (lr_scheduler.* is 'PyTorch's rates, step for step'); they use PyTorch's recurrences, held
    here to the closed forms PyTorch documents (bit for bit against PyTorch 2.13 when written)."""
    rates = _rates(make)
    np.testing.assert_allclose(rates, [by_hand(t) for t in range(len(rates))], rtol=1e-12, atol=1e-15)


def test_sgdr_counts_its_period_as_pytorch_and_restarts_at_a_sequential_milestone():
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.3)
    sgdr = L.CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=3)
    positions = []
    for _ in range(10):
        positions.append((sgdr.T_cur, sgdr.T_i))
        optimizer.step()
        sgdr.step()
    assert positions == [(0, 2), (1, 2), (0, 6), (1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (0, 18), (1, 18)]
    rates = _rates(lambda o: L.SequentialLR(o, [L.ConstantLR(o, factor=0.5, total_iters=9),
                                                L.CosineAnnealingWarmRestarts(o, T_0=3)], milestones=[2]), 8)
    np.testing.assert_allclose(rates, [0.15, 0.15] + _sgdr_by_hand(0.3, 0.0, 3, 1, 6), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make", [lambda o: L.ConstantLR(o, factor=0.0), lambda o: L.ConstantLR(o, factor=1.5),
                                  lambda o: L.PolynomialLR(o, total_iters=0),
                                  lambda o: L.CosineAnnealingWarmRestarts(o, T_0=0),
                                  lambda o: L.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
                                  lambda o: L.MultiplicativeLR(o, [lambda e: 1.0] * 2)],
                         ids=["factor=0", "factor>1", "total_iters=0", "T_0=0", "T_mult=0", "2 lambdas"])
def test_the_other_schedulers_refuse_degenerate_settings_and_leave_the_rate(make):
    optimizer = _optimizer(0.4)
    with pytest.raises(ValueError):
        make(optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.4


def _cyclic_by_hand(t, up, down, scale):
    """The swing's fraction at step ``t`` of a cycle ``up`` steps up and ``down`` down, times the
    mode's scale of (cycle number from 1, step)."""
    position, size = t % (up + down), up + down
    fraction = position / up if position <= up else (size - position) / down
    return fraction * scale(t // size + 1, t)


@pytest.mark.parametrize("mode, scale", [
    ("triangular", lambda cycle, t: 1.0),
    ("triangular2", lambda cycle, t: 0.5 ** (cycle - 1)),
    ("exp_range", lambda cycle, t: 0.9 ** t),
], ids=["triangular", "triangular2", "exp_range"])
@pytest.mark.parametrize("make_optimizer, momentum", [
    (lambda ps: SGD(ps, lr=0.1, momentum=0.5), lambda group: group["momentum"]),
    (lambda ps: Adam(ps, lr=0.1), lambda group: group["betas"][0]),
], ids=["sgd", "adam"])
def test_cyclic_lr_swings_rate_and_momentum_as_pytorchs_documented_cycle(mode, scale, make_optimizer, momentum):
    """CyclicLR was missing; PyTorch's rule, held to the documented triangle (bit for bit
    against PyTorch 2.13 when written): the rate from base_lr up to max_lr and back, the momentum
    (or beta1) the other way, each swing scaled by the mode."""
    optimizer = make_optimizer([Tensor([1.0], requires_grad=True)])
    scheduler = L.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=3, mode=mode,
                           gamma=0.9)
    group = optimizer.param_groups[0]
    for t in range(17):
        swing = _cyclic_by_hand(t, 2, 3, scale)
        assert group["lr"] == pytest.approx(0.01 + 0.09 * swing, rel=1e-13)
        assert momentum(group) == pytest.approx(0.9 - 0.1 * swing, rel=1e-13)
        optimizer.step()
        scheduler.step()
    assert set(group) == set(optimizer.defaults) | {"params", "initial_lr"}   # no keys of its own


@pytest.mark.parametrize("make", [lambda o: L.CyclicLR(o, 0.01, 0.1, step_size_up=0),
                                  lambda o: L.CyclicLR(o, 0.01, 0.1, mode="sawtooth"),
                                  lambda o: L.CyclicLR(o, [0.01, 0.02], 0.1),
                                  lambda o: L.CyclicLR(o, 0.01, 0.1, scale_fn=lambda x: 1.0, scale_mode="epoch")],
                         ids=["step_size_up=0", "mode", "2 base_lrs", "scale_mode"])
def test_cyclic_lr_refuses_degenerate_settings_and_leaves_the_rate(make):
    optimizer = _optimizer(0.4)
    with pytest.raises(ValueError):
        make(optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.4
    with pytest.raises(ValueError, match="cycle_momentum"):
        L.CyclicLR(Adagrad([Tensor([1.0], requires_grad=True)]), 0.01, 0.1)


@pytest.mark.parametrize("make, error, match", [
    (lambda o: L.StepLR(o, step_size=2), TypeError, r"takes no epoch.*call step\(\) once per epoch"),
    (lambda o: L.CosineAnnealingWarmRestarts(o, T_0=3), ValueError, "epoch must be >= 0"),
], ids=["step", "sgdr-negative"])
def test_step_with_an_epoch_is_refused_and_changes_nothing(make, error, match):
    """PyTorch's deprecated step(epoch) is not offered (it failed with Python's 'takes 1
    positional argument but 2 were given'): the TypeError says what to do instead. SGDR takes
    an epoch, but not a negative one."""
    optimizer = _optimizer(0.4)
    scheduler = make(optimizer)
    before = scheduler.state_dict()
    with pytest.raises(error, match=match):
        scheduler.step(-1.5 if error is ValueError else 1.5)
    assert scheduler.state_dict() == before and optimizer.param_groups[0]["lr"] == 0.4


def test_sgdr_jumps_to_a_fractional_epoch_and_steps_on_from_it():
    """PyTorch's documented per-batch use, step(epoch + batch / batches): with T_0=2, T_mult=2
    the periods are [0, 2), [2, 6), [6, 14): epoch 3.5 is 1.5 into a period of 4; a plain step
    then moves 1 on (2.5 of 4, last_epoch 4); epoch 0.5 is back in the first period."""
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.3)
    sgdr = L.CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=2, eta_min=0.01)
    cosine = lambda since, period: 0.01 + 0.29 * (1 + math.cos(math.pi * since / period)) / 2
    for move, (since, period, epoch) in [(lambda: sgdr.step(3.5), (1.5, 4, 3)), (sgdr.step, (2.5, 4, 4)),
                                         (lambda: sgdr.step(0.5), (0.5, 2, 0)), (lambda: sgdr.step(13), (7, 8, 13)),
                                         (sgdr.step, (0, 16, 14))]:
        move()
        assert (sgdr.T_cur, sgdr.T_i, sgdr.last_epoch) == (since, period, epoch)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(cosine(since, period), rel=1e-14)


def test_a_chained_step_that_fails_part_way_changes_nothing():
    """ChainedScheduler steps its schedulers in order: when the OneCycleLR second in the chain
    refuses a step past total_steps, the ExponentialLR before it had already halved the rate
    (PyTorch leaves it so); now it is taken back, and the chain's state is as before."""
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9)
    chain = L.ChainedScheduler([L.ExponentialLR(optimizer, 0.5), L.OneCycleLR(optimizer, max_lr=1.0, total_steps=3)])
    for _ in range(3):
        optimizer.step()
        chain.step()
    settings = [dict(group, params=None) for group in optimizer.param_groups]
    before = chain.state_dict()
    with pytest.raises(ValueError, match="past total_steps=3"):
        chain.step()
    assert [dict(group, params=None) for group in optimizer.param_groups] == settings
    assert chain.state_dict() == before and chain.get_last_lr() == [settings[0]["lr"]]
