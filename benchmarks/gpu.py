"""autonet on an NVIDIA GPU (CuPy): the op checks against the CPU, then training-step timings.

Run on a machine with a GPU and the extras: pip install autonet[cuda,bench]; python benchmarks/gpu.py
It prints a table (medians per step, float32, SGD, softmax cross-entropy) of:
PyTorch CUDA eager (if installed), hand-written CuPy, bare matrix products,
autonet eager and autonet.compile on the GPU. Without a GPU it says so and exits.
"""
import statistics
import sys
import time

import numpy as np

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.optim import SGD

WORKLOADS = [((784, 1024, 1024, 10), 512), ((1024, 4096, 4096, 10), 4096)]
LR = 0.01


def check_ops(cupy):
    """The core ops on the GPU against the CPU (float64, values and gradients)."""
    rng = np.random.default_rng(0)
    a, b, w = rng.normal(size=(8, 5)), rng.normal(size=(8, 5)), rng.normal(size=(5, 3))
    cases = {
        "arithmetic": (lambda a, b: ((a + b) * a / (b * b + 1.0) - a ** 2).sum(), a, b),
        "unary": (lambda a: (a.exp().log1p() + a.tanh() + a.sigmoid() + a.relu() + a.gelu("tanh")).sum(), a),
        "reductions": (lambda a: (a.mean(axis=0) * a.max(axis=1).sum()).sum() + a.var() + a.logsumexp(), a),
        "matmul softmax": (lambda a, w: (a @ w).softmax(axis=1).sum() + (a @ w).log_softmax(axis=0).sum(), a, w),
        "cross_entropy": (lambda a, w: F.cross_entropy(a @ w, np.arange(8) % 3), a, w),
        "layer_norm": (lambda a: F.layer_norm(a, 5).sum(), a),
    }
    worst = 0.0
    for name, (function, *arrays) in cases.items():
        results = []
        for device in ("cpu", "cuda"):
            leaves = [Tensor(x, requires_grad=True) for x in arrays]
            inputs = [leaf.to(device) for leaf in leaves]
            if name == "cross_entropy" and device == "cuda":
                function = (lambda f: lambda a, w: F.cross_entropy(a @ w, Tensor(np.arange(8) % 3).to("cuda")))(function)
            out = function(*inputs)
            out.backward()
            results.append([out.numpy()] + [leaf.grad for leaf in leaves])
        error = max(float(np.max(np.abs(c - g) / (1e-12 + np.abs(c)))) for c, g in zip(*results))
        worst = max(worst, error)
        print(f"  {name:16s} largest relative difference GPU vs CPU {error:.1e}")
    return worst


def median_ms(step, synchronize, rounds=20, count=5):
    step()
    synchronize()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            step()
        synchronize()
        samples.append((time.perf_counter() - started) / count * 1e3)
    return statistics.median(samples)


def autonet_step(sizes, batch, compiled):
    rng = np.random.default_rng(0)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, rng=rng, dtype=np.float32), nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).to("cuda")
    x = Tensor(rng.normal(size=(batch, sizes[0])), dtype=np.float32).to("cuda")
    labels = Tensor(rng.integers(0, sizes[-1], batch)).to("cuda")
    optimizer = SGD(model.parameters(), lr=LR)

    def step():
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return autonet.compile(step) if compiled else step


def cupy_step(cupy, sizes, batch):
    rng = np.random.default_rng(0)
    weights = [cupy.asarray(rng.uniform(-1, 1, (a, b)) / np.sqrt(a), dtype=cupy.float32)
               for a, b in zip(sizes[:-1], sizes[1:])]
    x = cupy.asarray(rng.normal(size=(batch, sizes[0])), dtype=cupy.float32)
    labels = cupy.asarray(rng.integers(0, sizes[-1], batch))
    rows = cupy.arange(batch)

    def step():
        activations = [x]
        for w in weights[:-1]:
            activations.append(cupy.maximum(activations[-1] @ w, 0))
        logits = activations[-1] @ weights[-1]
        exp = cupy.exp(logits - logits.max(axis=1, keepdims=True))
        delta = exp / exp.sum(axis=1, keepdims=True)
        delta[rows, labels] -= 1
        delta /= batch
        for i in range(len(weights) - 1, -1, -1):
            grad = activations[i].T @ delta
            if i:
                delta = (delta @ weights[i].T) * (activations[i] > 0)
            weights[i] -= LR * grad

    def matmuls():   # the step's matrix products alone: its floor
        activations = [x]
        for w in weights:
            activations.append(activations[-1] @ w)
        delta = activations[-1]
        for i in range(len(weights) - 1, -1, -1):
            activations[i].T @ delta
            if i:
                delta = delta @ weights[i].T

    return step, matmuls


def torch_step(sizes, batch):
    try:
        import torch
    except ImportError:
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    model = torch.nn.Sequential(*[m for a, b in zip(sizes[:-1], sizes[1:])
                                  for m in (torch.nn.Linear(a, b), torch.nn.ReLU())][:-1]).cuda()
    x = torch.randn(batch, sizes[0], device="cuda")
    labels = torch.randint(0, sizes[-1], (batch,), device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step, torch.cuda.synchronize


def main():
    if not autonet.cuda.is_available():
        print("no CUDA GPU (or no CuPy) here: pip install autonet[cuda] on a machine with an "
              "NVIDIA GPU and run this again")
        return 0
    import cupy

    synchronize = cupy.cuda.Device().synchronize
    print(f"autonet {autonet.__version__}, CuPy {cupy.__version__}, "
          f"{cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    print("op checks (float64):")
    if check_ops(cupy) > 1e-10:
        print("GPU results differ from the CPU's: stopping")
        return 1
    print("workload | PyTorch CUDA eager | hand-written CuPy | bare matmuls | autonet eager | "
          "autonet.compile (ms per step)")
    for sizes, batch in WORKLOADS:
        cells = ["-".join(map(str, sizes)) + f", batch {batch}"]
        made = torch_step(sizes, batch)
        cells.append(f"{median_ms(made[0], made[1]):.3f}" if made else "-")
        hand_written, matmuls = cupy_step(cupy, sizes, batch)
        cells += [f"{median_ms(hand_written, synchronize):.3f}", f"{median_ms(matmuls, synchronize):.3f}"]
        for compiled in (False, True):
            cells.append(f"{median_ms(autonet_step(sizes, batch, compiled), synchronize):.3f}")
        print(" | ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
