"""Import stubs for the collection image: modules that are not installed import anyway, as
permissive stand-ins (in the manner of Sphinx's autodoc_mock_imports), so that pytest can collect
a project's tests without its dependencies. Only modules whose top-level package cannot be found
at all are stubbed (plus any named explicitly); the project's own code is imported for real.

Turned on by TESTDOCK_STUB_IMPORTS=1 (the collection image sets it) or --testdock-stubs;
TESTDOCK_STUB_MODULES (comma-separated) names modules to stub even when installed."""

from __future__ import annotations

import ast
import dis
import functools
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import itertools
import math
import os
import pathlib
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Literal

from testdock_pytest.collection.guards import catches_absence
from testdock_pytest.collection.importnames import canonical_name

ENABLE_ENV = "TESTDOCK_STUB_IMPORTS"
MODULES_ENV = "TESTDOCK_STUB_MODULES"
# The import names of the project's declared dependencies: a module outside them, imported where
# the code is ready for its absence (try/except ImportError), is absent in the real environment too
DEPENDENCIES_ENV = "TESTDOCK_STUB_DEPENDENCIES"
# A file of the top-level modules that the declared dependencies bring, down to the last one
# (the collection image's build writes it when every part is a wheel): a module imported by the
# project that is neither among them nor in its tree is missing in the real run too, and is
# reported as missing here, not stubbed
PROVIDED_ENV = "TESTDOCK_STUB_PROVIDED"
STUB_VERSION = "99.0.0"  # code that compares versions takes its newest branch
# ... unless the project pins the version (module or distribution name=version, comma-separated)
VERSIONS_ENV = "TESTDOCK_STUB_VERSIONS"
_versions: dict[str, str] = {}


def stub_version(name: str) -> str:
    """The version a stand-in for the module (or distribution) `name` reports."""
    top = name.split(".")[0]
    return _versions.get(top) or _versions.get(canonical_name(top)) or STUB_VERSION


def set_versions(text: str) -> None:
    for pair in text.split(","):
        name, _, version = pair.partition("=")
        if name and version:
            _versions[name.strip()] = version.strip()


