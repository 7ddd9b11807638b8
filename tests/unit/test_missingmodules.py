"""Naming every module the tests import that an image lacks, from a failed run's output and the
test files' imports."""

from __future__ import annotations

from pathlib import Path

from testdock.run.missingmodules import (
    OutputScanner,
    declared_owners,
    hint,
    local_hint,
    project_modules,
    third_party_imports,
)
from testdock_pytest.collection.importnames import module_names

PYTEST_CONFIG_ERROR = """\
  File "/opt/venv/lib/python3.11/site-packages/_pytest/config/__init__.py", in apply_warning_filters
pytest.PytestConfigWarning: Failed to import filter module 'trio': ignore: trio.MultiError is deprecated
"""
COLLECTION_ERROR = """\
_______________ ERROR collecting tests/test_app.py _______________
E   ModuleNotFoundError: No module named 'uvicorn.config'
"""
PLUGIN_ERROR = 'ImportError: Error importing plugin "pytest_asyncio": No module named \'pytest_asyncio\'\n'


def named_in_output(text: str) -> set[str]:
    return set(OutputScanner().feed(text).missing)


def test_the_output_names_missing_modules_in_each_way_pytest_says_it() -> None:
    assert named_in_output(PYTEST_CONFIG_ERROR) == {"trio"}
    assert named_in_output(COLLECTION_ERROR) == {"uvicorn"}
    assert named_in_output(PLUGIN_ERROR) == {"pytest_asyncio"}
    assert named_in_output("1 failed: AssertionError: no module named here\n") == set()


def test_the_tests_third_party_imports_leave_out_the_standard_library_and_the_projects_own(
        tmp_path: Path) -> None:
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "__init__.py").write_text("")
    tests = tmp_path / "tests"
    (tests / "helpers").mkdir(parents=True)
    (tests / "helpers" / "__init__.py").write_text("")
    (tests / "conftest.py").write_text("import os\nimport trustme\nimport shop\nfrom helpers import make\n")
    (tests / "test_app.py").write_text(
        "import json\nimport uvicorn\nimport trustme\nfrom . import sibling\n"
        "try:\n    import optional_thing\nexcept ImportError:\n    optional_thing = None\n"
        "def test_x():\n    import lazily_imported\n")
    assert third_party_imports(tmp_path, ["tests"], ["src"]) == {
        "trustme": "tests/conftest.py", "uvicorn": "tests/test_app.py"}


def test_the_hint_names_every_module_and_the_distributions_to_install() -> None:
    lines = hint("execution", {"sklearn": "tests/test_model.py", "trio": None})
    assert "2 module(s) the execution image does not have: sklearn (tests/test_model.py), trio" in lines[0]
    assert 'extra_requirements = ["scikit-learn", "trio"]' in lines[1]
    # a name the known table does not map is the module's: said, as a guess to check
    assert lines[2].startswith("testdock: trio: named after the module; check the distribution's name")
    assert len(hint("execution", {"sklearn": None})) == 2
    assert hint("execution", {}) == []


def test_a_streamed_output_names_the_file_pytest_was_importing() -> None:
    scanner = OutputScanner()
    # chunks cut lines anywhere
    for chunk in ["____ ERROR collecting tests/test_plo", "ts.py ____\nE   ModuleNotFoundError: No mod",
                  "ule named 'matplotlib.pyplot'\n",
                  "ImportError while loading conftest '/app/tests/conftest.py'.\n",
                  "E   ModuleNotFoundError: No module named 'trustme'\n",
                  "_________ test_smooth _________\n", "E   ModuleNotFoundError: No module named 'skmisc'\n"]:
        scanner.feed(chunk)
    # a test's failure says no file: skmisc is not the conftest's
    assert scanner.missing == {"matplotlib": "tests/test_plots.py", "trustme": "/app/tests/conftest.py",
                               "skmisc": None}


def test_a_scikit_is_imported_by_its_short_name() -> None:
    assert {"skmisc", "scikit_misc"} <= module_names("scikit-misc")
    assert "skrf" in module_names("scikit-rf")


def test_a_module_one_of_the_projects_extras_provides_is_installed_as_the_project_declares_it() -> None:
    # plotnine: `extra = ["scikit-misc>=0.5.1", ...]`, its smoothing tests import skmisc
    optional = [("scikit-misc>=0.5.1", "extra 'extra'"), ("h2>=3,<5", "extra 'http2'"),
                ("not a requirement ((", "extra 'broken'")]
    declared = declared_owners({"skmisc", "h2", "pytz"}, optional)
    assert declared == {"skmisc": ("scikit-misc>=0.5.1", "extra 'extra'"),
                        "h2": ("h2>=3,<5", "extra 'http2'")}
    lines = hint("execution", {"skmisc": None, "pytz": None}, declared)
    assert 'extra_requirements = ["pytz", "scikit-misc>=0.5.1"]' in lines[1]
    assert "testdock: skmisc: the project declares scikit-misc>=0.5.1 in its extra 'extra'" in lines
    assert lines[-1].startswith("testdock: pytz: named after the module")  # skmisc is no guess now


# what pytest says when a plugin the tests use is absent, in each of its four forms
PLUGINLESS_RUN = """\
E       'django_db' not found in `markers` configuration option
E       fixture 'mocker' not found
>       available fixtures: cache, capfd, ..., tmp_path
  PytestUnknownMarkWarning: Unknown pytest.mark.asyncio - is this a typo?
PytestConfigWarning: Unknown config option: asyncio_mode
E       fixture 'client' not found
E       fixture 'my_own_fixture' not found
ERROR: usage: pytest [options] [file_or_dir] [file_or_dir] [...]
pytest: error: unrecognized arguments: --reuse-db --benchmark-disable=yes --my-own-flag
"""


