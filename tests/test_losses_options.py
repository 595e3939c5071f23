"""Loss options (weight, ignore_index, label smoothing, pos_weight, ...) against PyTorch's documented formulas, written here as loops in
NumPy (an independent reference), with gradients by finite differences and second order."""
import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.testing import assert_gradients_match
from device_double import here

RNG = np.random.default_rng(0)
X = RNG.standard_normal((5, 4))
LABELS = np.array([0, 3, -100, 2, 1])
WEIGHT = RNG.uniform(0.5, 2.0, 4)


def _log_softmax(x, axis=1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _reference_class_loss(log_p, labels, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """PyTorch's documented nll / label-smoothed cross-entropy, one sample at a time; log_p is
    (N, C, ...) moved to (M, C) rows with labels (M,)."""
    classes = log_p.shape[1]
    rows = np.moveaxis(log_p, 1, -1).reshape(-1, classes)
    flat = labels.reshape(-1)
    w = np.ones(classes) if weight is None else weight
    losses, total_weight = [], 0.0
    for row, label in zip(rows, flat):
        if label == ignore_index:
            losses.append(0.0)
            continue
        nll = -w[label] * row[label]
        smooth = -sum(w[c] * row[c] for c in range(classes)) / classes
        losses.append((1 - smoothing) * nll + smoothing * smooth)
        total_weight += w[label]
    losses = np.array(losses).reshape(labels.shape)
    if reduction == "none":
        return losses
    return losses.sum() / (total_weight if reduction == "mean" else 1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight", [None, WEIGHT], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_with_weight_ignore_index_and_smoothing(reduction, weight, smoothing):
    x = Tensor(here(X.copy()), requires_grad=True)
    labels = here(LABELS)
    w = None if weight is None else here(weight)
    call = lambda t: F.cross_entropy(t, labels, weight=w, reduction=reduction, label_smoothing=smoothing)
    expected = _reference_class_loss(_log_softmax(X), LABELS, weight, -100, reduction, smoothing)
    np.testing.assert_allclose(call(x).data, here(expected),
                               rtol=1e-12, atol=1e-14)
    assert_gradients_match(call, x)
    assert autonet.gradgradcheck(call, x)
    module = nn.CrossEntropyLoss(w, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_array_equal(module(x, labels).data, call(x).data)


def test_cross_entropy_over_extra_axes_and_ignore_index_that_is_a_class():
    x = RNG.standard_normal((2, 4, 3, 2))
    labels = RNG.integers(0, 4, (2, 3, 2))
    labels[0, 1, 1] = 1
    call = lambda t: F.cross_entropy(t, here(labels), weight=here(WEIGHT), ignore_index=1,
                                     label_smoothing=0.1)
    expected = _reference_class_loss(_log_softmax(x), labels, WEIGHT, 1, "mean", 0.1)
    t = Tensor(here(x), requires_grad=True)
    np.testing.assert_allclose(call(t).item(), expected, rtol=1e-12)
    assert_gradients_match(call, t)
    none = F.cross_entropy(t, here(labels), ignore_index=1, reduction="none")
    assert none.shape == (2, 3, 2) and float((none.data * (here(labels) == 1)).sum()) == 0.0


def test_cross_entropy_with_class_probabilities():
    target = RNG.dirichlet(np.ones(4), 5)
    smoothed = target * 0.7 + 0.3 / 4
    log_p = _log_softmax(X)
    expected = np.mean([-sum(WEIGHT[c] * smoothed[i, c] * log_p[i, c] for c in range(4)) for i in range(5)])
    x, t = Tensor(here(X.copy()), requires_grad=True), Tensor(here(target), requires_grad=True)
    call = lambda x, t: F.cross_entropy(x, t, weight=here(WEIGHT), label_smoothing=0.3)
    np.testing.assert_allclose(call(x, t).item(), expected, rtol=1e-12)
    assert_gradients_match(call, x, t)
    assert autonet.gradgradcheck(call, (x, t))


def test_all_labels_ignored_is_nan_with_zero_gradient_as_pytorch():
    x = Tensor(here(X.copy()), requires_grad=True)
    loss = F.cross_entropy(x, here(np.full(5, -100)))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad, here(np.zeros((5, 4))))


def test_the_plain_case_stays_one_cross_entropy_node_and_the_options_use_nll():
    x = Tensor(here(X.copy()), requires_grad=True)
    assert F.cross_entropy(x, here(np.array([0, 1, 2, 3, 0])), reduction="none").grad_fn.name == "cross_entropy"
    assert F.cross_entropy(x, here(LABELS), reduction="none").grad_fn.name == "cross_entropy"   # -100 too
    assert F.cross_entropy(x, here(LABELS), weight=here(WEIGHT)).grad_fn.name == "nll_loss"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_with_weight_and_ignore_index(reduction):
    log_p = _log_softmax(X)
    x = Tensor(here(log_p), requires_grad=True)
    call = lambda t: F.nll_loss(t, here(LABELS), weight=here(WEIGHT), reduction=reduction)
    np.testing.assert_allclose(call(x).data, here(_reference_class_loss(log_p, LABELS, WEIGHT, -100, reduction)),
                               rtol=1e-12, atol=1e-14)
    assert_gradients_match(call, x)
    module = nn.NLLLoss(here(WEIGHT), reduction=reduction)
    np.testing.assert_array_equal(module(x, here(LABELS)).data, call(x).data)


def test_nll_loss_keeps_infinite_log_probabilities_of_other_classes_out():
    log_p = Tensor(here(np.array([[-np.inf, 0.0], [np.log(0.5), np.log(0.5)]])), requires_grad=True)
    loss = F.nll_loss(log_p, here(np.array([1, 0])), reduction="sum")
    assert loss.item() == pytest.approx(np.log(2.0))   # PyTorch picks; 0 * -inf would be NaN
    loss.backward()
    np.testing.assert_array_equal(log_p.grad, here(np.array([[0.0, -1.0], [-1.0, 0.0]])))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_pos_weight_and_weight(reduction):
    x, t = 10 * X, RNG.uniform(0, 1, X.shape)
    pos_weight, weight = RNG.uniform(0.5, 3.0, 4), RNG.uniform(0.5, 2.0, (5, 1))
    sigmoid = 1 / (1 + np.exp(-x))
    # the documented definition, -w [p t log s(x) + (1 - t) log(1 - s(x))]
    losses = -weight * (pos_weight * t * np.log(sigmoid) + (1 - t) * np.log(1 - sigmoid))
    expected = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]
    call = lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction, weight=here(weight),
                                                           pos_weight=here(pos_weight))
    xs, ts = Tensor(here(x), requires_grad=True), Tensor(here(t), requires_grad=True)
    np.testing.assert_allclose(call(xs, ts).data, here(expected), rtol=1e-9)
    small = Tensor(here(X.copy()), requires_grad=True)
    assert_gradients_match(call, small, ts)
    assert autonet.gradgradcheck(call, (small, ts))
    module = nn.BCEWithLogitsLoss(here(weight), reduction=reduction, pos_weight=here(pos_weight))
    np.testing.assert_array_equal(module(xs, ts).data, call(xs, ts).data)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight_shape", [(5, 4), (4,), (5, 1)])
def test_bce_weight_scales_each_element_as_pytorchs(reduction, weight_shape):
    p, t = RNG.uniform(0.05, 0.95, X.shape), RNG.uniform(0, 1, X.shape)
    weight = RNG.uniform(0.5, 2.0, weight_shape)
    losses = -weight * (t * np.log(p) + (1 - t) * np.log(1 - p))   # PyTorch's documented l_n
    expected = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]
    call = lambda p, t: F.binary_cross_entropy(p, t, reduction, weight=here(weight))
    ps, ts = Tensor(here(p), requires_grad=True), Tensor(here(t), requires_grad=True)
    np.testing.assert_allclose(call(ps, ts).data, here(expected), rtol=1e-12)
    assert_gradients_match(call, ps, ts)
    module = nn.BCELoss(here(weight), reduction=reduction)   # weight first, by position, as PyTorch's
    np.testing.assert_array_equal(module(ps, ts).data, call(ps, ts).data)