class _StubMeta(type):
    """Metaclass of classes made from stubs: class-level attribute chains work too."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Stub(f"{cls.__module__}.{cls.__qualname__}.{name}")

    def __iter__(cls) -> Iterator[Any]:
        return iter(())


_METACLASS_NAMES = ("Meta", "Metaclass", "MetaClass")  # how libraries name their metaclasses


def _bound_by_caller(value: Any) -> bool:
    name = getattr(value, "__name__", None)
    if not isinstance(name, str):
        return False
    frame = sys._getframe(2)
    return frame.f_locals.get(name) is value or frame.f_globals.get(name) is value


class StubBase(metaclass=_StubMeta):
    """What a subclass of a stub derives from: it accepts any arguments, and any attribute an
    instance lacks is a stub."""

    # no __weakref__ slot: a subclass may declare `__slots__ = ("__weakref__",)`, as subclasses of
    # libraries' slotted bases (pydantic's BaseModel) do; classes without __slots__ still get one
    __slots__ = ("__dict__",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __init_subclass__(cls, **kwargs: Any) -> None:  # class keywords of stubbed frameworks
        pass

    # generic, as the stood-in classes often are: `class Select(SelectBase[T])`
    def __class_getitem__(cls, item: Any) -> Any:
        return cls

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Stub(f"{type(self).__qualname__}.{name}")

    # `super().update(...)` in a subclass never reaches __getattr__: the methods subclasses of
    # stubbed containers and resources call most are defined, doing nothing
    def _does_nothing(self, *args: Any, **kwargs: Any) -> Any:
        return Stub(f"{type(self).__qualname__}()")

    update = get = setdefault = pop = copy = clear = items = keys = values = _does_nothing
    append = extend = insert = remove = add = discard = close = setup = teardown = _does_nothing

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __getitem__(self, key: Any) -> Any:
        return Stub(f"{type(self).__qualname__}[]")

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _metaclass_for(bases: Sequence[Any]) -> type:
    """A metaclass deriving from _StubMeta and every other base's metaclass, so that mixing a
    stub with real classes (ABC, Enum...) never raises a metaclass conflict."""
    others = [type(base) for base in bases if isinstance(base, type) and type(base) is not type
              and not issubclass(_StubMeta, type(base))]
    if not others:
        return _StubMeta
    return _combined_metaclass(tuple(dict.fromkeys(others)))


@functools.cache
def _combined_metaclass(metaclasses: tuple[type, ...]) -> type:
    # one per combination: two stubs among one class's bases (`class S(Mixin, StubA, StubB)`,
    # Mixin an ABC) each make a base with it, and two equal but distinct metaclasses conflict
    return type("StubMeta", (_StubMeta, *metaclasses), {})


class Stub:
    # A stand-in for anything a missing module holds: attributes, calls, decorators, bases,
    # context managers, iteration, arithmetic and comparisons all work. (No docstring: code that
    # reads a stubbed function's __doc__ must get an empty one.)
    __doc__ = ""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        # called once more, with anything, where code calls the stood-in class's __init__
        # explicitly (`ModelMetaclass.__init__(cls, name, bases, namespace, **keywords)`)
        if "_stub_name" not in self.__dict__:
            object.__setattr__(self, "_stub_name", name)

    # attribute chains and calls
    def __getattr__(self, name: str) -> Any:
        if name == "_stub_name":  # an instance made without __init__ (copy's reconstruction)
            raise AttributeError(name)
        if name == "__version__":
            return stub_version(self._stub_name)
        if name in ("__name__", "__qualname__"):
            if _stands_for_an_instance(self._stub_name):
                raise AttributeError(name)  # pytest then names a parameter as it would the real one
            return self._stub_name.rpartition(".")[2]
        if name == "__module__":
            return self._stub_name.rpartition(".")[0] or self._stub_name
        if name == "__doc__":
            return ""
        if name in _DTYPE_CODES and self._stub_name.removesuffix("()").endswith("dtype"):
            return _DTYPE_CODES[name]
        if name.startswith("__") and name.endswith("__") and (
                self._stub_name.endswith(f".{name}") or not _project_reads(sys._getframe(1), name)):
            # probes (getattr, hasattr, the interpreter's) find no protocol; nor does a loop
            # following one (`while True: f = f.__wrapped__`)
            raise AttributeError(name)
        return _attribute(f"{self._stub_name}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        pass

    # a stand-in holds nothing to copy: `deepcopy(theme)` of an object holding one keeps it
    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # @decorator / @decorator(...): hand back what is decorated, unchanged. A decorator runs
        # before the name is bound, so a function or class already bound under its own name is
        # an argument (`@compiles(SomeClass)`), not what is being decorated.
        # Builtins (`array.astype(float)`, `np.vectorize(len)`) are arguments, never decorated.
        if len(args) == 1 and not kwargs and (callable(args[0]) or isinstance(args[0], type)) \
                and not isinstance(args[0], Stub) and getattr(args[0], "__module__", "") != "builtins" \
                and not _bound_by_caller(args[0]):
            return args[0]
        if args and not kwargs:  # `np.sqrt(2) / 2` in a parametrize list
            numbers = all(type(a) in (int, float) for a in args)
            exact = KNOWN_FUNCTIONS.get(self._stub_name) if numbers else None
            if numbers and exact is None and all(type(a) is float for a in args):
                exact = _OF_FLOATS_ONLY.get(self._stub_name)
            if exact is not None:
                try:
                    return exact(*args)
                except (ValueError, OverflowError):  # numpy's answer: nan, or the infinity itself
                    invalid = self._stub_name == "numpy.sqrt" or any(a != a for a in args)
                    return float("nan") if invalid else args[0]
        return Stub(f"{self._stub_name}()")

    # subclassing: `class Model(Base)` where Base is a stub
    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        module, _, name = self._stub_name.rpartition(".")
        if name.endswith(_METACLASS_NAMES):
            # `class Meta(ModelMetaclass, DeclarativeMeta)`, then `class Model(Base, metaclass=Meta)`:
            # a metaclass, and one that stub-made bases' metaclass yields to
            return (type(name, (_StubMeta,), {"__module__": module or "stub"}),)
        metaclass = _metaclass_for([b for b in bases if b is not self])
        return (metaclass(name or "Stub", (StubBase,), {"__module__": module or "stub", "__slots__": ()}),)

    # `isinstance(x, np.ndarray)` with a stubbed class: nothing is an instance of a stub
    def __instancecheck__(self, instance: Any) -> bool:
        return False

    def __subclasscheck__(self, subclass: Any) -> bool:
        return False

    # containers, iteration, context managers
    def __iter__(self) -> Iterator[Any]:
        # `fig, ax = plt.subplots()`: as many items as the unpacking asks for; a loop gets none
        count = _unpacked_count(sys._getframe(1))
        return iter([Stub(f"{self._stub_name}[]") for _ in range(count)])

    def __len__(self) -> int:
        return 0

    def __contains__(self, item: Any) -> bool:
        return True  # `assert key in stubbed_config` holds; a lookup then gives a stub

    def __getitem__(self, key: Any) -> Any:
        return Stub(f"{self._stub_name}[]")

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __delitem__(self, key: Any) -> None:
        pass

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        return False

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> Literal[False]:
        return False

    def __bool__(self) -> bool:
        return True

    def __hash__(self) -> int:
        return id(self)

    # Comparisons never raise. A stand-in for a value (an array, a frame) compares element-wise
    # as those do, into another stand-in (`(data["sex"] == "male").astype(int)`), where the
    # project's own code compares it; anywhere else (`x in list`, list.index, Enum's checks for
    # duplicates) and for classes and functions, it compares by identity and orders below all.
    def _elementwise(self) -> bool:
        return _stands_for_an_instance(self._stub_name) and _project_comparison(sys._getframe(2))

    def __eq__(self, other: object) -> Any:
        if other is not self and self._elementwise():
            return Stub(f"{self._stub_name}.__eq__()")
        return other is self

    def __ne__(self, other: object) -> Any:
        if other is not self and self._elementwise():
            return Stub(f"{self._stub_name}.__ne__()")
        return other is not self

    def __lt__(self, other: Any) -> Any:
        if self._elementwise():
            return Stub(f"{self._stub_name}.__lt__()")
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def _arithmetic(self, *other: Any) -> Any:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _arithmetic
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __divmod__ = __rdivmod__ = _arithmetic
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = _arithmetic
    __or__ = __ror__ = __and__ = __rand__ = __xor__ = __rxor__ = _arithmetic
    __neg__ = __pos__ = __invert__ = __abs__ = __round__ = __trunc__ = __floor__ = __ceil__ = _arithmetic

    def __int__(self) -> int:
        return 0

    __index__ = __int__

    def __float__(self) -> float:
        return 0.0

    def __repr__(self) -> str:
        return f"<stub {self._stub_name}>"

    __str__ = __repr__

    def __fspath__(self) -> str:
        return os.devnull


# Constants of widely used libraries, as the real ones are: numbers where they are numbers (a
# parameter id shows their value), and objects without a __name__ where they are singletons.
_INSTANCE = object()
KNOWN_CONSTANTS: dict[str, Any] = {
    "numpy.nan": float("nan"), "numpy.NaN": float("nan"), "numpy.inf": float("inf"),
    "numpy.Inf": float("inf"), "numpy.pi": math.pi, "numpy.e": math.e, "numpy.newaxis": None,
    "numpy.euler_gamma": 0.5772156649015329, "math.nan": float("nan"),
    "pandas.NA": _INSTANCE, "pandas.NaT": _INSTANCE, "numpy.ma.masked": _INSTANCE,
}


# numpy's functions of plain numbers whose results Python computes bit for bit alike (correctly
# rounded, or one multiplication): a parametrize list built with them gets the real run's ids.
# (sin, exp, log... may differ in the last bit where numpy has its own SIMD versions.)
# Only float results: numpy's integers are no `int`, and pytest names them by position.
KNOWN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "numpy.sqrt": math.sqrt, "numpy.fabs": math.fabs, "numpy.deg2rad": math.radians,
    "numpy.radians": math.radians, "numpy.rad2deg": math.degrees, "numpy.degrees": math.degrees,
    "numpy.float64": float, "numpy.double": float,
}
_OF_FLOATS_ONLY: dict[str, Callable[..., Any]] = {  # of an int, these give numpy's int
    "numpy.abs": abs, "numpy.absolute": abs, "numpy.square": lambda x: x * x,
    "numpy.floor": lambda x: math.copysign(float(math.floor(x)), x),  # -0.0 stays -0.0
    "numpy.ceil": lambda x: math.copysign(float(math.ceil(x)), x),
}

_UNPACKING = {dis.opmap["UNPACK_SEQUENCE"]: False, dis.opmap["UNPACK_EX"]: True}


def _instruction(frame: types.FrameType) -> tuple[int, int]:
    """(operation, argument) of the instruction `frame` is running, EXTENDED_ARG prefixes folded
    in: before Python 3.11 the frame points at the first prefix, since then at the instruction."""
    code, offset = frame.f_code.co_code, frame.f_lasti
    argument = 0
    if code[offset] == dis.EXTENDED_ARG:
        while code[offset] == dis.EXTENDED_ARG:
            argument = (argument | code[offset + 1]) << 8
            offset += 2
    else:
        shift, before = 8, offset - 2
        while before >= 0 and code[before] == dis.EXTENDED_ARG:
            argument |= code[before + 1] << shift
            shift, before = shift + 8, before - 2
    return code[offset], argument | code[offset + 1]


def _unpacked_count(frame: types.FrameType) -> int:
    """How many items the instruction running in `frame` unpacks (`a, b = x`: 2; `a, *b, c = x`:
    2), or 0 when it does something else with the iterator (a loop, a call to list())."""
    try:
        operation, argument = _instruction(frame)
    except (IndexError, AttributeError):
        return 0
    if operation not in _UNPACKING:
        return 0
    return (argument & 0xFF) + (argument >> 8) if _UNPACKING[operation] else argument


@functools.cache  # (Python 3.9 has it)
def _real_path(filename: str) -> str:
    """os.path.realpath, once per file: it runs for every import and element-wise comparison."""
    return os.path.realpath(filename)


def _in_project(frame: types.FrameType) -> bool:
    """Whether `frame` runs the project's own code, not the standard library's or a package's."""
    filename = frame.f_code.co_filename
    return not filename.startswith("<") and not _real_path(filename).startswith(_INSTALLED_CODE)


