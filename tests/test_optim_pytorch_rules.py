"""RMSprop, Adagrad, AdamW and Adam's options against PyTorch's documented update rules, written
out here in NumPy (and, when torch is installed, against torch itself)."""
import numpy as np
import pytest

import autonet
from autonet.optim import Adagrad, Adam, AdamW, RMSprop

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
