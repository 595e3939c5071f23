"""One time step of each recurrent cell (RNN, LSTM, GRU), PyTorch's equations over autonet's
differentiable ops, and ``scan``, which runs a step over a sequence.

``nn.recurrent``'s layers and cells run these; ``nn.lstm_layer``'s create_graph backward
differentiates ``composite_lstm_layer``, the LSTM layer they make, so both import this
module and neither imports the other's.
"""
from __future__ import annotations

from ..ops.elementwise import relu, sigmoid, tanh
from ..ops.shape import broadcast_to, concatenate, stack
from .constants import constant_like
from .projection import affine as _affine


def _hidden_part(h, w_hh, b_hh, projected):
    """``h @ w_hh.T + b_hh``; a missing state is zeros, as PyTorch's: the value is ``b_hh``'s, and
    ``w_hh`` gets its zero gradient (not None: an optimizer then steps it, as PyTorch's does)."""
    if h is None:
        h = broadcast_to(constant_like(projected, 0.0), projected.shape[:-1] + (w_hh.shape[1],))
    return _affine(h, w_hh, b_hh)


def _gates(pre, count):
    size = pre.shape[-1] // count
    return [pre[..., k * size:(k + 1) * size] for k in range(count)]


def _tanh_step(projected, state, w_hh, b_hh):
    return (tanh(projected + _hidden_part(state[0], w_hh, b_hh, projected)),)


def _relu_step(projected, state, w_hh, b_hh):
    return (relu(projected + _hidden_part(state[0], w_hh, b_hh, projected)),)


def _lstm_step(projected, state, w_hh, b_hh):
    """i, f, g, o = gates; c' = f c + i g; h' = o tanh(c')."""
    h, c = state
    i, f, g, o = _gates(projected + _hidden_part(h, w_hh, b_hh, projected), 4)
    i, g = sigmoid(i), tanh(g)
    c = i * g if c is None else sigmoid(f) * c + i * g
    return sigmoid(o) * tanh(c), c


def _gru_step(projected, state, w_hh, b_hh):
    """r, z = sigmoid(...); n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h' = (1 - z) n + z h."""
    (h,) = state
    x_r, x_z, x_n = _gates(projected, 3)
    h_r, h_z, h_n = _gates(_hidden_part(h, w_hh, b_hh, projected), 3)
    r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
    n = tanh(x_n + r * h_n)
    return ((1 - z) * n if h is None else (1 - z) * n + z * h),


STEPS = {"RNN_TANH": _tanh_step, "RNN_RELU": _relu_step, "LSTM": _lstm_step, "GRU": _gru_step}
GATE_COUNT = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def scan(step, projected, state, w_hh, b_hh, reverse):
    """Run ``step`` over the time axis of ``projected (L, N, gates * H)``: outputs ``(L, N, H)``
    in input order, and the last state."""
    length = projected.shape[0]
    outputs = [None] * length
    for t in (reversed(range(length)) if reverse else range(length)):
        state = step(projected[t], state, w_hh, b_hh)
        outputs[t] = state[0]
    return stack(outputs), state


def composite_lstm_layer(x, h0, c0, w_ih, b_ih, w_hh, b_hh, reverse):
    """What ``lstm_layer`` computes, from the step ops: the reference its create_graph
    backward differentiates."""
    output, (_, c) = scan(_lstm_step, _affine(x, w_ih, b_ih), (h0, c0), w_hh, b_hh, reverse)
    return concatenate([output, c.expand_dims(0)], axis=0)
