"""Context: one application of a Function, and the graph's node.

Its own module, below both ``core.tensor`` (whose ``grad_fn`` returns it) and ``core.function``
(which makes it), so that neither imports the other's for its types.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .state import state


class Context:
    """One application of a Function: its inputs, saved arrays and settings.

    It is also the graph node: ``tensor.grad_fn`` returns it, and viz draws it.
    ``inputs`` has one edge per forward argument: the node that made it, the
    input Tensor itself when it was a leaf, or None for non-Tensor arguments;
    ``needs_input_grad`` says, per input, whether it wanted a gradient when the
    op ran (a leaf that did not is a constant of the graph, kept for drawing,
    whatever becomes of it later).
    ``shape`` and ``dtype`` describe the output; ``constants`` holds the number
    arguments as ``(position, value)`` for drawing. Ops may store small settings
    as attributes (``ctx.axis = 0``); arrays belong in ``save_for_backward``,
    which backward frees.
    """

    __slots__ = ("fn", "inputs", "needs_input_grad", "saved", "saved_versions", "scope", "seq",
                 "shape", "dtype", "retained", "__dict__", "__weakref__")

    def __init__(self, fn: Any, inputs: tuple[Any, ...] = (),
                 needs_input_grad: tuple[bool, ...] = ()) -> None:
        self.fn = fn   # the Function subclass (core.function imports this module, not the reverse)
        self.inputs = inputs
        self.needs_input_grad = needs_input_grad   # empty unless the op is recorded
        self.saved = ()
        self.saved_versions = ()
        self.scope = state.scope
        self.retained = None   # a weak reference to the output, after retain_grad()

    constants: tuple[tuple[int, Any], ...] = ()   # (position, number) of the op's numbers, for drawings

    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays for ``backward``; they are freed after it unless retained."""
        self.saved = values

    @property
    def name(self) -> str:
        """The op's name, e.g. ``'matmul'`` or a custom Function's class name."""
        return self.fn.name

    def __repr__(self) -> str:
        return f"<{self.name}>"

    if TYPE_CHECKING:   # ops keep small settings as attributes (``ctx.axis = 0``)
        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...
