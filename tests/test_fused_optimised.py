"""Fused kernels optimised, as users run them.

The rest of the suite compiles kernels with ``NUMBA_OPT=0`` (tests/conftest.py): LLVM's
optimisation passes are most of a kernel's build time and change no result, since autonet
never asks numba for fast-math (no reassociation, no contraction into fused multiply-adds).
This test keeps that claim honest: a step built in a fresh process with numba's default
``NUMBA_OPT`` (kernels at ``fused.KERNEL_OPTIMISATION``, -O2) and an empty kernel cache agrees
with eager mode as the unoptimised kernels do.
"""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed; make test installs it")

SCRIPT = textwrap.dedent("""
    import numba
    import numpy as np

    import autonet
    import autonet.nn as nn
    from autonet.optim import Adam

    from autonet.compiler import fused as backend
    assert backend.kernel_optimisation() == backend.KERNEL_OPTIMISATION > 0   # not the suite's 0

    def make():   # a classifier's step with Adam inside the kernel
        model = nn.Sequential(nn.Linear(3, 8, rng=0), nn.Tanh(), nn.Linear(8, 4, rng=1), nn.Sigmoid())
        opt = Adam(model.parameters(), lr=0.01)

        def step(x, labels):
            loss = nn.functional.cross_entropy(model(x), labels) + 0.01 * (model[0].weight ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return model, step

    backend.TIMED_CALLS = 0   # the kernels on every call (no timed turns of the replay)
    (eager_model, eager), (fused_model, fused) = make(), make()
    fused = autonet.compile(fused, backend="fused")
    rng = np.random.default_rng(3)
    for _ in range(12):
        x, labels = rng.normal(size=(6, 3)), rng.integers(0, 4, 6)
        np.testing.assert_allclose(fused(x, labels).data, eager(x, labels).data, rtol=1e-12, atol=1e-14)
    assert fused.programs[0].backend == "fused", fused.programs[0].backend
    for a, b in zip(eager_model.parameters(), fused_model.parameters()):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-12, atol=1e-14)
    print("optimised kernels agree")
""")


def test_kernels_built_at_numbas_default_optimisation_agree_with_eager_mode(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_OPT"}
    environment["AUTONET_CACHE_DIR"] = str(tmp_path / "kernels")   # empty: every kernel is built here,
    environment["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")       # and numba's helpers with them
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=environment, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "optimised kernels agree" in result.stdout
