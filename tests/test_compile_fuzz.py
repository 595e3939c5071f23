"""Differential fuzzing of autonet.compile: random steps, eager vs compiled, bit for bit.

Hypothesis draws a step program from the op set (broadcasting, indexing with
an argument index array, in-place updates, detach, Python branches on number
arguments, on flags, on data and on ndarray arguments, number, ndarray and
leaf arguments, an optimizer, gradient clipping, NumPy writes into ``.grad``)
and a sequence of at least three argument sets whose values change. Two
identical worlds run it: one eagerly, one through ``autonet.compile``. Each
compiled call must equal the eager call bit for bit (loss, parameters,
gradients, the leaf argument's gradient) or raise ``CompileError``; an error
eager mode raises must be raised by the compiled call too.
"""
import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st

import autonet
from autonet import CompileError, Tensor
from autonet.nn.utils import clip_grad_norm_, clip_grad_value_
from autonet.optim import SGD, Adam

SAFE_OPS = ["tanh", "exp", "sigmoid", "relu", "add", "mul", "matmul", "bias", "index", "ndarray",
            "number", "clip_k", "detach", "branch_k", "branch_flag", "sum_axis", "inplace_fresh",
            "tensor_from_array", "leaf", "array_part"]
REFUSED_OPS = ["branch_data", "branch_array", "item", "mask_from_array"]


def _op(name, u, v, world, args):
    """One instruction of a random step: a new value from the values ``u`` and ``v``."""
    x, array, idx, k, flag, leaf = args
    return {
        "tanh": lambda: v.tanh(),
        "exp": lambda: v.clip(-3.0, 3.0).exp(),
        "sigmoid": lambda: v.sigmoid(),
        "relu": lambda: v.relu(),
        "add": lambda: u + v,
        "mul": lambda: u * v,
        "matmul": lambda: v @ world["W"],
        "bias": lambda: v + world["b"],
        "index": lambda: v[idx],                      # an index array passed as an argument
        "ndarray": lambda: v + array,                 # an ndarray argument as an operand
        "array_part": lambda: v * array.reshape(6)[::-1].reshape(2, 3).T.T,   # reshaped by constants
        "number": lambda: v * k,                      # a number argument
        "clip_k": lambda: v.clip(-abs(k), abs(k)),    # op settings from a number argument
        "detach": lambda: v.detach() * u,
        "branch_k": lambda: v * 2.0 if k > 0 else v - 1.0,
        "branch_flag": lambda: v.tanh() if flag else v.sigmoid(),
        "sum_axis": lambda: v.sum(axis=0, keepdims=True) + u,
        "inplace_fresh": lambda: _in_place(array) * v,
        "tensor_from_array": lambda: Tensor(array) * v,
        "leaf": lambda: leaf * v,
        "branch_data": lambda: v * 2.0 if v.data.sum() > 0 else v,
        "branch_array": lambda: v * 2.0 if array.sum() > 0 else v,
        "item": lambda: v * v.sum().item(),
        "mask_from_array": lambda: v * (array > 0),
    }[name]()


def _in_place(array):
    t = Tensor(array)
    with autonet.no_grad():
        t *= 2.0
        t += 1.0
    return t


def _world(optimizer):
    rng = np.random.default_rng(0)
    world = {"W": Tensor(rng.normal(size=(3, 3)), requires_grad=True, name="W"),
             "b": Tensor(rng.normal(size=3), requires_grad=True, name="b")}
    params = [world["W"], world["b"]]
    world["opt"] = {"sgd": lambda: SGD(params, lr=0.1), "momentum": lambda: SGD(params, lr=0.05, momentum=0.9),
                    "adam": lambda: Adam(params, lr=0.01), "none": lambda: None}[optimizer]()
    return world


