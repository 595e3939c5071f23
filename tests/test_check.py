"""gradcheck and gradgradcheck catch wrong derivatives and say where."""
import numpy as np
import pytest

import autonet
from autonet import GradcheckError, Tensor


class Cube(autonet.Function):
    """x**3, whose backward the subclasses below get wrong in their own ways."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3


class WrongCube(Cube):
    """x**3 with a derivative that is wrong only at x[1] (a one-element bug)."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        wrong = grad * 3 * x ** 2
        return wrong + grad * (np.arange(x.size).reshape(x.shape) == 1)


class FrozenSecondDerivative(autonet.Function):
    """x**3 whose backward uses a constant copy of x: first order right, second wrong."""

    @staticmethod
    def forward(ctx, x):
        ctx.x_copy = x.copy()          # not saved: treated as a constant
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        return grad * 3 * ctx.x_copy ** 2


def test_gradcheck_passes_correct_ops_with_non_scalar_outputs():
    x = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    assert autonet.gradcheck(lambda t: t.tanh() @ t.T, x)


def test_gradcheck_names_input_element_and_values():
    x = Tensor([0.5, 1.5, -1.0], requires_grad=True, name="x")
    c = Tensor([1.0, 2.0, 3.0])
    with pytest.raises(GradcheckError) as caught:
        autonet.gradcheck(lambda const, t: WrongCube.apply(t) * const, (c, x))
    error = caught.value
    assert isinstance(error, AssertionError)
    assert (error.input_index, error.input_name, error.element) == (1, "x", (1,))
    assert error.analytic != pytest.approx(error.numeric)
    assert "input 1 ('x')" in str(error) and "element (1,)" in str(error)
    assert autonet.gradcheck(lambda t: WrongCube.apply(t), x, raise_exception=False) is False


def test_gradcheck_uses_a_random_upstream_gradient():
    # The backward below is right for sum() (all-ones upstream) but wrong in general.
    class SumOnly(autonet.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            return np.full_like(grad, 2 * grad.mean())

    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    SumOnly.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])   # looks right under sum()
    assert autonet.gradcheck(SumOnly.apply, x, raise_exception=False) is False


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = Tensor([0.5, -1.5], requires_grad=True)
    assert autonet.gradcheck(FrozenSecondDerivative.apply, x)
    with pytest.raises(GradcheckError):
        autonet.gradgradcheck(FrozenSecondDerivative.apply, x)


def test_checks_called_under_no_grad_still_take_the_derivatives_they_check():
    """Under no_grad, fn's output had no graph: gradcheck reported every correct op wrong
    ('analytic 0'). The analytic derivatives are now taken with grad enabled."""
    x = Tensor([0.5, -1.5], requires_grad=True)
    smooth = lambda t: t.tanh() * t   # noqa: E731
    with autonet.no_grad():
        assert autonet.gradcheck(smooth, x) and autonet.gradgradcheck(smooth, x)
        assert autonet.gradcheck(WrongCube.apply, x, raise_exception=False) is False
        assert autonet.gradgradcheck(FrozenSecondDerivative.apply, x, raise_exception=False) is False
        assert not autonet.is_grad_enabled()


class TwoFormulas(Cube):
    """x**3 whose backward is right on arrays and wrong on Tensors (under create_graph)."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * (2 if isinstance(grad, Tensor) else 3) * x ** 2


def test_gradgradcheck_first_compares_the_create_graph_derivatives_with_the_plain_ones():
    """Differentiating a wrong first derivative consistently would pass a second-order check:
    gradgradcheck first holds the Tensor (create_graph) branch to the array one."""
    x = Tensor([0.5, -1.5], requires_grad=True, name="x")
    assert autonet.gradcheck(TwoFormulas.apply, x)
    with pytest.raises(GradcheckError, match="create_graph=True") as caught:
        autonet.gradgradcheck(TwoFormulas.apply, x)
    assert (caught.value.input_index, caught.value.input_name, caught.value.element) == (0, "x", (0,))
    assert autonet.gradgradcheck(TwoFormulas.apply, x, raise_exception=False) is False


def test_float32_inputs_are_checked_in_float64_and_left_untouched():
    x = Tensor([0.25, 0.5], dtype=np.float32, requires_grad=True)
    before = x.data.copy()
    assert autonet.gradcheck(lambda t: t.sigmoid(), x)
    np.testing.assert_array_equal(x.data, before)
    assert x.grad is None


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires grad"):
        autonet.gradcheck(lambda t: t * 2, Tensor([1.0]))


def test_gradgradcheck_takes_an_explicit_upstream_gradient():
    x = Tensor([[0.3, -0.7], [1.1, 0.2]], requires_grad=True)
    assert autonet.gradgradcheck(lambda t: t.tanh() @ t, x, grad_outputs=np.ones((2, 2)))
    with pytest.raises(GradcheckError):
        autonet.gradgradcheck(FrozenSecondDerivative.apply, Tensor([0.5, -1.5], requires_grad=True),
                              grad_outputs=np.array([1.0, 2.0]))


def test_gradcheck_fails_where_the_numeric_derivative_overflows():
    class WrongSignExp(autonet.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.exp(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            return -grad * np.exp(x)

    edge = np.log(np.finfo(np.float64).max)
    x = Tensor([edge - 1e-7], requires_grad=True)   # exp(x) is finite, exp(x + eps) is inf
    assert np.isfinite(np.exp(x.data)).all()
    with np.errstate(over="ignore"), pytest.raises(autonet.GradcheckError, match="numeric inf"):
        autonet.gradcheck(WrongSignExp.apply, x)
