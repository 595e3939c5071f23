"""A character-level LSTM trained on Shakespeare, on autonet (nn.LSTM, PyTorch's layer).

Characters are embedded, run through a two-layer ``nn.LSTM`` (batch_first,
dropout between the layers) and read out by a linear layer; Adam with
gradient clipping trains the compiled step on random slices of the text. It
reports the validation loss against the character-unigram baseline, then
samples by feeding one character at a time and carrying the LSTM's
``(h, c)`` state from step to step.
The text: examples/data/shakespeare.txt (public domain; see examples/data/README.md).
Run: python examples/char_lstm.py [--steps N] [--seed S]
"""
import argparse
import os
import pathlib
import time

# Many small matrix products (batch 32 by 128 hidden units per time step): one BLAS thread is
# fastest, and several fight each other on a busy machine (20x slower here). Override as you like.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import numpy as np  # noqa: E402 - after the thread settings, which NumPy reads once

import autonet  # noqa: E402
import autonet.nn as nn  # noqa: E402
import autonet.nn.functional as F  # noqa: E402
from autonet.nn.utils import clip_grad_norm_  # noqa: E402
from autonet.optim import Adam  # noqa: E402

TEXT = pathlib.Path(__file__).resolve().parent / "data" / "shakespeare.txt"


class CharLSTM(nn.Module):
    def __init__(self, vocabulary, width=48, hidden=128, layers=2, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embed = nn.Embedding(vocabulary, width, rng=rng)
        self.lstm = nn.LSTM(width, hidden, num_layers=layers, batch_first=True, dropout=0.1, rng=rng)
        self.head = nn.Linear(hidden, vocabulary, rng=rng)

    def forward(self, indices, state=None):
        """Logits ``(N, L, vocabulary)`` for indices ``(N, L)``, and the LSTM's last ``(h, c)``."""
        output, state = self.lstm(self.embed(indices), state)
        return self.head(output), state


def loss_of(model, x, y):
    logits, _ = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def batches(data, length, size, rng):
    starts = rng.integers(0, len(data) - length - 1, size)
    x = np.stack([data[s:s + length] for s in starts])
    return autonet.Tensor(x, dtype=np.int64), autonet.Tensor(np.stack([data[s + 1:s + length + 1] for s in starts]),
                                                             dtype=np.int64)


@autonet.no_grad()
def validation_loss(model, data, rng, rounds=4):
    model.eval()
    loss = float(np.mean([loss_of(model, *batches(data, 64, 32, rng)).item() for _ in range(rounds)]))
    model.train()
    return loss


@autonet.no_grad()
def sample(model, start, length, rng, decode):
    """Feed ``start``, then one drawn character at a time, carrying the LSTM's state."""
    model.eval()
    logits, state = model(autonet.Tensor(np.array([start]), dtype=np.int64))
    drawn = list(start)
    for _ in range(length):
        last = logits.data[0, -1]
        probabilities = np.exp(last - last.max())
        probabilities /= probabilities.sum()
        drawn.append(int(rng.choice(len(probabilities), p=probabilities)))
        logits, state = model(autonet.Tensor(np.array([[drawn[-1]]]), dtype=np.int64), state)
    model.train()
    return decode(drawn)


def main(steps=400, seed=0):
    text = TEXT.read_text()
    characters = sorted(set(text))
    encode = {c: i for i, c in enumerate(characters)}
    data = np.array([encode[c] for c in text])
    split = int(0.9 * len(data))
    train, valid = data[:split], data[split:]
    counts = np.bincount(train, minlength=len(characters)) + 1
    unigram = float(-np.mean(np.log(counts / counts.sum())[valid]))

    model = CharLSTM(len(characters), seed=seed)
    optimizer = Adam(model.parameters(), lr=1e-2)

    def step(x, y):
        loss = loss_of(model, x, y)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        return loss

    step = autonet.compile(step)
    rng = np.random.default_rng(seed + 1)
    print(f"{len(text):,} characters, {len(characters)} distinct; "
          f"{sum(p.size for p in model.parameters()):,} parameters")
    print(f"character-unigram baseline: validation loss {unigram:.3f} nats")
    first = validation_loss(model, valid, np.random.default_rng(7))
    print(f"step    0  validation loss {first:.3f}")
    started = time.perf_counter()
    for number in range(1, steps + 1):
        loss = step(*batches(train, 64, 32, rng))
        if number % max(steps // 8, 1) == 0 or number == steps:
            print(f"step {number:4d}  train loss {loss.item():.3f}  validation loss "
                  f"{validation_loss(model, valid, np.random.default_rng(7)):.3f}")
    last = validation_loss(model, valid, np.random.default_rng(7))
    print(f"trained {steps} steps in {time.perf_counter() - started:.0f} s; validation loss "
          f"{last:.3f} against the unigram baseline {unigram:.3f} (from {first:.3f})")
    print("sample:")
    print(sample(model, [encode[c] for c in "ROMEO:\n"], 300, np.random.default_rng(seed),
                 lambda indices: "".join(characters[i] for i in indices)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    main(arguments.steps, arguments.seed)
