"""Conftests with py.path hook arguments (wrapt's, boltons's) keep the images on pytest 8, where
the project does not choose its pytest itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from testdock.images.phases import holds_pytest_back, requirement_set
from testdock.project.inspection import inspect_project
from testdock.project.legacyhooks import py_path_hook_files
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


def test_such_a_project_gets_pytest_8_unless_it_names_its_own(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": '[project]\nname = "old"\nversion = "1"\n',
                          "old/__init__.py": "", "tests/conftest.py": WRAPT, "tests/test_old.py": ""})
    project = inspect_project(tmp_path)
    assert project.py_path_hooks == ("tests/conftest.py",) and holds_pytest_back(project)
    for phase in ("collection", "execution", "backend"):
        chosen = requirement_set(phase, project, Settings())
        assert [r for r in chosen if r.startswith("pytest") and "-" not in r] == ["pytest<9,>=8"], chosen
    own = replace(project, test_dependencies=("pytest>=7",))
    assert not holds_pytest_back(own)
    assert "pytest>=7" in requirement_set("execution", own, Settings())
    modern = replace(project, py_path_hooks=())
    assert "pytest>=8" in requirement_set("execution", modern, Settings())
