"""MultiheadAttention, TransformerEncoderLayer and TransformerEncoder, as PyTorch's.

Parameters carry PyTorch's names and layouts (``in_proj_weight (3E, E)``,
``out_proj.weight (E, E)``, ``linear1.weight (dim_feedforward, d_model)``), so
a ``state_dict`` moves between autonet and PyTorch unchanged, and the same
weights give PyTorch's outputs. Boolean masks here are True where a key is
masked out (PyTorch's rule for these modules).
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np

from ..core.tensor import Tensor, TensorLike, as_tensor
from . import functional as F, init, masking
from .fused_attention import attention
from .layers import Dropout, LayerNorm, _float, size_argument
from ..random import generator
from .module import Module, ModuleList, Parameter
from .projection import Projection, affine
from ..core.types import DTypeLike, Seed

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder"]


class MultiheadAttention(Module):
    """Attention of ``num_heads`` heads of ``embed_dim // num_heads`` each, PyTorch's.

    ``forward(query, key, value, ...)`` takes ``(L, N, E)`` (``(N, L, E)`` with
    ``batch_first``, or unbatched ``(L, E)``) and returns ``(output, weights)``;
    the weights are averaged over heads unless ``average_attn_weights=False``,
    and None with ``need_weights=False``.

    >>> import numpy as np, autonet.nn as nn
    >>> attention = nn.MultiheadAttention(8, 2, batch_first=True, rng=0)
    >>> x = np.ones((3, 5, 8))                             # (N, L, E)
    >>> output, weights = attention(x, x, x)
    >>> output.shape, weights.shape, attention.in_proj_weight.shape
    ((3, 5, 8), (3, 5, 5), (24, 8))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False, kdim: int | None = None, vdim: int | None = None,
                 rng: Seed = None, dtype: DTypeLike = None) -> None:
        super().__init__()
        for name, size in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            size_argument(size, name, "MultiheadAttention")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by "
                             f"num_heads {num_heads}; choose num_heads among the divisors of embed_dim")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must lie in [0, 1], not {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        rng, dtype = generator(rng), _float(dtype)
        packed = self.kdim == embed_dim == self.vdim   # else separate projections, as PyTorch
        self.in_proj_weight = _xavier((3 * embed_dim, embed_dim), rng, dtype) if packed else None
        self.q_proj_weight = None if packed else _xavier((embed_dim, embed_dim), rng, dtype)
        self.k_proj_weight = None if packed else _xavier((embed_dim, self.kdim), rng, dtype)
        self.v_proj_weight = None if packed else _xavier((embed_dim, self.vdim), rng, dtype)
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype)) if bias else None
        self.out_proj = Projection(embed_dim, embed_dim, bias=bias, rng=rng, dtype=dtype)
        if bias:
            init.zeros_(self.out_proj.bias)   # PyTorch zeroes both biases
        self.rng = rng   # then the attention dropout draws from it

    def _projection_weights(self):
        if self.in_proj_weight is not None:
            e, w = self.embed_dim, self.in_proj_weight
            return w[:e], w[e:2 * e], w[2 * e:]
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def forward(self, query: TensorLike, key: TensorLike, value: TensorLike,
                key_padding_mask: TensorLike | None = None, need_weights: bool = True,
                attn_mask: TensorLike | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        q, k, v = (as_tensor(t) for t in (query, key, value))
        batched = self._check_inputs(q, k, v)
        if not batched:
            q, k, v = (t.expand_dims(1) for t in (q, k, v))
        elif self.batch_first:
            q, k, v = (t.swapaxes(0, 1) for t in (q, k, v))
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal=True is a hint that attn_mask is the "
                             "causal mask; pass that attn_mask too (as PyTorch)")
        (length, batch, _), source = q.shape, k.shape[0]
        scores_shape = (batch, self.num_heads, length, source)
        masks = self._masks(attn_mask, key_padding_mask, scores_shape, batched, q.dtype)
        w_q, w_k, w_v = self._projection_weights()
        b_q, b_k, b_v = (None,) * 3 if self.in_proj_bias is None else (
            self.in_proj_bias[i * self.embed_dim:(i + 1) * self.embed_dim] for i in range(3))
        q, k, v = (self._heads(affine(t, w, b)) for t, w, b in ((q, w_q, b_q), (k, w_k, b_k), (v, w_v, b_v)))
        scale = 1.0 / math.sqrt(self.head_dim)
        if not (masks or need_weights or (self.training and self.dropout)):
            out = attention(q, k, v, scale)   # one op that keeps no (N, H, L, S) scores
        else:
            scores = (q * scale) @ k.swapaxes(-1, -2)   # (N, H, L, S)
            for mask in masks:
                scores = masking.apply_mask(scores, mask, true_keeps=False)
            weights = masking.attention_weights(scores, safe=not need_weights)   # PyTorch's two paths
            dropped = F.dropout(weights, self.dropout, self.training, self.rng)
            out = dropped @ v
        out = self.out_proj(out.transpose(2, 0, 1, 3).reshape(length, batch, self.embed_dim))
        out = (out.swapaxes(0, 1) if self.batch_first else out) if batched else out.squeeze(1)
        if not need_weights:
            return out, None
        weights = dropped.mean(axis=1) if average_attn_weights else dropped   # as PyTorch: after dropout
        return out, (weights if batched else weights.squeeze(0))

    def _check_inputs(self, q, k, v):
        shapes = f"query {q.shape}, key {k.shape}, value {v.shape}"
        if not q.ndim == k.ndim == v.ndim or q.ndim not in (2, 3):
            raise ValueError(f"MultiheadAttention: query, key and value must all be batched (3-d) "
                             f"or all unbatched (2-d), not {shapes}")
        if (q.shape[-1], k.shape[-1], v.shape[-1]) != (self.embed_dim, self.kdim, self.vdim):
            raise ValueError(f"MultiheadAttention: the last axes must be embed_dim {self.embed_dim}, "
                             f"kdim {self.kdim} and vdim {self.vdim}, not {shapes}")
        batch_axis = 0 if self.batch_first else 1
        if k.shape[:-1] != v.shape[:-1] or (q.ndim == 3 and q.shape[batch_axis] != k.shape[batch_axis]):
            raise ValueError(f"MultiheadAttention: key and value must have the same length and "
                             f"batch, and query the same batch, not {shapes}")
        dtype = self.out_proj.weight.dtype
        if not q.dtype == k.dtype == v.dtype == dtype:
            raise TypeError(f"MultiheadAttention: inputs are {q.dtype}, {k.dtype}, {v.dtype} but the "
                            f"parameters are {dtype}; convert with x.astype(...) or model.astype(...)")
        return q.ndim == 3

    def _masks(self, attn_mask, key_padding_mask, scores_shape, batched, dtype):
        """The masks, checked and shaped to broadcast to the scores ``(N, H, L, S)``."""
        batch, heads, length, source = scores_shape
        masks = []
        if attn_mask is not None:
            mask = masking.as_mask(attn_mask, dtype, "attn_mask", "MultiheadAttention")
            shapes = [(length, source), (batch * heads, length, source)] if batched else \
                [(length, source), (heads, length, source)]
            if mask.shape not in shapes:
                raise ValueError(f"MultiheadAttention: attn_mask must have shape {shapes[0]} or "
                                 f"{shapes[1]}, not {mask.shape}")
            masks.append(mask if mask.ndim == 2 else mask.reshape(scores_shape))
        if key_padding_mask is not None:
            mask = masking.as_mask(key_padding_mask, dtype, "key_padding_mask", "MultiheadAttention")
            expected = (batch, source) if batched else (source,)
            if mask.shape != expected:
                raise ValueError(f"MultiheadAttention: key_padding_mask must have shape {expected} "
                                 f"(N, S), not {mask.shape}")
            masks.append(mask.reshape(batch, 1, 1, source))
        return masks

    def _heads(self, x):
        """``(T, N, E)`` -> ``(N, H, T, head_dim)``."""
        length, batch, _ = x.shape
        return x.reshape(length, batch, self.num_heads, self.head_dim).transpose(1, 2, 0, 3)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


