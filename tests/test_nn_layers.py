"""Layers: convolution (and transposed), pooling (fixed, adaptive, with options), resizing,
normalization, dropout and embedding.

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

from test_autograd_memory import _small_cnn
from test_nn_sequence import assert_compiled_training_equals_eager, data


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


@pytest.mark.parametrize("make, argument", [
    (lambda: nn.Conv2d(3, 0, 3), "out_channels"), (lambda: nn.Conv2d(0, 4, 3), "in_channels"),
    (lambda: nn.Conv1d(3, 0, 3), "out_channels"), (lambda: nn.ConvTranspose2d(3, 0, 3), "out_channels"),
    (lambda: nn.ConvTranspose1d(0, 3, 3), "in_channels"), (lambda: nn.Conv2d(2.0, 4, 3), "in_channels"),
    (lambda: nn.BatchNorm2d(0), "num_features"), (lambda: nn.BatchNorm1d(True), "num_features"),
    (lambda: nn.Linear(-1, 3), "in_features"), (lambda: nn.Linear(3, 1.5), "out_features"),
    # these failed deep inside ("'float' object cannot be interpreted as an integer", NumPy's
    # "negative dimensions are not allowed")
    (lambda: nn.Conv2d(4, 6, 2.0), "kernel_size"), (lambda: nn.ConvTranspose1d(4, 6, (True,)), "kernel_size"),
    (lambda: nn.Conv2d(4, 6, 3, groups=2.0), "groups"), (lambda: nn.ConvTranspose2d(4, 6, 3, groups=0), "groups"),
    (lambda: nn.Embedding(-1, 3), "num_embeddings"), (lambda: nn.Embedding(3, 2.0), "embedding_dim")])
def test_layers_refuse_sizes_that_are_not_counts(make, argument):
    """A layer with no channel at all, or a size that is not an int, is refused when it is made,
    naming the argument (a convolution without output channels: PyTorch refuses it at its call)."""
    with pytest.raises(ValueError, match=f"{argument} must be"):
        make()


def test_conv_refuses_an_empty_or_misshapen_weight():
    x = Tensor(np.ones((1, 3, 5, 5)))
    for weight in (np.ones((0, 3, 3, 3)), np.ones((2, 3, 0, 3))):
        with pytest.raises(ValueError, match="is empty"):
            F.conv2d(x, weight)
    with pytest.raises(ValueError, match="is empty"):
        F.conv_transpose2d(x, np.ones((3, 0, 3, 3)))
    with pytest.raises(ValueError, match=r"weight must have shape \(O, C // groups, kh, kw\)"):
        F.conv2d(x, np.ones((2, 3, 3)))


def test_a_linear_layer_without_inputs_gives_its_bias_as_pytorch_does():
    """``Linear(0, n)``: an empty sum, so the bias alone (PyTorch starts that bias at 0); the
    gradients still flow to it, one per row."""
    layer = nn.Linear(0, 3, rng=0)
    assert layer.weight.shape == (3, 0) and np.all(layer.bias.data == 0)
    layer.bias.data[...] = [1.0, 2.0, 3.0]
    out = layer(Tensor(np.ones((2, 0))))
    np.testing.assert_array_equal(out.data, [[1.0, 2.0, 3.0]] * 2)
    out.sum().backward()
    np.testing.assert_array_equal(layer.bias.grad, [2.0, 2.0, 2.0])
    assert layer.weight.grad.shape == (3, 0)


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


# ------------------------------------------------------------------ transposed convolution
def conv_transpose2d_loops(x, w, b, stride, padding, output_padding, groups, dilation):
    """Each input pixel scatters its kernel into the output (PyTorch's definition), then crop."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    full = np.zeros((n, og * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oph, (wd - 1) * sw + dw * (kw - 1) + 1 + opw))
    per_group = c // groups
    for ci in range(c):
        g = ci // per_group
        for o in range(og):
            for i in range(h):
                for j in range(wd):
                    for ki in range(kh):
                        for kj in range(kw):
                            full[:, g * og + o, i * sh + ki * dh, j * sw + kj * dw] += x[:, ci, i, j] * w[ci, o, ki, kj]
    out = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    return out + b[None, :, None, None]


TRANSPOSE_CASES = [dict(), dict(stride=(2, 2), padding=(1, 1), output_padding=(1, 1)),
                   dict(stride=(3, 2), padding=(2, 0), output_padding=(2, 1), dilation=(1, 2)),
                   dict(groups=2, stride=(2, 1), padding=(0, 1))]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
def test_conv_transpose_matches_scatter_loops_and_finite_differences(case):
    rng = np.random.default_rng(20)
    full = dict(stride=(1, 1), padding=(0, 0), output_padding=(0, 0), groups=1, dilation=(1, 1), **{})
    full.update(case)
    x, w, b = rng.normal(size=(2, 4, 3, 4)), rng.normal(size=(4, 6 // full["groups"], 3, 2)), rng.normal(size=6)
    out = F.conv_transpose2d(Tensor(x), Tensor(w), Tensor(b), **case)
    expected = conv_transpose2d_loops(x, w, b, full["stride"], full["padding"], full["output_padding"],
                                      full["groups"], full["dilation"])
    np.testing.assert_allclose(data(out), expected, rtol=0, atol=1e-12)
    one_d = {k: v[1] if isinstance(v, tuple) else v for k, v in case.items()}
    out1 = F.conv_transpose1d(Tensor(x[:, :, 0]), Tensor(w[:, :, 0]), Tensor(b), **one_d)
    full1 = {k: (1, v[1]) if isinstance(v, tuple) else v for k, v in full.items()}
    full1["padding"] = (0, full["padding"][1])
    full1["output_padding"] = (0, full["output_padding"][1])
    expected1 = conv_transpose2d_loops(x[:, :, :1], w[:, :, :1], b, full1["stride"], full1["padding"],
                                       full1["output_padding"], full["groups"], full1["dilation"])
    np.testing.assert_allclose(data(out1), expected1[:, :, 0], rtol=0, atol=1e-12)
    small = [Tensor(a, requires_grad=True) for a in (x[:1, :, :2, :2], w, b)]
    assert_gradients_match(lambda x, w, b: F.conv_transpose2d(x, w, b, **case), *small)


def test_conv_transpose_modules_init_second_derivatives_and_compile():
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, rng=0)
    assert layer.weight.shape == (4, 3, 3, 3) and layer.bias.shape == (6,)
    bound = 1 / np.sqrt(3 * 9)
    assert bound * 0.9 < np.abs(data(layer.weight)).max() <= bound
    assert nn.ConvTranspose1d(2, 3, 4, rng=0).weight.shape == (2, 3, 4)
    rng = np.random.default_rng(21)
    x = Tensor(rng.normal(size=(1, 2, 2, 2)), requires_grad=True)
    w = Tensor(rng.normal(size=(2, 1, 2, 2)), requires_grad=True)
    assert autonet.gradgradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                                 [x, w])
    batches = [(Tensor(rng.normal(size=(2, 3, 4, 4))),) for _ in range(3)]
    assert_compiled_training_equals_eager(
        lambda: nn.Sequential(nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=1),
                              nn.Upsample(scale_factor=1.5, mode="bilinear"), nn.AdaptiveMaxPool2d((3, 2)),
                              nn.GroupNorm(1, 2), nn.MaxPool2d(2, stride=1, ceil_mode=True, dilation=1),
                              nn.AvgPool2d(2, padding=1, ceil_mode=True, count_include_pad=False),
                              nn.AdaptiveAvgPool2d(2)),
        batches, lambda m, x: (m(x) ** 2).mean())


