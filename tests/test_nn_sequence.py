"""Sequence layers: recurrent layers and cells, attention and the transformer encoder.

Forward values against NumPy implementations of PyTorch's documented
equations written here (independent of autonet's code), gradients against
finite differences (of autonet and of those references), second derivatives,
compiled training steps against eager twins bit for bit, and bad input.
"""
import copy

import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.optim import SGD
from autonet.testing import assert_gradients_match


def data(array):
    """A host copy of a Tensor's values (device double included)."""
    return np.array(array.data if isinstance(array, Tensor) else array).copy()   # never a view


def params(module):
    return {name: data(p) for name, p in module.named_parameters()}


# ------------------------------------------------------------------ NumPy references (PyTorch's docs)
def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def rnn_cell_ref(mode, x, state, w_ih, w_hh, b_ih, b_hh):
    """One step of PyTorch's documented equations; ``state`` is (h,) or (h, c)."""
    h = state[0]
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    if mode in ("tanh", "relu"):
        pre = gi + gh
        return (np.tanh(pre) if mode == "tanh" else np.maximum(pre, 0.0),)
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = sigmoid(f) * state[1] + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c
    (ir, iz, in_), (hr, hz, hn) = np.split(gi, 3, axis=-1), np.split(gh, 3, axis=-1)
    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
    n = np.tanh(in_ + r * hn)
    return ((1 - z) * n + z * h,)


def rnn_ref(mode, weights, x, states, num_layers, bidirectional):
    """Multi-layer (bi)directional run; ``weights[suffix] = (w_ih, w_hh, b_ih, b_hh)``;
    ``states``: arrays (layers * directions, N, H), one per state kind."""
    directions = 2 if bidirectional else 1
    finals = []
    for layer in range(num_layers):
        outs = []
        for d in range(directions):
            k = layer * directions + d
            state = tuple(s[k] for s in states)
            w = weights[f"_l{layer}" + ("_reverse" if d else "")]
            steps = range(len(x) - 1, -1, -1) if d else range(len(x))
            out = [None] * len(x)
            for t in steps:
                state = rnn_cell_ref(mode, x[t], state, *w)
                out[t] = state[0]
            outs.append(np.stack(out))
            finals.append(state)
        x = np.concatenate(outs, axis=-1)
    return x, [np.stack([f[j] for f in finals]) for j in range(len(states))]


def ref_weights(module, num_layers, bidirectional):
    p = params(module)
    zeros = lambda name: np.zeros(p[name.replace("bias", "weight")].shape[0])   # noqa: E731
    suffixes = [f"_l{layer}" + ("_reverse" if d else "") for layer in range(num_layers)
                for d in range(2 if bidirectional else 1)]
    return {s: (p["weight_ih" + s], p["weight_hh" + s], p.get("bias_ih" + s, zeros("bias_ih" + s)),
                p.get("bias_hh" + s, zeros("bias_hh" + s))) for s in suffixes}


RNN_CASES = [
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(num_layers=2, bias=False)),
    ("GRU", dict(bidirectional=True, batch_first=True)),
    ("RNN", dict(nonlinearity="relu", num_layers=2, bidirectional=True)),
    ("RNN", dict(batch_first=True)),
]


def _mode(kind, options):
    return options.get("nonlinearity", "tanh") if kind == "RNN" else kind


