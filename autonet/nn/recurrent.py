"""Recurrent layers: RNN, LSTM and GRU and their cells, PyTorch's equations, names and layouts.

Weights are laid out as PyTorch's (``weight_ih_l0`` is ``(gates * hidden,
input)``, gates in PyTorch's order: LSTM ``i, f, g, o``, GRU ``r, z, n``), so
a ``state_dict`` moves between autonet and PyTorch unchanged. Every parameter
starts uniform in ``±1/sqrt(hidden_size)``, as PyTorch's.

RNN and GRU loop over time in Python over autonet's ops: the input projection
of every step is one matrix product up front, then each step adds the hidden
projection and applies the gates. An LSTM layer (each direction) is one op,
``nn.lstm_layer``, with the same equations and a backward written by hand
(about 2x faster, half the memory; its create_graph backward differentiates
the step composite, ``recurrent_steps.composite_lstm_layer``). Everything is differentiable
to any order and compiles. A missing initial state is zero, and the first step
projects it as PyTorch's does (so ``weight_hh`` gets its zero gradient, not None).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..core.tensor import Tensor, TensorLike, as_tensor
from ..ops.shape import concatenate, stack
from .functional import dropout
from .layers import _float, _uniform, size_argument
from .lstm_layer import lstm_layer
from ..random import generator
from .module import Module
from .projection import affine as _affine
from .recurrent_steps import GATE_COUNT, STEPS, scan
from ..core.types import DTypeLike, Seed

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


# ------------------------------------------------------------------ checks
def _rnn_mode(nonlinearity, owner):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{owner}: nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def _same_dtype(x, weight, owner):
    if x.dtype != weight.dtype:
        raise TypeError(f"{owner}: input is {x.dtype} but the parameters are {weight.dtype}; "
                        f"convert one of them (x.astype({weight.dtype}) or model.astype({x.dtype}))")


def _check_state(state, shape, what, owner):
    if state is not None and state.shape != shape:
        raise ValueError(f"{owner}: {what} must have shape {shape} for this input, not {state.shape}")


class _Recurrent(Module):
    """Holds ``weight_ih{suffix}``, ``weight_hh{suffix}`` and (with bias) ``bias_ih{suffix}``,
    ``bias_hh{suffix}`` for each suffix, registered in PyTorch's order."""

    def _make_parameters(self, suffixes, input_sizes, rng, dtype):
        rng, dtype = generator(rng), _float(dtype)
        bound = 1.0 / math.sqrt(self.hidden_size)
        rows = GATE_COUNT[self.mode] * self.hidden_size
        for suffix, input_size in zip(suffixes, input_sizes):
            setattr(self, f"weight_ih{suffix}", _uniform((rows, input_size), bound, rng, dtype))
            setattr(self, f"weight_hh{suffix}", _uniform((rows, self.hidden_size), bound, rng, dtype))
            if self.bias:
                setattr(self, f"bias_ih{suffix}", _uniform((rows,), bound, rng, dtype))
                setattr(self, f"bias_hh{suffix}", _uniform((rows,), bound, rng, dtype))
        return rng

    def _weights(self, suffix):
        get = lambda name: getattr(self, name + suffix, None)   # noqa: E731
        return get("weight_ih"), get("bias_ih"), get("weight_hh"), get("bias_hh")


