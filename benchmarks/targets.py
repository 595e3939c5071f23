"""Issue 26's targets, measured: real-model training steps in autonet (eager, compiled, fused)
against PyTorch eager, their peak memory, and one table of every target.

The steps (float32, one thread, the same starting weights copied into PyTorch's modules):

- ``cnn_digits``: the example's CNN (conv-BN-ReLU-pool x2, Flatten, Dropout 0.25, MLP head)
  on the first 64 of scikit-learn's digits, cross-entropy, Adam (lr 1e-3). PyTorch's Dropout
  is replaced by one that multiplies by the mask autonet's draws (the same NumPy generator,
  copied): the same masks, so the parameters can be compared;
- ``tiny GPT``: ``examples/tiny_gpt.py`` (models.py's mirror), SGD;
- ``LSTM``: 2 layers, hidden 128, input 64, sequence 32, batch 32, squared error, SGD;
- ``transformer``: ``TransformerEncoderLayer(128, 4 heads, feed-forward 512, dropout 0)``,
  sequence 64, batch 32, squared error, SGD.

Before timing, every implementation runs a few steps from the same weights and must hold
PyTorch's parameters (to float32 precision); a fast wrong engine cannot win.

Peak memory of one step (after warm-up), beyond what existed before it: for autonet (and
hand-written NumPy) ``tracemalloc``'s peak, which sees every NumPy array; for PyTorch its own
profiler's allocation events (``profile_memory=True``: every allocation and free of its CPU
allocator, in order), the highest running sum. A fused kernel allocates its temporaries
through numba's runtime, which neither tool sees, so fused steps have no memory figure.
"""
import copy
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet.optim import SGD, Adam

import models
import workloads

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "examples"))
import cnn_digits  # noqa: E402

DTYPE = np.float32
CHECK_STEPS = 3
SETTLE_CALLS = 2 + autonet.compiler.fused.WARM_CALLS + 2 * autonet.compiler.fused.TIMED_CALLS
"""Calls before timing: a fused step traces, then chooses between its kernels and its NumPy
replay by timing both (``autonet.compiler.fused._Choice``); timings see the one it keeps."""
MODES = ("eager", "compiled", "fused")


# ---------------------------------------------------------------- the cases
class Case:
    """One model: ``autonet()`` and ``torch(torch, model)`` each give ``(step, parameters)``."""

    name = ""
    count = 1        # steps per timed sample
    rtol, atol = 1e-3, 1e-5

    def autonet(self, mode):
        model, loss_of = self.autonet_model()
        optimizer = self.optimizer(model.parameters())

        def step():
            loss = loss_of(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        if mode != "eager":
            step = autonet.compile(step, backend="fused" if mode == "fused" else "numpy")
        return step, model

    def optimizer(self, parameters):
        return SGD(parameters, lr=0.05)

    def torch(self, torch):
        model, _ = self.autonet_model()
        net, loss_of = self.torch_model(torch, model)
        optimizer = (torch.optim.Adam(net.parameters(), lr=1e-3) if self.adam
                     else torch.optim.SGD(net.parameters(), lr=0.05))

        def step():
            loss = loss_of()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step, net

    adam = False
    unchecked = ()   # parameters whose gradient is 0 up to rounding (see CNN)

    def check(self, ours, theirs):
        """``ours`` (an autonet model) holds ``theirs``'s (PyTorch's) parameters, name by name."""
        named = dict(theirs.named_parameters())
        for name, parameter in ours.named_parameters():
            if name in self.unchecked:
                continue
            want = named[name].detach().numpy()
            if not np.allclose(parameter.data, want, rtol=self.rtol, atol=self.atol):
                raise SystemExit(f"{self.name}: autonet and PyTorch disagree on {name} after "
                                 f"{CHECK_STEPS} steps (max diff {np.abs(parameter.data - want).max():.3g})")


def copy_named(torch, model, net):
    """autonet's parameters into PyTorch's module of the same names and layouts."""
    named = dict(net.named_parameters())
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            named[name].copy_(torch.tensor(np.ascontiguousarray(parameter.data)))


class CNN(Case):
    name = "cnn_digits (BN, Dropout, Adam), batch 64"
    count = 5
    adam = True
    # a convolution's bias right before BatchNorm has a gradient of 0 up to rounding, which
    # Adam's normalised step turns into +-lr: those two are not compared
    unchecked = ("0.bias", "4.bias")

    def __init__(self):
        x, y, _ = workloads.digits_data()
        self.x = x[:64].reshape(64, 1, 8, 8).astype(DTYPE)
        self.labels = y[:64]

    def autonet_model(self):
        model = cnn_digits.build(seed=0, dropout=0.25).astype(DTYPE)
        x, labels = self.x, self.labels
        return model, lambda m: F.cross_entropy(m(autonet.Tensor(x)), labels)

    def optimizer(self, parameters):
        return Adam(parameters, lr=1e-3)

    def torch_model(self, torch, model):
        layers = models.torch_cnn_layers(
            torch, model, lambda layer: _numpy_dropout(torch, layer.p, copy.deepcopy(layer.rng)))
        net = torch.nn.Sequential(*layers)
        copy_named(torch, model, net)
        x, labels = torch.tensor(self.x), torch.tensor(self.labels)
        return net, lambda: torch.nn.functional.cross_entropy(net(x), labels)


def _numpy_dropout(torch, p, rng):
    """PyTorch's Dropout with autonet's masks: drawn by the same NumPy generator, same formula."""

    class NumpyDropout(torch.nn.Module):
        def forward(self, x):
            if not self.training:
                return x
            scale = ((rng.random(tuple(x.shape)) >= p) / (1.0 - p)).astype(DTYPE)
            return x * torch.from_numpy(scale)

    return NumpyDropout()


class LSTM(Case):
    name = "LSTM 2x128, seq 32, batch 32"

    def __init__(self):
        rng = np.random.default_rng(3)
        self.x = rng.normal(size=(32, 32, 64)).astype(DTYPE)
        self.target = rng.normal(size=(32, 32, 128)).astype(DTYPE)

    def autonet_model(self):
        model = nn.LSTM(64, 128, num_layers=2, rng=0).astype(DTYPE)
        x, target = autonet.Tensor(self.x), autonet.Tensor(self.target)
        return model, lambda m: ((m(x)[0] - target) ** 2).mean()

    def torch_model(self, torch, model):
        net = torch.nn.LSTM(64, 128, num_layers=2)
        copy_named(torch, model, net)
        x, target = torch.tensor(self.x), torch.tensor(self.target)
        return net, lambda: ((net(x)[0] - target) ** 2).mean()


class Transformer(Case):
    name = "TransformerEncoderLayer 128/4, seq 64, batch 32"

    def __init__(self):
        rng = np.random.default_rng(4)
        self.x = rng.normal(size=(64, 32, 128)).astype(DTYPE)
        self.target = rng.normal(size=(64, 32, 128)).astype(DTYPE)

    def autonet_model(self):
        model = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0, rng=0).astype(DTYPE)
        x, target = autonet.Tensor(self.x), autonet.Tensor(self.target)
        return model, lambda m: ((m(x) - target) ** 2).mean()

    def torch_model(self, torch, model):
        net = torch.nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0)
        copy_named(torch, model, net)
        x, target = torch.tensor(self.x), torch.tensor(self.target)
        return net, lambda: ((net(x) - target) ** 2).mean()


