"""SGD, Adam and AdamW against updates written out by hand in NumPy; state_dict resumes exactly."""
import math

import numpy as np
import pytest

import autonet
from autonet import Tensor
from autonet.optim import Adam, AdamW, SGD

A = np.array([1.0, 2.0, 0.5])
B = np.array([0.3, -0.2, 0.1])
START = np.array([1.0, -1.5, 2.0])


def quadratic_grad(p):
    """Gradient of 0.5 * sum(A p^2) + B.p, computed independently of autonet."""
    return A * p + B


def run(optimizer_factory, steps):
    p = autonet.Tensor(START, requires_grad=True)
    optimizer = optimizer_factory([p])
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * (autonet.Tensor(A) * p * p).sum() + (autonet.Tensor(B) * p).sum()).backward()
        optimizer.step()
    return p.data


def sgd_by_hand(steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p, buf = START.copy(), None
    for _ in range(steps):
        g = quadratic_grad(p) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adam_by_hand(steps, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    p, m, v = START.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, steps + 1):
        g = quadratic_grad(p) + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)      # the textbook form of PyTorch's rule
    return p


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.02, momentum=0.5, weight_decay=0.1, nesterov=True),
]


@pytest.mark.parametrize("options", SGD_CASES, ids=lambda o: ",".join(o))
def test_sgd_matches_hand_written_updates(options):
    np.testing.assert_allclose(run(lambda ps: SGD(ps, **options), 4), sgd_by_hand(4, **options),
                               rtol=1e-13, atol=1e-14)


ADAM_CASES = [dict(lr=0.1), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.05, weight_decay=0.1)]


@pytest.mark.parametrize("options", ADAM_CASES, ids=lambda o: ",".join(o))
def test_adam_matches_hand_written_updates(options):
    by_hand = dict(options)
    if "betas" in by_hand:
        by_hand["beta1"], by_hand["beta2"] = by_hand.pop("betas")
    np.testing.assert_allclose(run(lambda ps: Adam(ps, **options), 5), adam_by_hand(5, **by_hand),
                               rtol=1e-12, atol=1e-14)


def test_param_groups_take_their_own_hyperparameters():
    a = autonet.Tensor([1.0], requires_grad=True)
    b = autonet.Tensor([1.0], requires_grad=True)
    optimizer = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.ones_like(a.data), np.ones_like(b.data)
    optimizer.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)


def test_parameters_without_grad_are_skipped_and_zero_grad_sets_none():
    a = autonet.Tensor([1.0], requires_grad=True)
    optimizer = Adam([a])
    optimizer.step()
    assert a.data[0] == 1.0 and not optimizer.state
    a.grad = np.array([1.0])
    optimizer.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("bad", [[np.ones(2)], [autonet.Tensor([1.0])], [autonet.Tensor([1.0], requires_grad=True) * 2]])
def test_optimizers_take_only_leaf_tensors_that_require_grad(bad):
    with pytest.raises(TypeError):
        SGD(bad, lr=0.1)


def test_a_parameter_given_twice_is_refused_by_its_position_in_the_group_or_across_groups():
    """The refusal named 'more than one parameter group' for a parameter repeated inside one
    group too; it now gives the position, and the optimizer keeps its groups."""
    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    with pytest.raises(ValueError, match="parameter 2 of this group is given twice"):
        SGD([a, b, a], lr=0.1)
    optimizer = SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="parameter 1 of this group is given twice"):
        optimizer.add_param_group({"params": [b, a]})
    assert [group["params"] for group in optimizer.param_groups] == [[a]]


def test_a_set_of_parameters_is_refused_as_pytorch_refuses_it():
    """A set's order changes from run to run (it follows the tensors' ids), so a state_dict
    saved in one run would give each parameter another one's state in the next."""
    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    for params in ({a, b}, frozenset([a]), [{"params": {a}}]):
        with pytest.raises(TypeError, match="ordered collection"):
            SGD(params, lr=0.1)
    optimizer = SGD([a], lr=0.1)
    with pytest.raises(TypeError, match="ordered collection"):
        optimizer.add_param_group({"params": {b}})
    assert len(optimizer.param_groups) == 1