def test_unknown_fixtures_markers_and_options_name_the_plugin_that_defines_them() -> None:
    scanner = OutputScanner()
    for start in range(0, len(PLUGINLESS_RUN), 17):  # streamed in chunks that cut lines
        scanner.feed(PLUGINLESS_RUN[start:start + 17])
    scanner.feed("\n")
    # `client` could be pytest-django's or pytest-flask's, `my_own_fixture` anyone's: not listed
    assert scanner.plugins == {"pytest-django": "marker django_db", "pytest-mock": "fixture mocker",
                               "pytest-asyncio": "marker asyncio",
                               "pytest-benchmark": "option --benchmark-disable"}
    assert scanner.missing == {}


def test_django_tests_run_without_pytest_django_name_it() -> None:
    """django-filter runs its Django test cases with runtests.py: under plain pytest every one
    fails on unconfigured settings."""
    scanner = OutputScanner().feed(
        "E   django.core.exceptions.ImproperlyConfigured: Requested setting INSTALLED_APPS, but settings "
        "are not configured. You must either define the environment variable DJANGO_SETTINGS_MODULE or "
        "call settings.configure() before accessing settings.\n")
    assert list(scanner.plugins) == ["pytest-django"]
    assert "DJANGO_SETTINGS_MODULE" in scanner.plugins["pytest-django"]


def test_the_hint_installs_missing_plugins_as_the_project_declares_them() -> None:
    plugins = {"pytest-django": "marker django_db", "pytest-mock": "fixture mocker"}
    declared = declared_owners({"trio"}, [("pytest-Django>=4.5", "group 'test'")], plugins)
    assert declared == {"pytest-django": ("pytest-Django>=4.5", "group 'test'")}
    lines = hint("execution", {"trio": None}, declared, plugins)
    assert lines[0].endswith("1 module(s) the execution image does not have: trio")
    assert lines[1].endswith("2 pytest plugin(s) the execution image does not have: "
                             "marker django_db (pytest-django), fixture mocker (pytest-mock)")
    assert 'extra_requirements = ["pytest-Django>=4.5", "pytest-mock", "trio"]' in lines[2]
    assert "testdock: pytest-django: the project declares pytest-Django>=4.5 in its group 'test'" in lines
    assert len(hint("execution", {}, None, {"pytest-mock": "fixture mocker"})) == 2


def test_a_module_of_the_projects_own_tree_is_never_a_distribution_to_install(tmp_path: Path) -> None:
    """dill's tests import their siblings by a bare name (`import test_mixins`), as its own
    runner allows: the summary told to install `test_mixins` from PyPI. They are named as the
    project's own, with pytest's `pythonpath` setting, and left out of the requirements line."""
    for relative in ("dill/tests/__init__.py", "dill/tests/test_mixins.py", "dill/tests/helpers/__init__.py",
                     ".venv/lib/attr/__init__.py", "docs/notes/__init__.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")

    own = project_modules(tmp_path, ["test_mixins", "helpers", "attr", "notes"])

    assert own == {"test_mixins": "dill/tests/test_mixins.py", "helpers": "dill/tests/helpers"}
    lines = local_hint(own)
    assert "2 module(s) of the project's own tree" in lines[0]
    assert "test_mixins (dill/tests/test_mixins.py)" in lines[0]
    assert "pythonpath = dill/tests" in lines[1]
    assert local_hint({}) == []


def test_a_module_inside_a_package_of_the_project_is_not_its_bare_name(tmp_path: Path) -> None:
    """sqlglot's tests `import duckdb` (the database, a test dependency); its own
    sqlglot/dialects/duckdb.py is `sqlglot.dialects.duckdb`: the hint said to put sqlglot/dialects
    on pytest's path instead of installing duckdb."""
    for relative in ("sqlglot/__init__.py", "sqlglot/dialects/__init__.py", "sqlglot/dialects/duckdb.py",
                     "tests/__init__.py", "tests/test_executor.py"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")
    (tmp_path / "tests" / "test_executor.py").write_text("import duckdb\nimport sqlglot\n")

    assert project_modules(tmp_path, ["duckdb", "sqlglot", "dialects"]) == {"sqlglot": "sqlglot"}
    assert third_party_imports(tmp_path, ["tests"], ["."]) == {"duckdb": "tests/test_executor.py"}


def test_modules_the_tests_output_only_mentions_are_not_missing() -> None:
    """sphinx's autodoc tests warn of `missing_module` by design; its 16 unrelated failures made
    testdock ask for ten modules no one could install."""
    output = """\
_________________________ test_coverage_ignore_pyobjects _________________________
E       AssertionError: assert 'WARNING: failed to import module; No module named 'errmod'' == ''
----------------------------- Captured stdout call -----------------------------
WARNING: autodoc: failed to import module 'need_mocks'; No module named 'missing_module'
________________________________ test_lazy_import ________________________________
E   ModuleNotFoundError: No module named 'trustme'
    raise ModuleNotFoundError("No module named 'mentioned_in_a_traceback'")
FAILED tests/test_c.py::test_d - ModuleNotFoundError: No module named 'zstandard'
ImportError: No module named 'native_style'
"""
    assert named_in_output(output) == {"trustme", "zstandard", "native_style"}
