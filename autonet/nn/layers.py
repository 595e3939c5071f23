"""Layers: Linear, convolution, pooling, normalization, dropout, embedding, the activations.

Every layer takes ``dtype=`` (float64 unless told) for its parameters and
draws them from ``rng`` (a Generator or an int seed), as PyTorch initialises them.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar, overload

import numpy as np

from ..core.state import no_grad
from ..core.tensor import Tensor, TensorLike, as_tensor
from ..random import generator
from . import functional as F, init
from .module import Module, ModuleList, Parameter
from .normalization import normalized_shape_of
from ..core.types import DTypeLike, IntOrTuple, Seed, ShapeLike

_Same = TypeVar("_Same")


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``,
    PyTorch's layout: a PyTorch ``state_dict`` loads as it is.

    Weights and bias start uniform in ±1/sqrt(in_features), drawn from ``rng``
    (a Generator, an int seed, or None for autonet.random's default generator).

    >>> import autonet.nn as nn
    >>> nn.Linear(3, 2, rng=0).weight.shape
    (2, 3)
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng: Seed = None,
                 dtype: DTypeLike = None) -> None:
        super().__init__()
        self.in_features = size_argument(in_features, "in_features", "Linear", least=0)
        self.out_features = size_argument(out_features, "out_features", "Linear", least=0)
        rng = generator(rng)
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0   # PyTorch's (no input: bias 0)
        self.weight = _uniform((out_features, in_features), bound, rng, dtype)
        self.bias = _uniform((out_features,), bound, rng, dtype) if bias else None

    def forward(self, x: TensorLike) -> Tensor:
        return F.linear(floating_input(self, x, self.weight.dtype), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}" + ("" if self.bias is not None else ", bias=False")


def floating_input(layer, x, dtype):
    """``x`` as a Tensor, refused (``TypeError``) where its dtype differs from ``dtype``, that of
    ``layer``'s parameters: PyTorch refuses it too, and computing anyway would silently promote
    (a float32 layer fed float64 computes in float64) or demote. An integer array or a list
    becomes a float64 Tensor (``as_tensor``), so it passes into float64 layers only. ``dtype``
    None (a layer without parameters) checks nothing."""
    if dtype is not None and (type(x) is not Tensor or x.dtype != dtype):
        given = np.dtype(x.dtype) if hasattr(x, "dtype") else None
        x = as_tensor(x)   # an integer ndarray becomes float64 here
        if x.dtype != dtype:
            given, name = given or x.dtype, np.dtype(dtype).name
            raise TypeError(
                f"{type(layer).__name__}: the input is {given} but the layer's parameters are {name}; "
                f"convert the input with x.astype(np.{name})"
                + (f" or the model with model.astype(np.{given.name})" if given.kind == "f" else ""))
    return as_tensor(x)


def _dtype_of(*tensors):
    """The dtype of the first of ``tensors`` that is not None (a layer's parameters, then its
    buffers: affine=False keeps none of the first), or None."""
    return next((t.dtype for t in tensors if t is not None), None)


def _uniform(shape, bound, rng, dtype):
    """A Parameter drawn uniformly from [-bound, bound) (PyTorch's default for Linear and Conv)."""
    return init.uniform_(Parameter(np.empty(shape, dtype=_float(dtype))), -bound, bound, rng)


def _is_int(value):
    """An int or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def size_argument(value, name, owner, least=1):
    """``value``, a layer's size argument, as an int: refused (``ValueError`` naming ``owner`` and
    ``name``) unless it is an int (not a bool) of at least ``least``."""
    if not _is_int(value) or value < least:
        kind = "a positive int" if least == 1 else f"an int >= {least}"
        raise ValueError(f"{owner}: {name} must be {kind}, not {value!r}")
    return int(value)


def _float(dtype):
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"layers hold floating-point parameters, not {dtype}")
    return dtype


class Sequential(ModuleList):
    """Modules applied in order; children are named "0", "1", ... (``append`` adds one)."""

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        for module in self:
            x = module(x)
        return x

    @overload
    def __getitem__(self, index: int) -> Module: ...

    @overload
    def __getitem__(self, index: slice) -> Sequential: ...

    def __getitem__(self, index: int | slice) -> Module | Sequential:
        if isinstance(index, slice):
            return Sequential(*list(self)[index])
        return super().__getitem__(index)


class Sigmoid(Module):
    def forward(self, x: TensorLike) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: TensorLike) -> Tensor:
        return F.tanh(x)


class ReLU(Module):
    def forward(self, x: TensorLike) -> Tensor:
        return F.relu(x)


class Softmax(Module):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: TensorLike) -> Tensor:
        return F.softmax(x, axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class _Activation(Module):
    """A module that applies ``function`` with the settings given to its constructor."""

    function: Callable[..., Any] = None  # type: ignore[assignment]  # each subclass sets it

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.settings = settings

    def forward(self, x: TensorLike) -> Tensor:
        return type(self).function(x, **self.settings)

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.settings.items())


class GELU(_Activation):
    function = staticmethod(F.gelu)

    def __init__(self, approximate: str = "none") -> None:
        super().__init__(approximate=approximate)


class SiLU(_Activation):
    function = staticmethod(F.silu)


class LeakyReLU(_Activation):
    function = staticmethod(F.leaky_relu)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__(negative_slope=negative_slope)


class ELU(_Activation):
    function = staticmethod(F.elu)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha=alpha)


class Softplus(_Activation):
    function = staticmethod(F.softplus)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__(beta=beta, threshold=threshold)


class ReLU6(_Activation):
    function = staticmethod(F.relu6)


class Hardtanh(_Activation):
    function = staticmethod(F.hardtanh)

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        if not min_val < max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must be below max_val ({max_val})")
        super().__init__(min_val=min_val, max_val=max_val)


class Hardsigmoid(_Activation):
    function = staticmethod(F.hardsigmoid)


class Hardswish(_Activation):
    function = staticmethod(F.hardswish)


class Mish(_Activation):
    function = staticmethod(F.mish)


class CELU(_Activation):
    function = staticmethod(F.celu)

    def __init__(self, alpha: float = 1.0) -> None:
        if alpha == 0:
            raise ValueError("CELU: alpha must not be 0 (it divides x)")
        super().__init__(alpha=alpha)


class SELU(_Activation):
    function = staticmethod(F.selu)


class Softsign(_Activation):
    function = staticmethod(F.softsign)


class LogSigmoid(_Activation):
    function = staticmethod(F.logsigmoid)


class Tanhshrink(_Activation):
    function = staticmethod(F.tanhshrink)


class GLU(_Activation):
    function = staticmethod(F.glu)

    def __init__(self, axis: int = -1) -> None:
        super().__init__(axis=axis)


class LogSoftmax(_Activation):
    function = staticmethod(F.log_softmax)

    def __init__(self, axis: int = -1) -> None:
        super().__init__(axis=axis)


class Softmin(_Activation):
    function = staticmethod(F.softmin)

    def __init__(self, axis: int = -1) -> None:
        super().__init__(axis=axis)


class Identity(Module):
    """Returns its input (a placeholder, as PyTorch's; any constructor arguments are ignored)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: _Same) -> _Same:
        return x


class Unflatten(Module):
    """Split axis ``axis`` into ``sizes`` (one of them may be -1), the inverse of ``Flatten``."""

    def __init__(self, axis: int, sizes: Sequence[int]) -> None:
        super().__init__()
        sizes = tuple(sizes)
        if (not sizes or sum(s == -1 for s in sizes) > 1
                or any(not isinstance(s, (int, np.integer)) or s < -1 for s in sizes)):
            raise ValueError(f"Unflatten: sizes must be a non-empty tuple of sizes with at most one "
                             f"-1, not {sizes!r}")
        self.axis, self.sizes = axis, sizes

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        sizes = self._sizes_for(x.shape)
        axis = self.axis % x.ndim
        return x.reshape(x.shape[:axis] + sizes + x.shape[axis + 1:])

    def _sizes_for(self, shape):
        """``sizes`` with its -1 worked out, or ``ValueError`` where they do not split the axis."""
        if _is_int(self.axis) and -len(shape) <= self.axis < len(shape):
            size, known = shape[self.axis], math.prod(s for s in self.sizes if s != -1)
            if -1 not in self.sizes and size == known:
                return self.sizes
            if -1 in self.sizes and known and size % known == 0:
                return tuple(size // known if s == -1 else s for s in self.sizes)
        raise ValueError(f"Unflatten: axis {self.axis} of an input of shape {shape} cannot be "
                         f"split into {self.sizes}")

    def extra_repr(self) -> str:
        return f"axis={self.axis}, sizes={self.sizes}"


def _convolution_sizes(owner, spatial, kernel_size, in_channels, out_channels, groups):
    """A convolution layer's sizes checked (``ValueError`` naming ``owner`` and the argument):
    ``kernel_size`` as ``spatial`` positive ints, channel counts divisible by ``groups``."""
    kernel = (kernel_size,) * spatial if np.ndim(kernel_size) == 0 else tuple(kernel_size)
    if len(kernel) != spatial or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool)
                                         and k >= 1 for k in kernel):
        raise ValueError(f"{owner}: kernel_size must be {spatial} positive int(s), not {kernel_size!r}")
    for name, size in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        size_argument(size, name, owner)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{owner}: in_channels {in_channels} and out_channels {out_channels} must "
                         f"both be divisible by groups {groups}")
    return tuple(int(k) for k in kernel)