@pytest.mark.parametrize("kind, options", RNN_CASES, ids=lambda v: str(v))
def test_recurrent_layers_follow_pytorchs_equations_with_and_without_initial_state(kind, options):
    rng = np.random.default_rng(0)
    layers, bidirectional = options.get("num_layers", 1), options.get("bidirectional", False)
    model = getattr(nn, kind)(3, 4, rng=1, **options)
    x = rng.normal(size=(5, 2, 3))
    count = layers * (2 if bidirectional else 1)
    given = [rng.normal(size=(count, 2, 4)) for _ in range(2 if kind == "LSTM" else 1)]
    weights = ref_weights(model, layers, bidirectional)
    for initial in (None, given):
        states = initial or [np.zeros((count, 2, 4))] * len(given)
        expected, finals = rnn_ref(_mode(kind, options), weights, x, states, layers, bidirectional)
        hx = None if initial is None else (tuple(map(Tensor, initial)) if kind == "LSTM" else Tensor(initial[0]))
        x_in = x.swapaxes(0, 1) if options.get("batch_first") else x
        output, h = model(Tensor(x_in), hx)
        output = data(output).swapaxes(0, 1) if options.get("batch_first") else data(output)
        np.testing.assert_allclose(output, expected, rtol=0, atol=1e-12)
        for got, want in zip(h if kind == "LSTM" else (h,), finals):
            np.testing.assert_allclose(data(got), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_parameters_have_pytorchs_names_shapes_and_initialisation(kind):
    model = getattr(nn, kind)(3, 16, num_layers=2, bidirectional=True, rng=0)
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    names = [f"{w}_l{layer}{s}" for layer in range(2) for s in ("", "_reverse")
             for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert [name for name, _ in model.named_parameters()] == names
    assert model.weight_ih_l0.shape == (gates * 16, 3)
    assert model.weight_ih_l1_reverse.shape == (gates * 16, 32)   # fed both directions
    assert model.weight_hh_l1.shape == (gates * 16, 16) and model.bias_hh_l0.shape == (gates * 16,)
    values = np.concatenate([p.ravel() for p in params(model).values()])
    assert np.abs(values).max() <= 0.25 and np.abs(values).max() > 0.24   # U(-1/sqrt(16), 1/sqrt(16))
    assert abs(values.std() - 0.25 / np.sqrt(3)) < 0.01
    assert [n for n, _ in getattr(nn, kind)(3, 4, bias=False).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0"]


def test_unbatched_input_and_cells_match_the_equations():
    rng = np.random.default_rng(2)
    x, h, c = rng.normal(size=(3,)), rng.normal(size=(4,)), rng.normal(size=(4,))
    for kind, mode, hx in (("RNNCell", "relu", h), ("LSTMCell", "LSTM", (h, c)), ("GRUCell", "GRU", h)):
        options = dict(nonlinearity="relu") if kind == "RNNCell" else {}
        cell = getattr(nn, kind)(3, 4, rng=3, **options)
        p = params(cell)
        state = (h, c) if mode == "LSTM" else (h,)
        expected = rnn_cell_ref(mode, x[None], tuple(s[None] for s in state),
                                p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        hx_in = tuple(map(Tensor, hx)) if mode == "LSTM" else Tensor(hx)
        got = cell(Tensor(x), hx_in)
        for g, e in zip(got if mode == "LSTM" else (got,), expected):
            assert g.shape == (4,)
            np.testing.assert_allclose(data(g), e[0], rtol=0, atol=1e-12)
        zero = cell(Tensor(x[None]))
        expected_zero = rnn_cell_ref(mode, x[None], (np.zeros((1, 4)),) * len(state),
                                     p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        np.testing.assert_allclose(data(zero[0] if mode == "LSTM" else zero), expected_zero[0], atol=1e-12)
    gru = nn.GRU(3, 4, num_layers=2, rng=0)
    sequence = rng.normal(size=(5, 3))
    batched_out, batched_h = gru(Tensor(sequence[:, None]))
    out, h_n = gru(Tensor(sequence))
    assert out.shape == (5, 4) and h_n.shape == (2, 4)
    np.testing.assert_array_equal(data(out), data(batched_out)[:, 0])
    np.testing.assert_array_equal(data(h_n), data(batched_h)[:, 0])


def _numeric_gradients(loss, arrays, eps=1e-6):
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            keep = a[i]
            a[i] = keep + eps
            up = loss()
            a[i] = keep - eps
            down = loss()
            a[i] = keep
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("kind, options", [("LSTM", dict(num_layers=2, bidirectional=True)),
                                           ("GRU", dict(num_layers=2)), ("RNN", dict(bidirectional=True))])
def test_gradients_match_finite_differences_of_the_reference_and_of_autonet(kind, options):
    rng = np.random.default_rng(4)
    layers, bidirectional = options.get("num_layers", 1), options.get("bidirectional", False)
    model = getattr(nn, kind)(2, 3, rng=5, **options)
    count = layers * (2 if bidirectional else 1)
    x, h0 = rng.normal(size=(3, 2, 2)), rng.normal(size=(count, 2, 3))
    upstream = rng.normal(size=(3, 2, 3 * (2 if bidirectional else 1)))
    states = [h0, np.zeros_like(h0)] if kind == "LSTM" else [h0]
    weights = ref_weights(model, layers, bidirectional)
    hx = (Tensor(h0), Tensor(states[1])) if kind == "LSTM" else Tensor(h0)
    output, _ = model(Tensor(x), hx)
    (output * Tensor(upstream)).sum().backward()
    names = [name for name, _ in model.named_parameters()]
    arrays = [weights[n[n.index("_l"):]][("weight_ih", "weight_hh", "bias_ih", "bias_hh").index(n[:n.index("_l")])]
              for n in names]
    numeric = _numeric_gradients(
        lambda: (rnn_ref(_mode(kind, options), weights, x, states, layers, bidirectional)[0] * upstream).sum(),
        arrays)
    for name, expected in zip(names, numeric):
        np.testing.assert_allclose(data(getattr(model, name).grad), expected, rtol=1e-6, atol=1e-8,
                                   err_msg=name)
    h_in = Tensor(h0, requires_grad=True)
    if kind == "LSTM":
        fn = lambda x, h: model(x, (h, h * 0.5))[0]   # noqa: E731
    else:
        fn = lambda x, h: model(x, h)[1]   # noqa: E731
    assert_gradients_match(fn, Tensor(x, requires_grad=True), h_in)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_have_second_derivatives(kind):
    rng = np.random.default_rng(6)
    cell = getattr(nn, kind)(2, 2, rng=7)
    x, h = (Tensor(rng.normal(size=(2, 2)), requires_grad=True) for _ in range(2))
    if kind == "LSTMCell":
        fn = lambda x, h: cell(x, (h, h * h))[1]   # noqa: E731
    else:
        fn = lambda x, h: cell(x, h)   # noqa: E731
    assert autonet.gradgradcheck(fn, [x, h])


def assert_compiled_training_equals_eager(make_model, batches, loss_of):
    """Three SGD steps, compiled and eager from the same start: equal bit for bit."""
    eager_model, compiled_model = make_model(), make_model()

    def stepper(model):
        optimizer = SGD(list(model.parameters()), lr=0.1)

        def step(*inputs):
            optimizer.zero_grad()
            loss = loss_of(model, *inputs)
            loss.backward()
            optimizer.step()
            return loss
        return step

    eager, compiled = stepper(eager_model), autonet.compile(stepper(compiled_model))
    for inputs in batches:
        np.testing.assert_array_equal(data(compiled(*inputs)), data(eager(*inputs)))
    for (name, a), b in zip(eager_model.named_parameters(), compiled_model.parameters()):
        np.testing.assert_array_equal(data(a), data(b), err_msg=name)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_compiled_recurrent_training_step_equals_eager(kind):
    rng = np.random.default_rng(8)
    batches = [(Tensor(rng.normal(size=(4, 2, 3))),) for _ in range(3)]
    make = lambda: getattr(nn, kind)(3, 4, num_layers=2, dropout=0.5, bidirectional=True, rng=9)  # noqa: E731
    assert_compiled_training_equals_eager(make, batches, lambda m, x: (m(x)[0] ** 2).mean())


@pytest.mark.parametrize("make", [lambda: nn.RNN(3, 2, rng=0), lambda: nn.GRU(3, 2, bias=False, rng=0),
                                  lambda: nn.LSTM(3, 2, rng=0), lambda: nn.RNNCell(3, 2, rng=0),
                                  lambda: nn.GRUCell(3, 2, rng=0), lambda: nn.LSTMCell(3, 2, rng=0)],
                         ids=["RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"])
def test_one_step_from_a_zero_state_gives_weight_hh_a_zero_gradient_as_pytorch(make):
    """PyTorch projects the zero initial state, so weight_hh's gradient after one step is zeros,
    not None (autonet's RNN, GRU and cells skipped the projection: weight_hh got None, and
    AdamW's decay and Adam's momentum then skipped it where PyTorch's step it)."""
    layer = make()
    x = np.random.default_rng(5).normal(size=(1, 4, 3) if hasattr(layer, "num_layers") else (4, 3))
    out = layer(Tensor(x))
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None, name
    weight_hh = layer.weight_hh_l0 if hasattr(layer, "num_layers") else layer.weight_hh
    np.testing.assert_array_equal(data(weight_hh.grad), np.zeros(weight_hh.shape))
    before = data(weight_hh).copy()
    autonet.optim.AdamW(layer.parameters(), lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(data(weight_hh), before * (1 - 0.1 * 0.5), rtol=1e-15)   # decayed only


def test_dropout_between_layers_only_in_training():
    model = nn.LSTM(3, 4, num_layers=2, dropout=0.5, rng=0)
    x = Tensor(np.random.default_rng(1).normal(size=(4, 2, 3)))
    model.eval()
    first, second = model(x)[0], model(x)[0]
    np.testing.assert_array_equal(data(first), data(second))
    model.train()
    assert not np.array_equal(data(model(x)[0]), data(first))


def _unchanged_after(error, match, action, *modules):
    before = [copy.deepcopy(params(m)) for m in modules]
    with pytest.raises(error, match=match):
        action()
    for m, b in zip(modules, before):
        assert all(np.array_equal(b[k], v) for k, v in params(m).items())


def test_recurrent_bad_input_is_explained():
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="input_size must be a positive int"):
        nn.GRUCell(0, 3)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout must lie in"):
        nn.GRU(3, 4, dropout=1.5)
    model = nn.LSTM(3, 4, num_layers=2, rng=0)
    _unchanged_after(ValueError, "input must have shape", lambda: model(Tensor(np.ones((5, 2, 4)))), model)
    _unchanged_after(ValueError, r"h_0 must have shape \(2, 2, 4\)",
                     lambda: model(Tensor(np.ones((5, 2, 3))), (Tensor(np.ones((1, 2, 4))),) * 2), model)
    _unchanged_after(TypeError, "astype", lambda: model(Tensor(np.ones((5, 2, 3)), dtype=np.float32)), model)
    _unchanged_after(ValueError, "sequence is empty", lambda: model(Tensor(np.ones((0, 2, 3)))), model)
    cell = nn.GRUCell(3, 4, rng=0)
    _unchanged_after(ValueError, r"hx's h must have shape \(2, 4\)",
                     lambda: cell(Tensor(np.ones((2, 3))), Tensor(np.ones((3, 4)))), cell)
    # one array where (h, c) belongs: its rows were taken for h and c ("h must have shape (2, 4),
    # not (4,)"; a (2, 2, 4) state for two layers passed as h_0 = state[0], c_0 = state[1])
    lstm_cell = nn.LSTMCell(3, 4, rng=0)
    _unchanged_after(ValueError, r"hx must be a tuple \(h, c\)",
                     lambda: lstm_cell(Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))), lstm_cell)
    _unchanged_after(ValueError, "hx must be h_0 and c_0 as a tuple",
                     lambda: model(Tensor(np.ones((5, 2, 3))), Tensor(np.ones((2, 2, 4)))), model)


# ------------------------------------------------------------------ attention
def softmax_ref(scores, safe):
    """Softmax over the last axis; ``safe``: rows that are -inf throughout give zeros."""
    top = scores.max(axis=-1, keepdims=True)
    dead = np.isneginf(top)
    with np.errstate(invalid="ignore"):
        e = np.exp(scores - np.where(dead & safe, 0.0, top))
        out = e / e.sum(axis=-1, keepdims=True)
    return np.where(dead & safe, 0.0, out)


def sdpa_ref(q, k, v, keep=None, added=None, scale=None):
    scores = q @ np.swapaxes(k, -1, -2) * (1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    scores = scores if added is None else scores + added
    scores = scores if keep is None else np.where(keep, scores, -np.inf)
    return softmax_ref(scores, safe=True) @ v


def test_scaled_dot_product_attention_masks_mean_what_pytorch_says():
    rng = np.random.default_rng(10)
    q, k, v = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(2, 3, 6, 7))
    keep = rng.random((4, 6)) > 0.4
    keep[1] = False                      # a query that may attend to nothing: zeros, as PyTorch
    added = rng.normal(size=(3, 4, 6))
    causal = np.tril(np.ones((4, 6), bool))
    cases = [({}, {}), (dict(attn_mask=keep), dict(keep=keep)), (dict(attn_mask=added, scale=0.3),
             dict(added=added, scale=0.3)), (dict(is_causal=True), dict(keep=causal))]
    for call, reference in cases:
        out = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v),
                                             **{n: Tensor(m, dtype=m.dtype) if isinstance(m, np.ndarray)
                                                else m for n, m in call.items()})
        np.testing.assert_allclose(data(out), sdpa_ref(q, k, v, **reference), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(data(F.scaled_dot_product_attention(q, k, v, attn_mask=keep))[:, :, 1], 0.0)
    small = [Tensor(a[:1, :1, :3, :2], requires_grad=True) for a in (q, k, v)]
    mask = Tensor(keep[:3, :3], dtype=bool)
    assert_gradients_match(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), *small)
    assert autonet.gradgradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), small)
    q0, k0, v0 = small
    F.scaled_dot_product_attention(q0, k0, v0, attn_mask=mask).sum().backward()
    assert np.isfinite(data(q0.grad)).all() and (data(q0.grad)[0, 0, 1] == 0).all()   # the dead row


