"""One LSTM layer, in one direction, over a whole sequence as one op.

The composite (``recurrent._scan`` of ``recurrent._lstm_step``) records about
fifteen ops per time step, each with its own Python call, slice and
zero-filled gradient. This op runs the same equations in one loop::

    gates = x_t W_ih^T + b_ih + h W_hh^T + b_hh;   i, f, g, o = sigmoid, sigmoid, tanh, sigmoid
    c' = f c + i g;   h' = o tanh(c')

and its backward runs back through time once, with the weights' gradients as
single products over every step (``dgates^T [x_t]`` and ``dgates^T [h_{t-1}]``)
rather than one small product per step. It saves the activated gates, the cells,
their tanh and its own output (PyTorch's CPU LSTM keeps as much). A missing initial state
is zero: the first step skips the hidden product, as the composite.

Its output is ``(L + 1, N, H)``: ``h_t`` for every step in input order, then the
last cell state. Under ``create_graph`` the backward recomputes the composite
from the saved inputs and differentiates it, so higher derivatives are the
composite's.
"""
from __future__ import annotations

import numpy as np

from ..core import device as devices
from ..core.backward import grad as gradients_of
from ..core.function import Function
from ..core.tensor import Tensor
from ..ops.generic import stable_sigmoid
from .recurrent_steps import composite_lstm_layer   # the composite this op stands for


class LSTMLayer(Function):
    """``(x (L, N, I), h0, c0, w_ih, b_ih, w_hh, b_hh)`` -> ``(L + 1, N, H)``; states and biases may
    be None."""

    name = "lstm_layer"

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, b_ih, w_hh, b_hh, reverse):
        length, batch = x.shape[:2]
        hidden = w_hh.shape[1]
        gates = _rows_product(x, w_ih.T)   # every step's input part and biases, one product
        for bias in (b_ih, b_hh):
            if bias is not None:
                gates += bias
        cells = devices.empty((length, batch, hidden), gates.dtype, gates)
        tanh_cells = devices.empty((length, batch, hidden), gates.dtype, gates)
        out = devices.empty((length + 1, batch, hidden), gates.dtype, gates)
        h, c = h0, c0
        w_hh_t = w_hh.T.copy()   # C order: BLAS multiplies by it ~1.4x faster than by the view
        hidden_part = devices.empty(gates.shape[1:], gates.dtype, gates)
        for t in _steps(length, reverse):
            gate = gates[t]
            if h is not None:
                gate += np.matmul(h, w_hh_t, out=hidden_part)
            _activate(gate, hidden)
            i, f, g, o = _split(gate, hidden)
            if c is None:
                c = np.multiply(i, g, out=cells[t])
            else:
                c = np.multiply(f, c, out=cells[t])
                c += i * g
            h = np.multiply(o, np.tanh(c, out=tanh_cells[t]), out=out[t])
        out[length] = c
        ctx.save_for_backward(x, h0, c0, w_ih, b_ih, w_hh, b_hh, gates, cells, tanh_cells, out)
        ctx.reverse = reverse
        return out

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return _composite_backward(ctx, grad)
        x, h0, c0, w_ih, b_ih, w_hh, b_hh, gates, cells, tanh_cells, out = ctx.saved
        length, batch, hidden = cells.shape
        steps = list(_steps(length, ctx.reverse))
        factors, through_cell, forget = _local_derivatives(gates, cells, tanh_cells, c0, ctx.reverse)
        grad_gates = devices.empty(gates.shape, gates.dtype, gates)
        grad_h = None
        grad_c = grad[length].copy()
        for k in reversed(range(length)):   # back through time: only what depends on the last step
            t = steps[k]
            if grad_h is None:
                grad_h = grad[t]
            else:
                grad_h += grad[t]
            grad_c += grad_h * through_cell[t]
            by_gate = grad_gates[t].reshape(batch, 4, hidden)
            np.multiply(grad_c[:, None, :], factors[t, :, :3], out=by_gate[:, :3])   # i, f, g
            np.multiply(grad_h, factors[t, :, 3], out=by_gate[:, 3])                  # o
            grad_c *= forget[t]
            h_before = out[steps[k - 1]] if k else h0
            grad_h = None if h_before is None else grad_gates[t] @ w_hh
        needs = ctx.needs_input_grad
        flat = grad_gates.reshape(-1, grad_gates.shape[-1])
        return (_rows_product(grad_gates, w_ih) if needs[0] else None,
                grad_h if needs[1] else None,
                grad_c if needs[2] else None,
                flat.T @ x.reshape(-1, x.shape[-1]) if needs[3] else None,
                flat.sum(axis=0) if needs[4] else None,
                _hidden_weight_gradient(grad_gates, out, h0, ctx.reverse) if needs[5] else None,
                flat.sum(axis=0) if needs[6] else None)


