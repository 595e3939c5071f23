"""numba kernels that fused programs call for ops written as loops (imported with numba only)."""
import numba
import numpy as np


@numba.njit(cache=True)
def ce_forward(logits, labels):
    """Softmax cross-entropy per row and the softmax, as ``nn.functional.CrossEntropy``."""
    rows, classes = logits.shape
    losses = np.empty(rows)
    probabilities = np.empty_like(logits)
    for i in range(rows):
        label = labels[i]
        if label < 0 or label >= classes:   # eager mode's check, on every call
            raise ValueError("cross_entropy: labels must lie in [0, classes)")
        top = logits[i].max()
        total = 0.0
        for j in range(classes):
            probabilities[i, j] = np.exp(logits[i, j] - top)
            total += probabilities[i, j]
        for j in range(classes):
            probabilities[i, j] /= total
        losses[i] = np.log(total) - (logits[i, label] - top)
    return losses, probabilities


@numba.njit(cache=True)
def ce_backward(grad, probabilities, labels):
    """``grad[:, None] * (softmax - one_hot(labels))``."""
    out = probabilities.copy()
    for i in range(out.shape[0]):
        out[i, labels[i]] -= 1.0
    for i in range(out.shape[0]):
        out[i] *= grad[i]
    return out