def mha_ref(module, q, k, v, key_padding_mask=None, attn_mask=None, safe=False):
    """PyTorch's multi_head_attention_forward in NumPy, for (L, N, E) inputs."""
    p = params(module)
    e, h = module.embed_dim, module.num_heads
    if "in_proj_weight" in p:
        w_q, w_k, w_v = np.split(p["in_proj_weight"], 3)
    else:
        w_q, w_k, w_v = p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]
    b_q, b_k, b_v = np.split(p.get("in_proj_bias", np.zeros(3 * e)), 3)
    heads = lambda x: x.reshape(x.shape[0], x.shape[1], h, e // h).transpose(1, 2, 0, 3)   # noqa: E731
    qh, kh, vh = heads(q @ w_q.T + b_q), heads(k @ w_k.T + b_k), heads(v @ w_v.T + b_v)
    scores = qh @ kh.swapaxes(-1, -2) / np.sqrt(e // h)
    for mask in (attn_mask if attn_mask is None or attn_mask.ndim == 2 else
                 attn_mask.reshape(scores.shape),
                 None if key_padding_mask is None else key_padding_mask[:, None, None, :]):
        if mask is not None:
            scores = np.where(mask, -np.inf, scores) if mask.dtype == bool else scores + mask
    weights = softmax_ref(scores, safe)
    out = (weights @ vh).transpose(2, 0, 1, 3).reshape(q.shape[0], q.shape[1], e)
    out = out @ p["out_proj.weight"].T + p.get("out_proj.bias", 0.0)
    return out, weights


@pytest.mark.parametrize("options", [dict(), dict(batch_first=True), dict(kdim=3, vdim=5), dict(bias=False)],
                         ids=str)
def test_multihead_attention_matches_pytorchs_equations(options):
    rng = np.random.default_rng(11)
    module = nn.MultiheadAttention(6, 2, rng=12, **options)
    length, source, batch = 4, 5, 3
    q = rng.normal(size=(length, batch, 6))
    k, v = rng.normal(size=(source, batch, module.kdim)), rng.normal(size=(source, batch, module.vdim))
    padding = rng.random((batch, source)) > 0.7
    padding[0] = True                              # batch 0 attends to nothing
    attn_bool = rng.random((length, source)) > 0.8
    attn_float = rng.normal(size=(batch * 2, length, source))
    layout = (lambda x: x.swapaxes(0, 1)) if options.get("batch_first") else (lambda x: x)
    for masks in (dict(), dict(key_padding_mask=padding), dict(attn_mask=attn_bool),
                  dict(attn_mask=attn_float, key_padding_mask=padding)):
        given = {name: Tensor(m, dtype=m.dtype) for name, m in masks.items()}
        for need_weights, average in ((True, True), (True, False), (False, True)):
            out, weights = module(*(Tensor(layout(a)) for a in (q, k, v)), need_weights=need_weights,
                                  average_attn_weights=average, **given)
            expected, expected_weights = mha_ref(module, q, k, v, safe=not need_weights, **masks)
            np.testing.assert_allclose(layout(data(out)), expected, rtol=0, atol=1e-12)
            if not need_weights:
                assert weights is None
                continue
            expected_weights = expected_weights.mean(axis=1) if average else expected_weights
            np.testing.assert_allclose(data(weights), expected_weights, rtol=0, atol=1e-12)
    out, weights = module(Tensor(q[:, 0]), Tensor(k[:, 0]), Tensor(v[:, 0]), average_attn_weights=False)
    assert out.shape == (4, 6) and weights.shape == (2, 4, 5)   # unbatched
    np.testing.assert_allclose(data(out), mha_ref(module, q[:, :1], k[:, :1], v[:, :1])[0][:, 0], atol=1e-12)


def test_multihead_attention_parameters_gradients_and_second_derivatives():
    module = nn.MultiheadAttention(64, 4, rng=0)
    assert [n for n, _ in module.named_parameters()] == \
        ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    w = params(module)
    assert np.abs(w["in_proj_weight"]).max() <= np.sqrt(6 / (64 + 192))   # Xavier over (3E, E)
    assert np.abs(w["in_proj_weight"]).max() > 0.95 * np.sqrt(6 / (64 + 192))
    assert np.abs(w["out_proj.weight"]).max() <= 1 / 8 and not w["in_proj_bias"].any() \
        and not w["out_proj.bias"].any()
    assert [n for n, _ in nn.MultiheadAttention(4, 2, kdim=3, vdim=5).named_parameters()] == \
        ["q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight",
         "out_proj.bias"]
    rng = np.random.default_rng(13)
    small = nn.MultiheadAttention(4, 2, rng=14)
    for p in small.parameters():   # non-zero biases, so their gradients are tested too
        p.data[...] = data(p) + rng.normal(size=p.shape) * 0.1
    x = Tensor(rng.normal(size=(3, 2, 4)), requires_grad=True)
    padding = Tensor(np.array([[False, False, True], [False, True, False]]), dtype=bool)
    assert_gradients_match(lambda x: small(x, x, x, key_padding_mask=padding)[0], x)
    assert autonet.gradgradcheck(lambda x: small(x, x, x, need_weights=False)[0], [x])
    upstream = rng.normal(size=(3, 2, 4))
    (small(x, x, x)[0] * Tensor(upstream)).sum().backward()
    before, eps = params(small), 1e-6
    for name in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"):
        index = np.unravel_index(7 % before[name].size, before[name].shape)
        parameter = small.get_parameter(name) if hasattr(small, "get_parameter") else \
            dict(small.named_parameters())[name]
        numeric = []
        for sign in (1, -1):   # finite differences of the NumPy reference
            parameter.data[index] = before[name][index] + sign * eps
            numeric.append((mha_ref(small, data(x), data(x), data(x))[0] * upstream).sum())
        parameter.data[index] = before[name][index]
        assert abs(data(parameter.grad)[index] - (numeric[0] - numeric[1]) / (2 * eps)) < 1e-7, name


def encoder_layer_ref(layer, x, mask=None, padding=None):
    p = params(layer)

    def norm(a, which):
        mean, var = a.mean(-1, keepdims=True), a.var(-1, keepdims=True)
        return (a - mean) / np.sqrt(var + 1e-5) * p[f"{which}.weight"] + p[f"{which}.bias"]

    def attention(a):
        return mha_ref(layer.self_attn, a, a, a, key_padding_mask=padding, attn_mask=mask, safe=True)[0]

    def feed_forward(a):
        hidden = np.maximum(a @ p["linear1.weight"].T + p["linear1.bias"], 0.0)
        return hidden @ p["linear2.weight"].T + p["linear2.bias"]

    if layer.norm_first:
        x = x + attention(norm(x, "norm1"))
        return x + feed_forward(norm(x, "norm2"))
    x = norm(x + attention(x), "norm1")
    return norm(x + feed_forward(x), "norm2")


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_matches_pytorchs_equations(norm_first):
    rng = np.random.default_rng(15)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, norm_first=norm_first, rng=16)
    assert [n for n, _ in layer.named_parameters()] == [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
        "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"]
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    for i, copied in enumerate(encoder.layers):   # independent copies, perturbed differently
        for p in copied.parameters():
            p.data[...] = data(p) + rng.normal(size=p.shape) * 0.1 * (i + 1)
    encoder.eval()
    x = rng.normal(size=(5, 3, 8))
    causal = np.triu(np.ones((5, 5), bool), 1)
    padding = rng.random((3, 5)) > 0.6
    padding[:, 0] = False
    expected = x
    for copied in encoder.layers:
        expected = encoder_layer_ref(copied, expected, causal, padding)
    mean, var = expected.mean(-1, keepdims=True), expected.var(-1, keepdims=True)
    expected = (expected - mean) / np.sqrt(var + 1e-5)
    got = encoder(Tensor(x), mask=Tensor(causal, dtype=bool), src_key_padding_mask=Tensor(padding, dtype=bool),
                  is_causal=True)
    np.testing.assert_allclose(data(got), expected, rtol=0, atol=1e-10)
    assert not np.array_equal(data(encoder.layers[0].linear1.weight), data(encoder.layers[1].linear1.weight))
    assert encoder.layers[0].dropout.rng is not encoder.layers[1].dropout.rng
    assert encoder.layers[0].dropout.rng is encoder.layers[0].dropout1.rng


def test_compiled_attention_training_steps_equal_eager():
    rng = np.random.default_rng(17)
    padding = [Tensor(rng.random((2, 4)) > 0.7, dtype=bool) for _ in range(3)]
    batches = [(Tensor(rng.normal(size=(2, 4, 8))), mask) for mask in padding]
    causal = Tensor(np.triu(np.ones((4, 4), bool), 1), dtype=bool)

    def make():
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.2, batch_first=True, rng=18)
        return nn.TransformerEncoder(layer, 2)

    assert_compiled_training_equals_eager(
        make, batches, lambda m, x, pad: (m(x, mask=causal, src_key_padding_mask=pad) ** 2).mean())
    assert_compiled_training_equals_eager(
        lambda: nn.MultiheadAttention(8, 2, dropout=0.3, rng=19), [(x,) for x, _ in batches],
        lambda m, x: (m(x, x, x)[0] ** 2).mean() + m(x, x, x)[1].sum())
    scale = [Tensor(rng.normal(size=(1, 8)), requires_grad=True)]
    step = lambda q: F.scaled_dot_product_attention(q * scale[0], q, q, is_causal=True).sum()   # noqa: E731
    compiled = autonet.compile(step)
    for x, _ in batches:
        np.testing.assert_array_equal(data(compiled(x)), data(step(x)))


