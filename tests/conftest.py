"""Test configuration.

* The hypothesis profile comes from HYPOTHESIS_PROFILE (default ci).
* Fused kernels compiled by the tests are cached in .cache/kernels in the repository (ignored by
  git), not the user's: later runs load numba's machine code instead of compiling again.
* numba compiles without LLVM's optimisation passes (``NUMBA_OPT=0``), most of a kernel's
  build time and no part of its results (autonet asks numba for no fast-math), and caches the
  machine code of its own helpers in .cache/numba, so no unoptimised code lands beside the
  package's sources for ``make bench`` to load (kernel files name their level, so users' processes
  never load the suite's). tests/test_fused_optimised.py builds kernels optimised, as users get
  them, and checks they agree with eager mode as well.
* BLAS runs one thread per process (unless the environment says otherwise), set before NumPy is
  imported: ``make test`` runs two pytest workers on two cores, and BLAS threads on top of them
  would only wait for each other. No test depends on it: results are compared within one process
  (or one environment, for the subprocesses that inherit it) or within tolerances.
* The op, nn, optim and compile tests run twice: on the CPU and with tensors on
  ``device_double`` (a CuPy-like array type that refuses implicit host conversion),
  so a host conversion autonet forgot fails on a CPU-only machine.
"""
import os
import pathlib
import re

for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
_CACHE = pathlib.Path(__file__).resolve().parent.parent / ".cache"
os.environ.setdefault("NUMBA_OPT", "0")
os.environ.setdefault("NUMBA_CACHE_DIR", str(_CACHE / "numba"))

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import autonet.testing  # noqa: F401, E402 - registers the ci and thorough profiles
import device_double  # noqa: E402

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
os.environ.setdefault("AUTONET_CACHE_DIR", str(_CACHE / "kernels"))

ON_BOTH_DEVICES = ("test_ops_", "test_nn", "test_optim", "test_losses", "test_compile",
                   "test_autograd", "test_tensor", "test_inplace", "test_serialization",
                   "test_soundness", "test_models", "test_anomaly", "test_check",
                   "test_viz", "test_dtypes", "test_ownership", "test_testing", "test_random", "test_data_loader",
                   "test_pytorch_spellings")


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__.startswith(ON_BOTH_DEVICES) and \
            not metafunc.definition.get_closest_marker("host_only"):
        metafunc.parametrize("tensors_on", ["cpu", "double"], indirect=True)


def _compiles_fused_kernels(nodeid):
    """True for the tests of the fused backend: their functions or modules are named "fused"
    (not "refused")."""
    return re.search(r"(?<![a-z])fused", nodeid.split("[")[0]) is not None


def pytest_collection_modifyitems(items):
    """The tests that compile fused kernels first, then the browser's, then the rest, each in
    its order. ``make test`` runs ``--dist worksteal``: each worker starts on a contiguous share
    of this order and an idle one steals from the back of another's queue, so the first two
    groups run in one worker, which pays numba's start and its helpers' compilation once and
    starts Chromium once; spread over both workers (as xdist's ``--dist loadgroup`` quietly
    does under pytest 9, which no longer reads the group it writes into node ids) they cost
    more CPU. A scheduler of units (``loadscope``) would keep them together too, but sends
    one test a message (1.4 s more on 2,000 small tests)."""
    def group(item):
        if _compiles_fused_kernels(item.nodeid):
            return 0
        return 1 if item.nodeid.startswith("tests/test_viz_explorer.py::") else 2
    items.sort(key=group)


@pytest.fixture(autouse=True)
def fused_steps_keep_their_kernels(monkeypatch):
    """A fused step keeps its kernels or its NumPy replay by timing both (docs/compile.md), which
    a loaded machine could tip either way. Here its clock stands still, so the two tie and the
    kernels are kept: tests that check a step ran fused stay deterministic, the alternation of
    the timed calls still runs, and the tests of the choice put in clocks of their own."""
    from autonet.compiler import fused

    monkeypatch.setattr(fused, "clock", lambda: 0.0)


@pytest.fixture(autouse=True)
def tensors_on(request):
    """Where ``Tensor(host data)`` puts its array during the test (see the module doc)."""
    where = getattr(request, "param", "cpu")
    if where == "double":
        with device_double.default_device():
            yield where
    else:
        yield where
