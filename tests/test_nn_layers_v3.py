"""Contract v3's layers: recurrent layers and cells, attention and the transformer encoder.

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
    return np.array(array.data if isinstance(array, Tensor) else array)


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