def _local_derivatives(gates, cells, tanh_cells, c0, reverse):
    """Every step's derivatives that need no gradient, at once over the sequence: the factors
    turning dc into di, df, dg (``g i(1-i)``, ``c_{t-1} f(1-f)``, ``i (1-g^2)``) and dh into do
    (``tanh(c) o(1-o)``), as ``(L, N, 4, H)``; dh's way into dc (``o (1 - tanh(c)^2)``); and the
    forget gate (dc's way back one step)."""
    length, batch, hidden = cells.shape
    by_gate = gates.reshape(length, batch, 4, hidden)
    i, f, g, o = (by_gate[:, :, k] for k in range(4))
    factors = np.subtract(1, gates).reshape(by_gate.shape)
    factors *= by_gate                       # s (1 - s) for every gate; g's is replaced next
    np.multiply(g, g, out=factors[:, :, 2])
    np.subtract(1, factors[:, :, 2], out=factors[:, :, 2])
    factors[:, :, 0] *= g
    factors[:, :, 2] *= i
    factors[:, :, 3] *= tanh_cells
    first, later, earlier = (-1, slice(0, -1), slice(1, None)) if reverse else \
        (0, slice(1, None), slice(0, -1))
    factors[later, :, 1] *= cells[earlier]   # the cell one step earlier in the scan
    factors[first, :, 1] *= 0 if c0 is None else c0
    through_cell = np.multiply(tanh_cells, tanh_cells)
    np.subtract(1, through_cell, out=through_cell)
    through_cell *= o
    return factors, through_cell, f


def _steps(length, reverse):
    return range(length - 1, -1, -1) if reverse else range(length)


def _rows_product(x, matrix):
    """``x (L, N, K) @ matrix (K, M)`` as one 2-d product."""
    return (x.reshape(-1, x.shape[-1]) @ matrix).reshape(x.shape[:-1] + matrix.shape[-1:])


def _split(gate, hidden):
    return [gate[..., k * hidden:(k + 1) * hidden] for k in range(4)]


def _activate(gate, hidden):
    """PyTorch's i, f, g, o activations, in place on one step's ``(N, 4H)`` pre-activations: the
    sigmoid over the whole row block, then g's tanh put back (twice as fast as the sigmoid on
    the strided i, f and o blocks)."""
    cell_input = np.tanh(gate[..., 2 * hidden:3 * hidden])
    stable_sigmoid(gate, out=gate)
    gate[..., 2 * hidden:3 * hidden] = cell_input


def _hidden_weight_gradient(grad_gates, out, h0, reverse):
    """``sum_t dgates_t^T h_{t-1}`` over the steps that had a hidden part, as one product (h_{t-1}
    is the output one step earlier in the scan, or h0)."""
    length = grad_gates.shape[0]
    later, earlier = (slice(0, length - 1), slice(1, length)) if reverse else \
        (slice(1, length), slice(0, length - 1))
    rows = lambda a: a.reshape(-1, a.shape[-1])   # noqa: E731
    total = rows(grad_gates[later]).T @ rows(out[earlier])
    if h0 is not None:
        total += grad_gates[length - 1 if reverse else 0].T @ h0
    return total


def _composite_backward(ctx, grad):
    """create_graph: the composite's gradient, recorded (its formulas are differentiable again)."""
    inputs = ctx.saved[:7]
    out = composite_lstm_layer(*inputs, reverse=ctx.reverse)
    wanted = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    found = gradients_of(out, [inputs[k] for k in wanted], grad, create_graph=True, allow_unused=True)
    result = [None] * len(inputs)
    for k, g in zip(wanted, found):
        result[k] = g
    return tuple(result)


def lstm_layer(x: Tensor, h0: Tensor | None, c0: Tensor | None, w_ih: Tensor, b_ih: Tensor | None,
               w_hh: Tensor, b_hh: Tensor | None, reverse: bool) -> Tensor:
    """One LSTM layer over ``x (L, N, I)``: ``(L + 1, N, H)``, the outputs then the last cell."""
    return LSTMLayer.apply(x, h0, c0, w_ih, b_ih, w_hh, b_hh, reverse=bool(reverse))
