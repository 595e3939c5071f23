"""The examples' training steps (the digits CNN, the tiny GPT) against PyTorch eager on CPU.

Same shapes, same dtype (float32), one thread, the same starting weights
(copied into PyTorch's modules): after a few steps both must hold the same
parameters (to float32 precision), so a fast wrong engine cannot win. Medians
per step, interleaved rounds. Run by ``make bench`` (benchmarks/run.py).
"""
import pathlib
import statistics
import sys
import time

import numpy as np

import autonet
import autonet.nn.functional as F
from autonet.optim import SGD

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "examples"))
import cnn_digits  # noqa: E402 - the examples' own models
import tiny_gpt  # noqa: E402

DTYPE = np.float32
CHECK_STEPS = 3
LR = 0.05


def cnn_case(rng):
    """The digits CNN (without dropout: both engines must draw the same numbers), batch 64."""
    model = cnn_digits.build(seed=0, dropout=0.0).astype(DTYPE)
    x = rng.normal(size=(64, 1, 8, 8)).astype(DTYPE)
    labels = rng.integers(0, 10, 64)
    return model, lambda m: F.cross_entropy(m(autonet.Tensor(x)), labels), (x, labels)


def gpt_case(rng):
    """The tiny GPT (2 layers, width 64, 4 heads, 64 characters), batch 32."""
    model = tiny_gpt.TinyGPT(62, seed=0).astype(DTYPE)
    x = rng.integers(0, 62, (32, 64))
    y = rng.integers(0, 62, (32, 64))
    return model, lambda m: tiny_gpt.loss_of(m, x, y), (x, y)


def torch_cnn_layers(torch, model, dropout):
    """PyTorch's layers for cnn_digits' ``model``, one per layer (``dropout(layer)`` makes its
    Dropout); parameters are the caller's to copy."""
    layers = []
    for layer in model:
        kind = type(layer).__name__
        if kind == "Conv2d":
            made = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=1)
        elif kind == "BatchNorm2d":
            made = torch.nn.BatchNorm2d(layer.num_features)
        elif kind == "Linear":
            made = torch.nn.Linear(layer.in_features, layer.out_features)
        elif kind == "Dropout":
            made = dropout(layer)
        else:
            made = {"ReLU": torch.nn.ReLU, "MaxPool2d": lambda: torch.nn.MaxPool2d(2),
                    "Flatten": torch.nn.Flatten}[kind]()
        layers.append(made)
    return layers


def torch_cnn(torch, model, data):
    layers = torch_cnn_layers(torch, model, lambda layer: torch.nn.Dropout(0.0))
    for layer, made in zip(model, layers):
        _copy_parameters(torch, layer, made)
    net = torch.nn.Sequential(*layers)
    x, labels = torch.tensor(data[0]), torch.tensor(data[1])
    return net, lambda: torch.nn.functional.cross_entropy(net(x), labels)


