"""The one-op convolution (nn.fused_conv.Conv2d) and training batch norm (nn.normalization.BatchNorm).

Each against two independent answers: direct NumPy loops (values) and the
composite of differentiable ops they replace (values and gradients), over
random shapes, strides, paddings and dilations, in whole batches and in chunks
of one sample; gradients of the first and second order against finite
differences; compiled steps equal to eager ones bit for bit; and what each node
keeps for backward (no im2col copy, no normalized copy). PyTorch, where
installed, is a third answer.
"""
import tracemalloc

import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.nn import fused_conv, normalization
from autonet.nn.convolution import _grouped_conv2d, _padded
from autonet.ops import generic, windows
from autonet.testing import assert_gradients_match

from device_double import passed
from test_nn_layers import conv2d_loops
from test_nn_sequence import assert_compiled_training_equals_eager


def _random_case(rng):
    """Shapes and settings of one random convolution that fits."""
    kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, 2))
    stride = tuple(int(s) for s in rng.integers(1, 3, 2))
    padding = tuple(int(p) for p in rng.integers(0, 3, 2))
    size = tuple(int(rng.integers(d * (k - 1) + 1, 9)) for k, d in zip(kernel, dilation))
    n, c, o = (int(v) for v in rng.integers(1, 4, 3))
    return dict(x=rng.normal(size=(n, c) + size), w=rng.normal(size=(o, c) + kernel),
                b=rng.normal(size=o) if rng.integers(2) else None,
                settings=dict(stride=stride, padding=padding, dilation=dilation))


def _composite(x, w, b, stride, padding, dilation):
    """The composite path: pad, Windows (im2col), one matrix product, the bias."""
    pairs = tuple((p, p) for p in padding)
    return _grouped_conv2d(_padded(x, pairs), w, b, stride, dilation, 1)


def _gradients(conv, case, grad):
    tensors = [Tensor(case["x"], requires_grad=True), Tensor(case["w"], requires_grad=True)]
    if case["b"] is not None:
        tensors.append(Tensor(case["b"], requires_grad=True))
    out = conv(tensors[0], tensors[1], tensors[2] if case["b"] is not None else None, **case["settings"])
    out.backward(grad)
    return out.data, [t.grad for t in tensors]


@pytest.mark.parametrize("chunk", [1, fused_conv.CHUNK_ELEMENTS], ids=["one-sample-chunks", "default"])
def test_conv2d_matches_loops_and_the_composite_over_random_settings(monkeypatch, chunk):
    monkeypatch.setattr(fused_conv, "CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(26)
    for _ in range(30):
        case = _random_case(rng)
        settings = case["settings"]
        fused_out = F.conv2d(Tensor(case["x"]), Tensor(case["w"]),
                             None if case["b"] is None else Tensor(case["b"]), **settings)
        b = np.zeros(case["w"].shape[0]) if case["b"] is None else case["b"]
        pairs = tuple((p, p) for p in settings["padding"])
        expected = conv2d_loops(case["x"], case["w"], b, settings["stride"], pairs, settings["dilation"], 1)
        np.testing.assert_allclose(fused_out.data, expected, rtol=1e-12, atol=1e-12)
        assert fused_out.data.flags.c_contiguous   # NCHW, as PyTorch's
        grad = rng.normal(size=expected.shape)
        fused, fused_grads = _gradients(F.conv2d, case, grad)
        composite, composite_grads = _gradients(_composite_call, case, grad)
        np.testing.assert_allclose(fused, composite, rtol=1e-12, atol=1e-12)
        for mine, theirs in zip(fused_grads, composite_grads):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)


def _composite_call(x, w, b, stride, padding, dilation):
    return _composite(x, w, b, stride, padding, dilation)


def test_conv2d_gradients_of_first_and_second_order_match_finite_differences():
    rng = np.random.default_rng(3)
    x = Tensor(rng.normal(size=(2, 2, 5, 4)), requires_grad=True)
    w = Tensor(rng.normal(size=(3, 2, 2, 3)), requires_grad=True)
    b = Tensor(rng.normal(size=3), requires_grad=True)
    settings = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    assert autonet.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **settings), [x, w, b])
    assert autonet.gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, **settings), [x, w, b])
    assert autonet.gradgradcheck(lambda x, w: F.conv1d(x, w, padding="same"), [
        Tensor(rng.normal(size=(2, 2, 7)), requires_grad=True), Tensor(rng.normal(size=(3, 2, 3)), requires_grad=True)])