def test_hyperparameter_errors():
    p = [autonet.Tensor([1.0], requires_grad=True)]
    for factory in (lambda: SGD(p, lr=-1), lambda: SGD(p, lr=0.1, nesterov=True),
                    lambda: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
                    lambda: Adam(p, betas=(1.0, 0.9)), lambda: Adam(p, eps=-1)):
        with pytest.raises(ValueError):
            factory()
    with pytest.raises(TypeError):
        SGD([{"params": p, "momentun": 0.9}], lr=0.1)
    with pytest.raises(TypeError):
        SGD(p[0], lr=0.1)


@pytest.mark.parametrize("factory", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                     lambda ps: Adam(ps, lr=0.1, weight_decay=0.01)])
def test_state_dict_resumes_training_exactly(factory):
    straight = run(factory, 10)
    p = autonet.Tensor(START, requires_grad=True)
    optimizer = factory([p])

    def step(opt, param):
        opt.zero_grad()
        (0.5 * (autonet.Tensor(A) * param * param).sum() + (autonet.Tensor(B) * param).sum()).backward()
        opt.step()

    for _ in range(5):
        step(optimizer, p)
    saved = optimizer.state_dict()
    assert set(saved) == {"state", "param_groups"} and saved["param_groups"][0]["params"] == [0]
    for name, values in saved["state"][0].items():   # on the parameter's device; Adam's step on the host
        where = "cpu" if name in optimizer.host_state else p.device
        assert autonet.core.device.is_array(values) and autonet.core.device.device_of(values) == where
    resumed_param = autonet.Tensor(p.data, requires_grad=True)
    resumed = factory([resumed_param])
    resumed.load_state_dict(saved)
    for values in saved["state"][0].values():   # load copies: later steps leave `saved` alone
        values += 1000.0
    for _ in range(5):
        step(resumed, resumed_param)
    np.testing.assert_array_equal(resumed_param.data, straight)


def test_load_state_dict_rejects_mismatched_groups():
    a = autonet.Tensor([1.0], requires_grad=True)
    b = autonet.Tensor([1.0], requires_grad=True)
    saved = SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="groups"):
        SGD([a], lr=0.1).load_state_dict(saved)


def test_update_is_in_place_outside_the_graph():
    p = autonet.Tensor([1.0, 2.0], requires_grad=True)
    data = p.data
    optimizer = SGD([p], lr=0.1)
    (p * p).sum().backward()
    optimizer.step()
    assert p.data is data and p.is_leaf and p.grad_fn is None


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


def test_step_with_a_closure_calls_it_with_grad_on_and_returns_its_loss():
    """PyTorch's optimizer.step(closure): the closure computes the loss and its gradients, the
    step uses them and returns the loss (it failed with 'takes 1 positional argument')."""
    def run(with_closure):
        w = Tensor([1.0, -2.0], requires_grad=True)
        optimizer = Adam([w], lr=0.1)

        def closure():
            optimizer.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            return loss

        losses = []
        for _ in range(3):
            if with_closure:
                with autonet.no_grad():   # grad mode is on inside the closure all the same
                    losses.append(float(optimizer.step(closure).data))
            else:
                losses.append(float(closure().data))
                assert optimizer.step() is None
        return w.data, losses

    (by_closure, closure_losses), (by_hand, hand_losses) = run(True), run(False)
    np.testing.assert_array_equal(by_closure, by_hand)
    assert closure_losses == hand_losses and closure_losses[0] == 5.0


def test_step_with_a_closure_is_refused_inside_compile():
    w = Tensor([1.0], requires_grad=True)
    optimizer = SGD([w], lr=0.1)

    @autonet.compile
    def train(x):
        return optimizer.step(lambda: (w * x).sum().backward())

    with pytest.raises(autonet.CompileError, match="given a function.*loss.backward.. in the step"):
        train(Tensor([2.0]))
    np.testing.assert_array_equal(w.data, [1.0])


def test_step_with_a_closure_runs_under_anomaly_mode():
    """Anomaly mode observes the engine as compile does; only compile refuses a closure (the
    refusal once looked for any observer and refused this too)."""
    w = Tensor([1.0, -2.0], requires_grad=True)
    optimizer = SGD([w], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with autonet.detect_anomaly():
        assert float(optimizer.step(closure).data) == 5.0
    np.testing.assert_array_equal(w.data, [0.8, -1.6])   # w - 0.1 * 2w
