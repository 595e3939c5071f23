"""autonet.func against central finite differences (float64) and against each other's identities."""
import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor, func

RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 4))


def numeric_jacobian(f, args, position, eps=1e-6):
    """d f(*args) / d args[position], shape ``out.shape + arg.shape``, by central differences."""
    arrays = [np.array(a, dtype=np.float64) for a in args]

    def value(shifted):
        call = list(arrays)
        call[position] = shifted
        return np.asarray(f(*[Tensor(a) for a in call]).data, dtype=np.float64)

    base = arrays[position]
    out_shape = value(base).shape
    jacobian = np.zeros(out_shape + base.shape)
    for index in np.ndindex(base.shape):
        step = np.zeros_like(base)
        step[index] = eps
        jacobian[(...,) + index] = (value(base + step) - value(base - step)) / (2 * eps)
    return jacobian


def mixed(x, y):
    """A vector function of a vector and a matrix: products, transcendental functions, a sum."""
    return (autonet.tanh(y @ x) * autonet.exp(x[:3] / 4) + (y ** 2).sum(axis=1)).sin()


def scalar(x, y):
    return (mixed(x, y) ** 2).sum() + autonet.log(1 + (x * x).sum())


X = RNG.standard_normal(4)


def test_grad_and_value_and_grad_match_finite_differences():
    for position in (0, 1):
        expected = numeric_jacobian(scalar, (X, W), position)
        got = func.grad(scalar, argnums=position)(Tensor(X), Tensor(W))
        np.testing.assert_allclose(got.data, expected, rtol=1e-6, atol=1e-8)
    value, both = func.value_and_grad(scalar, argnums=(0, 1))(Tensor(X), Tensor(W))
    assert value.item() == pytest.approx(scalar(Tensor(X), Tensor(W)).item(), rel=1e-15)
    assert isinstance(both, tuple) and len(both) == 2
    np.testing.assert_array_equal(both[0].data, func.grad(scalar)(Tensor(X), Tensor(W)).data)
    np.testing.assert_array_equal(both[1].data, func.grad(scalar, 1)(Tensor(X), Tensor(W)).data)
    negative = func.grad(scalar, argnums=-1)(Tensor(X), Tensor(W))
    np.testing.assert_array_equal(negative.data, both[1].data)


def test_ndarrays_are_accepted_and_results_are_plain_tensors():
    got = func.grad(scalar)(X, W)
    assert isinstance(got, Tensor) and not got.requires_grad and got.grad_fn is None
    np.testing.assert_allclose(got.data, numeric_jacobian(scalar, (X, W), 0), rtol=1e-6, atol=1e-8)


def test_has_aux_conventions_are_torch_funcs_for_grad_and_jaxs_for_value_and_grad():
    def with_aux(x):
        loss = (x ** 3).sum()
        return loss, {"twice": x * 2, "note": "kept"}
    x = Tensor([1.0, 2.0])
    gradient, aux = func.grad(with_aux, has_aux=True)(x)
    np.testing.assert_array_equal(gradient.data, [3.0, 12.0])
    np.testing.assert_array_equal(aux["twice"].data, [2.0, 4.0])
    assert aux["note"] == "kept" and not aux["twice"].requires_grad
    (value, aux), gradient = func.value_and_grad(with_aux, has_aux=True)(x)
    assert value.item() == 9.0 and aux["note"] == "kept"
    np.testing.assert_array_equal(gradient.data, [3.0, 12.0])