def test_bce_with_logits_pos_weight_gradient_at_zero_logit_and_huge_ones():
    x = Tensor(here(np.array([0.0, 800.0, -800.0])), requires_grad=True)
    t = here(np.array([1.0, 0.0, 1.0]))
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="sum", pos_weight=here(np.array(3.0)))
    np.testing.assert_allclose(loss.item(), 3 * np.log(2) + 800 + 3 * 800, rtol=1e-12)
    loss.backward()   # (1 - t) - l sigmoid(-x), l = 1 + 2 t
    np.testing.assert_allclose(x.grad, here(np.array([-1.5, 1.0, -3.0])), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    log_q = np.log(RNG.dirichlet(np.ones(4), 5))
    p = RNG.dirichlet(np.ones(4), 5)
    p[0, 1] = 0.0                                   # 0 log 0 counts as 0
    target = np.log(p + 0.1) if log_target else p
    prob = np.exp(target) if log_target else p
    with np.errstate(divide="ignore", invalid="ignore"):
        losses = np.where(prob > 0, prob * (np.log(prob) - log_q), 0.0)
    expected = {"mean": losses.mean(), "sum": losses.sum(), "none": losses,
                "batchmean": losses.sum() / 5}[reduction]
    x = Tensor(here(log_q), requires_grad=True)
    call = lambda x: F.kl_div(x, here(target), reduction=reduction, log_target=log_target)
    np.testing.assert_allclose(call(x).data, here(expected), rtol=1e-12, atol=1e-15)
    assert_gradients_match(call, x)
    t = Tensor(here(RNG.uniform(0.1, 1.0, (5, 4))), requires_grad=True)   # the target's gradient too
    assert_gradients_match(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target), x, t)
    module = nn.KLDivLoss(reduction=reduction, log_target=log_target)
    np.testing.assert_array_equal(module(x, here(target)).data, call(x).data)


