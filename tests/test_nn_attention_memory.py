"""The one-node forms behind the transformer's memory (issue 23): the attention op that saves
no scores, LayerNorm as one node, ReLU saving its output, and what a step's graph keeps.

Values against NumPy formulas written here and against the composites they replace,
gradients against finite differences, second derivatives, compiled replays against eager
steps bit for bit, and the bytes a graph keeps for backward against what PyTorch keeps.
"""
import tracemalloc

import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.nn import masking
from autonet.nn.fused_attention import Attention, attention
from autonet.nn.normalization import LayerNorm, Normalize
from autonet.ops import elementwise
from autonet.optim import SGD


def data(array):
    return np.array(array.data if isinstance(array, Tensor) else array).copy()


def reference_attention(q, k, v, scale, causal):
    """softmax(q k^T scale) v in plain NumPy, causal keys after the query excluded."""
    scores = np.einsum("...le,...se->...ls", q, k) * scale
    if causal:
        rows, cols = scores.shape[-2:]
        scores = np.where(np.arange(cols)[None, :] > np.arange(rows)[:, None], -np.inf, scores)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return np.einsum("...ls,...se->...le", e / e.sum(axis=-1, keepdims=True), v)


def composite_attention(q, k, v, scale, causal, safe):
    """The ops the attention node replaces (masking's), for equality to rounding."""
    scores = (q @ k.swapaxes(-1, -2)) * scale
    if causal:
        scores = masking.causal(scores)
    return masking.attention_weights(scores, safe=safe) @ v


def qkv(rng, batch=(2, 3), length=5, source=6, size=4, value_size=7):
    shapes = (batch + (length, size), batch + (source, size), batch + (source, value_size))
    return [Tensor(rng.normal(size=s), requires_grad=True) for s in shapes]


def host_arrays(saved):
    """The arrays among a node's saved values, as host ndarrays' views (device double too)."""
    return [getattr(a, "array", a) for a in saved if hasattr(a, "shape") and hasattr(a, "dtype")]


def gradients(function, inputs, upstream):
    for t in inputs:
        t.grad = None
    (function(*inputs) * Tensor(upstream)).sum().backward()
    return [data(t.grad) for t in inputs]


# ------------------------------------------------------------------ the attention node
@pytest.mark.parametrize("causal", [False, True])
def test_attention_node_gives_the_numpy_formula_and_the_composites_gradients(causal):
    rng = np.random.default_rng(0)
    q, k, v = qkv(rng)
    out = attention(q, k, v, 0.3, causal)
    np.testing.assert_allclose(data(out), reference_attention(data(q), data(k), data(v), 0.3, causal),
                               rtol=1e-12, atol=1e-12)
    upstream = rng.normal(size=out.shape)
    fused = gradients(lambda q, k, v: attention(q, k, v, 0.3, causal), [q, k, v], upstream)
    composite = gradients(lambda q, k, v: composite_attention(q, k, v, 0.3, causal, True), [q, k, v],
                          upstream)
    for mine, theirs in zip(fused, composite):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_node_passes_gradcheck_and_gradgradcheck(causal):
    q, k, v = qkv(np.random.default_rng(1), batch=(2,), length=3, source=4, size=2, value_size=3)
    function = lambda q, k, v: attention(q, k, v, 0.7, causal)   # noqa: E731
    assert autonet.gradcheck(function, [q, k, v])
    assert autonet.gradgradcheck(function, [q, k, v])


def test_attention_node_broadcasts_batches_and_sums_their_gradients():
    rng = np.random.default_rng(2)
    q = Tensor(rng.normal(size=(2, 3, 5, 4)), requires_grad=True)
    k = Tensor(rng.normal(size=(3, 6, 4)), requires_grad=True)   # shared by the first axis
    v = Tensor(rng.normal(size=(1, 3, 6, 2)), requires_grad=True)
    assert autonet.gradcheck(lambda q, k, v: attention(q, k, v, 0.5), [q, k, v])
    assert attention(q, k, v, 0.5).shape == (2, 3, 5, 2)