def test_vjp_is_v_times_the_jacobian_and_always_a_tuple():
    v = RNG.standard_normal(3)
    out, vjp_fn = func.vjp(mixed, Tensor(X), Tensor(W))
    np.testing.assert_array_equal(out.data, mixed(Tensor(X), Tensor(W)).data)
    dx, dw = vjp_fn(Tensor(v))
    np.testing.assert_allclose(dx.data, v @ numeric_jacobian(mixed, (X, W), 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw.data, np.tensordot(v, numeric_jacobian(mixed, (X, W), 1), 1),
                               rtol=1e-6, atol=1e-8)
    again = vjp_fn(v)                        # callable again; an ndarray cotangent is accepted
    np.testing.assert_array_equal(again[0].data, dx.data)
    _, one_fn = func.vjp(autonet.tanh, Tensor(X))
    result = one_fn(np.ones(4))
    assert isinstance(result, tuple) and len(result) == 1
    np.testing.assert_allclose(result[0].data, 1 - np.tanh(X) ** 2, rtol=1e-15)


def test_jvp_is_the_jacobian_times_v_from_jacrev_and_finite_differences():
    vx, vw = RNG.standard_normal(4), RNG.standard_normal((3, 4))
    out, tangent = func.jvp(mixed, (Tensor(X), Tensor(W)), (Tensor(vx), Tensor(vw)))
    jx, jw = func.jacrev(mixed, argnums=(0, 1))(Tensor(X), Tensor(W))
    expected = jx.data @ vx + np.tensordot(jw.data, vw, 2)
    np.testing.assert_allclose(tangent.data, expected, rtol=1e-12, atol=1e-14)
    numeric = (numeric_jacobian(mixed, (X, W), 0) @ vx
               + np.tensordot(numeric_jacobian(mixed, (X, W), 1), vw, 2))
    np.testing.assert_allclose(tangent.data, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(out.data, mixed(Tensor(X), Tensor(W)).data)
    assert not tangent.requires_grad and not out.requires_grad


def test_jacfwd_equals_jacrev_equals_finite_differences_for_several_inputs():
    forward = func.jacfwd(mixed, argnums=(0, 1))(Tensor(X), Tensor(W))
    reverse = func.jacrev(mixed, argnums=(0, 1))(Tensor(X), Tensor(W))
    for position in (0, 1):
        expected = numeric_jacobian(mixed, (X, W), position)
        assert forward[position].shape == reverse[position].shape == expected.shape
        np.testing.assert_allclose(forward[position].data, reverse[position].data, rtol=1e-12,
                                   atol=1e-14)
        np.testing.assert_allclose(reverse[position].data, expected, rtol=1e-6, atol=1e-8)


def test_jacobians_of_a_tuple_output_are_per_output_then_per_argument():
    def two(x, y):
        return x * y, (x ** 2).sum()
    x, y = Tensor([1.0, 2.0]), Tensor([3.0, 5.0])
    for transform in (func.jacrev, func.jacfwd):
        (dx0, dy0), (dx1, dy1) = transform(two, argnums=(0, 1))(x, y)
        np.testing.assert_array_equal(dx0.data, np.diag([3.0, 5.0]))
        np.testing.assert_array_equal(dy0.data, np.diag([1.0, 2.0]))
        np.testing.assert_array_equal(dx1.data, [2.0, 4.0])
        np.testing.assert_array_equal(dy1.data, [0.0, 0.0])
        assert transform(two)(x, y)[1].shape == (2,)


def test_hessian_is_symmetric_matches_finite_differences_of_grad_and_jacrev_of_jacrev():
    hessian = func.hessian(scalar)(Tensor(X), Tensor(W))
    np.testing.assert_allclose(hessian.data, hessian.data.T, rtol=1e-12, atol=1e-13)
    numeric = numeric_jacobian(func.grad(scalar), (X, W), 0)
    np.testing.assert_allclose(hessian.data, numeric, rtol=1e-6, atol=1e-7)
    twice_reverse = func.jacrev(func.jacrev(scalar))(Tensor(X), Tensor(W))
    np.testing.assert_allclose(hessian.data, twice_reverse.data, rtol=1e-12, atol=1e-13)
    closed = func.hessian(lambda x: (x ** 3).sum())(Tensor([1.0, -2.0]))
    np.testing.assert_array_equal(closed.data, [[6.0, 0.0], [0.0, -12.0]])


def test_hessian_with_tuple_argnums_has_every_block():
    blocks = func.hessian(scalar, argnums=(0, 1))(Tensor(X), Tensor(W))
    assert blocks[0][1].shape == (4, 3, 4) and blocks[1][0].shape == (3, 4, 4)
    np.testing.assert_allclose(blocks[0][1].data, numeric_jacobian(func.grad(scalar, 1), (X, W), 0)
                               .transpose(2, 0, 1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(blocks[0][1].data, blocks[1][0].data.transpose(2, 0, 1),
                               rtol=1e-12, atol=1e-13)   # symmetric across blocks


def test_hvp_is_the_hessian_times_v():
    v = RNG.standard_normal(4)
    value, product = func.hvp(lambda x: scalar(x, Tensor(W)), Tensor(X), Tensor(v))
    hessian = func.hessian(scalar)(Tensor(X), Tensor(W))
    np.testing.assert_allclose(product.data, hessian.data @ v, rtol=1e-12, atol=1e-13)
    assert value.item() == pytest.approx(scalar(Tensor(X), Tensor(W)).item(), rel=1e-15)
    vw = RNG.standard_normal((3, 4))
    _, (px, pw) = func.hvp(scalar, (Tensor(X), Tensor(W)), (Tensor(v), Tensor(vw)))
    blocks = func.hessian(scalar, argnums=(0, 1))(Tensor(X), Tensor(W))
    np.testing.assert_allclose(px.data, blocks[0][0].data @ v + np.tensordot(blocks[0][1].data, vw, 2),
                               rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(pw.data, blocks[1][0].data @ v + np.tensordot(blocks[1][1].data, vw, 2),
                               rtol=1e-11, atol=1e-12)


def test_transforms_nest_without_confusing_their_variables():
    x = Tensor([1.5, -0.5])
    # d/dx [x * d/dy (x . y)] = d/dx x**2 = 2x (a transform that shared x with the inner one gives 4x)
    inner = func.grad(lambda x: (x * func.grad(lambda y: (x * y).sum())(x)).sum())(x)
    np.testing.assert_array_equal(inner.data, [3.0, -1.0])
    third = func.grad(lambda x: func.grad(func.grad(lambda t: t ** 4))(x))(Tensor(1.5))
    assert third.item() == pytest.approx(24 * 1.5)
    jvp_of_grad = func.jvp(func.grad(lambda x: (x ** 3).sum()), (x,), (Tensor([1.0, 0.0]),))[1]
    np.testing.assert_allclose(jvp_of_grad.data, [6 * 1.5, 0.0])


def test_results_stay_differentiable_with_respect_to_tensors_outside():
    w = Tensor([2.0, 3.0], requires_grad=True)
    x = Tensor([1.0, 4.0])
    g = func.grad(lambda x: (w * x ** 2).sum())(x)      # 2 w x
    assert g.requires_grad
    g.sum().backward()
    np.testing.assert_array_equal(w.grad, 2 * x.data)
    a = Tensor([0.5, -1.0], requires_grad=True)
    (da,) = autonet.grad(func.jacrev(lambda t: t ** 3)(a).sum(), a)  # d/da sum(diag(3a^2)) = 6a
    np.testing.assert_array_equal(da.data, 6 * a.data)


def test_transforms_never_write_grad_and_leave_inputs_unchanged():
    model = nn.Linear(3, 2, rng=0)
    x = Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    before = x.data.copy()
    loss = lambda x: model(x).tanh().sum()
    func.grad(loss)(x)
    func.hvp(loss, x, Tensor(np.ones((1, 3))))
    func.hessian(loss)(x)
    func.jvp(loss, (x,), (Tensor(np.ones((1, 3))),))
    assert x.grad is None and all(p.grad is None for p in model.parameters())
    np.testing.assert_array_equal(x.data, before)
    assert x.requires_grad and x.is_leaf


def test_gradients_of_parameters_through_argnums():
    weight = Tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    bias = Tensor(RNG.standard_normal(2), requires_grad=True)
    x, target = Tensor(RNG.standard_normal((5, 3))), RNG.standard_normal((5, 2))

    def loss(weight, bias):
        return ((x @ weight.T + bias - target) ** 2).mean()
    dw, db = func.grad(loss, argnums=(0, 1))(weight, bias)
    residual = x.data @ weight.data.T + bias.data - target
    np.testing.assert_allclose(dw.data, 2 * residual.T @ x.data / residual.size, rtol=1e-13)
    np.testing.assert_allclose(db.data, 2 * residual.sum(axis=0) / residual.size, rtol=1e-13)
    assert weight.grad is None and bias.grad is None
    dw.sum().backward()    # the inputs required grad: the gradient is differentiable with respect to them
    assert weight.grad is not None and weight.grad.shape == (2, 3)


def test_transforms_work_inside_no_grad():
    with autonet.no_grad():
        g = func.grad(lambda x: (x ** 2).sum())(Tensor([1.0, 3.0]))
    np.testing.assert_array_equal(g.data, [2.0, 6.0])


def test_constant_and_unused_inputs_get_zero_derivatives():
    x = Tensor([1.0, 2.0])
    np.testing.assert_array_equal(func.grad(lambda x, y: (y ** 2).sum())(x, x).data, [0.0, 0.0])
    np.testing.assert_array_equal(func.jacrev(lambda x: Tensor([1.0, 2.0, 3.0]))(x).data,
                                  np.zeros((3, 2)))
    np.testing.assert_array_equal(func.jvp(lambda x: x * 0 + 1, (x,), (x,))[1].data, [0.0, 0.0])
    np.testing.assert_array_equal(func.hvp(lambda x: x.sum(), x, x)[1].data, [0.0, 0.0])


def test_refusals_name_the_argument():
    x = Tensor([1.0, 2.0])
    with pytest.raises(TypeError, match=r"grad: f must return a scalar.*shape \(2,\)"):
        func.grad(lambda x: x * 2)(x)
    with pytest.raises(TypeError, match="hvp: f must return a scalar"):
        func.hvp(lambda x: x * 2, x, x)
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        func.grad(lambda x: x.sum(), argnums=[0])
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        func.jacrev(lambda x: x, argnums=1.0)
    with pytest.raises(ValueError, match="argnums 2 is out of range"):
        func.grad(lambda x, y: x.sum(), argnums=2)(x, x)
    with pytest.raises(ValueError, match="names an argument twice"):
        func.jacfwd(lambda x, y: x, argnums=(0, -2))(x, x)
    with pytest.raises(ValueError, match="empty tuple"):
        func.grad(lambda x: x.sum(), argnums=())(x)
    with pytest.raises(ValueError, match=r"jvp: tangents\[0\] has shape \(3,\) but primals\[0\]"):
        func.jvp(lambda x: x, (x,), (Tensor([1.0, 2.0, 3.0]),))
    with pytest.raises(ValueError, match=r"hvp: tangents\[0\] has shape"):
        func.hvp(lambda x: x.sum(), x, Tensor([1.0]))
    with pytest.raises(ValueError, match="jvp: 1 primals but 2 tangents"):
        func.jvp(lambda x: x, (x,), (x, x))
    _, vjp_fn = func.vjp(lambda x: x * 2, x)
    with pytest.raises(ValueError, match=r"vjp_fn: cotangents\[0\] has shape \(1,\) but outputs\[0\] "
                                         r"has shape \(2,\)"):
        vjp_fn(Tensor([1.0]))
    _, vjp_fn = func.vjp(lambda x: (x, x.sum()), x)
    with pytest.raises(ValueError, match="vjp_fn: 2 outputs but 1 cotangents"):
        vjp_fn((x,))
    with pytest.raises(TypeError, match="has_aux=True, f must return a pair"):
        func.grad(lambda x: x.sum(), has_aux=True)(x)
    with pytest.raises(TypeError, match="argument 0 has dtype int64"):
        func.grad(lambda x: x.sum())(Tensor([1, 2], dtype=np.int64))
    assert x.grad is None and x.data.tolist() == [1.0, 2.0]



def test_pruned_passes_give_what_autonet_grad_gives_under_anomaly_mode():
    """jvp, jacfwd and jacrev plan their own pruned passes; with observers (anomaly mode,
    compile) they take autonet.grad's: both ways agree."""
    vx, vw = Tensor(RNG.standard_normal(4)), Tensor(RNG.standard_normal((3, 4)))
    plain = func.jvp(mixed, (Tensor(X), Tensor(W)), (vx, vw))[1]
    forward = func.jacfwd(mixed)(Tensor(X), Tensor(W))
    reverse = func.jacrev(mixed, 1)(Tensor(X), Tensor(W))
    with autonet.detect_anomaly():
        np.testing.assert_allclose(func.jvp(mixed, (Tensor(X), Tensor(W)), (vx, vw))[1].data,
                                   plain.data, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(func.jacfwd(mixed)(Tensor(X), Tensor(W)).data, forward.data,
                                   rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(func.jacrev(mixed, 1)(Tensor(X), Tensor(W)).data, reverse.data,
                                   rtol=1e-14, atol=1e-15)


def test_jvp_is_differentiable_with_respect_to_a_tangent_that_requires_grad():
    v = Tensor([1.0, -2.0], requires_grad=True)
    x = Tensor([0.5, 1.5])
    _, tangent = func.jvp(lambda x: x ** 3, (x,), (v,))       # 3 x^2 v
    assert tangent.requires_grad
    (dv,) = autonet.grad(tangent.sum(), v)
    np.testing.assert_allclose(dv.data, 3 * x.data ** 2, rtol=1e-15)
    assert v.grad is None


def test_results_never_alias_the_callers_tangents():
    v = Tensor([1.0, 2.0])
    _, pushed = func.jvp(lambda x: x, (Tensor([0.0, 0.0]),), (v,))     # J = I: J v is v's values
    pushed.data[0] = 99.0
    assert v.data[0] == 1.0


def test_float32_stays_float32_as_torch_func_keeps_dtypes():
    x = Tensor(np.array([0.5, -1.0], dtype=np.float32))
    f = lambda x: (x.tanh() ** 2).sum()
    results = [func.grad(f)(x), func.hessian(f)(x), func.jacfwd(lambda x: x * x)(x),
               func.jvp(lambda x: x * x, (x,), (x,))[1], func.hvp(f, x, x)[1], func.vjp(f, x)[1](1.0)[0]]
    assert [r.dtype for r in results] == [np.float32] * len(results)
    exact = 2 * np.tanh(0.5) * (1 - np.tanh(0.5) ** 2)
    assert results[0].data[0] == pytest.approx(exact, rel=1e-6)


def test_vjp_with_aux_returns_it_third():
    out, vjp_fn, aux = func.vjp(lambda x: (x * 3, x.sum()), Tensor([1.0, 2.0]), has_aux=True)
    assert aux.item() == 3.0 and not aux.requires_grad
    np.testing.assert_array_equal(vjp_fn(Tensor([1.0, 1.0]))[0].data, [3.0, 3.0])


def test_inside_compile_the_transforms_are_replayed_right_or_refused():
    """A trace cannot follow a transform's private copy of a constant input: compile refuses the
    step (a replay of traced values would be silently wrong). Of an input that requires grad
    the transform takes an alias in the graph, which compiles (autonet.grad inside a step) and
    replays what eager mode computes, once the result leaves that graph (``detach``: a replay
    returns results outside any graph, and a result left in one is refused)."""
    x = Tensor([[1.0, 2.0], [3.0, 4.0]])
    loss = lambda w: ((x @ w).tanh() ** 2).sum()
    for transform in (lambda w: func.grad(loss)(w), lambda w: func.hvp(loss, w, Tensor([1.0, 0.0]))[1],
                      lambda w: func.jacrev(lambda w: x @ w)(w)):
        linked = Tensor([0.5, -0.3], requires_grad=True)
        with pytest.raises(autonet.CompileError, match="returns a tensor in a graph|made inside it"):
            autonet.compile(transform)(linked)
        body = lambda w, transform=transform: transform(w).detach()
        for requires_grad in (False, True):
            w = Tensor([0.5, -0.3], requires_grad=requires_grad)
            step = autonet.compile(body)
            try:
                for shift in range(3):
                    w.data[0] = shift / 10
                    np.testing.assert_array_equal(step(w).data, body(w).data)
            except autonet.CompileError as error:
                assert "made inside it" in str(error)
                assert shift == 0   # refused while tracing, never replayed
            else:
                assert requires_grad   # only the aliased inputs compile
            assert w.grad is None


def test_values_equal_torch_funcs_when_installed():
    """Each transform, nested ones and a backward through one, against torch.func (float64)."""
    torch = pytest.importorskip("torch", reason="torch is not installed (the bench extra)")
    tf = torch.func
    ours = lambda a, b: (autonet.tanh(b @ a) * autonet.exp(a[:3] / 4) + (b ** 2).sum(axis=1)).sin()
    theirs = lambda a, b: (torch.tanh(b @ a) * torch.exp(a[:3] / 4) + (b ** 2).sum(dim=1)).sin()
    ours_scalar = lambda a, b: (ours(a, b) ** 2).sum() + autonet.log(1 + (a * a).sum())
    theirs_scalar = lambda a, b: (theirs(a, b) ** 2).sum() + torch.log(1 + (a * a).sum())
    v, c = RNG.standard_normal(4), RNG.standard_normal(3)
    tx, tw, tv, tc = (torch.tensor(a) for a in (X, W, v, c))
    pairs = [
        (func.grad(ours_scalar, argnums=(0, 1))(X, W), tf.grad(theirs_scalar, argnums=(0, 1))(tx, tw)),
        (func.jacrev(ours)(X, W), tf.jacrev(theirs)(tx, tw)),
        (func.jacfwd(ours, 1)(X, W), tf.jacfwd(theirs, 1)(tx, tw)),
        (func.hessian(ours_scalar, (0, 1))(X, W)[0], tf.hessian(theirs_scalar, (0, 1))(tx, tw)[0]),
        (func.jvp(lambda a: ours(a, Tensor(W)), (X,), (v,))[1], tf.jvp(lambda a: theirs(a, tw), (tx,), (tv,))[1]),
        (func.vjp(ours, Tensor(X), Tensor(W))[1](c), tf.vjp(theirs, tx, tw)[1](tc)),
        (func.hvp(lambda a: ours_scalar(a, Tensor(W)), X, v)[1],
         torch.autograd.functional.hvp(lambda a: theirs_scalar(a, tw), tx, tv)[1]),
        (func.jacfwd(func.jacrev(lambda a: ours(a, Tensor(W))))(X),
         tf.jacfwd(tf.jacrev(lambda a: theirs(a, tw)))(tx)),
    ]
    w_ours, w_theirs = Tensor(W, requires_grad=True), tw.clone().requires_grad_(True)
    func.grad(ours_scalar)(Tensor(X), w_ours).sum().backward()
    tf.grad(theirs_scalar)(tx, w_theirs).sum().backward()
    pairs.append((Tensor(w_ours.grad), w_theirs.grad))
    for got, expected in pairs:
        got, expected = (got, expected) if isinstance(got, tuple) else ((got,), (expected,))
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_forward_mode_inside_another_transform_stays_differentiable():
    """jacfwd and jvp nested in grad (their pushes keep a graph) agree with jacrev nested in
    grad and with finite differences of the inner Jacobian's trace."""
    f = lambda x: autonet.tanh(x * x.sum())
    trace = lambda jacobian: lambda x: (jacobian(f)(x) * Tensor(np.eye(3))).sum()
    x = RNG.standard_normal(3)
    forward = func.grad(trace(func.jacfwd))(x)
    reverse = func.grad(trace(func.jacrev))(x)
    np.testing.assert_allclose(forward.data, reverse.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(forward.data, numeric_jacobian(trace(func.jacrev), (x,), 0),
                               rtol=1e-6, atol=1e-8)
    along = func.grad(lambda x: func.jvp(f, (x,), (Tensor([1.0, 0.0, 0.0]),))[1].sum())(x)
    np.testing.assert_allclose(along.data, numeric_jacobian(
        lambda x: func.jvp(f, (x,), (Tensor([1.0, 0.0, 0.0]),))[1].sum(), (x,), 0), rtol=1e-6, atol=1e-8)


def test_containers_of_tensors_are_refused_not_stacked_into_one_tensor():
    """``torch.func.grad(f)((x, y))`` returns the tuple ``(df/dx, df/dy)``; autonet stacked the
    tuple into one constant Tensor and returned one stacked gradient (of shape (2, 3) here),
    or failed with NumPy's conversion error for Tensors that require grad."""
    x, y = Tensor([1.0, 2.0, 3.0]), Tensor([4.0, 5.0, 6.0])
    product = lambda pair: (pair[0] * pair[1]).sum()
    for call in (lambda: func.grad(product)((x, y)), lambda: func.grad(product)([x, y]),
                 lambda: func.jacrev(lambda d: d["a"] * 2.0)({"a": x}),
                 lambda: func.vjp(product, (x, y)),
                 lambda: func.grad(product)((Tensor(x, requires_grad=True), y))):
        with pytest.raises(TypeError, match="holding Tensors.*argnums=\\(0, 1"):
            call()
    with pytest.raises(TypeError, match="output 0 is a tuple holding Tensors.*flat tuple"):
        func.jacrev(lambda t: ((t * 2.0, t * 3.0), t))(x)
    # the supported spelling gives the tuple, by hand: d(x.y)/dx = y, d(x.y)/dy = x
    gx, gy = func.grad(lambda a, b: (a * b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx.data, y.data)
    np.testing.assert_array_equal(gy.data, x.data)
    # containers of numbers are arrays, and containers not differentiated pass through
    np.testing.assert_array_equal(func.grad(lambda t: (t ** 2).sum())((1.0, 2.0)).data, [2.0, 4.0])
    np.testing.assert_array_equal(func.grad(lambda a, pair: (a * pair[0]).sum())(x, (y, x)).data, y.data)