# ------------------------------------------------------------------ interpolation and adaptive pooling
def interpolate_ref(x, sizes, scales, mode, align_corners):
    """PyTorch's documented source-index rules, one output element at a time."""
    out = x
    for axis, (n_out, scale) in enumerate(zip(sizes, scales)):
        axis = axis + 2
        n_in = out.shape[axis]
        picks = []
        for i in range(n_out):
            if mode == "nearest":
                step = np.float32(1 / scale) if scale else np.float32(n_in) / np.float32(n_out)
                j = min(int(np.floor(np.float32(i) * step)), n_in - 1) if n_in != n_out else i
                picks.append(np.take(out, j, axis=axis))
                continue
            if align_corners:
                src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            else:
                src = max((i + 0.5) * (1 / scale if scale else n_in / n_out) - 0.5, 0.0)
            j0 = int(np.floor(src))
            j1 = min(j0 + 1, n_in - 1)
            t = src - j0
            picks.append(np.take(out, j0, axis=axis) * (1 - t) + np.take(out, j1, axis=axis) * t)
        out = np.stack(picks, axis=axis)
    return out


INTERPOLATE_CASES = [((2, 3, 7), dict(size=12, mode="nearest")), ((2, 3, 7), dict(scale_factor=1.7, mode="nearest")),
                     ((2, 3, 7), dict(scale_factor=2.5, mode="linear")),
                     ((2, 3, 7), dict(size=3, mode="linear", align_corners=True)),
                     ((1, 2, 5, 6), dict(size=(7, 4), mode="nearest")),
                     ((1, 2, 5, 6), dict(size=(9, 13), mode="bilinear")),
                     ((1, 2, 5, 6), dict(scale_factor=(0.5, 3), mode="bilinear", align_corners=True))]


