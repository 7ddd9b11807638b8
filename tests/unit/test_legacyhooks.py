"""What pytest 9 refuses (conftests with py.path hook arguments: wrapt's, boltons's; marks on
fixtures: seaborn's) keeps the images on pytest 8, where the project did not choose pytest 9."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from testdock.images.phases import pytest_ceiling, requirement_set
from testdock.project.inspection import inspect_project
from testdock.project.legacyhooks import marked_fixture_files, py_path_hook_files
from testdock.project.settings import Settings
from tests.conftest import write_tree

WRAPT = "def pytest_pycollect_makemodule(path, parent):\n    return None\n"
BOLTONS = "def pytest_ignore_collect(path, config):\n    return False\n"
MODERN = ("def pytest_ignore_collect(collection_path, config):\n    return False\n\n"
          "def pytest_collect_file(file_path, parent):\n    return None\n\n"
          "def pytest_report_header(config, start_path):\n    return []\n\n"
          "def pytest_runtest_setup(item):\n    path = item.path\n")


def test_conftests_with_py_path_hook_arguments_are_found(tmp_path: Path) -> None:
    write_tree(tmp_path, {"conftest.py": MODERN, "tests/conftest.py": WRAPT, "tests/sub/conftest.py": BOLTONS,
                          "tests/modern/conftest.py": MODERN, "docs/conftest.py": WRAPT})
    assert py_path_hook_files(tmp_path, ["tests"]) == ["tests/conftest.py", "tests/sub/conftest.py"]
    assert py_path_hook_files(tmp_path, ["tests/modern"]) == []


def test_such_a_project_gets_pytest_8_unless_it_chose_pytest_9(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": '[project]\nname = "old"\nversion = "1"\n',
                          "old/__init__.py": "", "tests/conftest.py": WRAPT, "tests/test_old.py": ""})
    project = inspect_project(tmp_path)
    assert project.py_path_hooks == ("tests/conftest.py",) and pytest_ceiling(project) == "9"
    for phase in ("collection", "execution", "backend"):
        chosen = requirement_set(phase, project, Settings())
        assert [r for r in chosen if r.startswith("pytest") and "-" not in r] == ["pytest<9,>=8"], chosen
    own = replace(project, test_dependencies=("pytest>=7",))  # admits 8: held below 9 too
    assert pytest_ceiling(own) == "9" and "pytest<9,>=7" in requirement_set("execution", own, Settings())
    chose_9 = replace(project, test_dependencies=("pytest>=9",))
    assert pytest_ceiling(chose_9) is None
    assert "pytest>=9" in requirement_set("execution", chose_9, Settings())
    modern = replace(project, py_path_hooks=())
    assert "pytest>=8" in requirement_set("execution", modern, Settings())


SEABORN = '''
class TestVectorPlotter:

    @pytest.fixture(
        params=itertools.product(
            [None, np.nan],
            ["numeric", "category"],
        )
    )
    @pytest.mark.parametrize("NA,var_type")
    def comp_data_missing_fixture(self, request):
        return request.param
'''
MARK_ABOVE = ("from pytest import fixture, mark\n\n@mark.slow\n# a comment\n\n@fixture\n"
              "def data():\n    return 1\n")
UNMARKED = ('''@pytest.fixture(params=[1, 2])
def number(request):
    return request.param


@pytest.mark.parametrize("value", [1, 2])
def test_value(value, number):
    assert value
''')


def test_test_files_that_mark_a_fixture_are_found(tmp_path: Path) -> None:
    write_tree(tmp_path, {"tests/test_base.py": SEABORN, "tests/test_above.py": MARK_ABOVE,
                          "tests/test_plain.py": UNMARKED, "docs/test_doc.py": SEABORN})
    assert marked_fixture_files(tmp_path, ["tests"]) == ["tests/test_above.py", "tests/test_base.py"]


def test_a_project_marking_fixtures_gets_pytest_8_within_its_own_requirement(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": '[project]\nname = "sea"\nversion = "1"\n'
                                            '[project.optional-dependencies]\ndev = ["pytest>=7", "numpy"]\n',
                          "sea/__init__.py": "", "tests/test_base.py": SEABORN})
    project = inspect_project(tmp_path)
    assert project.marked_fixtures == ("tests/test_base.py",) and pytest_ceiling(project) == "9"
    chosen = requirement_set("execution", project, Settings())
    assert [r for r in chosen if r.startswith("pytest") and "-" not in r] == ["pytest<9,>=7"], chosen
    chose_9 = replace(project, test_dependencies=("pytest>=9",))
    assert pytest_ceiling(chose_9) is None
    assert "pytest>=9" in requirement_set("execution", chose_9, Settings())


BLACK_PLUGIN = '''
def pytest_configure(config: "Config") -> None:
    raw_ot_ini: Any = config.inicfg.get("optional-tests")
'''


def test_a_plugin_reading_inicfg_under_warnings_as_errors_gets_pytest_9_0(tmp_path: Path) -> None:
    """black 26.10: its tests/optional.py reads config.inicfg, which pytest 9.1 deprecates, and its
    `filterwarnings = ["error"]` made that an INTERNALERROR before the first test."""
    pyproject = ('[project]\nname = "fmt"\nversion = "1"\n'
                 '[project.optional-dependencies]\ntests = ["pytest>=7"]\n')
    strict = '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n'
    write_tree(tmp_path, {"pyproject.toml": pyproject + strict, "fmt/__init__.py": "",
                          "tests/optional.py": BLACK_PLUGIN, "tests/test_fmt.py": ""})
    project = inspect_project(tmp_path)
    assert project.inicfg_readers == ("tests/optional.py",) and pytest_ceiling(project) == "9.1"
    assert "pytest<9.1,>=7" in requirement_set("execution", project, Settings())
    # without warnings as errors, the deprecation is only a warning: the newest pytest
    (tmp_path / "pyproject.toml").write_text(pyproject)
    relaxed = inspect_project(tmp_path)
    assert relaxed.inicfg_readers == () and pytest_ceiling(relaxed) is None
    assert "pytest>=7" in requirement_set("execution", relaxed, Settings())


def test_a_lock_pinning_a_newer_pytest_wins_over_what_the_files_look_like(tmp_path: Path) -> None:
    """The project tests with the pytest its lock pins: the images stay on it, not below it."""
    write_tree(tmp_path, {"pyproject.toml": '[project]\nname = "sea"\nversion = "1"\n',
                          "sea/__init__.py": "", "tests/test_base.py": SEABORN,
                          "uv.lock": ('version = 1\n\n[[package]]\nname = "pytest"\nversion = "9.0.2"\n'
                                      'source = { registry = "https://pypi.org/simple" }\n')})
    assert pytest_ceiling(inspect_project(tmp_path)) is None
    (tmp_path / "uv.lock").write_text('version = 1\n\n[[package]]\nname = "pytest"\nversion = "8.3.5"\n'
                                      'source = { registry = "https://pypi.org/simple" }\n')
    assert pytest_ceiling(inspect_project(tmp_path)) == "9"
