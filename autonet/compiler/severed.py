"""Results of a compiled step that stay in no graph.

A replay computes NumPy arrays, so a tensor the step returns from a graph that no backward pass
of the step ran through (a forward compiled on its own, its loss differentiated outside) cannot
take a gradient back into the step. Such a result gets a node of its own whose backward
refuses, naming the fix, where a result without a node would let a backward outside lose the
step's part of the gradient silently (or, for the traced call's result, crash).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.context import Context
from ..core.function import Function, sequence
from ..core.tensor import Tensor


class CompiledStepResult(Function):
    """The node of a compiled step's result (see the module): no inputs, a backward that refuses."""

    name = "compiled_step_result"

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        raise RuntimeError(
            "backward through the result of an autonet.compile'd step: its replay runs NumPy with "
            "no graph inside, so no gradient can reach the parameters it used. Call "
            "loss.backward() (and the optimizer) inside the compiled step, or leave the forward "
            "uncompiled")


def severed_node(array: np.ndarray) -> Context:
    """A ``CompiledStepResult`` node for an output of ``array``'s shape and dtype."""
    ctx = Context(CompiledStepResult)
    ctx.seq, ctx.shape, ctx.dtype = next(sequence), array.shape, array.dtype
    return ctx


def severed(array: np.ndarray) -> Tensor:
    """A Tensor over ``array`` whose backward refuses (see the module)."""
    return Tensor._make(array, severed_node(array))