@pytest.mark.parametrize("safe", [True, False])
def test_attention_node_rows_with_every_key_excluded_are_the_composites(safe):
    """A query of -inf against positive keys scores -inf everywhere: zeros (or NaN) as the
    composite, and the same (NaN-including) gradients."""
    rng = np.random.default_rng(3)
    q, k, v = qkv(rng, batch=(2,), length=3, source=4, size=2, value_size=3)
    q.data[0, 1] = [-np.inf, 0.0]
    k.data[0, :, 0] = np.abs(k.data[0, :, 0]) + 0.5
    fill = 0.0 if safe else np.nan
    with np.errstate(all="raise"):   # and no floating-point warning on the way
        out = attention(q, k, v, 1.0, dead_fill=fill)
    want = composite_attention(q, k, v, 1.0, False, safe)
    np.testing.assert_array_equal(data(out), data(want))
    assert (np.isnan(data(out)[0, 1]).all() if not safe else not data(out)[0, 1].any())
    upstream = rng.normal(size=out.shape)
    with np.errstate(invalid="ignore"):   # 0 * -inf in k's gradient, in both
        fused = gradients(lambda q, k, v: attention(q, k, v, 1.0, dead_fill=fill), [q, k, v], upstream)
        composite = gradients(lambda q, k, v: composite_attention(q, k, v, 1.0, False, safe), [q, k, v],
                              upstream)
    for mine, theirs in zip(fused, composite):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-13, equal_nan=True)


@pytest.mark.parametrize("causal, fill", [(False, 0.0), (False, np.nan), (True, 0.0)])
def test_attention_without_keys_gives_zeros_and_zero_gradients(causal, fill):
    """No keys (S = 0): an empty weighted sum, zeros of shape (..., L, Ev), as PyTorch gives, and
    zero gradients for the queries; through the op, ``scaled_dot_product_attention`` and
    ``MultiheadAttention`` alike."""
    rng = np.random.default_rng(5)
    q, k, v = qkv(rng, batch=(2,), length=3, source=0, size=4, value_size=5)
    out = attention(q, k, v, 0.5, causal=causal, dead_fill=fill)
    assert out.shape == (2, 3, 5) and not data(out).any()
    out.sum().backward()
    assert q.grad.shape == q.shape and not data(q.grad).any()
    sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert sdpa.shape == (2, 3, 5) and not data(sdpa).any()
    layer = nn.MultiheadAttention(4, 2, rng=0)
    x, empty = Tensor(rng.normal(size=(3, 2, 4))), Tensor(np.zeros((0, 2, 4)))
    np.testing.assert_array_equal(data(layer(x, empty, empty, need_weights=False)[0]),
                                  np.broadcast_to(data(layer.out_proj.bias), (3, 2, 4)))


def test_attention_node_saves_no_scores():
    q, k, v = qkv(np.random.default_rng(4), batch=(2, 3), length=5, source=6)
    out = attention(q, k, v, 0.5)
    saved = host_arrays(out.grad_fn.saved)
    assert not any(a.shape[-2:] == (5, 6) for a in saved)
    assert sum(a.nbytes for a in saved) - sum(data(t).nbytes for t in (q, k, v)) <= 2 * 2 * 3 * 5 * 8


def test_scaled_dot_product_attention_without_a_mask_is_one_node_with_pytorchs_values():
    rng = np.random.default_rng(5)
    q, k, v = qkv(rng)
    for causal in (False, True):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        assert out.grad_fn.fn is Attention
        np.testing.assert_allclose(data(out), reference_attention(
            data(q), data(k), data(v), 1 / np.sqrt(4), causal), rtol=1e-12, atol=1e-12)
    mask = Tensor(np.ones((5, 6), dtype=bool))   # a mask: the composite, the same values
    masked = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert masked.grad_fn.fn is not Attention
    np.testing.assert_allclose(data(masked), data(F.scaled_dot_product_attention(q, k, v)), rtol=1e-12)


def graph_nodes(out):
    """The recorded nodes behind ``out``, each once (leaves and constants left out)."""
    seen, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen or not hasattr(node, "fn"):
            continue
        seen.add(id(node))
        stack += list(node.inputs)
        yield node