@pytest.mark.parametrize("beta", [0.5, 1.0, 0.0])
def test_smooth_l1_loss(beta):
    a, b = X, 0.3 * X + 0.2
    d = np.abs(a - b)
    losses = np.where(d < beta, 0.5 * d ** 2 / beta if beta else 0.0, d - 0.5 * beta)
    x = Tensor(here(a), requires_grad=True)
    call = lambda x: F.smooth_l1_loss(x, here(b), beta=beta)
    np.testing.assert_allclose(call(x).item(), losses.mean(), rtol=1e-12)
    assert_gradients_match(call, x)
    np.testing.assert_array_equal(nn.SmoothL1Loss(reduction="sum", beta=beta)(x, here(b)).data,
                                  F.smooth_l1_loss(x, here(b), reduction="sum", beta=beta).data)


def test_cosine_embedding_loss():
    a, b = X, X[::-1].copy()
    y = np.array([1.0, -1.0, 1.0, -1.0, 0.0])      # 0: neither, a loss of 0 (PyTorch's where)
    cos = (a * b).sum(1) / np.sqrt(((a * a).sum(1) + 1e-12) * ((b * b).sum(1) + 1e-12))
    losses = np.where(y == 1, 1 - cos, np.where(y == -1, np.maximum(cos - 0.1, 0), 0.0))
    call = lambda a, b: F.cosine_embedding_loss(a, b, here(y), margin=0.1, reduction="none")
    ta, tb = Tensor(here(a), requires_grad=True), Tensor(here(b), requires_grad=True)
    np.testing.assert_allclose(call(ta, tb).data, here(losses), rtol=1e-12)
    assert_gradients_match(lambda a, b: call(a, b).sum(), ta, tb)
    assert autonet.gradgradcheck(lambda a, b: call(a, b).sum(), (ta, tb))
    module = nn.CosineEmbeddingLoss(margin=0.1)
    np.testing.assert_allclose(module(ta, tb, here(y)).item(), losses.mean(), rtol=1e-12)