class _ConvNd(Module):
    """Shared by Conv1d and Conv2d: weight ``(out, in // groups, *kernel)``, bias ``(out,)``."""

    weight: Parameter
    bias: Parameter | None

    spatial = 2
    function: Callable[..., Any] = None  # type: ignore[assignment]  # each subclass sets it

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 rng: Seed = None, dtype: DTypeLike = None) -> None:
        super().__init__()
        kernel = _convolution_sizes(type(self).__name__, self.spatial, kernel_size, in_channels, out_channels,
                                    groups)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        rng = generator(rng)
        bound = 1.0 / math.sqrt(in_channels // groups * math.prod(kernel))   # PyTorch's init
        self.weight = _uniform((out_channels, in_channels // groups) + kernel, bound, rng, dtype)
        self.bias = _uniform((out_channels,), bound, rng, dtype) if bias else None

    def forward(self, x: TensorLike) -> Tensor:
        x = floating_input(self, x, self.weight.dtype)
        return type(self).function(x, self.weight, self.bias, self.stride, self.padding,
                                   self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}")


class Conv1d(_ConvNd):
    """1-d convolution over ``(N, C, L)`` (PyTorch's ``Conv1d``)."""

    spatial = 1
    function = staticmethod(F.conv1d)


class Conv2d(_ConvNd):
    """2-d convolution over ``(N, C, H, W)`` (PyTorch's ``Conv2d``)."""

    spatial = 2
    function = staticmethod(F.conv2d)


class _ConvTransposeNd(Module):
    """Shared by ConvTranspose1d/2d: weight ``(in, out // groups, *kernel)`` (PyTorch's), bias ``(out,)``,
    both uniform in ±1/sqrt(out // groups * prod(kernel)) as PyTorch's."""

    weight: Parameter
    bias: Parameter | None

    spatial = 2
    function: Callable[..., Any] = None  # type: ignore[assignment]  # each subclass sets it

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrTuple = 1, rng: Seed = None, dtype: DTypeLike = None) -> None:
        super().__init__()
        name = type(self).__name__
        kernel = _convolution_sizes(name, self.spatial, kernel_size, in_channels, out_channels, groups)
        if np.any(np.asarray(output_padding) >= np.maximum(stride, dilation)):
            raise ValueError(f"{name}: output_padding {output_padding} must be smaller than the "
                                 f"stride {stride} (or the dilation {dilation})")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.groups, self.dilation = groups, dilation
        rng = generator(rng)
        bound = 1.0 / math.sqrt(out_channels // groups * math.prod(kernel))
        self.weight = _uniform((in_channels, out_channels // groups) + kernel, bound, rng, dtype)
        self.bias = _uniform((out_channels,), bound, rng, dtype) if bias else None

    def forward(self, x: TensorLike) -> Tensor:
        return type(self).function(x, self.weight, self.bias, self.stride, self.padding,
                                   self.output_padding, self.groups, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, output_padding={self.output_padding!r}")


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-d convolution over ``(N, C, L)`` (PyTorch's ``ConvTranspose1d``).

    >>> import numpy as np, autonet.nn as nn
    >>> up = nn.ConvTranspose1d(2, 3, kernel_size=4, stride=2, padding=1, rng=0)
    >>> up.weight.shape, up(np.ones((1, 2, 5))).shape
    ((2, 3, 4), (1, 3, 10))
    """

    spatial = 1
    function = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-d convolution over ``(N, C, H, W)`` (PyTorch's ``ConvTranspose2d``).

    >>> import numpy as np, autonet.nn as nn
    >>> up = nn.ConvTranspose2d(2, 4, kernel_size=3, stride=2, padding=1, output_padding=1, rng=0)
    >>> up(np.ones((1, 2, 5, 5))).shape
    (1, 4, 10, 10)
    """

    spatial = 2
    function = staticmethod(F.conv_transpose2d)


class _Pool(Module):
    """A pooling layer: ``function(x, kernel_size, stride, padding, **options)``."""

    function: Callable[..., Any] = None  # type: ignore[assignment]  # each subclass sets it

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 **options: Any) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.options = kernel_size, stride, padding, options

    def forward(self, x: TensorLike) -> Tensor:
        return type(self).function(x, self.kernel_size, self.stride, self.padding, **self.options)

    def extra_repr(self) -> str:
        options = "".join(f", {name}={value!r}" for name, value in self.options.items())
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}{options}"


class _MaxPool(_Pool):
    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode,
                         return_indices=return_indices)

    if TYPE_CHECKING:   # with return_indices, (output, indices)
        def forward(self, x: TensorLike) -> Any: ...


class _AvgPool(_Pool):
    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)


class MaxPool1d(_MaxPool):
    function = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPool):
    """Max pooling of ``(N, C, H, W)``, PyTorch's options.

    >>> import numpy as np, autonet.nn as nn
    >>> out, indices = nn.MaxPool2d(3, stride=2, dilation=2, return_indices=True)(np.ones((1, 2, 9, 9)))
    >>> out.shape, indices.dtype
    ((1, 2, 3, 3), dtype('int64'))
    """

    function = staticmethod(F.max_pool2d)


class AvgPool1d(_AvgPool):
    function = staticmethod(F.avg_pool1d)


class AvgPool2d(_AvgPool):
    """Average pooling of ``(N, C, H, W)``, PyTorch's options.

    >>> import numpy as np, autonet.nn as nn
    >>> nn.AvgPool2d(2, padding=1, count_include_pad=False)(np.ones((1, 1, 3, 3))).data[0, 0]
    array([[1., 1.],
           [1., 1.]])
    """

    function = staticmethod(F.avg_pool2d)


class Upsample(Module):
    """``functional.interpolate`` as a layer (PyTorch's ``Upsample``).

    >>> import numpy as np, autonet.nn as nn
    >>> nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(np.ones((1, 3, 4, 5))).shape
    (1, 3, 8, 10)
    """

    def __init__(self, size: IntOrTuple | None = None, scale_factor: float | tuple[float, ...] | None=None,
                 mode: str = "nearest", align_corners: bool | None = None) -> None:
        super().__init__()
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x: TensorLike) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class _AdaptivePool(Module):
    function: Callable[..., Any] = None  # type: ignore[assignment]  # each subclass sets it

    def __init__(self, output_size: IntOrTuple) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: TensorLike) -> Tensor:
        return type(self).function(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """Mean over ``output_size`` windows that cover ``(N, C, L)`` (PyTorch's)."""

    function = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePool):
    """Mean over ``output_size`` windows that cover ``(N, C, H, W)`` (PyTorch's).

    >>> import numpy as np, autonet.nn as nn
    >>> nn.AdaptiveAvgPool2d((2, 3))(np.ones((1, 4, 7, 9))).shape
    (1, 4, 2, 3)
    """

    function = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveMaxPool1d(_AdaptivePool):
    """Maximum over ``output_size`` windows that cover ``(N, C, L)`` (PyTorch's)."""

    function = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptivePool):
    """Maximum over ``output_size`` windows that cover ``(N, C, H, W)`` (PyTorch's)."""

    function = staticmethod(F.adaptive_max_pool2d)