def test_multihead_attention_takes_the_node_only_without_weights_masks_or_dropout():
    rng = np.random.default_rng(6)
    module = nn.MultiheadAttention(8, 2, rng=7)
    for p in module.parameters():
        p.data[...] = data(p) + rng.normal(size=p.shape) * 0.1
    x = Tensor(rng.normal(size=(5, 3, 8)), requires_grad=True)

    def nodes(out):
        return {node.fn for node in graph_nodes(out)}

    fast = module(x, x, x, need_weights=False)[0]
    slow = module(x, x, x, need_weights=True)[0]
    assert Attention in nodes(fast) and Attention not in nodes(slow)
    np.testing.assert_allclose(data(fast), data(slow), rtol=1e-12, atol=1e-13)
    upstream = rng.normal(size=fast.shape)
    fused = gradients(lambda x: module(x, x, x, need_weights=False)[0], [x], upstream)
    composite = gradients(lambda x: module(x, x, x)[0], [x], upstream)
    np.testing.assert_allclose(fused[0], composite[0], rtol=1e-11, atol=1e-12)
    dropping = nn.MultiheadAttention(8, 2, dropout=0.5, rng=7)
    assert Attention not in nodes(dropping(x, x, x, need_weights=False)[0])
    dropping.eval()
    assert Attention in nodes(dropping(x, x, x, need_weights=False)[0])


# ------------------------------------------------------------------ LayerNorm as one node
def layer_norm_reference(x, weight, bias, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + eps)
    return out * (1 if weight is None else weight) + (0 if bias is None else bias)


@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("normalized_shape", [(5,), (4, 5)])
def test_layer_norm_node_against_numpy_and_the_composite(affine, normalized_shape):
    rng = np.random.default_rng(8)
    x = Tensor(rng.normal(size=(3, 4, 5)) * 3 + 1, requires_grad=True)
    weight = Tensor(rng.normal(size=normalized_shape), requires_grad=True) if affine[0] else None
    bias = Tensor(rng.normal(size=normalized_shape), requires_grad=True) if affine[1] else None
    axes = tuple(range(3 - len(normalized_shape), 3))
    out = F.layer_norm(x, normalized_shape, weight, bias)
    assert out.grad_fn.fn is LayerNorm
    np.testing.assert_allclose(data(out), layer_norm_reference(
        data(x), None if weight is None else data(weight), None if bias is None else data(bias), axes,
        1e-5), rtol=1e-12, atol=1e-12)
    composite = Normalize.apply(x, axes=axes, eps=1e-5)
    composite = composite if weight is None else composite * weight
    composite = composite if bias is None else composite + bias
    np.testing.assert_array_equal(data(out), data(composite))   # the same operations
    inputs = [t for t in (x, weight, bias) if t is not None]
    upstream = rng.normal(size=out.shape)

    def call(*given):
        it = iter(given)
        return F.layer_norm(next(it), normalized_shape, next(it) if weight is not None else None,
                            next(it) if bias is not None else None)

    def composite_call(*given):
        it = iter(given)
        out = Normalize.apply(next(it), axes=axes, eps=1e-5)
        out = out * next(it) if weight is not None else out
        return out + next(it) if bias is not None else out

    for mine, theirs in zip(gradients(call, inputs, upstream), gradients(composite_call, inputs, upstream)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)
    assert autonet.gradcheck(call, inputs)
    assert autonet.gradgradcheck(call, inputs)


def test_layer_norm_node_saves_the_input_and_row_statistics_only():
    x = Tensor(np.random.default_rng(9).normal(size=(6, 4, 8)), requires_grad=True)
    layer = nn.LayerNorm(8)
    out = layer(x)
    saved = host_arrays(out.grad_fn.saved)
    assert sum(a.size for a in saved) == x.size + 2 * 6 * 4 + 8   # x, mean, 1/std, weight


def test_layer_norm_keeps_numpys_dtype_promotion():
    x = Tensor(np.ones((2, 3), dtype=np.float32))
    assert F.layer_norm(x, (3,), Tensor(np.ones(3))).dtype == np.float64   # as the composite gave
    assert F.layer_norm(x, (3,), Tensor(np.ones(3, np.float32))).dtype == np.float32