# ------------------------------------------------------------------ multi-layer layers
class _RNNBase(_Recurrent):
    mode: str = None  # type: ignore[assignment]  # each subclass sets it

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 rng: Seed = None, dtype: DTypeLike = None) -> None:
        super().__init__()
        owner = type(self).__name__
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            size_argument(value, name, owner)
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{owner}: dropout must lie in [0, 1], not {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        directions = 2 if bidirectional else 1
        suffixes = [f"_l{layer}{'_reverse' if d else ''}" for layer in range(num_layers)
                    for d in range(directions)]
        sizes = [input_size if layer == 0 else hidden_size * directions
                 for layer in range(num_layers) for _ in range(directions)]
        self.rng = self._make_parameters(suffixes, sizes, rng, dtype)   # then dropout draws from it

    @property
    def _directions(self):
        return 2 if self.bidirectional else 1

    def forward(self, input: TensorLike, hx: Any = None) -> tuple[Tensor, Any]:  # noqa: A002 - PyTorch's name
        """``input (L, N, input_size)`` (``(N, L, ...)`` with batch_first, or unbatched ``(L, ...)``)
        -> ``(output, h_n)``; LSTM: ``(output, (h_n, c_n))``."""
        x, batched = self._sequence(as_tensor(input))
        states = self._initial_states(hx, batched, x.shape[1])
        step, finals = STEPS[self.mode], []  # type: ignore[var-annotated]
        for layer in range(self.num_layers):
            if layer and self.dropout:
                x = dropout(x, self.dropout, self.training, self.rng)
            outputs = []
            for direction in range(self._directions):
                suffix = f"_l{layer}{'_reverse' if direction else ''}"
                w_ih, b_ih, w_hh, b_hh = self._weights(suffix)
                if self.mode == "LSTM":   # one op over the sequence (nn.lstm_layer)
                    h0, c0 = states[len(finals)]
                    both = lstm_layer(x, h0, c0, w_ih, b_ih, w_hh, b_hh, bool(direction))
                    output, state = _lstm_results(both, bool(direction))
                else:
                    output, state = scan(step, _affine(x, w_ih, b_ih), states[len(finals)], w_hh, b_hh,
                                          reverse=bool(direction))
                outputs.append(output)
                finals.append(state)
            x = outputs[0] if len(outputs) == 1 else concatenate(outputs, axis=-1)
        output = x.swapaxes(0, 1) if batched and self.batch_first else x
        finals = [stack([state[k] for state in finals]) for k in range(len(finals[0]))]
        if not batched:
            output, finals = output.squeeze(1), [f.squeeze(1) for f in finals]
        return output, (tuple(finals) if self.mode == "LSTM" else finals[0])

    def _sequence(self, x):
        owner = type(self).__name__
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            layout = "(N, L, input_size)" if self.batch_first else "(L, N, input_size)"
            raise ValueError(f"{owner}: input must have shape {layout} or (L, input_size) with "
                             f"input_size {self.input_size}, not {x.shape}")
        _same_dtype(x, self.weight_ih_l0, owner)
        batched = x.ndim == 3
        x = (x.swapaxes(0, 1) if self.batch_first else x) if batched else x.expand_dims(1)
        if x.shape[0] == 0:
            raise ValueError(f"{owner}: the input sequence is empty (length 0); give at least one step")
        return x, batched

    def _initial_states(self, hx, batched, batch):
        """One tuple per layer and direction: ``(h,)`` or ``(h, c)``, None where zero."""
        count = self.num_layers * self._directions
        names = ("h_0", "c_0") if self.mode == "LSTM" else ("h_0",)
        if hx is None:
            return [(None,) * len(names)] * count
        given = tuple(hx) if self.mode == "LSTM" and isinstance(hx, (tuple, list)) else (hx,)
        if len(given) != len(names):
            raise ValueError(f"{type(self).__name__}: hx must be {' and '.join(names)} as "
                             f"{'a tuple' if len(names) > 1 else 'one tensor'}")
        shape = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        given = [as_tensor(state) for state in given]
        for name, state in zip(names, given):
            _check_state(state, shape, name, type(self).__name__)
            _same_dtype(state, self.weight_ih_l0, type(self).__name__)
        given = given if batched else [state.expand_dims(1) for state in given]
        return [tuple(state[k] for state in given) for k in range(count)]

    def extra_repr(self) -> str:
        extras = "".join(f", {name}={getattr(self, name)!r}" for name, default in
                         (("num_layers", 1), ("bias", True), ("batch_first", False),
                          ("dropout", 0.0), ("bidirectional", False))
                         if getattr(self, name) != default)
        return f"{self.input_size}, {self.hidden_size}{extras}"


def _lstm_results(both, reverse):
    """``lstm_layer``'s ``(L + 1, N, H)`` as the outputs ``(L, N, H)`` and the last ``(h, c)``."""
    length = both.shape[0] - 1
    output = both[:length]
    return output, (output[0 if reverse else length - 1], both[length])


class RNN(_RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu), as PyTorch's.

    >>> import numpy as np, autonet.nn as nn
    >>> rnn = nn.RNN(3, 5, num_layers=2, rng=0)
    >>> output, h_n = rnn(np.ones((7, 2, 3)))      # (L, N, input_size)
    >>> output.shape, h_n.shape
    ((7, 2, 5), (2, 2, 5))
    """

    mode = "RNN_TANH"   # the gate count; "RNN_RELU" set per instance

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, rng: Seed = None, dtype: DTypeLike = None) -> None:
        mode = _rnn_mode(nonlinearity, "RNN")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, rng, dtype)
        self.mode, self.nonlinearity = mode, nonlinearity


class LSTM(_RNNBase):
    """Long short-term memory, PyTorch's gates ``i, f, g, o``; returns ``(output, (h_n, c_n))``.

    >>> import numpy as np, autonet.nn as nn
    >>> lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True, rng=0)
    >>> output, (h_n, c_n) = lstm(np.ones((2, 6, 3)))   # (N, L, input_size)
    >>> output.shape, h_n.shape, lstm.weight_ih_l0.shape
    ((2, 6, 8), (2, 2, 4), (16, 3))
    """

    mode = "LSTM"

    if TYPE_CHECKING:
        def forward(self, input: TensorLike,  # noqa: A002 - PyTorch's name
                    hx: tuple[TensorLike, TensorLike] | None = None
                    ) -> tuple[Tensor, tuple[Tensor, Tensor]]: ...


class GRU(_RNNBase):
    """Gated recurrent unit, PyTorch's gates ``r, z, n``; returns ``(output, h_n)``.

    >>> import numpy as np, autonet.nn as nn
    >>> gru = nn.GRU(3, 4, num_layers=2, dropout=0.5, rng=0)
    >>> output, h_n = gru(np.ones((5, 3)))             # unbatched (L, input_size)
    >>> output.shape, h_n.shape
    ((5, 4), (2, 4))
    """

    mode = "GRU"


# ------------------------------------------------------------------ cells
class _Cell(_Recurrent):
    mode: str = None  # type: ignore[assignment]  # each subclass sets it

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, rng: Seed = None,
                 dtype: DTypeLike = None) -> None:
        super().__init__()
        owner = type(self).__name__
        size_argument(input_size, "input_size", owner)
        size_argument(hidden_size, "hidden_size", owner)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        self._make_parameters([""], [input_size], rng, dtype)

    def _step(self, input, states):  # noqa: A002
        owner = type(self).__name__
        x = as_tensor(input)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{owner}: input must have shape (N, {self.input_size}) or "
                             f"({self.input_size},), not {x.shape}")
        _same_dtype(x, self.weight_ih, owner)
        batched = x.ndim == 2
        shape = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        states = [None if s is None else as_tensor(s) for s in states]
        for name, state in zip(("h", "c"), states):
            _check_state(state, shape, f"hx's {name}", owner)
            if state is not None:
                _same_dtype(state, self.weight_ih, owner)
        w_ih, b_ih, w_hh, b_hh = self._weights("")
        return STEPS[self.mode](_affine(x, w_ih, b_ih), tuple(states), w_hh, b_hh)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_Cell):
    """One Elman step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu).

    >>> import numpy as np, autonet.nn as nn
    >>> cell = nn.RNNCell(3, 4, rng=0)
    >>> cell(np.ones((2, 3))).shape                   # hx defaults to zeros
    (2, 4)
    """

    mode = "RNN_TANH"   # the gate count; "RNN_RELU" set per instance

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 rng: Seed = None, dtype: DTypeLike = None) -> None:
        mode = _rnn_mode(nonlinearity, "RNNCell")
        super().__init__(input_size, hidden_size, bias, rng, dtype)
        self.mode, self.nonlinearity = mode, nonlinearity

    def forward(self, input: TensorLike, hx: TensorLike | None = None) -> Tensor:  # noqa: A002
        return self._step(input, (hx,))[0]


class LSTMCell(_Cell):
    """One LSTM step: ``(h', c') = cell(x, (h, c))``; ``hx`` defaults to zeros.

    >>> import numpy as np, autonet.nn as nn
    >>> cell = nn.LSTMCell(3, 4, rng=0)
    >>> h, c = cell(np.ones((2, 3)))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    mode = "LSTM"

    def forward(self, input: TensorLike,  # noqa: A002
                hx: tuple[TensorLike, TensorLike] | None = None) -> tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTMCell: hx must be a tuple (h, c)")   # an array's rows are not (h, c)
        return self._step(input, (None, None) if hx is None else tuple(hx))


class GRUCell(_Cell):
    """One GRU step: ``h' = cell(x, h)``; ``hx`` defaults to zeros.

    >>> import numpy as np, autonet.nn as nn
    >>> nn.GRUCell(3, 4, rng=0)(np.ones(3)).shape   # unbatched
    (4,)
    """

    mode = "GRU"

    def forward(self, input: TensorLike, hx: TensorLike | None = None) -> Tensor:  # noqa: A002
        return self._step(input, (hx,))[0]
