"""Write your own op, and test its gradient the way autonet tests its own.

1. Softplus, log(1 + e^x), as an autonet.Function with a stable forward.
2. Its property-based test: hypothesis draws tensors of many shapes and
   assert_gradients_match compares the backward with finite differences.
3. A deliberately wrong backward, and the report gradcheck prints for it.
Run: python examples/custom_op.py     (needs hypothesis: pip install autonet[test])
"""
import numpy as np
from hypothesis import given, settings

import autonet
from autonet.testing import assert_gradients_match, tensors


class Softplus(autonet.Function):
    """log(1 + exp(x)), finite for any x; its derivative is sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.logaddexp(0.0, x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * autonet.ops.generic.sigmoid(x)   # ndarray now, Tensor for higher order


class WrongSoftplus(Softplus):
    """The same forward with a classic slip: exp(x) / (1 + exp(-x)) in the backward."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * np.exp(x) / (1 + np.exp(-x))


@settings(max_examples=50, deadline=None)
@given(tensors())                         # shapes of 0 to 3 axes, values in [-10, 10]
def test_softplus_gradient(x):
    assert_gradients_match(Softplus.apply, x)


def main():
    test_softplus_gradient()
    print("Softplus: the gradient matches finite differences on 50 drawn tensors")
    x = autonet.Tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    print("second derivatives too:", autonet.gradgradcheck(Softplus.apply, x))
    try:
        autonet.gradcheck(WrongSoftplus.apply, autonet.Tensor([[0.5, -1.0, 2.0]], requires_grad=True,
                                                              name="x"))
    except autonet.GradcheckError as report:
        print("WrongSoftplus is caught:")
        print(" ", report)


if __name__ == "__main__":
    main()
