"""Import stubs: every behaviour the collection image relies on, in pytester subprocesses (the
stubs change sys.meta_path, which this test process must keep clean)."""

from __future__ import annotations

import sys

import pytest

BEHAVIOURS = """
import abc
import sys

import pytest

import nosuch_a
import nosuch_a.sub.deeper as deeper
from nosuch_b.x.y import z
from nosuch_c import *
from packaging.version import Version


def test_attribute_chains_and_calls():
    value = nosuch_a.b.c(1, key=2).d["e"]
    assert value is not None
    assert deeper.thing is not None and z is not None


class Model(nosuch_a.orm.Base):
    id = nosuch_a.orm.Column(nosuch_a.orm.Integer)

    def method(self):
        return self.session.query(1)


class Mixed(nosuch_a.Base, abc.ABC):
    pass


class Config(nosuch_a.RcParams):
    def __init__(self, theme):
        super().__init__()
        super().update(theme)
        self["key"] = 1


CONFIG = Config({"a": 1})
nosuch_a.settings["key"] = "value"
del nosuch_a.settings["key"]


class Meta(type):
    pass


class Real(metaclass=Meta):
    pass


class MixedMeta(nosuch_a.Base, Real):
    pass


class CombinedMeta(nosuch_a.ModelMetaclass, nosuch_a.orm.DeclarativeMeta):  # stubbed metaclasses
    def __new__(mcs, name, bases, namespace, **keywords):
        return super().__new__(mcs, name, bases, namespace, **keywords)

    def __init__(cls, name, bases, namespace, **keywords):
        nosuch_a.ModelMetaclass.__init__(cls, name, bases, namespace, **keywords)


class Generic(nosuch_a.orm.Select[int]):
    pass


class Specific(Generic[str]):  # a class made from a stub is generic too
    pass


class Table(nosuch_a.BaseModel, metaclass=CombinedMeta, registry=nosuch_a.registry()):
    __slots__ = ("__weakref__",)  # as over a slotted base
    id = 1


def test_subclassing_and_inherited_attributes():
    model = Model(1, name="x")
    assert model.method() is not None
    assert Model.objects.filter(id=1) is not None
    assert isinstance(Mixed(), abc.ABC) and isinstance(MixedMeta(), Real)
    assert type(Table) is CombinedMeta and Table(id=2).id == 1 and Table.columns is not None
    import weakref

    assert weakref.ref(Model(1)) is not None and weakref.ref(Table()) is not None


@nosuch_a.decorators.plain
def plain():
    return 1


@nosuch_a.decorators.with_arguments(retries=3)
def with_arguments():
    return 2


@nosuch_a.dataclass_like
class Decorated:
    value = 3


class Expression:
    def __init__(self, a, b):
        pass


@nosuch_a.ext.compiles(Expression)
def compile_expression(element, compiler):
    return "sql"


def test_decorators_return_what_they_decorate():
    assert plain() == 1 and with_arguments() == 2 and Decorated.value == 3
    assert compile_expression(1, 2) == "sql"  # a factory called with an existing class


def test_installed_version_of_a_stubbed_module():
    import importlib.metadata

    assert importlib.metadata.version("nosuch_a") == "99.0.0"
    try:
        importlib.metadata.version("never_imported_pkg")
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        raise AssertionError("metadata is only claimed for stubbed modules")


def test_context_managers_iteration_and_versions():
    with nosuch_a.session() as session:
        assert session is not None
    assert list(nosuch_a.rows()) == [] and len(nosuch_a.rows()) == 0
    assert "any.key" in nosuch_a.rcParams
    assert not isinstance(3, nosuch_a.ndarray) and not isinstance(3, (nosuch_a.Series, str))
    assert not issubclass(int, nosuch_a.ndarray)
    assert nosuch_a.linalg.norm.__name__ == "norm" and nosuch_a.linalg.norm.__doc__ == ""
    assert nosuch_a.__version__ >= "1.0"
    assert Version(nosuch_a.__version__) > Version("2.0")
    assert nosuch_a.thing + 1 is not None


fig, ax = nosuch_a.pyplot.subplots()
first, *middle, last = nosuch_a.load()
X_train, X_test, y_train, y_test = nosuch_a.split(nosuch_a.data(), test_size=0.2)
FRAME = nosuch_a.read_csv("data.csv")
FRAME["male"] = (FRAME["sex"] == "male").astype(int)
AS_FLOAT = nosuch_a.random.randint(0, 10, (2, 4)).astype(float)
AS_FLOAT[1, 2] = nosuch_a.nan
POWERS = 10 ** nosuch_a.arange(4), 2 % nosuch_a.array(), 1 << nosuch_a.array(), abs(nosuch_a.array())
QUOTIENT, REMAINDER = divmod(nosuch_a.array(), 3)
SEEN = []
for name in "abc":  # de-duplication: `in` compares by identity, never element-wise
    loaded = nosuch_a.load(name)
    if loaded not in SEEN:
        SEEN.append(loaded)

try:  # patsy: which `copy` keyword the installed numpy takes, asked explicitly of a dunder
    nosuch_a.array([1]).__array__(copy=None)
    COPY_IF_NEEDED = None
except (TypeError, AttributeError):
    COPY_IF_NEEDED = False


def test_unpacking_comparisons_and_builtin_arguments():
    assert fig is not ax and first is not last and middle == []
    assert all(part is not None for part in (X_train, X_test, y_train, y_test))
    assert [row for row in nosuch_a.rows()] == []  # a loop over a stand-in runs no times
    assert not isinstance(AS_FLOAT, type)  # float is astype's argument, not a decorated class
    assert (FRAME["age"] > 30).sum() is not None and (FRAME != 1).any() is not None
    assert nosuch_a.ndarray != 1 and not nosuch_a.ndarray == 1  # classes compare by identity
    assert len(POWERS) == 4 and QUOTIENT is not None and round(nosuch_a.array(), 2) is not None
    assert len(SEEN) == 3 and [1, FRAME].index(FRAME) == 1


def test_dtype_codes_are_strings_code_can_test():
    # `if data.dtype.kind in "OMm"`, run at import time to build sample data
    assert nosuch_a.asarray([1]).dtype.kind not in "OMmSU"
    assert nosuch_a.dtype("f8").char not in "fdg"
    assert nosuch_a.Series().dtype.kind.upper() == "?"  # a str, not a stand-in
    assert not isinstance(nosuch_a.spec.kind, str)  # other `kind` attributes stay stand-ins


def test_objects_holding_stand_ins_copy():
    import copy

    class Theme:
        def __init__(self):
            self.figure = nosuch_a.pyplot.figure()
            self.rc = {"font": nosuch_a.font_manager.FontProperties()}

    theme = Theme()
    copied = copy.deepcopy(theme)
    assert copied.figure is theme.figure and copy.copy(theme.rc)["font"] is theme.rc["font"]


def test_dunders_written_in_the_code_are_stand_ins_where_probes_find_nothing():
    assert COPY_IF_NEEDED is None
    assert not hasattr(nosuch_a.array(), "__array__")
    assert getattr(nosuch_a.decorated, "__wrapped__", None) is None
    assert nosuch_a.thing.__custom_protocol__() is not None
    unwrapped, steps = nosuch_a.decorated, 0
    while True:  # an unwrap loop of the project's own ends
        try:
            unwrapped, steps = unwrapped.__wrapped__, steps + 1
        except AttributeError:
            break
    assert steps == 1


@pytest.mark.skipif(nosuch_a.platform.is_windows(), reason="on windows")
def test_markers_with_stubbed_arguments():
    pass
"""