def _step(program, world, clip, numpy_grad_write):
    def step(x, array, idx, k, flag, leaf):
        args = (x, array, idx, k, flag, leaf)
        values = [x, x * world["b"]]
        for name, i, j in program:
            values.append(_op(name, values[i % len(values)], values[j % len(values)], world, args))
        loss = (values[-1] * values[-1]).sum() + values[len(values) // 2].sum()
        world["W"].zero_grad()
        world["b"].zero_grad()
        loss.backward()
        if clip == "norm":
            clip_grad_norm_([world["W"], world["b"]], max_norm=0.5)
        elif clip == "value":
            clip_grad_value_([world["W"], world["b"]], 0.3)
        if numpy_grad_write:
            np.clip(world["b"].grad, -0.1, 0.1, out=world["b"].grad)
        if world["opt"] is not None:
            world["opt"].step()
        return loss

    return step


def _bits(array):
    return None if array is None else (array.dtype.str, array.shape, np.asarray(array).tobytes())


def _snapshot(world, loss, leaf):
    return [_bits(loss.data), _bits(leaf.grad)] + [
        (_bits(world[n].data), _bits(world[n].grad)) for n in ("W", "b")]


def _call(step, args):
    try:
        with np.errstate(all="ignore"):
            return step(*args), None
    except Exception as error:   # noqa: BLE001 - the kind of error is what is compared
        return None, error


instruction = st.tuples(st.one_of(st.sampled_from(SAFE_OPS), st.sampled_from(SAFE_OPS),
                                  st.sampled_from(SAFE_OPS), st.sampled_from(REFUSED_OPS)),
                        st.integers(0, 50), st.integers(0, 50))
call_arguments = st.tuples(
    st.lists(st.floats(-2, 2), min_size=6, max_size=6),          # x
    st.lists(st.floats(-2, 2), min_size=6, max_size=6),          # the ndarray argument
    st.lists(st.integers(0, 1), min_size=2, max_size=2),         # the index array
    st.sampled_from([-1.5, 0.5, 2.0]),                           # the number argument
    st.booleans(),                                               # the flag
    st.lists(st.floats(-1, 1), min_size=6, max_size=6))          # the leaf argument


def _arguments(drawn):
    x, array, idx, k, flag, leaf = drawn
    return (Tensor(np.reshape(x, (2, 3))), np.reshape(array, (2, 3)), np.array(idx), k, flag,
            Tensor(np.reshape(leaf, (2, 3)), requires_grad=True))


@settings(max_examples=max(150, settings.default.max_examples))
@given(program=st.lists(instruction, min_size=1, max_size=8),
       optimizer=st.sampled_from(["sgd", "momentum", "adam", "none"]),
       clip=st.sampled_from(["none", "norm", "value"]),
       numpy_grad_write=st.sampled_from([False] * 5 + [True]),
       calls=st.lists(call_arguments, min_size=3, max_size=5))
@pytest.mark.host_only("its steps take ndarray arguments; test_devices runs them on the double")
def test_compiled_steps_equal_eager_bit_for_bit_or_refuse(program, optimizer, clip, numpy_grad_write, calls):
    eager_world, compiled_world = _world(optimizer), _world(optimizer)
    eager = _step(program, eager_world, clip, numpy_grad_write)
    compiled = autonet.compile(_step(program, compiled_world, clip, numpy_grad_write))
    for drawn in calls:
        eager_args, compiled_args = _arguments(drawn), _arguments(drawn)
        eager_loss, eager_error = _call(eager, eager_args)
        compiled_loss, compiled_error = _call(compiled, compiled_args)
        if isinstance(compiled_error, CompileError):
            event(f"refused: {str(compiled_error)[:50]}")
            return
        if eager_error is not None or compiled_error is not None:
            assert type(compiled_error) is type(eager_error), (eager_error, compiled_error)
            event(f"both raised {type(eager_error).__name__}: {str(eager_error)[:60]}")
            return
        assert _snapshot(compiled_world, compiled_loss, compiled_args[-1]) == \
            _snapshot(eager_world, eager_loss, eager_args[-1])
    event(f"{len(compiled.programs)} trace(s), all calls equal")