def _xavier(shape, rng, dtype):
    return init.xavier_uniform_(Parameter(np.empty(shape, dtype=dtype)), rng=rng)


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout, a residual and LayerNorm
    (after, or before with ``norm_first``), as PyTorch's.

    >>> import numpy as np, autonet.nn as nn
    >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, rng=0)
    >>> layer(np.ones((5, 3, 8))).shape                   # (L, N, d_model)
    (5, 3, 8)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, rng: Seed = None,
                 dtype: DTypeLike = None) -> None:
        super().__init__()
        if not callable(activation) and activation not in _ACTIVATIONS:
            raise ValueError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                             f"function, not {activation!r}")
        rng = generator(rng)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                            rng=rng, dtype=dtype)
        self.linear1 = Projection(d_model, dim_feedforward, rng=rng, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Projection(dim_feedforward, d_model, rng=rng, dtype=dtype)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.dropout1 = Dropout(dropout, rng=rng)
        self.dropout2 = Dropout(dropout, rng=rng)
        self.activation = _ACTIVATIONS.get(activation, activation)  # type: ignore[arg-type]

    def forward(self, src: TensorLike, src_mask: TensorLike | None = None,
                src_key_padding_mask: TensorLike | None = None, is_causal: bool = False) -> Tensor:
        x = as_tensor(src)
        if self.norm_first:
            x = x + self._attention_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._feed_forward_block(self.norm2(x))
        x = self.norm1(x + self._attention_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._feed_forward_block(x))

    def _attention_block(self, x, mask, key_padding_mask, is_causal):
        out, _ = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False,
                                attn_mask=mask, is_causal=is_causal)
        return self.dropout1(out)

    def _feed_forward_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` applied in turn, then ``norm`` if given.

    Each copy's dropout draws from its own generator (spawned from the layer's),
    so the layers do not repeat each other's masks.

    >>> import numpy as np, autonet.nn as nn
    >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, rng=0)
    >>> encoder = nn.TransformerEncoder(layer, num_layers=3, norm=nn.LayerNorm(8))
    >>> encoder(np.ones((2, 5, 8))).shape, len(encoder.layers)
    ((2, 5, 8), 3)
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None) -> None:
        super().__init__()
        size_argument(num_layers, "num_layers", "TransformerEncoder")
        self.layers = ModuleList([_copy_with_own_generators(encoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm

    def forward(self, src: TensorLike, mask: TensorLike | None = None,
                src_key_padding_mask: TensorLike | None = None, is_causal: bool = False) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return x if self.norm is None else self.norm(x)  # type: ignore[return-value]


def _copy_with_own_generators(module):
    clone = copy.deepcopy(module)
    fresh = {}
    for original, copied in zip(module.modules(), clone.modules()):
        generator = getattr(original, "rng", None)
        if isinstance(generator, np.random.Generator):
            if id(generator) not in fresh:
                fresh[id(generator)] = generator.spawn(1)[0]
            object.__setattr__(copied, "rng", fresh[id(generator)])
    return clone
