"""Convolution, pooling, normalization, dropout, embedding and the new losses.

Forward values against direct NumPy loops written here (independent of the
im2col implementation), gradients of the first and second order against
finite differences, and the module conventions (buffers, dtype, init).
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.testing import assert_gradients_match


# ------------------------------------------------------------------ references by loops
def conv2d_loops(x, w, b, stride, padding, dilation, groups):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    x = np.pad(x, ((0, 0), (0, 0), ph, pw))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    per_group = o // groups
    for i in range(n):
        for k in range(o):
            g = k // per_group
            for y in range(oh):
                for z in range(ow):
                    patch = x[i, g * cg:(g + 1) * cg, y * sh: y * sh + dh * (kh - 1) + 1: dh,
                              z * sw: z * sw + dw * (kw - 1) + 1: dw]
                    out[i, k, y, z] = np.sum(patch * w[k]) + (b[k] if b is not None else 0.0)
    return out


def pool2d_loops(x, kernel, stride, padding, reduce, fill):
    x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=fill)
    n, c, h, w = x.shape
    oh, ow = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
    out = np.zeros((n, c, oh, ow))
    for y in range(oh):
        for z in range(ow):
            window = x[:, :, y * stride[0]: y * stride[0] + kernel[0], z * stride[1]: z * stride[1] + kernel[1]]
            out[:, :, y, z] = reduce(window.reshape(n, c, -1), axis=-1)
    return out


CONV_CASES = [
    dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1, call={}),
    dict(stride=(2, 1), padding=((1, 1), (2, 2)), dilation=(1, 1), groups=1,
         call=dict(stride=(2, 1), padding=(1, 2))),
    dict(stride=(1, 1), padding=((1, 1), (0, 1)), dilation=(1, 1), groups=1, call=dict(padding="same")),
    dict(stride=(1, 2), padding=((0, 0), (0, 0)), dilation=(2, 1), groups=2,
         call=dict(stride=(1, 2), dilation=(2, 1), groups=2)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: str(c["call"]))
def test_conv2d_matches_direct_loops_and_finite_differences(case):
    rng = np.random.default_rng(0)
    groups = case["groups"]
    x = rng.normal(size=(2, 4, 6, 5))
    w = rng.normal(size=(6, 4 // groups, 3, 2))
    b = rng.normal(size=6)
    out = F.conv2d(Tensor(x), Tensor(w), Tensor(b), **case["call"])
    expected = conv2d_loops(x, w, b, case["stride"], case["padding"], case["dilation"], groups)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    tensors = [Tensor(a, requires_grad=True) for a in (x[:1], w, b)]
    assert_gradients_match(lambda x, w, b: F.conv2d(x, w, b, **case["call"]), *tensors)


def test_conv_second_derivatives():
    rng = np.random.default_rng(1)
    x = Tensor(rng.normal(size=(1, 2, 4, 4)), requires_grad=True)
    w = Tensor(rng.normal(size=(3, 2, 2, 2)), requires_grad=True)
    assert autonet.gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w])
    x1 = Tensor(rng.normal(size=(1, 2, 6)), requires_grad=True)
    w1 = Tensor(rng.normal(size=(2, 1, 3)), requires_grad=True)
    assert autonet.gradgradcheck(lambda x, w: F.conv1d(x, w, padding="same", groups=2), [x1, w1])


def test_conv1d_is_conv2d_on_a_height_of_one():
    rng = np.random.default_rng(2)
    x, w, b = rng.normal(size=(2, 3, 9)), rng.normal(size=(4, 3, 3)), rng.normal(size=4)
    out = F.conv1d(Tensor(x), Tensor(w), Tensor(b), stride=2, padding=1, dilation=2)
    expected = conv2d_loops(x[:, :, None], w[:, :, None], b, (1, 2), ((0, 0), (1, 1)), (1, 2), 1)[:, :, 0]
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


@given(st.sampled_from([((2, 2), None, (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (1, 0))]))
def test_pooling_matches_direct_loops(setting):
    kernel, stride, padding = setting
    x = np.random.default_rng(3).normal(size=(2, 3, 7, 6))
    stride_pair = stride or kernel
    np.testing.assert_array_equal(
        F.max_pool2d(Tensor(x), kernel, stride, padding).data,
        pool2d_loops(x, kernel, stride_pair, padding, np.max, -np.inf))
    np.testing.assert_allclose(
        F.avg_pool2d(Tensor(x), kernel, stride, padding).data,
        pool2d_loops(x, kernel, stride_pair, padding, np.mean, 0.0), rtol=1e-14)


def test_pooling_gradients():
    x = Tensor(np.random.default_rng(4).permutation(2 * 2 * 5 * 4).reshape(2, 2, 5, 4) * 0.1,
               requires_grad=True)   # distinct values: max pooling is differentiable there
    assert_gradients_match(lambda x: F.max_pool2d(x, 2, 1, 1), x)
    assert_gradients_match(lambda x: F.avg_pool2d(x, 3, 2, 1), x)
    assert autonet.gradgradcheck(lambda x: F.avg_pool1d(x.reshape(2, 2, 20), 4), [x])


def test_max_pooling_sends_a_tie_to_the_first_maximum():
    x = Tensor([[[[1.0, 3.0], [3.0, 0.0]]]], requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_conv_refuses_what_does_not_fit():
    x = Tensor(np.ones((1, 4, 5, 5)))
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, np.ones((6, 3, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d(x, np.ones((2, 4, 6, 6)))
    with pytest.raises(ValueError, match="same"):
        F.conv2d(x, np.ones((2, 4, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv2d(np.ones((4, 5, 5)), np.ones((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="half the kernel"):
        F.max_pool2d(x, 2, padding=2)


def test_conv_layers_initialise_as_pytorch_and_take_dtype():
    layer = nn.Conv2d(4, 6, (3, 2), groups=2, rng=0, dtype=np.float32)
    assert layer.weight.shape == (6, 2, 3, 2) and layer.weight.dtype == np.float32
    bound = 1 / math.sqrt(2 * 3 * 2)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    out = layer(Tensor(np.ones((1, 4, 5, 5)), dtype=np.float32))
    assert out.dtype == np.float32 and out.shape == (1, 6, 3, 4)
    assert nn.Conv1d(2, 3, 5, padding="same", rng=0)(Tensor(np.ones((1, 2, 7)))).shape == (1, 3, 7)


# ------------------------------------------------------------------ normalization
def test_batch_norm_training_and_running_statistics():
    rng = np.random.default_rng(5)
    layer = nn.BatchNorm2d(3, momentum=0.2)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.normal(2.0, 3.0, size=(4, 3, 2, 2))
        out = layer(Tensor(x))
        batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        expected = (x - batch_mean[:, None, None]) / np.sqrt(batch_var[:, None, None] + 1e-5)
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
        mean = 0.8 * mean + 0.2 * batch_mean
        var = 0.8 * var + 0.2 * x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(layer.running_mean.data, mean, rtol=1e-13)
    np.testing.assert_allclose(layer.running_var.data, var, rtol=1e-13)
    assert layer.num_batches_tracked.item() == 3
    layer.eval()
    x = rng.normal(size=(2, 3, 2, 2))
    np.testing.assert_allclose(layer(Tensor(x)).data, (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5),
                               rtol=1e-12)
    assert set(layer.state_dict()) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}


def test_normalization_gradients():
    rng = np.random.default_rng(6)
    x = Tensor(rng.normal(size=(4, 3, 2)), requires_grad=True)
    w, b = Tensor(rng.normal(size=3), requires_grad=True), Tensor(rng.normal(size=3), requires_grad=True)
    assert_gradients_match(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x, w, b)
    lw, lb = Tensor(rng.normal(size=(3, 2)), requires_grad=True), Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    assert_gradients_match(lambda x, w, b: F.layer_norm(x, (3, 2), w, b), x, lw, lb)
    assert autonet.gradgradcheck(lambda x: F.layer_norm(x, 2), [x])
    assert autonet.gradgradcheck(lambda x, w: F.batch_norm(x, None, None, w, None, training=True), [x, w])


def test_layer_norm_matches_its_formula():
    x = np.random.default_rng(7).normal(size=(2, 5, 4))
    layer = nn.LayerNorm(4)
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="does not end in"):
        layer(Tensor(np.ones((2, 3))))


def test_batch_norm_refuses_one_value_per_channel_and_wrong_channels():
    with pytest.raises(ValueError, match="more than one value"):
        nn.BatchNorm1d(3)(Tensor(np.ones((1, 3))))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm1d(3)(Tensor(np.ones((4, 2))))


# ------------------------------------------------------------------ dropout, embedding, losses
def test_dropout_scales_kept_elements_and_is_identity_in_eval():
    layer = nn.Dropout(0.25, rng=0)
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    out = layer(x)
    kept = out.data != 0
    np.testing.assert_allclose(out.data[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.02
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.data)       # the same mask, the same scale
    layer.eval()
    assert layer(x) is x
    assert (nn.Dropout(1.0)(x).data == 0).all()
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_compiled_dropout_draws_a_new_mask_on_every_call_exactly_as_eager():
    def make():
        layer = nn.Dropout(0.5, rng=3)
        w = Tensor(np.ones(8), requires_grad=True)
        return w, lambda: (layer(w) * w).sum()

    (_, eager), (_, compiled) = make(), make()
    compiled = autonet.compile(compiled)
    values = [compiled().item() for _ in range(5)]
    assert values == [eager().item() for _ in range(5)]
    assert len(set(values)) > 1


@pytest.mark.host_only("host index arrays with device weights: refused on a device")
def test_embedding_picks_rows_and_accumulates_repeated_ones():
    layer = nn.Embedding(5, 3, rng=0)
    indices = np.array([[1, 4, 1], [0, 1, 2]])
    out = layer(indices)
    np.testing.assert_array_equal(out.data, layer.weight.data[indices])
    out.sum().backward()
    np.testing.assert_array_equal(layer.weight.grad[:, 0], [1, 3, 1, 0, 1])
    assert_gradients_match(lambda w: F.embedding(indices, w) ** 2, Tensor(layer.weight.data, requires_grad=True))
    with pytest.raises(IndexError, match="lie in"):
        layer(np.array([-1]))
    with pytest.raises(TypeError, match="integers"):
        layer(np.array([0.5]))


@given(st.integers(1, 40), st.integers(1, 30))
def test_row_scatter_equals_numpy_add_at(rows, picks):
    rng = np.random.default_rng(rows * 100 + picks)
    index = rng.integers(-rows, rows, size=picks)
    values = rng.normal(size=(picks, 3))
    expected = np.zeros((rows, 3))
    np.add.at(expected, index, values)
    w = Tensor(np.zeros((rows, 3)), requires_grad=True)
    w[index].backward(values)
    np.testing.assert_allclose(w.grad, expected, rtol=1e-13, atol=1e-15)


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


# ------------------------------------------------------------------ modules
def test_buffers_are_saved_loaded_and_listed():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2))
    model(Tensor(np.random.default_rng(9).normal(size=(2, 1, 5, 5))))
    state = model.state_dict()
    assert "1.running_mean" in state and "1.num_batches_tracked" in state
    assert [name for name, _ in model.named_buffers()] == ["1.running_mean", "1.running_var",
                                                           "1.num_batches_tracked"]
    fresh = nn.Sequential(nn.Conv2d(1, 2, 3, rng=1), nn.BatchNorm2d(2))
    fresh.load_state_dict(state)
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, state[name])
    model[1].register_buffer("scratch", np.ones(2), persistent=False)
    assert "1.scratch" not in model.state_dict() and "1.scratch" in dict(model.named_buffers())


def test_module_astype_converts_parameters_and_floating_buffers():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4))
    assert model.astype(np.float32) is model
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert model[1].running_mean.dtype == np.float32 and model[1].num_batches_tracked.dtype.kind == "i"
    assert model(Tensor(np.ones((2, 3)), dtype=np.float32)).dtype == np.float32
    with pytest.raises(TypeError):
        model.astype(np.int64)


def test_activation_modules_apply_their_functions():
    x = Tensor(np.linspace(-3, 3, 13))
    for module, function in ((nn.GELU(), F.gelu), (nn.GELU("tanh"), lambda x: F.gelu(x, "tanh")),
                             (nn.SiLU(), F.silu), (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
                             (nn.ELU(0.5), lambda x: F.elu(x, 0.5)), (nn.Softplus(2.0, 3.0), lambda x: F.softplus(x, 2.0, 3.0))):
        np.testing.assert_array_equal(module(x).data, function(x).data)
    assert nn.Flatten()(Tensor(np.ones((2, 3, 4)))).shape == (2, 12)
    assert nn.Flatten(0, 1)(Tensor(np.ones((2, 3, 4)))).shape == (6, 4)


def test_pooling_over_exact_tiles_matches_the_general_windows():
    rng = np.random.default_rng(10)
    x = rng.permutation(2 * 3 * 8 * 6).reshape(2, 3, 8, 6) * 0.01     # distinct values
    for kernel in ((2, 2), (4, 3), (2, 1)):
        np.testing.assert_array_equal(F.max_pool2d(Tensor(x), kernel).data,
                                      pool2d_loops(x, kernel, kernel, (0, 0), np.max, -np.inf))
        np.testing.assert_allclose(F.avg_pool2d(Tensor(x), kernel).data,
                                   pool2d_loops(x, kernel, kernel, (0, 0), np.mean, 0.0), rtol=1e-14)
        t = Tensor(x, requires_grad=True)
        assert_gradients_match(lambda t: F.max_pool2d(t, kernel), t)
        assert autonet.gradgradcheck(lambda t: F.max_pool2d(t, kernel) ** 2, [t])


def test_register_buffer_refuses_bad_names_clashes_and_parameters():
    layer = nn.Linear(2, 2, rng=0)
    for name in ("", "a.b", 3):
        with pytest.raises(KeyError):
            layer.register_buffer(name, np.zeros(2))
    with pytest.raises(KeyError, match="already has"):
        layer.register_buffer("weight", np.zeros(2))
    with pytest.raises(TypeError, match="Parameter"):
        layer.register_buffer("extra", nn.Parameter(np.zeros(2)))
    layer.register_buffer("steps", np.array([1, 2]))
    assert layer.steps.dtype.kind == "i" and not layer.steps.requires_grad   # the value's own dtype


def test_gradient_clipping_refuses_bad_settings():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="norm_type"):
        autonet.nn.utils.clip_grad_norm_([w], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="clip_value"):
        autonet.nn.utils.clip_grad_value_([w], -1.0)
    assert autonet.nn.utils.clip_grad_norm_([w], 1.0) == 0.0   # no gradients yet