class Flatten(Module):
    """Merge axes ``start_axis`` to ``end_axis`` into one (by default all but the batch axis)."""

    def __init__(self, start_axis: int = 1, end_axis: int = -1) -> None:
        super().__init__()
        self.start_axis, self.end_axis = start_axis, end_axis

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        ndim = max(x.ndim, 1)   # a 0-d input is one element, (1,) flattened, as PyTorch's
        if not all(_is_int(a) and -ndim <= a < ndim for a in (self.start_axis, self.end_axis)):
            raise ValueError(f"Flatten: start_axis {self.start_axis!r} and end_axis {self.end_axis!r} must "
                             f"be ints in [{-ndim}, {ndim}) for an input of shape {x.shape}")
        start, end = (a % ndim for a in (self.start_axis, self.end_axis))
        if start > end:
            raise ValueError(f"Flatten: start_axis {self.start_axis} comes after end_axis "
                             f"{self.end_axis} for a {x.ndim}-d input")
        merged = math.prod(x.shape[start:end + 1])   # spelled out: -1 is ambiguous for N = 0
        return x.reshape(x.shape[:start] + (merged,) + x.shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


class Dropout(Module):
    """Zero elements with probability ``p`` in ``train()`` (scaling the rest), identity in ``eval()``."""

    def __init__(self, p: float = 0.5, rng: Seed = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must lie in [0, 1], not {p}")
        self.p, self.rng = p, generator(rng)

    def forward(self, x: TensorLike) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of ``embedding_dim``, looked up by integer indices.
    With ``padding_idx``, that row starts at zeros and gets no gradient (PyTorch's).

    >>> import numpy as np, autonet.nn as nn
    >>> table = nn.Embedding(5, 3, padding_idx=0, rng=0)
    >>> table(np.array([0, 2])).data[0]
    array([0., 0., 0.])
    """

    weight: Parameter

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 rng: Seed = None, dtype: DTypeLike = None) -> None:
        super().__init__()
        num_embeddings = size_argument(num_embeddings, "num_embeddings", "Embedding", least=0)
        embedding_dim = size_argument(embedding_dim, "embedding_dim", "Embedding", least=0)
        if padding_idx is not None:
            padding_idx = F.padding_index(padding_idx, num_embeddings, "Embedding")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=_float(dtype)))
        self.weight = init.normal_(weight, 0.0, 1.0, generator(rng))
        if padding_idx is not None:
            with no_grad():
                self.weight[padding_idx] = 0.0

    def forward(self, indices: TensorLike) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}"


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d (see ``nn.functional.batch_norm``)."""

    dims: tuple[int, ...] = ()
    _optional_in_state_dicts = ("num_batches_tracked",)   # older PyTorch checkpoints lack it
    weight: Parameter | None
    bias: Parameter | None
    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: DTypeLike = None) -> None:
        super().__init__()
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must lie in [0, 1] or be None (the "
                             f"cumulative average), not {momentum}")
        dtype = _float(dtype)
        num_features = size_argument(num_features, "num_features", type(self).__name__)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        tracked = track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("num_batches_tracked", np.array(0) if tracked else None)

    def forward(self, x: TensorLike) -> Tensor:
        x = floating_input(self, x, _dtype_of(self.weight, self.running_mean))
        if x.ndim not in self.dims or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) takes inputs of "
                             f"{' or '.join(f'{d}' for d in self.dims)} axes with "
                             f"{self.num_features} channels on axis 1, not {x.shape}")
        use_batch = self.training or self.running_mean is None
        out = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                           use_batch, self._momentum(), self.eps)
        if self.training and self.num_batches_tracked is not None:   # counted once accepted
            with no_grad():
                self.num_batches_tracked += 1
        return out

    def _momentum(self):
        """``momentum``, or with None the cumulative average's 1 / (batches seen, this one included),
        a Tensor computed from the counter so that compiled steps read it afresh."""
        if self.momentum is not None or self.num_batches_tracked is None or not self.training:
            return 0.1 if self.momentum is None else self.momentum   # (None untracked: unused)
        return 1.0 / (self.num_batches_tracked + 1)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch normalization of ``(N, C)`` or ``(N, C, L)`` per channel."""

    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of ``(N, C, H, W)`` per channel."""

    dims = (4,)