def _project_comparison(frame: types.FrameType) -> bool:
    """Whether `frame` is the project's own code running a comparison operator (not `in`, not a
    call such as list.index, not the standard library's or an installed package's code)."""
    if not _in_project(frame):
        return False
    try:
        return _instruction(frame)[0] == dis.opmap["COMPARE_OP"]
    except (IndexError, AttributeError):
        return False


_ATTRIBUTE_LOADS = {dis.opmap[name] for name in ("LOAD_ATTR", "LOAD_METHOD") if name in dis.opmap}
_FLAGGED_LOAD_ATTR = sys.version_info >= (3, 12)  # its argument is the name's index << 1 | is-method


def _project_reads(frame: types.FrameType, name: str) -> bool:
    """Whether `frame` is the project's own code reading the attribute `name` as written in its
    source (`np.array([1]).__array__(copy=None)`), rather than a probe by getattr or hasattr."""
    if not _in_project(frame):
        return False
    try:
        operation, argument = _instruction(frame)
        if operation not in _ATTRIBUTE_LOADS:
            return False
        index = argument >> 1 if _FLAGGED_LOAD_ATTR and operation == dis.opmap["LOAD_ATTR"] else argument
        return frame.f_code.co_names[index] == name
    except (IndexError, AttributeError):
        return False