def test_attention_bad_input_is_explained():
    with pytest.raises(ValueError, match="embed_dim 10 must be divisible by num_heads 4"):
        nn.MultiheadAttention(10, 4)
    with pytest.raises(ValueError, match="activation must be"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
    module = nn.MultiheadAttention(8, 2, rng=0)
    x = Tensor(np.ones((4, 2, 8)))
    _unchanged_after(ValueError, r"attn_mask must have shape \(4, 4\) or \(4, 4, 4\)",
                     lambda: module(x, x, x, attn_mask=Tensor(np.ones((3, 4), bool), dtype=bool)), module)
    _unchanged_after(TypeError, "attn_mask must be a bool mask or a float mask",
                     lambda: module(x, x, x, attn_mask=Tensor(np.ones((4, 4), np.int64), dtype=np.int64)), module)
    _unchanged_after(ValueError, r"key_padding_mask must have shape \(2, 4\)",
                     lambda: module(x, x, x, key_padding_mask=Tensor(np.ones((4, 2), bool), dtype=bool)), module)
    _unchanged_after(ValueError, "pass that attn_mask too", lambda: module(x, x, x, is_causal=True), module)
    _unchanged_after(ValueError, "the last axes must be embed_dim 8",
                     lambda: module(x[..., :4], x, x), module)
    q = Tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=Tensor(np.ones((3, 3), bool), dtype=bool),
                                       is_causal=True)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(2, 2\) does not broadcast"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=Tensor(np.ones((2, 2), bool), dtype=bool))
    with pytest.raises(TypeError, match="attn_mask must be a bool mask or a float mask"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=Tensor(np.ones((3, 3)), dtype=np.float32))