def _saved_sizes(node):
    return sum(np.size(a) for a in node.saved if a is not None)


def test_the_convolution_node_keeps_its_input_and_weight_and_no_im2col_copy():
    """The example CNN's second convolution: x (64, 16, 4, 4) and the weight (32, 16, 3, 3)
    alone, where an im2col copy would be (64 * 4 * 4, 16 * 3 * 3), nine times x."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(64, 16, 4, 4)).astype(np.float32))
    layer = nn.Conv2d(16, 32, 3, padding=1, rng=rng).astype(np.float32)
    out = layer(x)
    node = out._node
    assert node.name == "conv2d"
    assert _saved_sizes(node) == x.size + layer.weight.size   # the input itself, not padded
    assert out.data.flags.c_contiguous


def test_the_batch_norm_node_keeps_the_input_and_per_channel_values_only():
    rng = np.random.default_rng(1)
    x = Tensor(rng.normal(size=(8, 4, 3, 3)), requires_grad=True)
    layer = nn.BatchNorm2d(4)
    out = layer(x)
    node = out._node
    assert node.name == "batch_norm"
    # x, then mean and inverse deviation (1, 4, 1, 1) each, and the weight (4,)
    assert _saved_sizes(node) == x.size + 4 + 4 + 4


def _batch_norm_composite(x, w, b, eps=1e-5):
    """Training batch norm from differentiable ops, the textbook way."""
    axes = (0,) + tuple(range(2, x.ndim))
    channels = (1, -1) + (1,) * (x.ndim - 2)
    centred = x - x.mean(axis=axes, keepdims=True)
    variance = (centred * centred).mean(axis=axes, keepdims=True)
    out = centred / (variance + eps).sqrt()
    out = out if w is None else out * w.reshape(channels)
    return out if b is None else out + b.reshape(channels)


@pytest.mark.parametrize("shape", [(6, 3), (4, 2, 5), (3, 4, 3, 2)])
@pytest.mark.parametrize("affine", ["weight and bias", "weight", "neither"])
def test_batch_norm_matches_the_composite_and_finite_differences(shape, affine):
    rng = np.random.default_rng(len(shape))
    x = Tensor(rng.normal(size=shape), requires_grad=True)
    w = Tensor(rng.normal(size=shape[1]), requires_grad=True) if affine != "neither" else None
    b = Tensor(rng.normal(size=shape[1]), requires_grad=True) if affine == "weight and bias" else None
    leaves = [t for t in (x, w, b) if t is not None]
    grad = rng.normal(size=shape)

    def gradients(norm):
        for t in leaves:
            t.grad = None
        out = norm(x, w, b)
        out.backward(grad)
        return [out.data] + [t.grad for t in leaves]

    fused = gradients(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True))
    composite = gradients(_batch_norm_composite)
    for mine, theirs in zip(fused, composite):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)

    def call(*tensors):
        given = iter(tensors)
        return F.batch_norm(next(given), None, None, next(given) if w is not None else None,
                            next(given) if b is not None else None, training=True)

    assert_gradients_match(call, *leaves)
    assert autonet.gradgradcheck(call, leaves)


def test_float16_batch_norm_sums_wider_than_its_values():
    """A channel of 65536 values near 3 sums past float16's largest (65504): the statistics and
    gradients add up in float32 (as NumPy's mean does), so output and gradient stay float16
    and agree with the float64 formula to float16's precision."""
    rng = np.random.default_rng(5)
    x64 = rng.normal(3.0, 1.0, (64, 2, 32, 32))
    upstream = rng.normal(size=x64.shape)
    x = Tensor(x64.astype(np.float16), requires_grad=True)
    weight = Tensor(np.array([1.5, -0.5], dtype=np.float16), requires_grad=True)
    out = F.batch_norm(x, None, None, weight, None, training=True)
    (out * Tensor(upstream.astype(np.float16))).sum().backward()
    assert out.dtype == x.grad.dtype == np.float16
    exact = x.data.astype(np.float64)   # the float16 inputs, in float64
    mean, var = exact.mean(axis=(0, 2, 3), keepdims=True), exact.var(axis=(0, 2, 3), keepdims=True)
    normalized = (exact - mean) / np.sqrt(var + 1e-5)
    scale = np.array([1.5, -0.5]).reshape(1, 2, 1, 1)
    np.testing.assert_allclose(out.data, normalized * scale, atol=1e-2, rtol=1e-2)
    dy = upstream.astype(np.float16).astype(np.float64) * scale
    want = (dy - dy.mean(axis=(0, 2, 3), keepdims=True)
            - normalized * (dy * normalized).mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(x.grad, want, atol=2e-3, rtol=2e-2)


def test_batch_norm_running_statistics_move_as_pytorchs():
    """momentum * the batch's mean and unbiased variance, from the running values."""
    rng = np.random.default_rng(5)
    x = rng.normal(2.0, 3.0, size=(5, 3, 4))
    mean, var = Tensor(np.full(3, 0.5)), Tensor(np.full(3, 2.0))
    F.batch_norm(Tensor(x), mean, var, training=True, momentum=0.25)
    np.testing.assert_allclose(mean.data, 0.75 * 0.5 + 0.25 * x.mean(axis=(0, 2)), rtol=1e-14)
    np.testing.assert_allclose(var.data, 0.75 * 2.0 + 0.25 * x.var(axis=(0, 2), ddof=1), rtol=1e-14)


def test_conv_and_batch_norm_refuse_parameters_of_the_wrong_size():
    x = np.ones((2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        F.conv2d(x, np.ones((4, 3, 3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="weight must hold one value per channel"):
        F.batch_norm(x, None, None, np.ones(2), training=True)
    with pytest.raises(ValueError, match="bias must hold one value per channel"):
        F.batch_norm(x, None, None, None, np.ones(1), training=True)


def _cnn():
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (2, 3), stride=(1, 2), dilation=(2, 1), padding=(1, 0), rng=rng), nn.BatchNorm2d(6),
        nn.ReLU(), nn.Flatten(), nn.Linear(6 * 3 * 1, 3, rng=rng))


@pytest.mark.parametrize("chunk", [7, fused_conv.CHUNK_ELEMENTS], ids=["small-chunks", "default"])
def test_a_compiled_cnn_training_step_equals_eager_bit_for_bit(monkeypatch, chunk):
    monkeypatch.setattr(fused_conv, "CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(9)
    batches = [(Tensor(rng.normal(size=(5, 2, 6, 6))), passed(rng.integers(0, 3, 5))) for _ in range(3)]
    assert_compiled_training_equals_eager(_cnn, batches, lambda model, x, y: F.cross_entropy(model(x), y))


def test_conv2d_and_batch_norm_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x, w, b = rng.normal(size=(3, 2, 7, 6)), rng.normal(size=(4, 2, 3, 2)), rng.normal(size=4)
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b, gamma, beta)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b, gamma, beta)]
    settings = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    out = F.batch_norm(F.conv2d(*ours[:3], **settings), None, None, ours[3], ours[4], training=True)
    expected = torch.nn.functional.batch_norm(torch.nn.functional.conv2d(*theirs[:3], **settings), None, None,
                                              theirs[3], theirs[4], training=True)
    grad = rng.normal(size=out.shape)
    out.backward(grad)
    expected.backward(torch.tensor(grad))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, torch_leaf in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, torch_leaf.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("case", ["float16 sums past 65504", "+inf and -inf"])
def test_max_pooling_tiles_probe_for_nan_without_warnings(case):
    """The NaN probe of the input is its maximum, not a sum: float16 values whose sum
    overflows, or +inf beside -inf, raise no RuntimeWarning (errors in this suite), and the
    maxima and gradients are those of np.max over each tile."""
    dtype = np.float16 if case.startswith("float16") else np.float64
    x = np.full((2, 2, 64, 64), 20.0, dtype=dtype)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = np.inf, -np.inf   # one tile holds both
    x[1, 1] = np.arange(64 * 64).reshape(64, 64) % 7
    t = Tensor(x, requires_grad=True)
    out = F.max_pool2d(t, 2)
    out.sum().backward()
    np.testing.assert_array_equal(out.data, x.reshape(2, 2, 32, 2, 32, 2).max(axis=(3, 5)))
    assert t.grad.sum() == out.size and t.grad[0, 0, 0, 0] == 1


@pytest.mark.parametrize("block", [7, windows.BLOCK_ELEMENTS], ids=["row-blocks", "default"])
@pytest.mark.parametrize("seed", range(6))
def test_max_pooling_tiles_send_the_gradient_to_each_tiles_first_maximum_or_first_nan(monkeypatch, seed, block):
    """Exact tiles (a scan over the flat input, one byte saved per output) against np.argmax of
    each tile, flattened row by row, over random tile and batch shapes, in blocks of one row of
    tiles or whole: ties go to the first maximum, a NaN wins, the first NaN."""
    monkeypatch.setattr(windows, "BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(seed)
    kernel = (3, 2) if seed == 0 else tuple(int(k) for k in rng.integers(1, 5, 2))
    tiles = rng.integers(1, 4, 2)
    shape = tuple(int(s) for s in rng.integers(1, 4, 2)) + (kernel[0] * tiles[0], kernel[1] * tiles[1])
    x = rng.integers(0, 3, size=shape).astype(rng.choice([np.float32, np.float64]))   # many ties
    x[0, 0, 0, -1] = x[0, 0, -1, 0] = np.nan                        # two NaNs, in one tile or not
    x.reshape(-1)[rng.integers(0, x.size, 2)] = np.nan
    t = Tensor(x, requires_grad=True)
    out = F.max_pool2d(t, kernel)
    grad = rng.normal(size=out.shape).astype(x.dtype)
    out.backward(grad)
    (kh, kw) = kernel
    expected_out, expected_grad = np.zeros(out.shape), np.zeros(x.shape)
    for index in np.ndindex(out.shape):
        n, c, i, j = index
        tile = x[n, c, kh * i:kh * i + kh, kw * j:kw * j + kw]
        first = np.argmax(tile.reshape(-1))
        expected_out[index] = tile.reshape(-1)[first]
        expected_grad[n, c, kh * i + first // kw, kw * j + first % kw] = grad[index]
    np.testing.assert_array_equal(out.data, expected_out)
    np.testing.assert_array_equal(t.grad, expected_grad)


@pytest.mark.host_only("tracemalloc sees host arrays")
def test_max_pooling_tiles_temporaries_are_bounded_by_a_block(monkeypatch):
    """Beyond its output and positions, the scan holds a few block-sized arrays, not a few
    input-sized ones (the input here is 32 blocks)."""
    monkeypatch.setattr(windows, "BLOCK_ELEMENTS", 2 ** 12)
    x = np.random.default_rng(0).normal(size=(8, 4, 64, 64)).astype(np.float32)
    tracemalloc.start()
    try:
        out, first = windows.tile_maxima(x, (2, 2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < out.nbytes + first.nbytes + 12 * 2 ** 12 * x.itemsize


@pytest.mark.parametrize("seed", range(20))
def test_a_stride_1_input_gradient_as_the_flipped_convolution_equals_col2im(seed):
    """Stride 1, padding within the kernel's reach (uneven included): the input's gradient as
    the convolution of the output gradient with the flipped weight equals col2im's, the
    general path; beyond the reach, or with a stride, col2im is taken."""
    rng = np.random.default_rng(seed)
    kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, 2))
    padding = tuple(tuple(int(p) for p in rng.integers(0, d * (k - 1) + 1, 2)) for k, d in zip(kernel, dilation))
    n, c, o = (int(v) for v in rng.integers(1, 4, 3))
    size = tuple(int(rng.integers(d * (k - 1) + 1, 8)) for k, d in zip(kernel, dilation))
    x, w = rng.normal(size=(n, c) + size), rng.normal(size=(o, c) + kernel)
    geometry = fused_conv._Geometry(x.shape, w.shape, (1, 1), padding, dilation)
    grad = rng.normal(size=(n, o) + geometry.out)
    by_col2im = np.empty_like(x)
    fused_conv._weight_grad_and_col2im(x, w, grad, geometry, False, by_col2im)
    by_convolution = np.empty_like(x)
    fused_conv._convolve(grad, fused_conv._flipped(w), geometry.transposed(grad.shape), by_convolution)
    np.testing.assert_allclose(by_convolution, by_col2im, rtol=1e-12, atol=1e-12)
    beyond = ((padding[0][0], kernel[0] * dilation[0]), padding[1])
    assert fused_conv._Geometry(x.shape, w.shape, (1, 1), beyond, dilation).transposed(grad.shape) is None
    assert fused_conv._Geometry(x.shape, w.shape, (2, 1), padding, dilation).transposed(grad.shape) is None


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 7), (3, 4, 5, 2), (1, 2, 1, 1)])
def test_channel_sums_equal_one_reduction_over_every_axis_but_1_for_arrays_and_tensors(shape):
    """Batch norm's and the convolution bias's per-channel sums (the batch first, then each
    channel's positions) against NumPy's one reduction; on Tensors, differentiable (a sum's
    gradient: ones)."""
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape)
    axes = (0,) + tuple(range(2, x.ndim))
    np.testing.assert_allclose(generic.channel_sums(x), x.sum(axis=axes, keepdims=True), rtol=1e-13)
    t = Tensor(x, requires_grad=True)
    sums = generic.channel_sums(t)
    np.testing.assert_allclose(sums.data, x.sum(axis=axes, keepdims=True), rtol=1e-13)
    weights = rng.normal(size=sums.shape)
    (sums * Tensor(weights)).sum().backward()
    np.testing.assert_allclose(t.grad, np.broadcast_to(weights, shape))


