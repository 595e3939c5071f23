"""Time one training step of each workload: autonet against hand-written NumPy (and the
examples' CNN and tiny-GPT steps against PyTorch eager, see models.py).

Run: make bench   (or python benchmarks/run.py [--quick] [--default-threads])

One BLAS thread by default (set before NumPy is imported), and the process
pinned to one core (the second one it may use, as ``taskset -c 1``): on a
shared 2-core machine, two BLAS threads make small-matrix timings swing
wildly, and issue 26's ratios were measured so.
Every implementation is first checked to reach the same parameters as the
hand-written NumPy step after a few steps. Timings are medians over
interleaved rounds (A, B, C, then B, C, A, ...), warm-up excluded.
"""
import argparse
import os
import subprocess
import sys

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
if "--default-threads" not in sys.argv:
    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:   # as `taskset -c 1`
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[1]})

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import WORKLOADS, Wide, peak_bytes  # noqa: E402
import models  # noqa: E402 - the examples' CNN and tiny-GPT steps against PyTorch
import targets  # noqa: E402 - issue 26's real-model steps and its table of targets
import transforms  # noqa: E402 - autonet.func: hvp, jvp, jacrev against their references

import autonet  # noqa: E402

CHECK_STEPS = 5


def per_step_seconds(step, count):
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def interleaved_medians(steps, rounds, count):
    """Median seconds per step of each named step, over rotated rounds."""
    names = list(steps)
    for name in names:   # warm-up, excluded
        per_step_seconds(steps[name], max(1, count // 4))
    samples = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(per_step_seconds(steps[name], count))
    return {name: statistics.median(values) for name, values in samples.items()}


def as_numpy(parameters):
    return [np.array(p.detach().numpy() if hasattr(p, "detach") else p) for p in parameters]


def check_same_parameters(workload, label, step, parameters):
    """Run a few steps and compare with the hand-written NumPy step's parameters."""
    reference, expected = workload.numpy_step()
    for _ in range(CHECK_STEPS):
        reference()
        step()
    for got, want in zip(as_numpy(parameters), expected):
        if not np.allclose(got, want, rtol=workload.tolerance, atol=workload.tolerance):
            raise SystemExit(f"{workload.name}: {label} disagrees with hand-written NumPy after "
                             f"{CHECK_STEPS} steps (max diff {np.abs(got - want).max():.3g})")


def fused_available():
    try:
        autonet.compiler.fused.require_numba()
        return True
    except ImportError:
        return False


def load_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1 if "--default-threads" not in sys.argv else torch.get_num_threads())
    return torch


def bench(workload, rounds, count, torch, fused):
    variants = {"numpy": workload.numpy_step()[0]}
    eager, eager_params = workload.autonet_step()
    check_same_parameters(workload, "autonet", eager, eager_params)
    variants["autonet"] = workload.autonet_step()[0]
    if hasattr(autonet, "compile"):
        compiled, compiled_params = workload.autonet_step(compiled=True)
        check_same_parameters(workload, "autonet.compile", compiled, compiled_params)
        variants["compiled"] = workload.autonet_step(compiled=True)[0]
    if fused:
        fused, fused_params = workload.autonet_step(compiled=True, backend="fused")
        check_same_parameters(workload, "autonet.compile fused", fused, fused_params)
        variants["fused"] = workload.autonet_step(compiled=True, backend="fused")[0]
        for _ in range(targets.SETTLE_CALLS):   # traces, compiles the kernels, chooses (see targets)
            variants["fused"]()
    if torch is not None:
        torch_step, torch_params = workload.torch_step(torch)
        check_same_parameters(workload, "torch", torch_step, torch_params)
        variants["torch"] = workload.torch_step(torch)[0]
    memory = {name: peak_bytes(step) for name, step in variants.items() if name not in ("torch", "fused")}
    if isinstance(workload, Wide):
        variants["matmuls"] = workload.matmul_only_step()
    return interleaved_medians(variants, rounds, count), memory


def format_row(name, times, memory):
    base = times["numpy"]
    cells = [name, f"{base * 1e6:10.1f} us", f"{times['autonet'] * 1e6:10.1f} us",
             f"{times['autonet'] / base:6.2f}x"]
    cells.append(f"{times['compiled'] * 1e6:9.1f} us {times['compiled'] / base:5.2f}x"
                 if "compiled" in times else "      -")
    cells.append(f"{times['fused'] * 1e6:9.1f} us {times['fused'] / base:5.2f}x"
                 if "fused" in times else "      -")
    cells.append(f"{times['torch'] / base:6.2f}x" if "torch" in times else "     -")
    if "matmuls" in times:
        floor = times["matmuls"]
        cells.append(f"{floor * 1e6:9.1f} us: " + ", ".join(
            f"{label} {base / floor if key == 'numpy' else times[key] / floor:4.2f}x"
            for key, label in (("numpy", "numpy"), ("autonet", "autonet"), ("compiled", "compiled"),
                               ("fused", "fused")) if key in times))
    else:
        cells.append("-")
    numpy_peak = memory["numpy"]
    cells.append(f"{_size(numpy_peak)}: " + ", ".join(
        f"{label} {memory[key] / numpy_peak:4.2f}x" for key, label in
        (("autonet", "autonet"), ("compiled", "compiled")) if key in memory))
    return " | ".join(cells)


def _size(count):
    return f"{count / 2 ** 20:.1f} MiB" if count >= 2 ** 20 else f"{count / 2 ** 10:.1f} KiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test)")
    parser.add_argument("--default-threads", action="store_true",
                        help="leave BLAS threads at their default (run by the main table itself)")
    parser.add_argument("--smoke", action="store_true",
                        help="--quick with one round of one timed step per engine, the fused one on the first "
                             "workload only (the test suite's run)")
    arguments = parser.parse_args()
    arguments.quick |= arguments.smoke
    torch = load_torch()
    rounds = 1 if arguments.smoke else 3 if arguments.quick else 15
    counts = dict.fromkeys(("notebook", "digits", "784"), 1) if arguments.smoke else \
        {"notebook": 2000, "digits": 200, "784": 3}
    threads = "default BLAS threads" if arguments.default_threads else "1 BLAS thread"
    print(f"autonet {autonet.__version__}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'not installed'}, {threads}, "
          f"{rounds} rounds, medians per training step")
    print("workload | hand-written NumPy | autonet | ratio | autonet.compile | compile fused | "
          "torch ratio | bare matmuls | peak memory of a step (tracemalloc), NumPy's and ratios")
    measured = {}
    for workload_class in WORKLOADS:
        workload = workload_class()
        count = next(v for k, v in counts.items() if workload.name.startswith(k))
        count = max(1, count // 5) if arguments.quick else count
        # the smoke run checks the fused engine on the first workload only: each further one
        # compiles kernels of its own (cold, 3 to 9 s), and test_fused covers what they lower
        fused = fused_available() and not (arguments.smoke and measured)
        measured[workload_class.__name__] = bench(workload, rounds, count, torch, fused)
        print(format_row(workload.name, *measured[workload_class.__name__]), flush=True)
    if not arguments.default_threads:
        print()
        print(models.table(torch, rounds), flush=True)
        print()
        # the smoke run leaves the model steps' fused column out: cold, their kernels compile
        # for minutes (docs/performance.md), and the fused engine is smoke-tested above
        print(targets.table(torch, rounds, measured, fused_available() and not arguments.smoke),
              flush=True)
        print()
        print(transforms.table(torch, rounds), flush=True)
    if not arguments.default_threads and not arguments.quick:
        print()
        subprocess.run([sys.executable, __file__, "--default-threads"], check=True,
                       env={k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES})


if __name__ == "__main__":
    main()
