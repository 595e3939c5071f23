"""Where a training step's time goes, by library: Linux ``perf`` samples the step (after its
warm-up) and the samples are grouped by the shared object they fell in. The floor of a design
shows in the groups: what BLAS takes is the same for any engine on NumPy's BLAS.

    python benchmarks/perf_profile.py CASE MODE [SECONDS]

prints the median step, the shares by library and the hottest functions.

CASE: ``xor`` or ``digits`` (run.py's workloads) or a ``targets.py`` case (``cnn``, ``gpt``,
``lstm``, ``transformer``); MODE: ``numpy`` (the hand-written step; xor and digits),
``eager``, ``compiled``, ``fused`` or ``torch``. One BLAS thread; pin it yourself
(``taskset -c 1``). Needs ``perf`` (Debian's ``linux-perf``) and permission to use it.
"""
import os

for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_threads] = "1"

import collections  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

GROUPS = (   # (group, substrings of a shared object's name), the first match wins
    ("BLAS", ("openblas", "libmkl", "libblas", "dnnl")),
    ("NumPy's C loops", ("_multiarray_umath", "_umath", "numpy")),
    ("PyTorch's C++", ("libtorch", "libc10", "_C.cpython")),
    ("math library", ("libm.so", "libm-", "libsleef", "libsvml")),
    ("JIT-compiled code (numba's kernels; PyTorch's oneDNN)", ("[JIT]", "perf-", "//anon")),
    ("Python interpreter", ("python", "libpython")),
    ("C library and kernel", ("libc.so", "libc-", "[kernel", "ld-linux", "[vdso]")),
)


def build(case, mode):
    """The step to profile, warmed up (traced, compiled, its fused choice made)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import targets
    import workloads

    if case in ("xor", "digits"):
        workload = workloads.NotebookXOR() if case == "xor" else workloads.Digits()
        if mode == "numpy":
            step = workload.numpy_step()[0]
        elif mode == "torch":
            import torch
            step = workload.torch_step(torch)[0]
        else:
            step = workload.autonet_step(compiled=mode != "eager",
                                         backend="fused" if mode == "fused" else "numpy")[0]
    else:
        model_case = {c.__name__.lower(): c for c in targets.CASES}[case]()
        if mode == "torch":
            import torch
            torch.set_num_threads(1)
            step = model_case.torch(torch)[0]
        else:
            step = model_case.autonet(mode)[0]
    for _ in range(targets.SETTLE_CALLS):
        step()
    return step


def run(case, mode, seconds, control):
    """In the child: warm up, tell perf to start, run steps for ``seconds``; prints the
    median step time."""
    import statistics

    step = build(case, mode)
    with open(control, "w", buffering=1) as fifo:   # samples of the steps alone
        fifo.write("enable\n")
        times, started = [], time.perf_counter()
        while time.perf_counter() - started < seconds:
            before = time.perf_counter()
            step()
            times.append(time.perf_counter() - before)
        fifo.write("disable\n")
    print(f"steps {len(times)} median {statistics.median(times) * 1e3:.3f} ms")


def group_of(name):
    for group, keys in GROUPS:
        if any(key in name for key in keys):
            return group
    return "other: " + name


def profile(case, mode, seconds=10.0, symbols=0):
    """``(median step text, {group: share}, top symbols)`` from a perf recording of the warm
    step; the ``symbols`` hottest functions as ``(share, library, function)``."""
    if shutil.which("perf") is None:
        raise SystemExit("perf not found: apt-get install linux-perf (Debian)")
    with tempfile.TemporaryDirectory() as folder:
        control, data = os.path.join(folder, "control"), os.path.join(folder, "perf.data")
        os.mkfifo(control)
        child = subprocess.Popen(
            ["perf", "record", "-q", "-F", "2000", "-D", "-1", "--control", f"fifo:{control}",
             "-o", data, "--", sys.executable, __file__, "--child", case, mode, str(seconds), control],
            stdout=subprocess.PIPE, text=True)
        out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"perf record failed ({child.returncode})")
        report = _report(data, "dso")
        hottest = [(float(f[0][:-1]), f[1], " ".join(f[3:])) for f in
                   (line.split() for line in _report(data, "dso,sym").splitlines()[:symbols])]
    shares = collections.Counter()
    for line in report.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].endswith("%"):
            shares[group_of(" ".join(fields[1:]))] += float(fields[0][:-1])
    return out.strip(), shares, hottest


def _report(data, keys):
    return subprocess.run(["perf", "report", "-i", data, "--sort", keys, "--stdio", "-q",
                           "--percent-limit", "0.1"], capture_output=True, text=True).stdout


def main():
    if sys.argv[1] == "--child":
        run(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
        return
    case, mode = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    summary, shares, hottest = profile(case, mode, seconds, symbols=12)
    print(f"{case} {mode}: {summary}")
    for group, share in shares.most_common():
        print(f"  {share:5.1f}%  {group}")
    print("hottest functions:")
    for share, library, function in hottest:
        print(f"  {share:5.1f}%  {library}  {function}")


if __name__ == "__main__":
    main()