def test_margin_ranking_loss():
    a, b = X[:, 0].copy(), X[:, 1].copy()
    y = np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    losses = np.maximum(0.0, -y * (a - b) + 0.2)
    ta, tb = Tensor(here(a), requires_grad=True), Tensor(here(b), requires_grad=True)
    call = lambda a, b: F.margin_ranking_loss(a, b, here(y), margin=0.2)
    np.testing.assert_allclose(call(ta, tb).item(), losses.mean(), rtol=1e-12)
    assert_gradients_match(call, ta, tb)
    np.testing.assert_array_equal(nn.MarginRankingLoss(margin=0.2)(ta, tb, here(y)).data, call(ta, tb).data)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.cross_entropy(X, np.array([0, 1, 2, 3, 4])), ValueError, r"^cross_entropy: labels must lie in \[0, 4\)"),   # not wrapped
    (lambda: F.cross_entropy(X, RNG.dirichlet(np.ones(4), 5), ignore_index=0), ValueError,
     "ignore_index .* integer labels only"),
    (lambda: F.cross_entropy(X, LABELS, label_smoothing=1.5), ValueError, r"label_smoothing must lie in \[0, 1\]"),
    (lambda: F.cross_entropy(X, LABELS, weight=np.ones(3)), ValueError, r"weight must hold one .* \(4,\)"),
    (lambda: F.cross_entropy(X, LABELS, ignore_index=1.5), TypeError, "ignore_index must be an int"),
    (lambda: F.cross_entropy(X, LABELS, reduction="batchmean"), ValueError, "reduction must be one of"),
    (lambda: F.cross_entropy(X, np.zeros((5, 2), dtype=int)), ValueError, r"labels of shape \(5, 2\)"),
    (lambda: F.cross_entropy(X[0], 1), ValueError, r"x\[None\]"),
    (lambda: F.nll_loss(X, np.array([0.5, 1, 2, 3, 0])), TypeError, "integer class indices"),
    (lambda: F.binary_cross_entropy_with_logits(X, X, pos_weight=np.ones(3)), ValueError,
     r"pos_weight of shape \(3,\) does not broadcast"),
    (lambda: F.binary_cross_entropy(np.full((5, 4), 0.5), np.ones((5, 4)), weight=np.ones(3)), ValueError,
     r"binary_cross_entropy: weight of shape \(3,\) does not broadcast"),
    (lambda: F.binary_cross_entropy(X, np.ones((5, 4))), ValueError,   # PyTorch refuses too
     r"^binary_cross_entropy: every input must lie in \[0, 1\], got .*binary_cross_entropy_with_logits"),
    (lambda: F.binary_cross_entropy(np.array([0.5, np.nan]), np.ones(2)), ValueError, r"input .* got nan"),
    (lambda: F.binary_cross_entropy(np.full(2, 0.5), np.array([0.0, 1.5])), ValueError,
     r"^binary_cross_entropy: every target must lie in \[0, 1\], got 1.5"),
    (lambda: F.kl_div(X, X, reduction="batch"), ValueError, "batchmean"),
    (lambda: F.smooth_l1_loss(X, X, beta=-1.0), ValueError, "beta must be >= 0"),
    (lambda: F.cosine_embedding_loss(X, X, np.ones(4)), ValueError, r"target of shape \(4,\)"),
    (lambda: F.margin_ranking_loss(X[:, 0], X[:, 1], np.ones(3)), ValueError, "shape"),
])
@pytest.mark.host_only("the calls mix host arrays on purpose")
def test_bad_loss_options_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.host_only("the fused backend runs on the host")
def test_ignored_labels_stay_in_the_fused_kernel_and_match_eager_mode():
    pytest.importorskip("numba")
    models = [nn.Linear(3, 4, rng=0), nn.Linear(3, 4, rng=0)]
    optimizers = [autonet.optim.SGD(m.parameters(), lr=0.1) for m in models]

    def step_of(model, optimizer):
        def step(x, labels):
            loss = F.cross_entropy(model(x), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        return step

    eager = step_of(models[0], optimizers[0])
    fused = autonet.compile(step_of(models[1], optimizers[1]), backend="fused")
    rng = np.random.default_rng(1)
    for call in range(4):
        x, labels = rng.normal(size=(6, 3)), rng.integers(0, 4, 6)
        labels[call % 6] = -100                       # a different sample ignored on each call
        np.testing.assert_allclose(fused(x, labels).item(), eager(x, labels).item(), rtol=1e-12)
    assert fused.programs[0].backend == "fused"
    np.testing.assert_allclose(models[1].weight.data, models[0].weight.data, rtol=1e-12)


@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss, nn.BCELoss])
@pytest.mark.host_only("no arrays")
def test_a_reduction_given_where_pytorch_puts_weight_is_explained(loss):
    with pytest.raises(TypeError, match=r"first argument is weight.*reduction='sum' by keyword"):
        loss("sum")


@pytest.mark.parametrize("options", [dict(weight=WEIGHT), dict(ignore_index=1, label_smoothing=0.1),
                                     dict(reduction="none")], ids=["weighted", "ignore-a-class", "none"])
def test_the_general_path_replays_each_calls_labels_inside_compile(options):
    options = {k: here(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}

    def loss(x, labels):
        return F.cross_entropy(x, labels, **options).sum()

    compiled = autonet.compile(loss)
    rng = np.random.default_rng(4)
    for call in range(4):
        x, labels = here(rng.standard_normal((5, 4))), rng.integers(0, 4, 5)
        labels[call] = [1, options.get("ignore_index", -100), 1, 3][call]   # an ignored one on call 1
        labels = Tensor(here(labels), dtype=np.int64)   # a Tensor: on a device, arrays are refused
        np.testing.assert_array_equal(compiled(Tensor(x), labels).data, loss(Tensor(x), labels).data)


@pytest.mark.host_only("the step takes host arrays")
def test_bce_checks_each_compiled_calls_probabilities():
    w = Tensor(np.array([0.5, 0.25]), requires_grad=True)

    def step(scale, target):
        return F.binary_cross_entropy(w * scale, target)

    compiled = autonet.compile(step)
    target = np.array([1.0, 0.0])
    assert compiled(np.array([1.0, 2.0]), target).item() == pytest.approx(step(np.array([1.0, 2.0]), target).item())
    with pytest.raises(ValueError, match=r"every input must lie in \[0, 1\], got 1.5"):
        compiled(np.array([3.0, 1.0]), target)