@pytest.mark.host_only("tracemalloc sees host arrays")
@pytest.mark.parametrize("stride, chunks", [((1, 1), 1.5), ((2, 2), 3)], ids=["flipped", "col2im"])
def test_the_convolution_backward_holds_about_one_chunk_beyond_its_gradients(monkeypatch, stride, chunks):
    """tracemalloc's peak of backward beyond the input's and weight's gradients: about one
    chunk's columns at stride 1 (two chunks' columns alive at once would be over), col2im's
    columns and padded sum at stride 2; the batch is eight chunks."""
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(16, 8, 12, 12)), rng.normal(size=(8, 8, 3, 3))
    monkeypatch.setattr(fused_conv, "CHUNK_ELEMENTS", 2 * 8 * 9 * 12 * 12 // (stride[0] * stride[1]))
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    out = F.conv2d(xt, wt, None, stride=stride, padding=1)
    grad = rng.normal(size=out.shape)
    tracemalloc.start()
    try:
        fused_conv.Conv2d.backward(out._node, grad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - (x.size + w.size) * x.itemsize < chunks * fused_conv.CHUNK_ELEMENTS * x.itemsize


@pytest.mark.parametrize("seed", range(12))
def test_im2col_positions_last_equals_channels_last(seed):
    """The two layouts of a chunk's columns (runs of ``OW`` or of ``kw * C``) hold the same
    values, and give the same output and weight gradient, over random settings; the random
    cases above take whichever the geometry picks, this one each."""
    case = _random_case(np.random.default_rng(seed))
    x, w, settings = case["x"], case["w"], case["settings"]
    padding = tuple((p, p) for p in settings["padding"])
    answers = []
    for positions_last in (False, True):
        geometry = fused_conv._Geometry(x.shape, w.shape, settings["stride"], padding, settings["dilation"])
        geometry.positions_last = positions_last
        out = np.empty((x.shape[0], w.shape[0]) + geometry.out)
        fused_conv._convolve(x, w, geometry, out)
        grad_weight = fused_conv._weight_grad_and_col2im(x, w, out, geometry, True, None)
        answers.append((fused_conv._columns(x, geometry), out, grad_weight))
    (columns, out, grad_weight), (columns_t, out_t, grad_weight_t) = answers
    assert columns_t.strides[1] < columns_t.strides[2]   # positions last indeed
    np.testing.assert_array_equal(columns_t, columns)
    np.testing.assert_allclose(out_t, out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_weight_t, grad_weight, rtol=1e-12, atol=1e-12)
