"""Guards: the Python world a trace was made in, re-checked before every replay.

Before a step is traced, everything its code could read besides its data is
walked, from the step's globals and closure cells, the objects passed to it,
and on through the attributes, container entries, methods and functions
reached from there (torch.compile's guards, built without a bytecode tracer).
What the step's code could read is approximated from the code itself: an
object's attribute is followed when its name appears in the code of the step
or of a function reached (the names its bytecode loads as attributes; an
object's ``__call__``, ``__getitem__``, ``__iter__`` and other methods syntax calls
always; a Module's attributes all). Each value found becomes a guard:

- numbers, strings, bools, None and NumPy scalars: by type and value (floats
  by their bits: -0.0 and NaN are values too);
- containers (list, tuple, deque, dict, and their subclasses) by identity and
  length, and their entries; sets by their members; a ``functools.partial`` by
  its function, arguments and keywords (read by C code);
- functions, methods, classes, modules and other objects by identity (and an
  object's class), and then the attributes named in the code;
- ndarrays by identity, shape and dtype; an array that no op reads as a whole
  (its elements or a reduction were taken in Python, ``arr[0]``,
  ``arr.sum()``) also by its contents, so that those scalars are never stale;
- Tensors by identity (their shape, dtype and ``requires_grad`` are guarded
  where the trace reads them, see :mod:`.trace`).

Functions of autonet, NumPy and the standard library are guarded by identity;
their code only adds attribute names (``self.p`` in ``Dropout.forward``),
their globals are not walked. Methods that a replay calls again (``zero_grad``,
an optimizer's ``step``, see :func:`autonet.core.state.replayable`) read the
world when they run, so their code adds nothing.

The guards become one generated function that returns None when the world
is as traced, or a description of the first difference.
"""
import builtins
import collections
import dis
import functools
import sys
import types
from math import copysign

import numpy as np

from ..core.tensor import Tensor
from ..nn.module import Module
from .arguments import describe
from .draws import GENERATORS
from .errors import CompileError

_SCALARS = (int, float, bool, str, bytes, complex, type(None))
_LIBRARY_ROOTS = {"autonet", "numpy"} | set(sys.stdlib_module_names)
_ALWAYS_READ = ("__call__", "__iter__", "__len__", "__getitem__", "__contains__", "__enter__",
                "__exit__", "__bool__")   # called by syntax (Module.__call__ reads forward)
_SEQUENCES = (list, tuple, collections.deque)
_CLASS_VALUES = _SCALARS + (np.generic, np.ndarray, list, tuple, dict)
"""Values a class attribute may hold that the step reads as data (``self.SCALE``): guarded like
an instance's, though their types are the standard library's or NumPy's."""
_MODULE_BOOKKEEPING = {"_weak_self", "_path"}
_MISSING = object()
_DEPTH_LIMIT = 200   # objects reached through objects (a linked structure): below Python's recursion
_CONTENT_LIMIT = 1 << 16   # bytes of an array guarded by its contents (larger: refused, see check)


def _library(thing):
    """True for autonet's, NumPy's and the standard library's own objects."""
    module = getattr(thing, "__module__", None) or ""
    return module.split(".")[0] in _LIBRARY_ROOTS


_ATTRIBUTE_OPS = {"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR"}
_GLOBAL_OPS = {"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME"}
_read_by_code = {}   # code -> (global names, attribute names), its own and its nested code's


def _code_reads(code):
    """The global names and the attribute names ``code`` (and code nested in it) uses."""
    known = _read_by_code.get(code)
    if known is None:
        globals_, attributes = set(), set()
        for instruction in dis.get_instructions(code):
            if instruction.opname in _ATTRIBUTE_OPS:
                attributes.add(instruction.argval)
            elif instruction.opname in _GLOBAL_OPS:
                globals_.add(instruction.argval)
        if globals_ & {"getattr", "hasattr"}:   # getattr(obj, "name"): its literal names too
            attributes |= {c for c in code.co_consts if type(c) is str and c.isidentifier()}
        for constant in code.co_consts:
            if isinstance(constant, types.CodeType):
                inner_globals, inner_attributes = _code_reads(constant)
                globals_ |= inner_globals
                attributes |= inner_attributes
        known = _read_by_code[code] = (frozenset(globals_), frozenset(attributes))
    return known


def _dtype_differs(array, dtype):
    """The test that ``array``'s dtype is not ``dtype``: by identity first (NumPy's builtin
    dtypes are singletons, so the common case costs no comparison), then by equality."""
    return f"({array}.dtype is not {dtype} and {array}.dtype != {dtype})"


def _lookup_class(kind, name):
    """``name`` as found on ``kind``'s MRO without calling descriptors, or _MISSING."""
    for klass in kind.__mro__[:-1]:   # object's own slots are no one's choice
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _MISSING