# An array library's dtype codes are one-character strings that code tests with `in`
# (`if data.dtype.kind in "OMm"`), which a stand-in cannot answer (`in <string>` wants a str).
# "?" (a boolean's) is the code such tests least often look for, so they take the general path.
_DTYPE_CODES = {"kind": "?", "char": "?"}


def _stands_for_an_instance(name: str) -> bool:
    """Whether the stub stands for an object without a __name__: the result of a call or a
    subscript (`pd.DataFrame()`, `colormaps["viridis"]`), or a known singleton (`pd.NA`).
    Classes and functions (`np.mean`, `sa.BLOB`) have one, and pytest uses it in parameter ids."""
    return name.endswith(("()", "[]")) or KNOWN_CONSTANTS.get(name) is _INSTANCE


_WARNINGS: dict[str, type] = {}


def _warning_class(name: str) -> type:
    """A Warning subclass standing for `name` (one per name), whose attributes are stubs."""
    if name not in _WARNINGS:
        module, _, short = name.rpartition(".")
        _WARNINGS[name] = _StubMeta(short, (Warning,), {"__module__": module})
    return _WARNINGS[name]


def _attribute(name: str) -> Any:
    """What `module.name` of a stubbed module is: a known constant's value, else a stub."""
    value = KNOWN_CONSTANTS.get(name, _INSTANCE)
    return Stub(name) if value is _INSTANCE else value


