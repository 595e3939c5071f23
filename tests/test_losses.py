"""Losses against closed forms (every reduction), gradcheck, and extreme logits."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.testing import arrays, assert_gradients_match, tensors

REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}


def _log_sigmoid(x):
    return -np.logaddexp(0, -x)


CLOSED_FORMS = {
    "mse": (nn.MSELoss, lambda p, t: (p - t) ** 2),
    "bce": (nn.BCELoss, lambda p, t: -(t * np.log(p) + (1 - t) * np.log(1 - p))),
    "bce_logits": (nn.BCEWithLogitsLoss,
                   lambda x, t: -(t * _log_sigmoid(x) + (1 - t) * _log_sigmoid(-x))),
}


@pytest.mark.parametrize("reduction", sorted(REDUCE))
@pytest.mark.parametrize("kind", sorted(CLOSED_FORMS))
@given(data=st.data())
def test_elementwise_losses_closed_form_and_gradients(kind, reduction, data):
    loss_class, closed_form = CLOSED_FORMS[kind]
    bounds = {"min_value": 0.05, "max_value": 0.95} if kind == "bce" else {}
    shape = data.draw(st.sampled_from([(4,), (3, 2)]))
    prediction = data.draw(tensors(shape=shape, **bounds))
    target = data.draw(arrays(shape=shape, min_value=0, max_value=1))
    loss = loss_class(reduction=reduction)(prediction, target)
    np.testing.assert_allclose(loss.data, REDUCE[reduction](closed_form(prediction.data, target)),
                               rtol=1e-10, atol=1e-12)
    assert_gradients_match(lambda p: loss_class(reduction=reduction)(p, target), prediction)
    assert autonet.gradgradcheck(lambda p: loss_class(reduction=reduction)(p, target), prediction)


@pytest.mark.parametrize("reduction", sorted(REDUCE))
@given(logits=tensors(shape=(5, 4)), labels=arrays(shape=(5,), min_value=0, max_value=3.99))
def test_cross_entropy_closed_form_and_gradients(reduction, logits, labels):
    labels = np.asarray(labels.astype(np.int64), like=logits.data)   # where the logits are
    shifted = logits.data - logits.data.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = REDUCE[reduction](-log_p[np.arange(5), labels])
    loss = nn.CrossEntropyLoss(reduction=reduction)(logits, labels)
    np.testing.assert_allclose(loss.data, expected, rtol=1e-10, atol=1e-12)
    assert loss.grad_fn.name in {"cross_entropy", "mean", "sum"}
    assert_gradients_match(lambda t: F.cross_entropy(t, labels, reduction=reduction), logits)
    assert autonet.gradgradcheck(lambda t: F.cross_entropy(t, labels, reduction=reduction), logits)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    logits = autonet.Tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], requires_grad=True)
    F.cross_entropy(logits, [1, 2]).backward()
    p = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits.grad, (p - np.eye(3)[[1, 2]]) / 2, rtol=1e-12)


def test_with_logits_losses_are_finite_at_huge_logits():
    x = autonet.Tensor([[1000.0, -1000.0]], requires_grad=True)
    bce = F.binary_cross_entropy_with_logits(x, [[0.0, 1.0]], reduction="sum")
    ce = F.cross_entropy(x, [1], reduction="sum")
    (bce + ce).backward()
    assert bce.item() == pytest.approx(2000.0) and ce.item() == pytest.approx(2000.0)
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(x.grad, [[2.0, -2.0]])


def test_bce_clamps_its_logs_like_pytorch():
    p = autonet.Tensor([0.0, 1.0], requires_grad=True)
    loss = F.binary_cross_entropy(p, [1.0, 0.0], reduction="sum")
    assert loss.item() == pytest.approx(200.0)
    loss.backward()
    assert np.all(np.isfinite(p.grad))


def test_loss_errors():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="average")
    with pytest.raises(ValueError, match=r"mse_loss.*\(4, 1\).*\(4,\)"):
        F.mse_loss(autonet.Tensor(np.ones((4, 1))), np.ones(4))
    logits = autonet.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.cross_entropy(logits, [0, 3])
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(logits, [0.5, 1.0])
    with pytest.raises(ValueError, match="shape"):
        F.cross_entropy(logits, [0, 1, 2])


def test_targets_may_be_lists_arrays_or_tensors():
    p = autonet.Tensor([0.2, 0.7])
    values = [nn.BCELoss()(p, target).item() for target in ([0.0, 1.0], np.array([0.0, 1.0]),
                                                           autonet.Tensor([0.0, 1.0]))]
    assert values[0] == values[1] == values[2]
    assert nn.CrossEntropyLoss()(autonet.Tensor(np.eye(2)), autonet.Tensor([0, 1])).item() > 0


@pytest.mark.host_only("host targets and labels with device inputs: refused on a device")
def test_new_losses_match_their_formulas():
    rng = np.random.default_rng(8)
    x, t = rng.normal(size=(6, 4)) * 2, rng.normal(size=(6, 4)) * 2
    d = x - t
    assert np.isclose(nn.L1Loss()(Tensor(x), t).item(), np.abs(d).mean())
    huber = np.where(np.abs(d) < 1.5, 0.5 * d * d, 1.5 * (np.abs(d) - 0.75))
    assert np.isclose(nn.HuberLoss(reduction="sum", delta=1.5)(Tensor(x), t).item(), huber.sum())
    labels = np.array([0, 3, 1, 2, 3, 0])
    log_probs = x - np.log(np.exp(x).sum(1, keepdims=True))
    assert np.isclose(nn.NLLLoss()(Tensor(log_probs), labels).item(), -log_probs[np.arange(6), labels].mean())
    for loss in (lambda x: F.l1_loss(x, t), lambda x: F.huber_loss(x, t, delta=1.5),
                 lambda x: F.nll_loss(x, labels, reduction="none")):
        assert_gradients_match(loss, Tensor(x, requires_grad=True))
    with pytest.raises(ValueError, match="lie in"):
        F.nll_loss(Tensor(log_probs), np.array([0, 1, 2, 3, 4, 0]))


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


@pytest.mark.host_only("host labels with device inputs: refused on a device, before the labels are read")
@pytest.mark.parametrize("labels, message", [([0, 1e20], r"\[0, 3\), got 0.0..1e\+20"),
                                             ([0, np.inf], "finite class indices, got inf"),
                                             ([np.nan, 1], "finite class indices, got nan")])
def test_huge_and_non_finite_labels_are_reported_as_they_are(labels, message):
    for loss in (F.cross_entropy, F.nll_loss):
        with pytest.raises(ValueError, match=message):
            loss(Tensor(np.zeros((2, 3))), np.array(labels))


@pytest.mark.host_only("host labels with device inputs: refused on a device, before the labels are read")
def test_bool_labels_are_refused_with_a_message_about_bools():
    with pytest.raises(TypeError, match="not bool values; convert them with labels.astype"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([True, False]))