def test_stub_behaviours(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_behaviours=BEHAVIOURS)
    result = pytester.runpytest_subprocess("--testdock-stubs", "-p", "no:randomly")
    result.assert_outcomes(passed=9, skipped=1)
    output = result.stdout.str()
    assert "stubbed 3 module(s) that are not installed: nosuch_a, nosuch_b, nosuch_c" in output


def test_a_stand_in_reports_the_version_the_project_pins(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic's `import pydantic` checks that pydantic-core is the very version it requires
    (`pydantic-core==2.50.5`), and refused the stand-in's 99.0.0: its conftest failed to load,
    and the collection stage with it."""
    pytester.makeconftest("""
        import importlib.metadata
        import nosuch_core

        if nosuch_core.__version__ != "2.50.5" or importlib.metadata.version("nosuch-core") != "2.50.5":
            raise SystemError(f"nosuch-core {nosuch_core.__version__} is incompatible")
    """)
    pytester.makepyfile(test_a="import nosuch_other\n\n\ndef test_a():\n"
                               "    assert nosuch_other.__version__ == '99.0.0'\n")
    monkeypatch.setenv("TESTDOCK_STUB_VERSIONS", "nosuch-core=2.50.5,nosuch_core=2.50.5")
    pytester.runpytest_subprocess("--testdock-stubs").assert_outcomes(passed=1)
    monkeypatch.delenv("TESTDOCK_STUB_VERSIONS")
    refused = pytester.runpytest_subprocess("--testdock-stubs")
    assert "nosuch-core 99.0.0 is incompatible" in refused.stdout.str() + refused.stderr.str()


def test_without_stubs_the_imports_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_behaviours=BEHAVIOURS)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "ModuleNotFoundError: No module named 'nosuch_a'" in result.stdout.str()


def test_the_projects_own_code_is_imported_for_real(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("mypkg")
    (pytester.path / "mypkg" / "core.py").write_text("import nosuch_dep\nVALUE = 42\n")
    pytester.makepyfile(test_own="""
        import mypkg.core

        def test_real():
            assert mypkg.core.VALUE == 42
    """, test_missing="""
        import mypkg.missing_module

        def test_never():
            pass
    """, test_compiled="""
        from mypkg._speedups import add  # compiled from mypkg/_speedups.pyx in the real run

        def test_compiled():
            assert add is not None
    """)
    (pytester.path / "mypkg" / "_speedups.pyx").write_text("def add(a, b):\n    return a + b\n")
    result = pytester.runpytest_subprocess("--testdock-stubs", "-p", "no:randomly",
                                           "--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=1)
    assert "No module named 'mypkg.missing_module'" in result.stdout.str()


def test_named_modules_are_stubbed_even_when_installed(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTDOCK_STUB_IMPORTS", "1")
    monkeypatch.setenv("TESTDOCK_STUB_MODULES", "tomlkit")  # installed, and not imported by pytest
    pytester.makepyfile(test_named="""
        import tomlkit

        def test_tomlkit_is_a_stub():
            assert "stub" in repr(tomlkit.parse)
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_collection_through_a_stubbed_conftest(pytester: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTDOCK_STUB_IMPORTS", "1")
    pytester.makeconftest("import nosuch_framework\nfrom nosuch_framework.testing import client\n")
    pytester.makepyfile(test_one="""
        import pytest
        import nosuch_numeric as np

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_param(n):
            assert np.array([n]) is not None
    """)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == 0
    assert "3 tests collected" in result.stdout.str()


def test_parametrize_from_a_stub_is_predicted_to_differ(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_param="""
        import pytest
        import nosuch_numeric as np

        @pytest.mark.parametrize("n", np.arange(3))
        def test_from_stub(n):
            pass

        @pytest.mark.parametrize("n", [1, 2])
        def test_plain(n):
            pass
    """)
    result = pytester.runpytest_subprocess("--testdock-stubs", "--collect-only", "-q")
    output = result.stdout.str()
    assert "node ids will differ from the real collection: test_param.py::test_from_stub: " \
           "parametrized from nosuch_numeric.arange()" in output
    assert "test_plain: parametrized" not in output


def test_stubs_among_parameters_get_the_real_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ids="""
        import pytest
        import pandas as pd  # stubbed by name below: pd.NA is a known singleton
        import nosuch_numeric as np

        @pytest.mark.parametrize("func", [np.mean, pd.Index, pd.BLOB])  # by name
        def test_named(func):
            pass

        @pytest.mark.parametrize("data", [pd.DataFrame(), np.array([1])[0], pd.NA, None])
        def test_positional(data):  # instances and singletons: by position, as pytest names them
            pass
    """)
    result = pytester.runpytest_subprocess("--testdock-stub", "pandas", "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == ["test_ids.py::test_named[mean]", "test_ids.py::test_named[Index]",
                   "test_ids.py::test_named[BLOB]",
                   "test_ids.py::test_positional[data0]", "test_ids.py::test_positional[data1]",
                   "test_ids.py::test_positional[data2]", "test_ids.py::test_positional[None]"]
    assert "will differ" not in result.stdout.str()


def _collection_image_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the collection image sets it: stubs on, one declared dependency."""
    monkeypatch.setenv("TESTDOCK_STUB_IMPORTS", "1")
    monkeypatch.setenv("TESTDOCK_STUB_DEPENDENCIES", "nosuch_declared")


def test_optional_modules_outside_the_dependencies_stay_missing(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_optional="""
        import nosuch_required
        try:
            import nosuch_optional
            HAS_OPTIONAL = True
        except ImportError:
            HAS_OPTIONAL = False
        try:
            import nosuch_declared
            HAS_DECLARED = True
        except ImportError:
            HAS_DECLARED = False

        def _has_nested():
            if True:  # nested in a function and a block, as guarded imports often are
                try:
                    from nosuch_nested.sub import thing
                except (ValueError, ModuleNotFoundError):
                    return False
            return True

        if not HAS_OPTIONAL and not _has_nested():
            def test_only_without_optional():
                pass

        if HAS_DECLARED:
            def test_only_with_declared():
                pass
    """)
    _collection_image_environment(pytester, monkeypatch)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    ids = [line for line in result.outlines if "::" in line]
    assert ids == ["test_optional.py::test_only_without_optional",
                   "test_optional.py::test_only_with_declared"]
    output = result.stdout.str()
    assert "left missing, as optional" in output and "nosuch_optional" in output
    assert "nosuch_nested" in output
    assert "stubbed 2 module(s)" in output  # the required one, imported unguarded, and the declared one


def test_an_import_no_dependency_provides_fails_once_the_dependencies_are_all_known(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # what the real run fails on too: collection stops at it, where without the full list of
    # what the dependencies bring it was stubbed; what they bring (a dependency's dependency),
    # what is declared, and the project's own modules this image cannot import still pass
    pytester.makepyfile(test_undeclared="import nosuch_undeclared\n\ndef test_a():\n    pass\n",
                        test_brought="import nosuch_transitive\nimport nosuch_declared\n"
                                     "import ownext\n\ndef test_b():\n    pass\n")
    (pytester.path / "ownext.pyx").write_text("# a top-level module the project's build compiles\n")
    _collection_image_environment(pytester, monkeypatch)
    lenient = pytester.runpytest_subprocess("--collect-only", "-q")
    assert lenient.ret == 0, lenient.stdout.str()
    provided = pytester.path / "provided.txt"
    provided.write_text("nosuch_transitive\n")
    monkeypatch.setenv("TESTDOCK_STUB_PROVIDED", str(provided))
    strict = pytester.runpytest_subprocess("--collect-only", "-q")
    output = strict.stdout.str()
    assert strict.ret == 2, output
    assert "test_brought.py::test_b" in output and "test_undeclared.py::test_a" not in output
    assert "No module named 'nosuch_undeclared': no declared dependency provides it" in output
    assert "not verifiable" not in output
    # a helper deep in the tree, not on the import path (a docs folder's, imported by its conf.py):
    # missing, as in the real run, and no stand-in shadows the file when pytest collects it
    (pytester.path / "docs" / "zz").mkdir(parents=True)
    (pytester.path / "docs" / "zz" / "test_zz_helper.py").write_text("def test_helper():\n    pass\n")
    (pytester.path / "docs" / "test_a.py").write_text("import test_zz_helper\n")
    deep = pytester.runpytest_subprocess("--collect-only", "-q", "--continue-on-collection-errors", "docs")
    assert "No module named 'test_zz_helper' (the project's docs/zz/test_zz_helper.py is not on the " \
        "import path" in deep.stdout.str()
    assert "docs/zz/test_zz_helper.py::test_helper" in deep.stdout.str()  # collected, not shadowed


def test_probes_find_declared_dependencies_and_miss_the_rest(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_probe="""
        import importlib.util
        import pytest

        HAS_DECLARED = importlib.util.find_spec("nosuch_declared") is not None
        HAS_OTHER = importlib.util.find_spec("nosuch_other") is not None
        zarr = pytest.importorskip("nosuch_declared")

        @pytest.mark.parametrize("declared", [HAS_DECLARED])
        @pytest.mark.parametrize("other", [HAS_OTHER])
        def test_probed(declared, other):
            pass
    """)
    _collection_image_environment(pytester, monkeypatch)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    assert [line for line in result.outlines if "::" in line] == ["test_probe.py::test_probed[False-True]"]


def test_numpy_arithmetic_on_plain_numbers_gives_the_real_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_math="""
        import pytest
        import numpy as np

        @pytest.mark.parametrize("gcr,tilt", [(np.sqrt(2) / 2, 45), (np.sqrt(3), np.deg2rad(30)),
                                              (np.floor(2.5), np.abs(-3)), (np.float64(0.1), np.int64(7)),
                                              (np.square(1.1), np.rad2deg(np.pi / 3)),
                                              (np.abs(-1.5), np.square(3)), (np.ceil(-0.5), np.floor(3)),
                                              (np.sqrt(-1.0), np.floor(np.nan))])
        def test_angles(gcr, tilt):
            pass
    """)
    real = pytester.runpytest_subprocess("--collect-only", "-q")
    stubbed = pytester.runpytest_subprocess("--testdock-stub", "numpy", "--collect-only", "-q")
    ids = [line for line in stubbed.outlines if "::" in line]
    assert ids == [line for line in real.outlines if "::" in line]
    assert ids[0] == "test_math.py::test_angles[0.7071067811865476-45]" and len(ids) == 8
    assert "stubbed 1 module(s) that are not installed: numpy" in stubbed.stdout.str()


def test_warning_filters_naming_a_stubbed_dependency_resolve(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # as in the collection image, where a .pth file installs the stubs when Python starts: pytest
    # resolves its configuration's warning categories before it loads any plugin
    _collection_image_environment(pytester, monkeypatch)
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n"
                     "    ignore::nosuch_declared.exceptions.DeclaredWarning\n"
                     "    ignore::nosuch_declared.DeprecatedSince20\n"  # pydantic's name
                     "    ignore::nosuch_transitive.VisibleDeprecationWarning\n")  # not declared
    pytester.makepyfile(test_warned="""
        import warnings
        import nosuch_declared.exceptions

        def test_ignored():
            assert issubclass(nosuch_declared.exceptions.DeclaredWarning, Warning)
            warnings.warn("filtered", nosuch_declared.exceptions.DeclaredWarning)
            # its attributes are stand-ins; an enum member named Warning is no warning class
            assert nosuch_declared.exceptions.DeclaredWarning.category is not None
            assert nosuch_declared.Severity.Warning.value is not None
    """)
    early = "import testdock_pytest.collection.stubs as s; s.install_from_environment(); import pytest; "
    # (--assert=plain, as the image: no rewriting of the plugin the early import brought in)
    result = pytester.run(sys.executable, "-c", early + "raise SystemExit(pytest.main(['-q', "
                          "'--assert=plain', '-p', 'no:cacheprovider']))")
    assert result.ret == 0, result.stdout.str()[-2000:]
    late = pytester.run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert late.ret != 0 and "nosuch_declared" in late.stdout.str() + late.stderr.str()


def test_a_package_importing_a_submodule_of_a_stubbed_dependency_gets_it(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _collection_image_environment(pytester, monkeypatch)
    site = pytester.mkdir("site")
    (site / "fakelib").mkdir()
    # colorcet: `if find_spec("matplotlib"): from matplotlib.colors import ListedColormap`
    (site / "fakelib" / "__init__.py").write_text(
        "from importlib.util import find_spec\n"
        "if find_spec('nosuch_declared'):\n    from nosuch_declared.colors import ListedColormap\n"
        "else:\n    ListedColormap = None\n"
        "try:\n    import nosuch_other.extra\nexcept ImportError:\n    OTHER = None\n"
        "from nosuch_undeclared.sub import thing\n"  # stubbed by the project's own import below
        # numba: `try: import scipy.linalg.cython_blas except ImportError` means no BLAS
        "try:\n    import nosuch_declared.linalg.cython_blas\n    BLAS = True\n"
        "except ImportError:\n    BLAS = False\n")
    pytester.makeconftest(f"""
        import sys
        from testdock_pytest.collection import stubs
        stubs._INSTALLED_CODE = ({str(site)!r},)  # fakelib stands for an installed package
        sys.path.insert(0, {str(site)!r})
    """)
    pytester.makepyfile(test_lib="""
        import nosuch_declared
        import nosuch_undeclared  # not declared, yet stubbed: the project's import is unguarded
        import fakelib

        def test_the_package_took_the_present_path():
            assert fakelib.ListedColormap is not None and fakelib.OTHER is None
            assert fakelib.BLAS is False  # a guarded probe of a submodule still finds it missing
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_declared_part_of_a_namespace_package_is_stubbed_beside_real_parts(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # zipp: it declares jaraco.itertools (installed for real, light) and jaraco.test (not): the
    # real `jaraco` namespace made `jaraco.test` a submodule of real code, never stubbed, and two
    # of its test modules "failed" collection in a stage that must not cry wolf
    (pytester.path / "nsreal" / "realpart").mkdir(parents=True)
    (pytester.path / "nsreal" / "realpart" / "__init__.py").write_text("VALUE = 1\n")
    pytester.makepyfile(test_namespace="""
        import nsreal.realpart
        from nsreal.declaredpart.cpython import from_test_support, try_import

        os_helper = try_import("os_helper") or from_test_support("FakePath", "temp_dir")

        def test_a():
            pass
    """)
    _collection_image_environment(pytester, monkeypatch)
    monkeypatch.setenv("TESTDOCK_STUB_DEPENDENCIES", "nosuch_declared,nsreal_declaredpart")
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    assert "test_namespace.py::test_a" in result.stdout.str()
    undeclared = pytester.makepyfile(test_other="import nsreal.undeclared\n\ndef test_b():\n    pass\n")
    other = pytester.runpytest_subprocess("--collect-only", "-q", str(undeclared))
    assert other.ret == 2 and "nsreal.undeclared" in other.stdout.str()


def test_installed_code_going_without_a_declared_dependency_not_installed_here_is_not_an_error(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # fastapi: starlette, installed for real, imports httpx2 (declared, left out of this image by
    # the light budget) and, without it, warns that httpx is deprecated; `filterwarnings = error`
    # made that a collection error of 495 test files the real run collects
    _collection_image_environment(pytester, monkeypatch)
    site = pytester.mkdir("site")
    (site / "warnlib.py").write_text(
        "try:\n    import nosuch_declared as client\nexcept ImportError:\n    import warnings\n"
        "    warnings.warn('install nosuch_declared: the fallback is deprecated', DeprecationWarning)\n")
    (site / "needlib.py").write_text("import nosuch_declared\n")
    (site / "badlib.py").write_text("import nosuch_undeclared_elsewhere\n")
    pytester.makeconftest(f"""
        import sys
        from testdock_pytest.collection import stubs
        stubs._INSTALLED_CODE = ({str(site)!r},)  # these stand for installed packages
        sys.path.insert(0, {str(site)!r})
    """)
    pytester.makepyfile(test_warned="import warnlib\n\ndef test_a():\n    pass\n",
                        test_needed="import needlib\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-rs", "-W", "error::DeprecationWarning")
    output = result.stdout.str()
    assert result.ret == 0, output
    assert output.count("not verifiable without nosuch_declared (declared, not installed here)") == 2
    pytester.makepyfile(test_broken="import badlib\n\ndef test_c():\n    pass\n")
    broken = pytester.runpytest_subprocess("--collect-only", "-q", "-W", "error::DeprecationWarning")
    assert broken.ret == 2 and "nosuch_undeclared_elsewhere" in broken.stdout.str()  # a real error still


def test_an_extension_modules_source_folder_is_not_taken_for_the_module(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """ujson: its extension module `ujson` is compiled from src/ujson/*.c; in the collection image
    (not compiled, src/ on the path) `import ujson` found that folder as an empty namespace
    package, and `ujson.JSONDecodeError` in a parametrize list failed the stage. A folder holding
    Python modules stays the namespace package it is."""
    (pytester.path / "src" / "fastjson").mkdir(parents=True)
    (pytester.path / "src" / "fastjson" / "fastjson.c").write_text("/* the module */\n")
    (pytester.path / "src" / "fastjson" / "fastjson.h").write_text("\n")
    (pytester.path / "src" / "nspkg").mkdir()
    (pytester.path / "src" / "nspkg" / "util.py").write_text("VALUE = 1\n")
    (pytester.path / "src" / "nspkg" / "helper.c").write_text("\n")
    (pytester.path / "src" / "mixed" / "core").mkdir(parents=True)  # Python only below it
    (pytester.path / "src" / "mixed" / "_speed.c").write_text("\n")
    (pytester.path / "src" / "mixed" / "core" / "__init__.py").write_text("VALUE = 2\n")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path / "src"))
    pytester.makepyfile(test_json="""
        import pytest
        import fastjson
        import nspkg.util
        import mixed.core

        @pytest.mark.parametrize("error", [fastjson.JSONDecodeError])
        def test_decode(error):
            assert nspkg.util.VALUE == 1
            assert mixed.core.VALUE == 2
    """)
    result = pytester.runpytest_subprocess("--testdock-stubs")
    result.assert_outcomes(passed=1)
    assert "stubbed 1 module(s) that are not installed: fastjson" in result.stdout.str()


def test_a_plugin_importing_a_declared_dependency_gets_it_a_probing_one_does_not(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """scrapy: pytest-twisted (installed for real: a pytest plugin) imports Twisted, which it does
    not declare and the collection image does not install; pytest stopped while loading it (exit
    3, no test collected). The project declares Twisted: the real run has it."""
    _collection_image_environment(pytester, monkeypatch)
    site = pytester.mkdir("site")
    (site / "fakeplugin.py").write_text(
        "import importlib.util\n"
        "from nosuch_declared.internet import defer\n"
        "try:\n    import nosuch_declared_too\nexcept ImportError:\n    PROBED = None\n"
        "else:\n    PROBED = True\n"
        # testdock's own plugin asks so whether xdist is there
        "FOUND = importlib.util.find_spec('nosuch_declared_too')\n")
    monkeypatch.setenv("TESTDOCK_STUB_DEPENDENCIES", "nosuch_declared,nosuch_declared_too")
    pytester.makeconftest(f"""
        import sys
        from testdock_pytest.collection import stubs
        stubs._INSTALLED_CODE = ({str(site)!r},)  # fakeplugin stands for an installed plugin
        sys.path.insert(0, {str(site)!r})
        pytest_plugins = ["fakeplugin"]
    """)
    pytester.makepyfile(test_plugin="""
        import fakeplugin

        def test_loaded():
            assert fakeplugin.defer is not None
            assert fakeplugin.PROBED is None  # its guarded import still finds the module missing
            assert fakeplugin.FOUND is None  # and so does its probe
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