# ------------------------------------------------------------------ ReLU saves its output
def test_relu_saves_its_output_which_the_next_layer_keeps_too():
    rng = np.random.default_rng(10)
    x = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    hidden = F.relu(x)
    (saved,) = hidden.grad_fn.saved
    assert saved is hidden._data   # one array for relu and the next product, not two
    x.data[0, :] = [np.nan, 0.0, -1.0]
    y = F.relu(x)
    (y * Tensor(np.arange(12.0).reshape(4, 3) + 1)).sum().backward()
    assert np.isnan(data(y)[0, 0]) and data(x.grad)[0].tolist() == [1.0, 0.0, 0.0]   # grad at NaN


def test_writing_into_a_relu_output_before_backward_leaves_relus_gradient_right():
    """ReLU's gradient reads its saved output; an in-place write into that output (here zeroing
    the positive entry, which would block its gradient) keeps the value ReLU saved, so the
    gradient is the true one (PyTorch refuses this backward instead)."""
    x = Tensor([-1.0, 2.0], requires_grad=True)
    y = F.relu(x)
    total = y.sum()
    y *= 0.0
    total.backward()
    assert data(x.grad).tolist() == [0.0, 1.0] and data(y).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("shape", [(50, 40), (200, 200)], ids=["select", "product"])   # LARGE_SELECT
@pytest.mark.parametrize("blocked", [None, np.inf, np.nan])
def test_relu_gradient_is_a_select_whatever_the_upstream_gradient(blocked, shape):
    """The fast product path (large arrays) and the select agree: exactly 0.0 where the input was
    <= 0 (even for an inf or NaN upstream gradient there), the gradient itself elsewhere."""
    assert np.prod((50, 40)) < elementwise.LARGE_SELECT <= np.prod((200, 200))
    rng = np.random.default_rng(14)
    x = Tensor(rng.normal(size=shape), requires_grad=True)
    upstream = rng.normal(size=shape)
    off = data(x) <= 0
    if blocked is not None:
        upstream[np.argwhere(off)[0][0], np.argwhere(off)[0][1]] = blocked
    (grad,) = autonet.grad(F.relu(x), x, grad_outputs=upstream)
    want = np.where(off, 0.0, upstream)
    np.testing.assert_array_equal(data(grad), want)
    assert not np.signbit(data(grad)[off]).any()   # +0.0, as the select, not -0.0


@pytest.mark.parametrize("case", ["float16 sums past 65504", "+inf and -inf passing"])
def test_relus_product_path_warns_of_nothing_its_select_would_not(case):
    """The product path's NaN probe is a maximum, not a sum: a float16 gradient whose sum
    overflows, or +inf and -inf that both pass, raise no RuntimeWarning (errors in this suite)
    and give np.where's select."""
    rng = np.random.default_rng(15)
    dtype = np.float16 if case.startswith("float16") else np.float64
    x = Tensor(rng.normal(size=(200, 200)).astype(dtype), requires_grad=True)
    upstream = np.full(x.shape, 4.0, dtype=dtype)
    on = np.argwhere(data(x) > 0)
    if case.startswith("+inf"):
        upstream[tuple(on[0])], upstream[tuple(on[1])] = np.inf, -np.inf
    (grad,) = autonet.grad(F.relu(x), x, grad_outputs=upstream)
    np.testing.assert_array_equal(data(grad), np.where(data(x) > 0, upstream, 0.0))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_keeps_only_its_input_and_recomputes_its_gradient(approximate):
    """As PyTorch's: the input alone is saved (not Φ of it too); backward recomputes Φ and gives
    the derivative's closed form, computed here in NumPy."""
    rng = np.random.default_rng(21)
    x = Tensor(rng.normal(size=(6, 5)) * 3, requires_grad=True)
    y = F.gelu(x, approximate=approximate)
    (saved,) = host_arrays(y.grad_fn.saved)
    assert np.shares_memory(saved, getattr(x._data, "array", x._data))
    upstream = rng.normal(size=(6, 5))
    (grad,) = gradients(lambda t: F.gelu(t, approximate=approximate), [x], upstream)
    a = data(x)
    if approximate == "tanh":
        scale, cubic = np.sqrt(2 / np.pi), 0.044715
        t = np.tanh(scale * (a + cubic * (a * a * a)))
        cdf = 0.5 * (1.0 + t)
        want = upstream * (cdf + 0.5 * a * (1.0 - (2.0 * cdf - 1.0) ** 2) * (scale * (1.0 + 3.0 * cubic * (a * a))))
    else:
        from math import erf
        cdf = 0.5 * (1.0 + np.vectorize(erf)(a / np.sqrt(2)))
        want = upstream * (cdf + a * np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi))
    np.testing.assert_allclose(grad, want, rtol=1e-13, atol=1e-15)


