"""Function transforms (autonet.func) in ``make bench``.

- hvp of the digits MLP's loss (all parameters) against one gradient of it
  (target: at most 3x);
- jvp against vjp of the MLP's logits (the double-vjp construction: target at
  most 3x);
- jacrev and jacfwd of a 64->64 tanh layer against ``torch.func.jacrev``
  (eager, one thread), when torch is installed.

Every value is first checked against an independent computation, so a fast
wrong transform cannot pass. Medians over interleaved rounds.
"""
import numpy as np

import autonet
import autonet.nn.functional as F
from autonet import Tensor, func
from models import medians
from workloads import Digits


def digits_functions():
    """The digits MLP as ``logits(*params)`` and ``loss(*params)``, with its parameters."""
    workload = Digits()
    x, labels = Tensor(workload.x), workload.labels
    params = [Tensor(p) for pair in zip(workload.weights, workload.biases) for p in pair]

    def logits(*params):
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = h.tanh()
        return h

    return logits, lambda *params: F.cross_entropy(logits(*params), labels), params


def check_hvp(loss, params, tangents, product, eps=1e-6):
    """H v against central differences of the gradient along v."""
    gradient = func.grad(loss, tuple(range(len(params))))
    shifted = [[Tensor(p.data + s * eps * t.data) for p, t in zip(params, tangents)] for s in (1, -1)]
    ahead, behind = gradient(*shifted[0]), gradient(*shifted[1])
    for got, a, b in zip(product, ahead, behind):
        np.testing.assert_allclose(got.data, (a.data - b.data) / (2 * eps), rtol=1e-4, atol=1e-7)


def digits_rows(rounds):
    logits, loss, params = digits_functions()
    rng = np.random.default_rng(1)
    tangents = tuple(Tensor(rng.standard_normal(p.shape)) for p in params)
    cotangent = Tensor(rng.standard_normal(logits(*params).shape))
    argnums = tuple(range(len(params)))
    check_hvp(loss, params, tangents, func.hvp(loss, tuple(params), tangents)[1])
    _, vjp_fn = func.vjp(logits, *params)
    pushed = func.jvp(logits, tuple(params), tangents)[1]
    pulled = vjp_fn(cotangent)    # <cotangent, J v> == <J^T cotangent, v>
    np.testing.assert_allclose(np.vdot(cotangent.data, pushed.data),
                               sum(np.vdot(g.data, t.data) for g, t in zip(pulled, tangents)), rtol=1e-10)
    gradient = func.grad(loss, argnums)
    steps = {
        "grad": lambda: gradient(*params),
        "hvp": lambda: func.hvp(loss, tuple(params), tangents),
        "vjp": lambda: func.vjp(logits, *params)[1](cotangent),
        "jvp": lambda: func.jvp(logits, tuple(params), tangents),
    }
    times = medians(steps, rounds, 20)
    return [
        f"hvp of the digits MLP loss (batch 64, all parameters) | {times['hvp'] * 1e3:7.2f} ms | "
        f"one gradient {times['grad'] * 1e3:7.2f} ms | {times['hvp'] / times['grad']:5.2f}x (target <= 3x)",
        f"jvp of the digits MLP logits (double vjp) | {times['jvp'] * 1e3:7.2f} ms | "
        f"one vjp {times['vjp'] * 1e3:7.2f} ms | {times['jvp'] / times['vjp']:5.2f}x (target <= 3x)",
    ]


def tanh_layer_row(torch, rounds):
    rng = np.random.default_rng(2)
    w, b, x = rng.standard_normal((64, 64)) / 8, rng.standard_normal(64), rng.standard_normal(64)
    weight, bias = Tensor(w), Tensor(b)
    layer = lambda x: autonet.tanh(x @ weight + bias)
    expected = (1 - np.tanh(x @ w + b) ** 2)[:, None] * w.T     # d tanh(x W + b)_i / d x_j
    for transform in (func.jacrev, func.jacfwd):
        np.testing.assert_allclose(transform(layer)(Tensor(x)).data, expected, rtol=1e-12, atol=1e-14)
    steps = {"jacrev": lambda: func.jacrev(layer)(Tensor(x)),
             "jacfwd": lambda: func.jacfwd(layer)(Tensor(x))}
    if torch is not None:
        import torch.func
        tw, tb, tx = (torch.tensor(a) for a in (w, b, x))
        torch_layer = lambda x: torch.tanh(x @ tw + tb)
        got = torch.func.jacrev(torch_layer)(tx).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
        steps["torch"] = lambda: torch.func.jacrev(torch_layer)(tx)
    times = medians(steps, rounds, 5)
    torch_cells = (f"torch.func.jacrev {times['torch'] * 1e3:7.2f} ms | "
                   f"autonet jacrev / torch {times['jacrev'] / times['torch']:5.2f}x"
                   if "torch" in times else "torch.func.jacrev - (torch not installed)")
    return (f"jacrev of a 64->64 tanh layer (float64) | {times['jacrev'] * 1e3:7.2f} ms | "
            f"jacfwd {times['jacfwd'] * 1e3:7.2f} ms | {torch_cells}")


def table(torch, rounds):
    """The transforms' rows: what is timed | autonet | its reference | ratio."""
    lines = ["function transform | autonet | reference | ratio"]
    lines += digits_rows(rounds)
    lines.append(tanh_layer_row(torch, rounds))
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(None, 5))