# ------------------------------------------------------------------ PyTorch itself, when installed
@pytest.mark.host_only("compares with torch on the CPU")
def test_same_weights_give_pytorchs_outputs_when_torch_is_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(30)

    def load(ours, theirs):
        theirs = theirs.double()   # before loading: float32 would round our weights
        theirs.load_state_dict({k: torch.tensor(data(v)) for k, v in ours.state_dict().items()})
        return theirs

    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, rng=0)
    reference = load(lstm, torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True))
    x = rng.normal(size=(2, 5, 3))
    (out, (h, c)), (t_out, (t_h, t_c)) = lstm(Tensor(x)), reference(torch.tensor(x))
    for ours, theirs in ((out, t_out), (h, t_h), (c, t_c)):
        np.testing.assert_allclose(data(ours), theirs.detach().numpy(), rtol=0, atol=1e-12)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, rng=1)
    encoder = nn.TransformerEncoder(layer, 2).eval()
    t_layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    t_encoder = load(encoder, torch.nn.TransformerEncoder(t_layer, 2, enable_nested_tensor=False)).eval()
    x, padding = rng.normal(size=(3, 5, 8)), np.array([[False] * 4 + [True]] * 3)
    np.testing.assert_allclose(data(encoder(Tensor(x), src_key_padding_mask=Tensor(padding, dtype=bool))),
                               t_encoder(torch.tensor(x), src_key_padding_mask=torch.tensor(padding))
                               .detach().numpy(), rtol=0, atol=1e-10)
    up = nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2, rng=2)
    t_up = load(up, torch.nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2))
    x = rng.normal(size=(1, 2, 4, 5))
    np.testing.assert_allclose(data(up(Tensor(x))), t_up(torch.tensor(x)).detach().numpy(), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ the LSTM layer as one op
def lstm_layer_inputs(rng, states, bias, length=5, batch=3, size=4, hidden=6):
    tensor = lambda *shape: Tensor(rng.normal(size=shape) * 0.5, requires_grad=True)  # noqa: E731
    x, w_ih, w_hh = tensor(length, batch, size), tensor(4 * hidden, size), tensor(4 * hidden, hidden)
    h0, c0 = (tensor(batch, hidden), tensor(batch, hidden)) if states else (None, None)
    b_ih, b_hh = (tensor(4 * hidden), tensor(4 * hidden)) if bias else (None, None)
    return [x, h0, c0, w_ih, b_ih, w_hh, b_hh]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("states", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_lstm_layer_op_equals_the_step_composite_in_values_and_gradients(reverse, states, bias):
    """nn.lstm_layer (one op, backward written by hand) against the composite of the step ops
    it replaced (recurrent_steps.composite_lstm_layer), and the NumPy reference of PyTorch's equations."""
    from autonet.nn.lstm_layer import lstm_layer
    from autonet.nn.recurrent_steps import composite_lstm_layer
    rng = np.random.default_rng(40)
    inputs = lstm_layer_inputs(rng, states, bias)
    out = lstm_layer(*inputs, reverse)
    composite = composite_lstm_layer(*inputs, reverse=reverse)
    np.testing.assert_allclose(data(out), data(composite), rtol=1e-13, atol=1e-14)
    x, h0, c0, w_ih, b_ih, w_hh, b_hh = (None if t is None else data(t) for t in inputs)
    zeros = np.zeros((3, 6))
    state, order = (zeros if h0 is None else h0, zeros if c0 is None else c0), range(5)
    for t in (reversed(order) if reverse else order):   # PyTorch's documented equations
        state = rnn_cell_ref("LSTM", x[t], state, w_ih, w_hh, 0 if b_ih is None else b_ih,
                             0 if b_hh is None else b_hh)
        np.testing.assert_allclose(data(out)[t], state[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(data(out)[5], state[1], rtol=1e-12, atol=1e-13)
    live = [t for t in inputs if t is not None]
    upstream = Tensor(rng.normal(size=out.shape))
    mine = autonet.grad((out * upstream).sum(), live)
    theirs = autonet.grad((composite_lstm_layer(*inputs, reverse=reverse) * upstream).sum(), live)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(data(a), data(b), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("states", [False, True])
def test_lstm_layer_op_passes_gradcheck_and_gradgradcheck(states):
    from autonet.nn.lstm_layer import lstm_layer
    inputs = lstm_layer_inputs(np.random.default_rng(41), states, True, length=3, batch=2, size=2,
                               hidden=2)
    positions = [k for k, t in enumerate(inputs) if t is not None]

    def function(*given):
        full = list(inputs)
        for k, t in zip(positions, given):
            full[k] = t
        return lstm_layer(*full, reverse=states)

    live = [inputs[k] for k in positions]
    assert autonet.gradcheck(function, live)
    assert autonet.gradgradcheck(function, live)


def test_lstm_is_one_op_per_layer_and_direction():
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, rng=0)
    output, (h_n, c_n) = lstm(np.ones((5, 2, 3)))
    names, stack, seen = [], [output.grad_fn, h_n.grad_fn, c_n.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen or not hasattr(node, "fn"):
            continue
        seen.add(id(node))
        names.append(node.name)
        stack += list(node.inputs)
    assert names.count("lstm_layer") == 4 and "sigmoid" not in names and "matmul" not in names