class StubModule(types.ModuleType):
    """A missing module: any attribute is a stub, submodules import, `import *` brings nothing."""

    __all__: ClassVar[tuple[str, ...]] = ()

    def __getattr__(self, name: str) -> Any:
        if name == "__version__":
            return stub_version(self.__name__)
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        # a module's warning class (`sqlalchemy.exc.SAWarning`), or whatever category pytest
        # resolves for `filterwarnings = ignore::pydantic.warnings.PydanticDeprecatedSince20`
        if (name.endswith("Warning") and name != "Warning") or \
                sys._getframe(1).f_code.co_name == "_resolve_warning_category":
            return _warning_class(f"{self.__name__}.{name}")
        return _attribute(f"{self.__name__}.{name}")


class StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path: reached only by imports no real finder could satisfy."""

    def __init__(self, always: Sequence[str] = (), dependencies: Sequence[str] | None = None,
                 provided: Sequence[str] | None = None) -> None:
        self.always = {name.strip() for name in always if name.strip()}
        self.dependencies = None if dependencies is None else {d.strip() for d in dependencies if d.strip()}
        self.provided = None if provided is None else {p.strip() for p in provided if p.strip()}
        self.stubbed: list[str] = []
        self.predicted: list[str] = []  # tests whose node ids the stubs cannot reproduce
        self.left_missing: list[str] = []  # optional modules left missing, as in the real run
        # declared dependencies not installed here that installed code found missing: it went on
        # without them, where the real run has them
        self.declared_missing: set[str] = set()

    def _wanted(self, fullname: str) -> bool:
        top = fullname.partition(".")[0]
        if any(fullname == name or fullname.startswith(name + ".") for name in self.always):
            return True
        if top in sys.builtin_module_names or top in _STDLIB:
            return False
        importer = _project_importer()
        if importer is None:
            # installed code probing for an optional module must see it missing; but pytest
            # resolving a warning category its configuration names finds it where the real run
            # has it, and a package importing a submodule of a module it found stubbed gets it
            # (`find_spec("matplotlib")` answers from sys.modules, then `from matplotlib.colors`)
            # (unless that import is guarded: numba's `try: import scipy.linalg.cython_blas`)
            if fullname != top and isinstance(sys.modules.get(top), StubModule):
                where = _importing_line()
                return where is None or not _guarded_against_absence(*where)
            # (any module: pytest 8 stops on a category it cannot import, where the real run has
            # it, perhaps through another dependency: numpy through pandas)
            if _resolving_a_warning_filter():
                return True
            if fullname == top and self._declared(top):
                # a pytest plugin importing what the real run has, unguarded (pytest-twisted's
                # `from twisted.internet import defer`: it does not declare Twisted, the project
                # does): missing, pytest would stop before collecting anything
                if _loading_a_plugin() and not _asked_by_find_spec():
                    where = _importing_line()
                    if where is None or not _guarded_against_absence(*where):
                        return True
                self.declared_missing.add(top)
            return False
        filename, line, probing = importer
        if fullname != top:
            # a submodule: stub it only inside a stubbed package, never inside real code, but for
            # the project's own extension modules, which the real run has compiled, and a part of
            # a namespace package that a declared dependency provides (`jaraco.test`, where
            # jaraco.itertools is installed for real and jaraco.test is not)
            parent = sys.modules.get(top)
            return (isinstance(parent, StubModule) or _compiled_in_the_real_run(fullname)
                    or self._declared_namespace_part(fullname))
        if self.dependencies is None:
            return not probing  # without the dependency list, a probe sees the module missing
        declared = self._declared(top)
        if not declared and (probing or _guarded_against_absence(filename, line)):
            if top not in self.left_missing:
                self.left_missing.append(top)
            return False
        if not declared and self.provided is not None:
            local = _in_project_tree(top)
            if local is None:
                raise ModuleNotFoundError(
                    f"No module named {top!r}: no declared dependency provides it, so the real run "
                    "fails on this import too; add its distribution to the project's (test) "
                    "dependencies", name=top)
            if not _own_code(local):
                # a helper deep in the tree (`doc/sphinxext/github_link.py` imported by
                # doc/conf.py): not on the import path here, nor in the real run; a stand-in
                # would also shadow the file when pytest collects it
                raise ModuleNotFoundError(
                    f"No module named {top!r} (the project's {local} is not on the import path "
                    "here, nor in the real run)", name=top)
        return True

    def _declared(self, top: str) -> bool:
        """Whether a declared dependency provides the top-level module (the real run has it)."""
        return self.dependencies is not None and (
            top in self.dependencies or (self.provided is not None and top in self.provided))

    def _declared_namespace_part(self, fullname: str) -> bool:
        parent_name = fullname.rpartition(".")[0]
        parent = sys.modules.get(parent_name)
        if isinstance(parent, StubModule):
            return True
        namespace = (parent is not None and getattr(parent, "__file__", None) is None
                     and hasattr(parent, "__path__"))
        return namespace and self.dependencies is not None and fullname.replace(".", "_") in self.dependencies

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not self._wanted(fullname):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def find_distributions(self, context: Any = None) -> Iterator[importlib.metadata.Distribution]:
        """Metadata for the distribution of a module that is stubbed, when asked by name."""
        name = getattr(context, "name", None)
        if not name:
            return iter(())  # listing every distribution (plugins, entry points): none of ours
        candidates = _distribution_names(str(name))
        if candidates & (set(self.stubbed) | self.always):
            return iter((StubDistribution(str(name)),))
        return iter(())

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = StubModule(spec.name)
        module.__path__ = []
        module.__file__ = None
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        top = module.__name__.partition(".")[0]
        if top not in self.stubbed:
            self.stubbed.append(top)


_SKIPPED_FOLDERS = frozenset({"node_modules", "site-packages", "build", "dist", "__pycache__"})
_MODULE_SUFFIXES = (".py", ".pyx", ".so", ".pyi")


@functools.lru_cache(maxsize=64)
def _in_project_tree(name: str, depth: int = 4) -> str | None:
    """Where the project's tree (the working directory) holds a module or package of that name,
    breadth first (relative path), or None."""
    root = pathlib.Path.cwd()
    level = [str(root)]
    for _ in range(depth + 1):
        below: list[str] = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
            except OSError:
                continue
            for entry in entries:
                directory = entry.is_dir(follow_symlinks=False)
                module = entry.name.split(".", 1)[0] == name and entry.name.endswith(_MODULE_SUFFIXES)
                if (entry.name == name and directory) or module:
                    return str(pathlib.Path(entry.path).relative_to(root))
                if directory and not entry.name.startswith(".") and entry.name not in _SKIPPED_FOLDERS:
                    below.append(entry.path)
        level = below
    return None


_EXTENSION_SOURCES = (".pyx", ".c", ".cpp", ".cc", ".cxx")


def _compiled_in_the_real_run(fullname: str) -> bool:
    """Whether a submodule of a real package is one of its extension modules (its C, C++ or
    Cython source beside the package's modules): installed compiled in the real run, never built
    in the collection image."""
    package, _, name = fullname.rpartition(".")
    folders = getattr(sys.modules.get(package), "__path__", None) or ()
    return any((pathlib.Path(folder) / (name + suffix)).is_file()
               for folder in folders for suffix in _EXTENSION_SOURCES)


def _own_code(relative: str) -> bool:
    """A module at the top of the tree or of src/ is the project's own code, which the real run
    imports (installed) where this image may not (a compiled extension not built here)."""
    parts = pathlib.PurePath(relative).parts
    return len(parts) == 1 or (len(parts) == 2 and parts[0] in ("src", "lib"))


def _stdlib_from_disk() -> frozenset[str]:
    """The standard library's top-level modules, for Pythons before 3.10 (no sys.stdlib_module_names)."""
    import sysconfig

    folder = pathlib.Path(sysconfig.get_paths()["stdlib"])
    entries = [*folder.iterdir(), *(folder / "lib-dynload").glob("*")]
    names = {path.name.split(".")[0] for path in entries if path.name != "site-packages"}
    return frozenset(names | {"__future__", "_thread", "_io", "builtins"})


_STDLIB: frozenset[str] = frozenset(getattr(sys, "stdlib_module_names", ())) or _stdlib_from_disk()
_INSTALLED_CODE = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
_THIS_FILE = os.path.realpath(__file__)
_OWN_PACKAGE = str(pathlib.Path(_THIS_FILE).parent) + os.sep


_IMPORTLIB = str(pathlib.Path(os.path.realpath(str(importlib.util.__file__))).parent) + os.sep
_PYTEST_INTERNALS = f"{os.sep}_pytest{os.sep}"


def _probe_helper(path: str) -> bool:
    """importlib's and pytest's functions the project probes for a module with
    (`importlib.util.find_spec`, `importlib.import_module`, `pytest.importorskip`)."""
    return path.startswith(_IMPORTLIB) or _PYTEST_INTERNALS in path


def _importing_line() -> tuple[str, int] | None:
    """(file, line) of the import statement being run, whoever's code it is."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and _real_path(filename) != _THIS_FILE \
                and "importlib" not in filename:
            return filename, frame.f_lineno
        frame = frame.f_back
    return None


def _called_from(function: str | tuple[str, ...], where: Callable[[str], bool]) -> bool:
    """Whether a caller up the stack is `function` (a name, or one of several) in a file `where`
    accepts."""
    names = (function,) if isinstance(function, str) else function
    frame: types.FrameType | None = sys._getframe(3)  # from the caller of this one's caller
    while frame is not None:
        if frame.f_code.co_name in names and where(frame.f_code.co_filename):
            return True
        frame = frame.f_back
    return False


def _resolving_a_warning_filter() -> bool:
    return _called_from("_resolve_warning_category", lambda filename: "_pytest" in filename)


def _loading_a_plugin() -> bool:
    """Whether pytest is importing a plugin (an entry point's, `-p NAME`'s, `pytest_plugins`')."""
    return _called_from(("load_setuptools_entrypoints", "import_plugin"),
                        lambda filename: "pluggy" in filename or "_pytest" in filename)


def _asked_by_find_spec() -> bool:
    """Whether the lookup is `importlib.util.find_spec`'s, a probe (testdock's own plugin asks
    whether xdist is there), not an import (the module is frozen since Python 3.11)."""
    return _called_from("find_spec", lambda filename: filename in ("<frozen importlib.util>",
                                                                     _IMPORTLIB + "util.py"))


def _project_importer() -> tuple[str, int, bool] | None:
    """(file, line, through a probe helper) of the import being run when the project's code
    (tests, conftest, source) runs it, directly or through a probe helper; None when it is an
    installed package's or the standard library's own import."""
    frame = sys._getframe(2)
    probing = False
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == "<frozen importlib.util>":  # find_spec (frozen since Python 3.11)
            probing = True
        elif not filename.startswith("<") and _real_path(filename) != _THIS_FILE:
            real = _real_path(filename)
            if _probe_helper(real):
                probing = True
            elif real.startswith((*_INSTALLED_CODE, _OWN_PACKAGE)) or filename.startswith(_INSTALLED_CODE):
                return None  # (testdock's own plugin is not the project; Debian's sitecustomize.py
                # is a link into /etc)
            else:
                return filename, frame.f_lineno, probing
        frame = frame.f_back  # type: ignore[assignment]
    return None


_guarded_lines: dict[str, set[int]] = {}


_TRY_NODES = tuple(getattr(ast, name) for name in ("Try", "TryStar") if hasattr(ast, name))
_STATEMENT_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _statements(body: list[Any]) -> Iterator[Any]:
    """Every statement in `body`, nested ones included; expressions are not visited, which makes
    this many times faster than ast.walk (imports and try blocks are statements)."""
    for statement in body:
        yield statement
        for block in _STATEMENT_BLOCKS:
            inner = getattr(statement, block, None)
            if inner:
                yield from _statements(inner)


def _guarded_against_absence(filename: str, line: int) -> bool:
    """Whether the import on `line` of `filename` sits in a try block that handles ImportError."""
    if filename not in _guarded_lines:
        guarded: set[int] = set()
        try:
            source = pathlib.Path(filename).read_bytes()
            tree = ast.parse(source, filename) if b"try" in source else ast.Module(body=[], type_ignores=[])
        except (OSError, SyntaxError, ValueError):
            tree = ast.Module(body=[], type_ignores=[])
        for node in _statements(tree.body):
            if isinstance(node, _TRY_NODES) and any(catches_absence(h) for h in node.handlers):
                for inner in _statements(node.body):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):  # a tuple: Python 3.9 images
                        guarded.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
        _guarded_lines[filename] = guarded
    return line in _guarded_lines[filename]


class StubDistribution(importlib.metadata.Distribution):
    """Installed-package metadata for a stubbed module, for code that asks for its version."""

    def __init__(self, name: str) -> None:
        self._name = name

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: {self._name}\nVersion: {stub_version(self._name)}\n"
        return None

    def locate_file(self, path: Any) -> Any:
        return None


def _distribution_names(name: str) -> set[str]:
    """The import names a distribution name may stand for: scikit-learn -> scikit_learn."""
    return {name, name.replace("-", "_"), name.replace("-", "_").lower(), name.lower()}


class _AlwaysFirst(importlib.abc.MetaPathFinder):
    """Stubs named explicitly win even over installed modules: consulted first."""

    def __init__(self, finder: StubFinder) -> None:
        self.finder = finder

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if any(fullname == n or fullname.startswith(n + ".") for n in self.finder.always):
            return self.finder.find_spec(fullname, path, target)
        if "." not in fullname and _extension_source_folder(fullname):
            # the project's own extension module, compiled in the real run: here its folder of C
            # sources would import as an empty namespace package (ujson's src/ujson/ujson.c)
            return importlib.machinery.ModuleSpec(fullname, self.finder, is_package=True)
        return None


def _extension_source_folder(name: str) -> bool:
    """Whether the import path finds `name` only as a namespace package of the project's tree
    whose folders hold extension sources and no Python module: an extension module's sources,
    which the real run has compiled under that name."""
    spec = importlib.machinery.PathFinder.find_spec(name)
    if spec is None or spec.origin is not None or not spec.submodule_search_locations:
        return False
    try:
        root = pathlib.Path.cwd().resolve()
    except OSError:
        return False
    for folder in spec.submodule_search_locations:
        location = pathlib.Path(folder).resolve()
        if root not in location.parents:
            return False
        sources = False
        # a Python module anywhere below (`mixed/core/__init__.py` beside `mixed/_speed.c`) makes
        # it a real namespace package
        for _, _, names in itertools.islice(os.walk(location), 200):
            if any(name.endswith(".py") for name in names):
                return False
            sources = sources or any(name.endswith(_EXTENSION_SOURCES) for name in names)
        if not sources:
            return False
    return True


def stubbed_parameters(argvalues: Any) -> str | None:
    """The stub a parametrize argument list is, if it is one: a stub holds no values, so the real
    list's node ids cannot be reproduced. (Stubs among real values are named as pytest names
    the real objects: classes and functions by their names, instances by position.)"""
    if isinstance(argvalues, Stub):
        return str(object.__getattribute__(argvalues, "_stub_name"))
    return None


_installed: StubFinder | None = None


def install(always: Sequence[str] = (), dependencies: Sequence[str] | None = None,
            provided: Sequence[str] | None = None) -> StubFinder:
    """Put the stub finder in place (once); returns it."""
    global _installed
    if _installed is None:
        set_versions(os.environ.get(VERSIONS_ENV, ""))
        _installed = StubFinder(always, dependencies, provided)
        sys.meta_path.insert(0, _AlwaysFirst(_installed))
        sys.meta_path.append(_installed)
    else:
        _installed.always.update(a for a in always if a)
    return _installed


def installed() -> StubFinder | None:
    return _installed


def install_from_environment() -> StubFinder | None:
    if os.environ.get(ENABLE_ENV, "") not in ("1", "true", "yes"):
        return None
    declared = os.environ.get(DEPENDENCIES_ENV)
    provided_file = os.environ.get(PROVIDED_ENV)
    provided = None
    if declared is not None and provided_file:
        try:
            provided = pathlib.Path(provided_file).read_text(encoding="utf-8").split()
        except OSError:  # not written: what the dependencies bring is not all known
            provided = None
    return install(os.environ.get(MODULES_ENV, "").split(","),
                   None if declared is None else declared.split(","), provided)