class LayerNorm(Module):
    """Normalize over the last axes (``normalized_shape``), then scale and shift per element."""

    weight: Parameter | None
    bias: Parameter | None

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, dtype: DTypeLike = None) -> None:
        super().__init__()
        shape = normalized_shape_of(normalized_shape, "LayerNorm")
        self.normalized_shape, self.eps = shape, eps
        dtype = _float(dtype)
        self.weight = Parameter(np.ones(shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape, dtype=dtype)) if elementwise_affine else None

    def forward(self, x: TensorLike) -> Tensor:
        x = floating_input(self, x, _dtype_of(self.weight))
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class GroupNorm(Module):
    """Normalize each of ``num_groups`` groups of channels of ``(N, C, ...)``, then scale and shift
    per channel (``weight`` ones, ``bias`` zeros), as PyTorch's.

    >>> import numpy as np, autonet.nn as nn
    >>> norm = nn.GroupNorm(2, 4)
    >>> out = norm(np.arange(24.0).reshape(1, 4, 6))
    >>> abs(float(out.data[0, :2].mean())) < 1e-12, round(float(out.data[0, :2].std()), 4)
    (True, 1.0)
    """

    weight: Parameter | None
    bias: Parameter | None

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 dtype: DTypeLike = None) -> None:
        super().__init__()
        num_groups = size_argument(num_groups, "num_groups", "GroupNorm")
        num_channels = size_argument(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels {num_channels} must be divisible by num_groups "
                             f"{num_groups}; choose num_groups among its divisors")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        dtype = _float(dtype)
        self.weight = Parameter(np.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype=dtype)) if affine else None

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) takes (N, "
                             f"{self.num_channels}, ...) inputs, not {x.shape}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"
