"""Function, the base of every differentiable op, and its context (the graph node).

An op is a subclass with two static methods::

    class Cube(autonet.Function):
        @staticmethod
        def forward(ctx, x):             # ndarrays in, ndarray out
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):         # one gradient per forward input
            (x,) = ctx.saved
            return grad * 3 * x ** 2

``Cube.apply(t)`` runs ``forward`` on plain NumPy and, when grad mode is on and
an input requires grad, returns a Tensor that remembers the op in a
:class:`Context`. ``backward`` is written once: it normally receives ndarrays;
under ``create_graph=True`` it receives Tensors (``ctx.saved`` then holds the
tensors the saved arrays came from), so its operations are recorded and the
gradient can be differentiated again. Save inputs and the output through
``save_for_backward`` for that to work; other attributes of ``ctx`` are
treated as constants.
"""
import numpy as np

from .anomaly import check_forward
from .autograd import sequence, state
from .tensor import Tensor


class Context:
    """One application of a Function: its parents, saved arrays and settings.

    It is also the graph node: ``tensor.grad_fn`` returns it, and viz draws it.
    Ops may store small settings as attributes (``ctx.axis = 0``).
    """

    __slots__ = ("fn", "parents", "saved", "scope", "__dict__", "__weakref__")

    def __init__(self, fn, parents):
        self.fn = fn
        self.parents = parents
        self.saved = ()
        self.scope = state.scope

    def save_for_backward(self, *values):
        """Keep arrays for ``backward``; they are freed after it unless retained."""
        self.saved = values

    @property
    def name(self):
        """The op's name, e.g. ``'matmul'`` or a custom Function's class name."""
        return self.fn.name

    @property
    def needs_input_grad(self):
        """One bool per forward input: does that input want a gradient?"""
        return [p is not None and p.requires_grad for p in self.parents]

    def __repr__(self):
        return f"<{self.name}>"


class Function:
    """Base class for differentiable ops: subclass with ``forward`` and ``backward``."""

    name = "function"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("a Function subclass must define backward(ctx, grad)")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op on Tensors (or arrays and numbers) and record it if needed."""
        arrays = []
        parents = []
        requires_grad = False
        for arg in args:
            if isinstance(arg, Tensor):
                arrays.append(arg.data)
                parents.append(arg)
                if arg.requires_grad:
                    requires_grad = True
            else:
                arrays.append(arg)
                parents.append(None)
        ctx = Context(cls, tuple(parents))
        anomaly = state.anomaly
        try:
            if anomaly:   # our error, naming the op, replaces NumPy's warning
                with np.errstate(all="ignore"):
                    out = cls.forward(ctx, *arrays, **kwargs)
            else:
                out = cls.forward(ctx, *arrays, **kwargs)
        except ValueError as error:
            shapes = " and ".join(str(np.shape(a)) for a in arrays if a is not None)
            raise ValueError(f"{cls.name}: cannot apply to shapes {shapes}: {error}") from None
        scalar_output = type(out) is not np.ndarray
        if scalar_output:
            out = as_output_array(ctx, out)
        if anomaly:
            check_forward(ctx, arrays, out)
        recording = requires_grad and state.grad_enabled
        result = Tensor._make(out, ctx if recording else None)
        if out.base is not None:
            share_version_with_base(result, ctx.parents)
        if recording:
            # Versions at save time: backward refuses if a saved array changed since.
            versions = []
            for parent in ctx.parents:
                if parent is None:
                    versions.append(0)
                else:
                    versions.append(parent._version[0])
                    parent._consumed = True
            versions.append(result._version[0])
            ctx.versions = versions
            ctx.seq = next(sequence)
        if state.tracer is not None:
            state.tracer.record_op(cls, args, kwargs, ctx, result, scalar_output)
        return result


def as_output_array(ctx, out):
    """NumPy returns scalars for 0-d results: make an array, and point ``ctx.saved`` at it."""
    scalar, out = out, np.asarray(out)
    if ctx.saved:
        ctx.saved = tuple(out if value is scalar else value for value in ctx.saved)
    return out


def share_version_with_base(view, parents):
    """A view shares its base's version counter, so in-place changes to either are seen."""
    base = view.data.base
    for parent in parents:
        if parent is not None and (parent.data is base or parent.data.base is base):
            view._version = parent._version
            return