class _Builder:
    """Walks the world from the roots and writes the guard function's lines."""

    def __init__(self):
        self.names = set(_ALWAYS_READ)
        self.namespace = {"copysign": copysign, "dict_get": dict.get, "missing": _MISSING}
        self.checks = []         # (condition, description): the world differs if a condition holds
        self.pending = {}        # variable -> its expression, bound where a condition first uses it
        self.visited = {}        # id -> variable holding the object in the guard function
        self.objects = []        # (object, variable, description, names followed)
        self.arrays = []         # (array, variable, description) for the content guards
        self.module_arrays = {}  # id(ndarray) -> the name a Module holds it under
        self.keep = []           # every object guarded: their ids must stay theirs
        self.depth = 0
        self.constants = {}      # id -> name in the guard function (kept alive by keep)
        self.written = set()     # conditions already checked
        self.generators = []     # (random generator, description) reached

    def constant(self, value):
        """The guard function's name for ``value`` (one per object: equal checks read alike)."""
        name = self.constants.get(id(value))
        if name is None:
            name = self.constants[id(value)] = f"K{len(self.namespace)}"
            self.namespace[name] = value
            self.keep.append(value)
        return name

    def fail(self, condition, description):
        condition = self.bind(condition)
        if condition not in self.written:   # a class's method, checked once for all its objects
            self.written.add(condition)
            self.checks.append((condition, description))

    def bind(self, text):
        """``text`` with each variable's first use binding it (``(x := expression)``)."""
        for name in [name for name in self.pending if name in text]:
            expression = self.bind(self.pending.pop(name))
            text = text.replace(name, f"({name} := {expression})", 1)
        return text

    def variable(self, expression):
        name = f"_x{len(self.checks)}_{len(self.pending)}_"
        self.pending[name] = expression
        return name

    # ---------------------------------------------------------------- the walk
    def value(self, value, expression, description):
        """Guard ``value``, found at ``expression`` (a fresh lookup on each call)."""
        self.depth += 1
        try:
            if self.depth > _DEPTH_LIMIT:
                raise CompileError(f"{description} is nested {_DEPTH_LIMIT} objects deep; compile "
                                   f"cannot guard what the step reads there. Pass it as an argument")
            self.guard(value, expression, description)
        finally:
            self.depth -= 1

    def guard(self, value, expression, description):
        kind = type(value)
        if value is None or kind is bool:
            self.fail(f"{expression} is not {value!r}", f"{description} is no longer {value!r}")
            return
        if kind in _SCALARS or isinstance(value, np.generic):
            self.scalar(value, expression, description)
            return
        known = self.visited.get(id(value))
        if known is not None:   # seen on another path: the same object must be here too
            self.fail(f"{expression} is not {self.constant(value)}", f"{description} is another object")
            return
        held = self.variable(expression)
        self.visited[id(value)] = held
        self.fail(f"{held} is not {self.constant(value)}", f"{description} is another object")
        if isinstance(value, Tensor) or kind is type or isinstance(value, type):
            return
        if isinstance(value, GENERATORS):   # watched while tracing (see .draws)
            self.generators.append((value, description))
        if isinstance(value, np.ndarray):
            differs = _dtype_differs(held, self.constant(value.dtype))
            self.fail(f"{held}.shape != {value.shape!r} or {differs}",
                      f"{description} changed shape or dtype")
            self.arrays.append((value, held, description))
        elif isinstance(value, _SEQUENCES) or isinstance(value, dict):
            self.entries(value, held, description)
            if kind not in (list, tuple, dict) and (hasattr(value, "__dict__") or not _library(kind)):
                self.fail(f"type({held}) is not {self.constant(kind)}", f"{description} changed class")
                self.obj(value, held, description, self.constant(kind))   # a subclass's own attributes
        elif isinstance(value, (set, frozenset)):
            self.fail(f"{held} != {self.constant(frozenset(value))}", f"{description} changed its members")
        elif kind is functools.partial:   # its function and bound arguments are read by C code
            self.value(value.func, f"{held}.func", f"{description} (its function)")
            self.value(value.args, f"{held}.args", f"{description} (its arguments)")
            self.value(value.keywords, f"{held}.keywords", f"{description} (its keywords)")
        elif kind is types.MethodType:
            self.value(value.__func__, f"{held}.__func__", f"{description} (its function)")
            self.value(value.__self__, f"{held}.__self__", f"{description} (its object)")
        elif kind is types.FunctionType:
            self.function(value, held, description)
        elif kind is types.ModuleType:
            if not _library(types.SimpleNamespace(__module__=value.__name__)):
                self.obj(value, held, description)
        elif hasattr(value, "__dict__") or not _library(kind):   # __slots__ objects too
            klass = self.constant(kind)
            self.fail(f"type({held}) is not {klass}", f"{description} changed class")
            self.obj(value, held, description, klass)

    def entries(self, value, held, description):
        """A list, tuple, deque or dict (or a subclass: a namedtuple, an OrderedDict) by length
        and entries (a dict's where its keys are strings or ints)."""
        self.fail(f"len({held}) != {len(value)}", f"{description} changed length")
        if not isinstance(value, dict):
            for index, part in enumerate(value):
                self.value(part, f"{held}[{index}]", f"{description}[{index}]")
        elif all(type(key) in (str, int) for key in value):
            for key, part in value.items():   # a subclass's __missing__ (defaultdict's) not called
                entry = f"{held}[{key!r}]" if type(value) is dict else f"dict_get({held}, {key!r}, missing)"
                self.value(part, entry, f"{description}[{key!r}]")

    def scalar(self, value, expression, description):
        kind = type(value)
        expression = self.variable(expression)
        if kind is float:   # by its bits: equal nonzero finite floats have the same bits
            test = f"type({expression}) is not float or " + (
                f"{expression} == {expression}" if value != value else
                f"{expression} != 0.0 or copysign(1.0, {expression}) != {copysign(1.0, value)!r}"
                if value == 0 else f"{expression} != {self.constant(value)}")
        elif isinstance(value, np.generic):
            test = (f"type({expression}) is not {self.constant(kind)} or "
                    f"{expression}.tobytes() != {value.tobytes()!r}")
        else:
            test = f"type({expression}) is not {kind.__name__} or {expression} != {value!r}"
        self.fail(test, f"{description} is no longer {value!r}")

    def walk_step(self, step):
        """The step itself is the compiled one's for good: walk what it reads."""
        if type(step) is types.FunctionType:
            self.visited[id(step)] = self.constant(step)
            self.function(step, None, "the step")
        else:
            self.value(step, self.constant(step), "the step")

    def function(self, function, held, description):
        replayed = getattr(function, "__replayable__", False)   # reads the world when replayed
        if not replayed:
            self.add_names(function.__code__)
        if replayed or _library(function):
            return
        for defaults in ("__defaults__", "__kwdefaults__"):   # the values of omitted arguments
            if getattr(function, defaults) is not None:
                self.value(getattr(function, defaults), f"{self.constant(function)}.{defaults}",
                           f"the default arguments of {function.__qualname__}")
        namespace = self.constant(function.__globals__)
        for name in sorted(_code_reads(function.__code__)[0]):
            if name in function.__globals__:
                self.value(function.__globals__[name], f"{namespace}[{name!r}]",
                           f"the global {name!r} of {function.__qualname__}")
        for name, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
            try:
                content = cell.cell_contents
            except ValueError:   # not yet assigned
                continue
            self.value(content, f"{self.constant(cell)}.cell_contents",   # a function's cells are its own
                       f"the closure variable {name!r} of {function.__qualname__}")

    def obj(self, value, held, description, klass=None):
        """An object's attributes are followed by name (see attributes); a Module's are
        all followed: its children, settings and tensors are read by its own code."""
        followed = set()
        own = self.variable(f"{held}.__dict__") if hasattr(value, "__dict__") else None
        if isinstance(value, Module):   # a new attribute (a layer, a parameter) is seen too
            self.fail(f"len({own}) != {len(value.__dict__)}", f"{description} gained or lost attributes")
            for name, part in value.__dict__.items():
                if name not in _MODULE_BOOKKEEPING:
                    followed.add(name)
                    if isinstance(part, np.ndarray):
                        self.module_arrays.setdefault(id(part), name)
                    self.value(part, f"{own}[{name!r}]", f"{description}.{name}")
        self.objects.append((value, (held, own, klass or f"type({held})"), description, followed))

    def add_names(self, code):
        self.names |= _code_reads(code)[1]

    def attributes(self):
        """Follow every object's attributes named in the code walked so far, until no new
        name or object appears (a method reached adds the names its code reads)."""
        done = False
        while not done:
            done = True
            for value, held, description, followed in list(self.objects):
                for name in sorted(self.names - followed):
                    followed.add(name)
                    done = False
                    self.attribute(value, held, description, name)

    def attribute(self, value, where, description, name):
        held, own, klass = where
        found = f"{description}.{name}"
        if isinstance(value, Module) and name in _MODULE_BOOKKEEPING:
            return
        if name in getattr(value, "__dict__", {}):
            self.value(value.__dict__[name], f"{own}[{name!r}]", found)
            return
        if _lookup_class(type(value), name) is _MISSING:   # not on the class (nor the metaclass's)
            if own is not None and not isinstance(value, Module):   # a Module's count is guarded
                self.fail(f"{name!r} in {own}", f"{found} was set on the object")   # hasattr, try
            return
        try:
            on_class = getattr(type(value), name)
        except AttributeError:   # a descriptor that answers on instances only (enum's value)
            return
        if type(on_class) is types.MemberDescriptorType:   # a __slots__ attribute: the object's own
            if hasattr(value, name):
                self.value(getattr(value, name), f"{held}.{name}", found)
            return
        if type(on_class) is property:   # computed on each read: its getter's code reads
            self.value(on_class, f"{klass}.{name}", f"{type(value).__name__}.{name}")
            if on_class.fget is not None:
                self.value(on_class.fget, f"{klass}.{name}.fget", f"{type(value).__name__}.{name} (its getter)")
            return
        if type(on_class) is types.MethodType or (_library(type(on_class)) and not callable(on_class)
                                                  and not isinstance(on_class, _CLASS_VALUES)):
            return   # a classmethod is made anew on each lookup; a slot or descriptor of a library
        if own is not None:
            self.fail(f"{name!r} in {own}", f"{found} was set on the object")
        self.value(on_class, f"{klass}.{name}", f"{type(value).__name__}.{name}")

    # ---------------------------------------------------------------- finishing
    def content_guards(self, whole):
        """Arrays no op reads as a whole: guarded by their bytes (see the module doc)."""
        for array, held, description in self.arrays:
            if id(array) in whole:
                continue
            if array.nbytes > _CONTENT_LIMIT:
                kept_as = self.module_arrays.get(id(array))
                if kept_as is not None and kept_as not in self.names:
                    continue   # a large array a module keeps, which no code names: not read
                self.fail("True", f"{description} (an ndarray of {array.nbytes} bytes) is read "
                                  f"by the step in Python")
                continue
            self.fail(f"{held}.tobytes() != {self.constant(array.tobytes())}",
                      f"the values of {description} changed")

    def modes_and_tensors(self, modes, tensors):
        """Modules' train()/eval() modes, and shapes, dtypes and requires_grad of the lasting
        tensors the trace reads (see :mod:`.trace`)."""
        for module, training in modes:
            self.fail(f"{self.constant(module)}.training is not {training}",
                      f"a {type(module).__name__} is in {'eval' if training else 'train'} mode now")
        for tensor, shape, dtype, wants_grad in tensors:
            held, data = self.constant(tensor), self.variable(f"{self.constant(tensor)}._data")
            label = repr(tensor.name) if tensor.name else "a tensor"
            self.fail(f"{data}.shape != {shape!r} or {_dtype_differs(data, self.constant(dtype))} or "
                      f"{held}.requires_grad is not {wants_grad}",
                      f"{label} read by the step is no longer {shape} {dtype} with "
                      f"requires_grad={wants_grad}")

    def build(self):
        """``(guard, source)``: ``guard(args)`` is None when nothing the step reads changed, else
        what did. One expression covers the common case (nothing changed); the checks one by
        one, which say what did (a lookup that raises, an attribute deleted, is a difference
        too), are compiled the first time that expression finds a change: most of the source,
        and of a trace's time to compile it."""
        if not self.checks:
            return (lambda args: None), "nothing"
        fast = "\n        or ".join(f"({condition})" for condition, _ in self.checks)
        lines = [f"    if {condition}: return {description!r}" for condition, description in self.checks]
        lines = [f"    try:\n    {line}\n    except Exception:\n        return {description!r}"
                 for line, (_, description) in zip(lines, self.checks)]
        unchanged = (f"def unchanged(args):\n    try:\n        return not ({fast})\n"
                     f"    except Exception:\n        return False   # something read is gone\n")
        changed = ("def changed(args):\n" + "\n".join(lines)
                   + "\n    return 'something the step reads changed'\n")
        namespace = dict(self.namespace)
        exec(builtins.compile(unchanged, "<autonet.compile guards>", "exec"), namespace)
        fast_check, described = namespace["unchanged"], []

        def guard(args):
            if fast_check(args):
                return None
            if not described:
                exec(builtins.compile(changed, "<autonet.compile guards>", "exec"), namespace)
                described.append(namespace["changed"])
            return described[0](args)

        return guard, unchanged + changed


class World:
    """The guards of one trace: walk the world before the trace runs, finish after it."""

    def __init__(self, step, objects):
        """``objects``: ``(path, object)`` of the step's arguments other than data."""
        self.builder = _Builder()
        self.builder.walk_step(step)
        for path, thing in objects:
            self.builder.value(thing, "args" + "".join(f"[{key!r}]" for key in path), describe(path))
        self.builder.attributes()
        self.keep = self.builder.keep
        self.generators = self.builder.generators

    def finish(self, whole_arrays, modes, tensors):
        """The guard function; ``whole_arrays``: ids of the arrays ops read as a whole."""
        self.builder.content_guards(whole_arrays)
        self.builder.modes_and_tensors(modes, tensors)
        guard, self.source = self.builder.build()
        return guard