class GPT(Case):
    name = "tiny GPT (2 layers, width 64), batch 32 x 64"

    def autonet_model(self):
        model, loss_of, self.data = models.gpt_case(np.random.default_rng(0))
        return model, loss_of

    def torch_model(self, torch, model):
        return models.torch_gpt(torch, model, self.data)

    def check(self, ours, theirs):   # models.py's mirror has other names: compare sorted sums
        mine = sorted((p.size, float(np.abs(p.data).sum())) for p in ours.parameters())
        other = sorted((p.numel(), float(p.detach().abs().sum())) for p in theirs.parameters())
        for (n, a), (m, b) in zip(mine, other):
            if n != m or not np.isclose(a, b, rtol=1e-4):
                raise SystemExit(f"{self.name}: autonet and PyTorch disagree after {CHECK_STEPS} steps")


CASES = [CNN, GPT, LSTM, Transformer]


# ---------------------------------------------------------------- measuring
def first_call_seconds(step):
    """The first two calls of a fused step (the first traces and writes the kernels, numba
    compiles them on the second) with an empty kernel cache (a fresh AUTONET_CACHE_DIR): what a
    user waits for once per model and machine."""
    kept = os.environ.get("AUTONET_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cold:
        os.environ["AUTONET_CACHE_DIR"] = cold
        try:
            started = time.perf_counter()
            step()
            step()
            return time.perf_counter() - started
        finally:
            if kept is None:
                del os.environ["AUTONET_CACHE_DIR"]
            else:
                os.environ["AUTONET_CACHE_DIR"] = kept


def torch_peak(torch, step):
    """PyTorch's own count: the highest running sum of its CPU allocator's allocations and frees
    during one step (its profiler's memory events), after a warm-up step."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in profiler.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    total = peak = 0
    for _, change in events:
        total += change
        peak = max(peak, total)
    return peak


def measure(case, torch, rounds, fused):
    """``(times, peaks, first_call)`` of one case's variants."""
    modes = MODES if fused else MODES[:2]
    steps, first_call = {}, None
    reference = case.torch(torch) if torch is not None else None
    if fused:   # first, while no kernel of this model is loaded in this process
        first_call = first_call_seconds(case.autonet("fused")[0])
    for mode in modes:
        step, model = case.autonet(mode)
        if reference is not None:   # the same parameters as PyTorch's after a few steps
            check_step, check_net = case.torch(torch)
            for _ in range(CHECK_STEPS):
                step()
                check_step()
            case.check(model, check_net)
        steps[mode] = case.autonet(mode)[0]
    if reference is not None:
        steps["torch"] = reference[0]
    for mode, step in steps.items():   # warm: compiled steps trace, fused ones choose
        for _ in range(SETTLE_CALLS if mode == "fused" else 1):
            step()
    times = models.medians(steps, rounds, case.count)
    peaks = {mode: workloads.peak_bytes(steps[mode]) for mode in modes if mode != "fused"}
    if torch is not None:
        peaks["torch"] = torch_peak(torch, steps["torch"])
    return times, peaks, first_call


def backends(step):
    """How each of a compiled step's programs runs (``fused``, or why not)."""
    return "; ".join(sorted({program.backend for program in step.programs})) if hasattr(step, "programs") else ""


# ---------------------------------------------------------------- the tables
def table(torch, rounds, measured, fused):
    """The models' rows, then issue 26's targets; ``measured`` holds run.py's XOR and digits
    results (``{workload class name: (times, peaks)}``)."""
    lines = ["model step (float32) | PyTorch eager | autonet eager | compiled | fused | "
             "fused first call (cold cache) | peak memory: PyTorch, eager, compiled"]
    results = {}
    for case_class in CASES:
        case = case_class()
        times, peaks, first_call = measure(case, torch, rounds, fused)
        results[case_class.__name__] = times, peaks
        base = times.get("torch")
        cells = [case.name, f"{base * 1e3:.2f} ms" if base else "-"]
        for mode in MODES:
            if mode in times:
                ratio = f" ({times[mode] / base:.2f}x)" if base else ""
                cells.append(f"{times[mode] * 1e3:.2f} ms{ratio}")
            else:
                cells.append("-")
        cells.append(f"{first_call:.1f} s" if first_call is not None else "-")
        if "torch" in peaks:
            cells.append(f"{_size(peaks['torch'])}, " + ", ".join(
                f"{peaks[m] / peaks['torch']:.2f}x" for m in ("eager", "compiled")))
        else:
            cells.append(", ".join(_size(peaks[m]) for m in ("eager", "compiled")))
        lines.append(" | ".join(cells))
    lines += ["", targets(measured, results)]
    return "\n".join(lines)


def _size(count):
    return f"{count / 2 ** 20:.1f} MiB" if count >= 2 ** 20 else f"{count / 2 ** 10:.1f} KiB"


TARGETS = [   # (step, results key, variant, reference variant, target ratio)
    ("eager XOR", "NotebookXOR", "autonet", "numpy", 3.5),
    ("compiled XOR", "NotebookXOR", "compiled", "numpy", 2.0),
    ("fused XOR", "NotebookXOR", "fused", "numpy", 0.3),
    ("fused digits", "Digits", "fused", "numpy", 0.8),
    ("fused digits against its replay", "Digits", "fused", "compiled", 1.0),
    ("fused cnn_digits (Adam in the kernel)", "CNN", "fused", "torch", 0.5),
    ("compiled cnn_digits", "CNN", "compiled", "torch", 1.0),
    ("fused tiny GPT", "GPT", "fused", "torch", 0.8),
    ("fused LSTM", "LSTM", "fused", "torch", 0.8),
    ("compiled LSTM (issue 23)", "LSTM", "compiled", "torch", 1.0),
    ("fused transformer", "Transformer", "fused", "torch", 0.8),
    ("compiled transformer (issue 23)", "Transformer", "compiled", "torch", 1.0),
]

_REFERENCES = {"numpy": "hand NumPy", "torch": "PyTorch eager", "compiled": "the replay"}


def targets(measured, results):
    """Issue 26's target table: each target's reference, both times, the ratio, met or missed."""
    everything = dict(measured, **results)
    lines = ["target (issue 26) | reference | reference time | autonet time | ratio | target | met"]
    for label, key, variant, against, target in TARGETS:
        times = everything.get(key, ({},))[0]
        if variant not in times or against not in times:
            lines.append(f"{label} | {_REFERENCES[against]} | - | - | - | <= {target}x | not measured")
            continue
        ratio = times[variant] / times[against]
        lines.append(f"{label} | {_REFERENCES[against]} | {_time(times[against])} | {_time(times[variant])} | "
                     f"{ratio:.2f}x | <= {target}x | {'yes' if ratio <= target else 'MISSED'}")
    for key, (_, peaks) in everything.items():
        against = "torch" if "torch" in peaks else "numpy" if "numpy" in peaks else None
        if against is None:
            continue
        for variant in ("autonet", "eager", "compiled"):
            if variant in peaks:
                ratio = peaks[variant] / peaks[against]
                lines.append(f"peak memory, {key} {variant} | {_REFERENCES[against]} | {_size(peaks[against])} | "
                             f"{_size(peaks[variant])} | {ratio:.2f}x | <= 1.1x | "
                             f"{'yes' if ratio <= 1.1 else 'MISSED'}")
    return "\n".join(lines)


def _time(seconds):
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"
