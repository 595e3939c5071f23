"""The op functions autonet exports (``autonet.exp``), as type checkers and editors see them.

Generated from the op registry by `make ops-page` (autonet._methods.stubs()); tests/test_typing.py
checks that it matches. Do not edit by hand.
"""
from __future__ import annotations

from typing import Any, Sequence, SupportsIndex

from .core.tensor import Tensor, TensorLike
from .core.types import Array, Axis, DTypeLike, Index, ShapeLike

from .ops.elementwise import (
    add as add,
    subtract as subtract,
    multiply as multiply,
    divide as divide,
    power as power,
    negative as negative,
    positive as positive,
    exp as exp,
    log as log,
    sqrt as sqrt,
    abs as abs,
    sin as sin,
    cos as cos,
    log1p as log1p,
    expm1 as expm1,
    square as square,
    tanh as tanh,
    sigmoid as sigmoid,
    relu as relu,
    clip as clip,
    softmax as softmax,
    log_softmax as log_softmax,
    maximum as maximum,
    minimum as minimum,
    where as where,
)
from .ops.activations import (
    erf as erf,
    gelu as gelu,
    silu as silu,
    softplus as softplus,
    leaky_relu as leaky_relu,
    elu as elu,
)
from .ops.constructors import (
    zeros as zeros,
    ones as ones,
    zeros_like as zeros_like,
    ones_like as ones_like,
    empty as empty,
    empty_like as empty_like,
    full_like as full_like,
    full as full,
    arange as arange,
    linspace as linspace,
    eye as eye,
)
from .ops.shape import (
    pad as pad,
    concatenate as concatenate,
    stack as stack,
    broadcast_to as broadcast_to,
    moveaxis as moveaxis,
    squeeze as squeeze,
    expand_dims as expand_dims,
    repeat as repeat,
)
from .ops.reduce import (
    sum as sum,
    mean as mean,
    max as max,
    min as min,
    var as var,
    std as std,
    prod as prod,
    cumsum as cumsum,
    logsumexp as logsumexp,
    argmax as argmax,
    argmin as argmin,
)
from .ops.indexing import (
    take as take,
    take_along_axis as take_along_axis,
    scatter as scatter,
    tril as tril,
    triu as triu,
    diagonal as diagonal,
    diag as diag,
)
from .ops.linalg import (
    matmul as matmul,
    dot as dot,
    outer as outer,
    tensordot as tensordot,
    trace as trace,
    einsum as einsum,
    norm as norm,
)
from .ops.layout import (
    tile as tile,
    split as split,
    array_split as array_split,
    roll as roll,
    flip as flip,
    flatten as flatten,
    unflatten as unflatten,
    meshgrid as meshgrid,
)
from .ops.sorting import (
    cumprod as cumprod,
    sort as sort,
    argsort as argsort,
    topk as topk,
    median as median,
    amax as amax,
    amin as amin,
)
from .ops.ufuncs import (
    tan as tan,
    arcsin as arcsin,
    arccos as arccos,
    arctan as arctan,
    arcsinh as arcsinh,
    arccosh as arccosh,
    arctanh as arctanh,
    sinh as sinh,
    cosh as cosh,
    log2 as log2,
    log10 as log10,
    exp2 as exp2,
    reciprocal as reciprocal,
    logaddexp as logaddexp,
    logaddexp2 as logaddexp2,
    arctan2 as arctan2,
    hypot as hypot,
    mod as mod,
    fmod as fmod,
    floor_divide as floor_divide,
    float_power as float_power,
)


def asin(x: TensorLike) -> Tensor:
    """``arcsin`` under NumPy 2's name ``asin``."""
    ...


def acos(x: TensorLike) -> Tensor:
    """``arccos`` under NumPy 2's name ``acos``."""
    ...


def atan(x: TensorLike) -> Tensor:
    """``arctan`` under NumPy 2's name ``atan``."""
    ...


def asinh(x: TensorLike) -> Tensor:
    """``arcsinh`` under NumPy 2's name ``asinh``."""
    ...


def acosh(x: TensorLike) -> Tensor:
    """``arccosh`` under NumPy 2's name ``acosh``."""
    ...


def atanh(x: TensorLike) -> Tensor:
    """``arctanh`` under NumPy 2's name ``atanh``."""
    ...