@pytest.mark.host_only("tracemalloc sees host arrays")
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelus_backward_holds_at_most_three_input_sized_arrays(approximate):
    """PyTorch's GELU backward is one kernel; autonet's formula computes in place, so it holds
    at most three arrays of the input's size at once, its result included (written as one
    expression it held six: the tiny GPT step's peak). The exact form's Φ also holds what
    its erf holds (NumPy has no erf: an object array of Python floats), measured alone."""
    import tracemalloc

    from autonet.ops.activations import erf_array

    x = Tensor(np.random.default_rng(4).normal(size=(256, 256)), requires_grad=True)
    y = F.gelu(x, approximate=approximate)

    def peak_of(compute):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = compute()
            return result, tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()

    upstream = np.ones(x.shape)
    grad, peak = peak_of(lambda: y.grad_fn.fn.backward(y.grad_fn, upstream))   # the formula alone
    erf_peak = peak_of(lambda: erf_array(x.data))[1] if approximate == "none" else 0
    arrays = 3 if approximate == "tanh" else 2   # the exact form: two and erf's peak (its result included)
    assert grad.shape == x.shape and peak <= arrays * x.data.nbytes + erf_peak + 4096, \
        (peak - erf_peak) / x.data.nbytes


# ------------------------------------------------------------------ a transformer step's memory
def transformer_case(dtype=np.float64):
    rng = np.random.default_rng(11)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=64, dropout=0.0, rng=12).astype(dtype)
    x, target = (Tensor(rng.normal(size=(8, 4, 16)).astype(dtype)) for _ in range(2))
    return layer, lambda: ((layer(x) - target) ** 2).mean()


def test_transformer_graph_keeps_what_pytorch_keeps():
    """The activations a TransformerEncoderLayer's graph keeps for backward (deduplicated by
    buffer, parameters aside), in (L, N, d_model) units: the input, q, k and v, the attention's
    output, the two LayerNorm inputs, the feed-forward input and its hidden activation (4,
    kept once for ReLU and the product after it). PyTorch keeps these and the attention's
    output once more. The composite kept the (N, H, L, S) weights and scaled queries too, the
    hidden activation twice and each normalized input twice."""
    layer, _ = transformer_case()
    x = Tensor(np.random.default_rng(13).normal(size=(8, 4, 16)))
    out = layer(x)
    parameters = {id(getattr(p._data, "array", p._data)) for p in layer.parameters()}
    buffers = {}
    for node in graph_nodes(out):
        for array in host_arrays(node.saved):
            base = array if array.base is None else array.base
            if id(array) not in parameters and id(base) not in parameters and array.size >= 8 * 4:
                buffers[id(base)] = base.nbytes
    token = 8 * 4 * 16 * 8   # bytes of one (L, N, d_model) float64 activation
    statistics = 2 * 2 * (8 * 4) * 8 + 2 * (4 * 4 * 8) * 8   # LayerNorms' and attention's rows
    assert sum(buffers.values()) <= 12 * token + statistics
    assert 4 * token in buffers.values()   # the hidden activation, once


def test_compiled_transformer_step_replays_eagerly_bit_for_bit_within_eagers_memory():
    def training_step():
        layer, loss_of = transformer_case(np.float32)
        optimizer = SGD(layer.parameters(), lr=0.05)

        def step():
            loss = loss_of()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        return layer, step

    eager, (layer, step) = training_step(), training_step()
    steps = [eager, (layer, autonet.compile(step))]
    for _ in range(3):
        losses = [data(step()) for _, step in steps]
        assert losses[0] == losses[1]
    for (name, a), (_, b) in zip(steps[0][0].named_parameters(), steps[1][0].named_parameters()):
        np.testing.assert_array_equal(data(a), data(b), err_msg=name)
    peaks = []
    for _, step in steps:
        tracemalloc.start()
        try:
            step()
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] <= 1.05 * peaks[0]   # the replay frees each gradient after its formula
