"""Per-thread engine state: grad mode, the module scope, and the observers.

Features that need to watch the engine (anomaly mode, compile's tracer)
subscribe an :class:`Observer` for the length of a ``with`` block instead of
being called by name from the core, so the core imports none of them.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from typing import Any, Callable, Literal, TypeVar, cast

_F = TypeVar("_F", bound=Callable[..., Any])


class Observer:
    """Receives the engine's events; every method is a no-op until overridden.

    ``quiet_numpy``: run op formulas under ``np.errstate(all="ignore")`` (the
    observer reports bad values itself, as anomaly mode does).
    """

    quiet_numpy = False

    def tensor_made(self, tensor, data):
        """``tensor`` was made by ``Tensor(data)``, a copy of ``data``."""

    def applied(self, fn, args, kwargs, ctx, arrays, result):
        """``fn.apply(*args, **kwargs)`` ran; ``ctx`` is its node, ``result`` its Tensor."""

    def formula_ran(self, node, grads):
        """``node``'s backward formula returned ``grads`` (one per input)."""

    def gradient_summed(self, node, position, grad):
        """The gradient for ``node``'s input ``position``, fitted to its shape and added up."""

    def in_place(self, tensor, result, recording):
        """``tensor``'s data was overwritten by ``result``'s (an in-place op)."""

    def called(self, method, args, kwargs):
        """A method with side effects (``zero_grad``, an optimizer step) is about to run."""

    def call_returned(self, method):
        """That method has run (it may have changed ``.data`` and ``.grad`` arrays)."""

    def call_result(self, method, result):
        """What the caller of that method gets instead of ``result`` (``result`` itself)."""
        return result

    def backward_ran(self, plan, seeds, fitted, create_graph, into_grad):
        """A backward pass executed ``plan`` from ``seeds`` (key -> gradient).

        ``fitted``: ``(node, input position)`` of the gradients that were
        summed to their input's shape; ``into_grad``: True for ``backward()``
        (leaves' ``.grad`` are about to be set), False for ``grad()``.
        """

    def seeded(self, seed, given):
        """``seed`` (a Tensor) starts a ``create_graph`` pass; ``given`` is the gradient the
        caller passed (None: ones)."""

    def grad_returned(self, wanted, results):
        """``autonet.grad`` returns ``results`` for the graph keys ``wanted`` (nodes, leaves)."""

    def delivered(self, tensor):
        """``tensor.grad`` was set or accumulated by a backward pass."""

    def module_called(self, module):
        """A Module's ``__call__`` is about to run its ``forward``."""

    def detached(self, tensor, result):
        """``result = tensor.detach()``: a new leaf that shares ``tensor``'s data."""

    def constructed(self, array, inputs):
        """A constructor (``autonet.zeros``) made ``array`` from the Python values ``inputs``."""

    def value_read(self, what):
        """Python is about to see a tensor's values (``item()``, a comparison, ...)."""


class _ThreadState(threading.local):
    grad_enabled = True
    scope: tuple[Any, ...] = ()        # weak references to the Modules whose __call__ is running (for viz)
    observers = ()


state = _ThreadState()


@contextlib.contextmanager
def observing(observer):
    """Subscribe ``observer`` to this thread's engine events within the block."""
    previous = state.observers
    state.observers = previous + (observer,)
    try:
        yield observer
    finally:
        state.observers = previous


def notify(event, *args):
    """Call ``event`` on every observer of this thread."""
    for observer in state.observers:
        getattr(observer, event)(*args)


def constructed(array, *inputs):
    """``array``, made by a constructor from ``inputs`` (shapes, fill values): observers
    (compile) may take it as a constant where the inputs are."""
    if state.observers:
        notify("constructed", array, inputs)
    return array


def is_grad_enabled() -> bool:
    """True when ops record the graph in this thread."""
    return state.grad_enabled


class _GradMode:
    """Sets grad mode for a ``with`` block or, used as a decorator, a call."""

    enabled = True

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        self = super().__new__(cls)
        if func is None:
            return self
        return self(func)   # used bare: ``@no_grad`` as well as ``@no_grad()``

    def __enter__(self) -> _GradMode:
        self._previous = state.grad_enabled
        state.grad_enabled = self.enabled
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        state.grad_enabled = self._previous
        return False

    def __call__(self, func: _F) -> _F:
        mode = type(self)
        if inspect.isgeneratorfunction(func):
            return cast(_F, _generator_in_mode(func, mode))

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with mode():
                return func(*args, **kwargs)

        return cast(_F, wrapper)


def _generator_in_mode(func, mode):
    """A generator function whose body runs in ``mode`` each time it resumes, and the caller's
    code between two items in the caller's mode (PyTorch's decorators do the same; a plain
    wrapper would only cover the call that makes the generator, which runs none of its body)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        generator = func(*args, **kwargs)
        try:
            with mode():
                response = generator.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with mode():
                        generator.close()
                    raise
                except BaseException as error:   # thrown in by the caller: pass it on
                    with mode():
                        response = generator.throw(error)
                else:
                    with mode():
                        response = generator.send(request)
        except StopIteration as stop:
            return stop.value

    return wrapper


class no_grad(_GradMode):
    """Turn graph recording off in this thread (``with no_grad():`` or ``@no_grad()``)."""

    enabled = False


class enable_grad(_GradMode):
    """Turn graph recording back on in this thread, e.g. inside ``no_grad``."""

    enabled = True


def replayable(method: _F) -> _F:
    """Mark a method with side effects (zero_grad, an optimizer step) for observers (compile).

    Observers see the call (``called`` / ``call_returned``) and may stand in for its result
    (``call_result``); ``__replayable__`` tells compile's guards that the method reads the
    world itself whenever it runs.
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if not state.observers:
            return method(*args, **kwargs)
        notify("called", method, args, kwargs)
        try:
            result = method(*args, **kwargs)
        finally:
            notify("call_returned", method)
        for observer in state.observers:
            result = observer.call_result(method, result)
        return result

    wrapper.__replayable__ = True   # type: ignore[attr-defined]
    return cast(_F, wrapper)