def torch_gpt(torch, model, data):
    tf = torch.nn.functional

    def linear(layer):
        made = torch.nn.Linear(layer.in_features, layer.out_features)
        _copy_parameters(torch, layer, made)
        return made

    def norm(layer):
        made = torch.nn.LayerNorm(layer.normalized_shape)
        _copy_parameters(torch, layer, made)
        return made

    def embedding(layer):
        made = torch.nn.Embedding(layer.num_embeddings, layer.embedding_dim)
        _copy_parameters(torch, layer, made)
        return made

    modules = torch.nn.ModuleDict({"tokens": embedding(model.tokens), "positions": embedding(model.positions),
                                   "norm": norm(model.norm), "head": linear(model.head)})
    blocks = []
    for block in model.blocks:
        blocks.append(torch.nn.ModuleDict({
            "norm1": norm(block.norm1), "norm2": norm(block.norm2), "qkv": linear(block.attention.qkv),
            "out": linear(block.attention.out), "up": linear(block.mlp[0]), "down": linear(block.mlp[2])}))
    modules["blocks"] = torch.nn.ModuleList(blocks)
    heads = model.blocks[0].attention.heads
    mask = torch.tensor(model.blocks[0].attention.mask.data)
    x, y = torch.tensor(data[0]), torch.tensor(data[1])

    def loss():
        batch, length = x.shape
        h = modules["tokens"](x) + modules["positions"].weight[:length]
        for b in modules["blocks"]:
            z = b["norm1"](h)
            qkv = b["qkv"](z).reshape(batch, length, 3, heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = torch.einsum("bhtd,bhsd->bhts", q, k) * (1.0 / (q.shape[-1] ** 0.5))
            weights = (scores + mask[:length, :length]).softmax(dim=-1)
            mixed = torch.einsum("bhts,bhsd->bhtd", weights, v)
            h = h + b["out"](mixed.transpose(1, 2).reshape(batch, length, -1))
            h = h + b["down"](tf.gelu(b["up"](b["norm2"](h)), approximate="tanh"))
        logits = modules["head"](modules["norm"](h))
        return tf.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    return modules, loss


def _copy_parameters(torch, layer, made):
    """autonet's parameters into a PyTorch module (the layouts are PyTorch's: no transposes)."""
    with torch.no_grad():
        for name, parameter in layer.named_parameters():
            if "." in name:
                continue
            getattr(made, name).copy_(torch.tensor(np.ascontiguousarray(parameter.data)))


def _autonet_parameters(model):
    """In the order PyTorch's mirror module lists them."""
    return [p.data for p in model.parameters()]


def steps(case, torch):
    """{"autonet": step, "compiled": step, "torch": step}, after checking they agree."""
    made = {}
    for label in ("autonet", "compiled"):
        model, loss_fn, data = case(np.random.default_rng(0))
        optimizer = SGD(model.parameters(), lr=LR)

        def step(model=model, loss_fn=loss_fn, optimizer=optimizer):
            loss = loss_fn(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        made[label] = (autonet.compile(step) if label == "compiled" else step, model, data)
    if torch is not None:
        model, _, data = case(np.random.default_rng(0))
        net, loss_fn = (torch_cnn if case is cnn_case else torch_gpt)(torch, model, data)
        optimizer = torch.optim.SGD(net.parameters(), lr=LR)

        def torch_step():
            loss = loss_fn()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        made["torch"] = (torch_step, net, data)
        reference = made["autonet"]
        for _ in range(CHECK_STEPS):
            reference[0]()
            torch_step()
        ours = sorted((a.size, float(np.abs(a).sum())) for a in _autonet_parameters(reference[1]))
        theirs = sorted((p.numel(), float(p.detach().abs().sum())) for p in net.parameters())
        for (n, a), (m, b) in zip(ours, theirs):
            if n != m or not np.isclose(a, b, rtol=1e-4):
                raise SystemExit(f"{case.__name__}: PyTorch and autonet disagree after {CHECK_STEPS} "
                                 f"steps (parameter sums {a} vs {b})")
    return {label: entry[0] for label, entry in made.items()}


def medians(functions, rounds, count):
    samples = {name: [] for name in functions}
    for round_number in range(rounds):
        names = list(functions)
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            for _ in range(count):
                functions[name]()
            samples[name].append((time.perf_counter() - started) / count)
    return {name: statistics.median(values) for name, values in samples.items()}


def table(torch, rounds):
    """Rows: workload, PyTorch eager, autonet eager and compiled (ratios to PyTorch)."""
    lines = ["workload (float32, SGD) | PyTorch eager | autonet eager | ratio | autonet.compile | ratio"]
    for name, case, count in (("digits CNN step, batch 64", cnn_case, 5),
                              ("tiny-GPT step, batch 32 x 64", gpt_case, 1)):
        functions = steps(case, torch)
        for function in functions.values():
            function()   # warm: traces the compiled step
        times = medians(functions, rounds, count)
        base = times.get("torch")
        cells = [name, f"{base * 1e3:8.2f} ms" if base else "-"]
        for label in ("autonet", "compiled"):
            cells += [f"{times[label] * 1e3:8.2f} ms", f"{times[label] / base:5.2f}x" if base else "-"]
        lines.append(" | ".join(cells))
    return "\n".join(lines)
