"""A character-level transformer (a tiny GPT) trained on Shakespeare, on autonet.

Token and position embeddings, pre-norm blocks of multi-head causal
self-attention (written with einsum) and a GELU MLP, LayerNorm, AdamW with
gradient clipping and a cosine schedule. It reports the validation loss
against the character-unigram baseline and prints samples.
The text: examples/data/shakespeare.txt (public domain; see examples/data/README.md).
Run: python examples/tiny_gpt.py [--steps N] [--seed S]

The attention stays written out by hand, on purpose: the scores, the causal
mask and the mixing of values are the lesson here, and three einsum lines
show them. ``nn.MultiheadAttention(width, heads, batch_first=True)`` with
``attn_mask=`` that mask (or
``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` on the heads)
computes the same thing as one call; examples/char_lstm.py shows the
library-layer style with ``nn.LSTM``. The benchmark (docs/performance.md) times this version.
"""
import argparse
import math
import pathlib
import time

import numpy as np

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet.nn.utils import clip_grad_norm_
from autonet.optim import AdamW, lr_scheduler

TEXT = pathlib.Path(__file__).resolve().parent / "data" / "shakespeare.txt"


class CausalSelfAttention(nn.Module):
    def __init__(self, width, heads, block, rng):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, rng=rng)
        self.out = nn.Linear(width, width, rng=rng)
        above_diagonal = np.triu(np.ones((block, block), dtype=bool), k=1)
        # no token sees ahead; a buffer, so Module.astype gives it the model's dtype
        self.register_buffer("mask", np.where(above_diagonal, -np.inf, 0.0))

    def forward(self, x):
        batch, time, width = x.shape
        size = width // self.heads
        qkv = self.qkv(x).reshape(batch, time, 3, self.heads, size).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                           # (batch, heads, time, size)
        scores = autonet.einsum("bhtd,bhsd->bhts", q, k) * (1.0 / math.sqrt(size))
        weights = (scores + self.mask[:time, :time]).softmax(axis=-1)
        mixed = autonet.einsum("bhts,bhsd->bhtd", weights, v)
        return self.out(mixed.transpose(0, 2, 1, 3).reshape(batch, time, width))


class Block(nn.Module):
    def __init__(self, width, heads, block, rng):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads, block, rng)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width, rng=rng), nn.GELU("tanh"),
                                 nn.Linear(4 * width, width, rng=rng))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocabulary, width=64, heads=4, layers=2, block=64, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.block = block
        self.tokens = nn.Embedding(vocabulary, width, rng=rng)
        self.positions = nn.Embedding(block, width, rng=rng)
        self.blocks = nn.ModuleList([Block(width, heads, block, rng) for _ in range(layers)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocabulary, rng=rng)

    def forward(self, indices):
        x = self.tokens(indices) + self.positions.weight[:indices.shape[1]]   # rows 0..T-1
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def loss_of(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def batches(data, block, size, rng):
    starts = rng.integers(0, len(data) - block - 1, size)
    x = np.stack([data[s:s + block] for s in starts])
    return x, np.stack([data[s + 1:s + block + 1] for s in starts])


@autonet.no_grad()
def validation_loss(model, data, block, rng, rounds=8):
    return float(np.mean([loss_of(model, *batches(data, block, 32, rng)).item() for _ in range(rounds)]))


@autonet.no_grad()
def sample(model, start, length, rng, decode):
    indices = np.array([start])
    for _ in range(length):
        logits = model(indices[:, -model.block:]).data[0, -1]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        indices = np.concatenate([indices, [[rng.choice(len(probabilities), p=probabilities)]]], axis=1)
    return decode(indices[0])


def main(steps=600, seed=0):
    text = TEXT.read_text()
    characters = sorted(set(text))
    encode = {c: i for i, c in enumerate(characters)}
    data = np.array([encode[c] for c in text])
    split = int(0.9 * len(data))
    train, valid = data[:split], data[split:]
    counts = np.bincount(train, minlength=len(characters)) + 1
    unigram = float(-np.mean(np.log(counts / counts.sum())[valid]))

    model = TinyGPT(len(characters), seed=seed)
    optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=3e-4)
    rng = np.random.default_rng(seed + 1)
    block = model.block
    print(f"{len(text):,} characters, {len(characters)} distinct; "
          f"{sum(p.size for p in model.parameters()):,} parameters")
    print(f"character-unigram baseline: validation loss {unigram:.3f} nats")
    first = validation_loss(model, valid, block, np.random.default_rng(7))
    print(f"step    0  validation loss {first:.3f}")
    started = time.perf_counter()
    for step in range(1, steps + 1):
        loss = loss_of(model, *batches(train, block, 32, rng))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        schedule.step()
        if step % max(steps // 8, 1) == 0 or step == steps:
            print(f"step {step:4d}  train loss {loss.item():.3f}  validation loss "
                  f"{validation_loss(model, valid, block, np.random.default_rng(7)):.3f}")
    last = validation_loss(model, valid, block, np.random.default_rng(7))
    print(f"trained {steps} steps in {time.perf_counter() - started:.0f} s; validation loss "
          f"{last:.3f} against the unigram baseline {unigram:.3f} (from {first:.3f})")
    print("sample:")
    print(sample(model, [encode[c] for c in "ROMEO:\n"], 300, np.random.default_rng(seed),
                 lambda indices: "".join(characters[i] for i in indices)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    main(arguments.steps, arguments.seed)