@pytest.mark.parametrize("shape, call", INTERPOLATE_CASES, ids=str)
def test_interpolate_follows_pytorchs_index_rules(shape, call):
    rng = np.random.default_rng(22)
    x = rng.normal(size=shape)
    spatial = len(shape) - 2
    scales = call.get("scale_factor", None)
    scales = (None,) * spatial if scales is None else ((scales,) * spatial if np.ndim(scales) == 0 else scales)
    sizes = call.get("size") or tuple(int(np.floor(n * s)) for n, s in zip(shape[2:], scales))
    sizes = (sizes,) * spatial if np.ndim(sizes) == 0 else sizes
    expected = interpolate_ref(x, sizes, scales, call["mode"], call.get("align_corners"))
    np.testing.assert_allclose(data(F.interpolate(Tensor(x), **call)), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(data(nn.Upsample(**call)(Tensor(x))), expected, rtol=0, atol=1e-12)
    assert_gradients_match(lambda x: F.interpolate(x, **call), Tensor(x[:1, :1], requires_grad=True))


def adaptive_ref(x, sizes, reduce):
    out = x
    for axis, n_out in enumerate(sizes):
        axis = axis + x.ndim - len(sizes)
        n_in = out.shape[axis]
        windows = [np.take(out, range(i * n_in // n_out, -(-(i + 1) * n_in // n_out)), axis=axis)
                   for i in range(n_out)]
        out = np.stack([reduce(w, axis=axis) for w in windows], axis=axis)
    return out


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pools_use_pytorchs_windows(kind):
    rng = np.random.default_rng(23)
    x = rng.normal(size=(2, 3, 7, 5))
    reduce = np.mean if kind == "avg" else np.max
    for size in ((3, 2), (5, 5), 1, (None, 3), (4, 7)):
        sizes = ((size, size) if np.ndim(size) == 0 else tuple(s if s is not None else n for s, n in zip(size, (7, 5))))
        out = getattr(nn, f"Adaptive{kind.capitalize()}Pool2d")(size)(Tensor(x))
        np.testing.assert_allclose(data(out), adaptive_ref(x, sizes, reduce), rtol=0, atol=1e-12)
    out1 = getattr(F, f"adaptive_{kind}_pool1d")(Tensor(x[:, :, 0]), 3)
    np.testing.assert_allclose(data(out1), adaptive_ref(x[:, :, 0], (3,), reduce), rtol=0, atol=1e-12)
    assert_gradients_match(lambda x: getattr(F, f"adaptive_{kind}_pool2d")(x, (3, 2)),
                           Tensor(x[:1, :1], requires_grad=True))


def test_adaptive_max_gives_the_gradient_to_the_first_maximum_in_row_major_order():
    x = Tensor(np.array([[[[0.0, 5.0], [5.0, 5.0]]]]), requires_grad=True)
    F.adaptive_max_pool2d(x, 1).sum().backward()
    np.testing.assert_array_equal(data(x.grad)[0, 0], [[0, 1], [0, 0]])


# ------------------------------------------------------------------ pooling options
def pool_ref(x, kernel, stride, padding, dilation, ceil_mode, kind, count_include_pad=True):
    """Windows by loops with PyTorch's output size and divisor rules; max also returns indices."""
    n, c, h, w = x.shape
    outs = []
    for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation):
        span = size + 2 * p - d * (k - 1) - 1
        o = -(-span // s) + 1 if ceil_mode else span // s + 1
        if ceil_mode and (o - 1) * s >= size + p:
            o -= 1
        outs.append(o)
    out, where = np.zeros((n, c) + tuple(outs)), np.zeros((n, c) + tuple(outs), dtype=np.int64)
    for i in range(outs[0]):
        for j in range(outs[1]):
            rows = [i * stride[0] - padding[0] + a * dilation[0] for a in range(kernel[0])]
            cols = [j * stride[1] - padding[1] + b * dilation[1] for b in range(kernel[1])]
            inside = [(r, q) for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
            values = np.stack([x[:, :, r, q] for r, q in inside], axis=-1)
            if kind == "max":
                first = np.argmax(values, axis=-1)
                out[:, :, i, j] = values.max(axis=-1)
                where[:, :, i, j] = np.array([r * w + q for r, q in inside])[first]
            else:
                ends = [min(i * stride[0] - padding[0] + kernel[0], h + padding[0]),
                        min(j * stride[1] - padding[1] + kernel[1], w + padding[1])]
                starts = [i * stride[0] - padding[0], j * stride[1] - padding[1]]
                divisor = (ends[0] - starts[0]) * (ends[1] - starts[1]) if count_include_pad else len(inside)
                out[:, :, i, j] = values.sum(axis=-1) / divisor
    return out, where


POOL_CASES = [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
              dict(kernel_size=3, stride=2, ceil_mode=True),
              dict(kernel_size=(2, 3), stride=(3, 2), padding=(1, 1), dilation=(2, 1)),
              dict(kernel_size=2, stride=2, ceil_mode=True, dilation=2),
              dict(kernel_size=3, stride=3, ceil_mode=True, padding=1)]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool_options_and_indices_match_loops(case):
    rng = np.random.default_rng(24)
    x = rng.normal(size=(2, 3, 7, 8)).round(0)   # ties: the first maximum wins
    pair = lambda v: (v, v) if np.ndim(v) == 0 else v   # noqa: E731
    expected, where = pool_ref(x, pair(case["kernel_size"]), pair(case.get("stride", case["kernel_size"])),
                               pair(case.get("padding", 0)), pair(case.get("dilation", 1)),
                               case.get("ceil_mode", False), "max")
    out, indices = F.max_pool2d(Tensor(x), **case, return_indices=True)
    np.testing.assert_array_equal(data(out), expected)
    np.testing.assert_array_equal(indices, where)
    assert isinstance(indices, np.ndarray) or not isinstance(indices, Tensor)
    layer_out, _ = nn.MaxPool2d(**case, return_indices=True)(Tensor(x))
    np.testing.assert_array_equal(data(layer_out), expected)
    x_small = Tensor(rng.normal(size=(1, 1, 7, 8)), requires_grad=True)
    assert_gradients_match(lambda x: F.max_pool2d(x, **case), x_small)
    if "dilation" not in case:
        for include in (True, False):
            expected, _ = pool_ref(x, pair(case["kernel_size"]), pair(case.get("stride", case["kernel_size"])),
                                   pair(case.get("padding", 0)), (1, 1), case.get("ceil_mode", False), "avg",
                                   include)
            out = nn.AvgPool2d(**case, count_include_pad=include)(Tensor(x))
            np.testing.assert_allclose(data(out), expected, rtol=0, atol=1e-12)
    one_d = {k: v[1] if isinstance(v, tuple) else v for k, v in case.items()}
    out1, indices1 = F.max_pool1d(Tensor(x[:, :, 0]), **one_d, return_indices=True)
    expected1, where1 = pool_ref(x[:, :, :1], (1, one_d["kernel_size"]), (1, one_d.get("stride", one_d["kernel_size"])),
                                 (0, one_d.get("padding", 0)), (1, one_d.get("dilation", 1)),
                                 one_d.get("ceil_mode", False), "max")
    np.testing.assert_array_equal(data(out1), expected1[:, :, 0])
    np.testing.assert_array_equal(indices1, where1[:, :, 0])


@pytest.mark.parametrize("case", POOL_CASES + [dict(kernel_size=(3, 2), padding=1, stride=1)], ids=str)
def test_max_pool_windows_of_only_minus_inf_pick_their_first_element_inside_the_input(case):
    """A window whose elements are all -inf ties with its -inf padding; PyTorch's index and
    gradient go to the first element inside the input (the loops' ``inside``), not to the padding
    (autonet sent the gradient nowhere and returned an index outside the plane)."""
    rng = np.random.default_rng(31)
    x = np.where(rng.random((2, 3, 7, 8)) < 0.7, -np.inf, rng.normal(size=(2, 3, 7, 8)).round(0))
    pair = lambda v: (v, v) if np.ndim(v) == 0 else v   # noqa: E731
    expected, where = pool_ref(x, pair(case["kernel_size"]), pair(case.get("stride", case["kernel_size"])),
                               pair(case.get("padding", 0)), pair(case.get("dilation", 1)),
                               case.get("ceil_mode", False), "max")
    xt = Tensor(x, requires_grad=True)
    out, indices = F.max_pool2d(xt, **case, return_indices=True)
    np.testing.assert_array_equal(data(out), expected)
    np.testing.assert_array_equal(indices, where)
    upstream = rng.normal(size=expected.shape)
    out.backward(upstream)
    grad = np.zeros((2, 3, 7 * 8))
    for i in range(2):
        for c in range(3):
            np.add.at(grad[i, c], where[i, c].ravel(), upstream[i, c].ravel())
    np.testing.assert_allclose(data(xt.grad), grad.reshape(x.shape), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ normalisation and embedding
def test_group_norm_matches_its_formula_and_differentiates():
    rng = np.random.default_rng(25)
    x = rng.normal(size=(3, 6, 4, 5))
    norm = nn.GroupNorm(3, 6)
    w, b = rng.normal(size=6), rng.normal(size=6)
    norm.weight.data[...] = w
    norm.bias.data[...] = b
    grouped = x.reshape(3, 3, -1)
    expected = ((grouped - grouped.mean(-1, keepdims=True)) / np.sqrt(grouped.var(-1, keepdims=True) + 1e-5))
    expected = expected.reshape(x.shape) * w[None, :, None, None] + b[None, :, None, None]
    np.testing.assert_allclose(data(norm(Tensor(x))), expected, rtol=0, atol=1e-12)
    small = Tensor(rng.normal(size=(2, 4, 3)), requires_grad=True)
    assert_gradients_match(lambda x: F.group_norm(x, 2, Tensor(w[:4]), Tensor(b[:4])), small)
    assert autonet.gradgradcheck(lambda x: F.group_norm(x, 2), [small])


def test_batch_norm_momentum_none_is_the_cumulative_average():
    rng = np.random.default_rng(26)
    batches = [rng.normal(size=(5, 3)) * (i + 1) + i for i in range(4)]
    for compiled in (False, True):
        layer = nn.BatchNorm1d(3, momentum=None)
        step = (lambda x: layer(x).sum())
        step = autonet.compile(step) if compiled else step
        for x in batches:
            step(Tensor(x))
        np.testing.assert_allclose(data(layer.running_mean), np.mean([x.mean(0) for x in batches], axis=0),
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(data(layer.running_var),
                                   np.mean([x.var(0, ddof=1) for x in batches], axis=0), rtol=0, atol=1e-12)


def test_embedding_padding_row_is_zero_and_learns_nothing():
    table = nn.Embedding(5, 3, padding_idx=-2, rng=0)
    assert table.padding_idx == 3
    np.testing.assert_array_equal(data(table.weight)[3], 0.0)
    indices = np.array([[3, 1, 3], [0, 3, 1]])
    upstream = np.random.default_rng(27).normal(size=(2, 3, 3))
    (table(Tensor(indices, dtype=np.int64)) * Tensor(upstream)).sum().backward()
    expected = np.zeros((5, 3))
    np.add.at(expected, indices, upstream)
    expected[3] = 0.0
    np.testing.assert_allclose(data(table.weight.grad), expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ bad input for the layers above
def test_convolution_pooling_and_resizing_bad_input_is_explained():
    with pytest.raises(ValueError, match="output_padding .* must be smaller than the stride"):
        nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="output_padding .* must be smaller than the stride"):
        F.conv_transpose1d(Tensor(np.ones((1, 2, 4))), Tensor(np.ones((2, 2, 3))), stride=1, output_padding=1)
    x = Tensor(np.ones((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="exactly one of size and scale_factor, not both"):
        F.interpolate(x, size=8, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor, not neither"):
        nn.Upsample()(x)
    with pytest.raises(ValueError, match="mode 'linear' takes inputs of 3 axes"):
        F.interpolate(x, size=8, mode="linear")
    with pytest.raises(ValueError, match="align_corners is for the 'linear' and 'bilinear' modes"):
        F.interpolate(x, size=8, align_corners=True)
    with pytest.raises(ValueError, match="output_size must hold positive ints"):
        F.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(ValueError, match="padding .* must be at most half the kernel"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="num_channels 6 must be divisible by num_groups 4"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"padding_idx must be an int in \[-3, 3\)"):
        nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(ValueError, match="momentum must lie in"):
        nn.BatchNorm1d(3, momentum=2.0)


RESIZING_REFUSALS = [
    # each was silently truncated (a float or bool size: int(2.5) == 2, as PyTorch refuses with
    # TypeError) or failed deep inside (OverflowError, IndexError, ZeroDivisionError, "cannot reshape")
    (lambda: F.interpolate(np.ones((1, 1, 4)), 2.5), TypeError, "size must hold ints, not 2.5"),
    (lambda: F.interpolate(np.ones((1, 1, 4, 4)), (3.0, 2)), TypeError, "size must hold ints"),
    (lambda: nn.Upsample(size=True)(np.ones((1, 1, 4))), TypeError, "size must hold ints"),
    (lambda: F.interpolate(np.ones((1, 1, 4)), scale_factor=np.inf), ValueError, "positive and finite"),
    (lambda: F.interpolate(np.ones((1, 1, 4)), scale_factor=np.nan), ValueError, "positive and finite"),
    (lambda: F.interpolate(np.ones((1, 1, 4)), scale_factor="2"), TypeError, "scale_factor must hold numbers"),
    (lambda: F.interpolate(np.ones((1, 1, 0)), 5, mode="linear"), ValueError, "empty spatial axis"),
    (lambda: F.adaptive_avg_pool1d(np.ones((1, 1, 0)), 2), ValueError, "empty spatial axis"),
    (lambda: F.adaptive_max_pool2d(np.ones((1, 1, 3, 0)), 2), ValueError, "empty spatial axis"),
    (lambda: F.conv_transpose2d(np.ones((1, 2, 3, 3)), np.ones((2, 3, 2, 2)), np.ones(1)), ValueError,
     r"conv_transpose2d: bias must have shape \(3,\)"),
    (lambda: F.conv_transpose1d(np.ones((1, 2, 3)), np.ones((2, 1, 2)), np.ones((1, 1))), ValueError,
     r"bias must have shape \(1,\)"),
    (lambda: F.embedding(np.array([0, 2]), np.ones(3)), ValueError, r"weight must have shape \(num_embeddings"),
    (lambda: F.conv2d(np.ones((1, 4, 5, 5)), np.ones((4, 2, 3, 3)), groups=2.0), TypeError, "groups must be an int"),
    (lambda: F.embedding(np.array([0, 1]), np.ones((3, 2)), padding_idx=1.5), ValueError,
     "padding_idx must be an int"),   # it was truncated to row 1
    (lambda: nn.Embedding(3, 2, padding_idx=1.5), ValueError, "padding_idx must be an int"),
    (lambda: F.conv_transpose1d(np.ones((1, 4, 5)), np.ones((4, 2, 3)), groups=2.0), TypeError,
     "groups must be an int"),
    # a dilated window that skips the only element: PyTorch gives -inf and reads and writes outside
    # the input for its index and gradient (autonet's gradient went nowhere)
    (lambda: F.max_pool1d(np.ones((1, 1, 1)), 2, dilation=2, padding=1), ValueError,
     "window 0 along spatial axis 1 holds no element of the input"),
    (lambda: nn.MaxPool2d((2, 4), dilation=(2, 1), padding=1)(np.ones((1, 1, 1, 7))), ValueError,
     "window 0 along spatial axis 0 holds no element"),
    (lambda: F.max_pool2d(np.ones((1, 1, 5, 2)), 2, stride=1, dilation=3, padding=2),
     ValueError, "window 1 along spatial axis 1 holds no element"),
]


@pytest.mark.parametrize("case", range(len(RESIZING_REFUSALS)))
def test_resizing_settings_and_parameters_that_do_not_fit_are_clear_errors(case):
    call, error, match = RESIZING_REFUSALS[case]
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("call, op", [
    (lambda: F.conv1d(np.ones((1, 2, 3)), np.ones((1, 2, 5))), "conv1d"),
    (lambda: F.conv1d(np.ones((1, 2, 3)), np.ones((1, 2, 2)), np.ones(2)), "conv1d"),
    (lambda: F.conv_transpose1d(np.ones((1, 2, 1)), np.ones((2, 1, 2)), padding=1), "conv_transpose1d"),
    (lambda: F.max_pool1d(np.ones((1, 2, 3)), 2, padding=2), "max_pool1d"),
    (lambda: F.avg_pool1d(np.ones((1, 2, 3)), 5), "avg_pool1d"),
    (lambda: nn.MaxPool1d(2, stride=0)(np.ones((1, 2, 3))), "max_pool1d"),
])
def test_a_1d_op_refusing_names_itself_not_the_2d_op_under_it(call, op):
    with pytest.raises(ValueError, match=f"^{op}: .*on a height of 1"):
        call()


def test_interpolate_takes_numpy_ints_and_floats_as_sizes_and_scales():
    x = Tensor(np.arange(4.0).reshape(1, 1, 4))
    expected = data(F.interpolate(x, 8, mode="linear"))
    for call in (dict(size=np.int64(8)), dict(size=(np.int32(8),)), dict(scale_factor=np.float32(2.0)),
                 dict(scale_factor=2)):
        np.testing.assert_array_equal(data(F.interpolate(x, mode="linear", **call)), expected)


# ----------------------------------------------------------------- empty batches
@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_overlapping_pools_take_an_empty_batch(pool):
    x = Tensor(np.zeros((0, 2, 5, 5)), requires_grad=True)
    out = pool(x, 3, stride=2)
    assert out.shape == (0, 2, 2, 2)                      # PyTorch's shape
    out.sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)


def test_an_empty_batch_goes_through_a_cnn_in_eval_mode():
    model = _small_cnn().eval()
    x = Tensor(np.zeros((0, 2, 7, 7)), requires_grad=True)
    out = model(x)
    assert out.shape == (0, 3)                             # PyTorch's: Flatten gives (0, 36)
    out.sum().backward()
    assert x.grad.shape == (0, 2, 7, 7)
    np.testing.assert_array_equal(model[0].weight.grad, np.zeros(model[0].weight.shape))


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_and_min_over_a_non_empty_axis_of_an_empty_tensor_are_empty(op):
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    out = getattr(x, op)(axis=1)
    assert out.shape == getattr(np, op)(np.zeros((0, 3)), axis=1).shape == (0,)
    out.sum().backward()
    assert x.grad.shape == (0, 3)
    with pytest.raises(ValueError, match="empty axis"):
        getattr(x, op)(axis=0)                            # NumPy refuses this one too


def test_a_refused_batch_norm_batch_changes_no_buffer():
    layer = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer(Tensor(np.ones((1, 3))))
    assert int(layer.num_batches_tracked.data) == 0
    np.testing.assert_array_equal(layer.running_mean.data, np.zeros(3))
    layer(Tensor(np.arange(6.0).reshape(2, 3)))
    assert int(layer.num_batches_tracked.data) == 1


NORMALIZATION_REFUSALS = [
    # PyTorch refuses each (its messages: "Expected weight to be of same shape as normalized_shape",
    # "weight should contain 3 elements", "batch_norm eps must be positive during training");
    # autonet broadcast the first ones silently or failed with "cannot reshape"
    (lambda x, stats: F.layer_norm(x, (4, 5), np.ones(5)), ValueError, r"weight must have shape \(4, 5\)"),
    (lambda x, stats: F.layer_norm(x, 5, None, np.ones(1)), ValueError, r"bias must have shape \(5,\)"),
    (lambda x, stats: F.layer_norm(x, ()), ValueError, "non-empty sequence"),
    (lambda x, stats: nn.LayerNorm([]), ValueError, "non-empty sequence"),
    (lambda x, stats: F.group_norm(x, 3, np.ones(2)), ValueError, r"weight must have shape \(3,\)"),
    (lambda x, stats: F.group_norm(x, 3, None, np.ones((3, 1))), ValueError, r"bias must have shape \(3,\)"),
    (lambda x, stats: F.batch_norm(x, *stats, np.ones(2)), ValueError, "weight must hold one value per channel"),
    (lambda x, stats: F.batch_norm(x, Tensor(np.zeros(2)), stats[1]), ValueError, r"running_mean must have shape \(3,\)"),
    (lambda x, stats: F.batch_norm(x, stats[0], Tensor(np.ones((3, 1))), training=True), ValueError,
     r"running_var must have shape \(3,\)"),   # its update broadcast to (3, 3) after the mean's
    (lambda x, stats: F.batch_norm(x, *stats, np.ones(2), training=True), ValueError, "weight must hold one"),
    (lambda x, stats: F.batch_norm(x, stats[0], Tensor(np.ones(1)), training=True), ValueError, "running_var"),
    (lambda x, stats: F.batch_norm(x, *stats, training=True, eps=0.0), ValueError, "eps must be positive"),
    (lambda x, stats: F.batch_norm(x, stats[0].data, stats[1], training=True), TypeError, "must be Tensors"),
    (lambda x, stats: F.batch_norm(x, *stats, training=True, momentum=None), TypeError, "cumulative average"),
    (lambda x, stats: F.group_norm(x, 3.0), TypeError, "num_groups must be an int, not 3.0"),
    (lambda x, stats: F.group_norm(x, True), TypeError, "num_groups must be an int, not True"),
    (lambda x, stats: nn.GroupNorm(3, 3.0), ValueError, "GroupNorm: num_channels must be a positive int"),
    (lambda x, stats: nn.GroupNorm(0, 3), ValueError, "GroupNorm: num_groups must be a positive int"),
]


@pytest.mark.parametrize("case", range(len(NORMALIZATION_REFUSALS)))
def test_normalization_parameters_of_the_wrong_shape_are_refused_before_any_update(case):
    call, error, match = NORMALIZATION_REFUSALS[case]
    rng = np.random.default_rng(32)
    x = Tensor(rng.normal(size=(2, 3, 4, 5)))
    mean, var = rng.normal(size=3), rng.random(3) + 0.5
    stats = (Tensor(mean.copy()), Tensor(var.copy()))
    with pytest.raises(error, match=match):
        call(x, stats)
    np.testing.assert_array_equal(data(stats[0]), mean)   # the running statistics untouched
    np.testing.assert_array_equal(data(stats[1]), var)


def test_normalized_shape_may_be_a_numpy_int_or_a_list():
    x = np.random.default_rng(33).normal(size=(2, 3, 4))
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    for shape in (np.int64(4), [4], (np.int64(4),)):
        np.testing.assert_allclose(data(F.layer_norm(Tensor(x), shape)), expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(data(nn.LayerNorm(shape)(Tensor(x))), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d, F.max_pool1d, F.avg_pool1d])
def test_pooling_with_stride_zero_is_a_clear_error(pool):
    x = Tensor(np.ones((1, 1, 4, 4) if pool.__name__.endswith("2d") else (1, 1, 4)))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        pool(x, 2, stride=0)
