"""A project that runs its tests with `unittest discover`, under file names pytest's defaults miss
(mkdocs's `*_tests.py`): its command gives pytest's testpaths and python_files."""

from __future__ import annotations

from pathlib import Path

import pytest

from testdock.images.initialize import InitOptions, apply, plan
from testdock.project.pyproject import read_toml
from testdock.project.unittestdiscovery import find, parse, pytest_settings_for


@pytest.mark.parametrize(("rest", "expected"), [
    (' -s mkdocs -p "*tests.py"', ("mkdocs", "*tests.py")),
    (" --start-directory src/ --pattern '*_tests.py' -v", ("src", "*_tests.py")),
    (" tests 'check_*.py'", ("tests", "check_*.py")),
    ("", (".", "test*.py")),
    (' -s "$TESTS"', None),
    ('", "-s", "lib", "-p", "*tests.py")', ("lib", "*tests.py")),  # a nox session's arguments
    (" -s tests && coverage report", ("tests", "test*.py")),
    (' -s tests -p "*_tests.py" {posargs}', ("tests", "*_tests.py")),
    (" -k fast -s tests $(ARGS)", ("tests", "test*.py")),
])
def test_the_commands_start_folder_and_pattern_are_read(rest: str, expected: tuple[str, str] | None) -> None:
    assert parse(rest) == expected


def _mkdocs_like(root: Path, command_file: str, command: str) -> None:
    (root / "pkg" / "tests").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "tests" / "__init__.py").write_text("")
    (root / "pkg" / "tests" / "build_tests.py").write_text(
        "import unittest\n\n\nclass BuildTests(unittest.TestCase):\n    def test_one(self):\n        pass\n")
    (root / command_file).parent.mkdir(parents=True, exist_ok=True)
    (root / command_file).write_text(command)


@pytest.mark.parametrize(("command_file", "command"), [
    ("pyproject.toml", "[project]\nname = 'pkg'\nversion = '1'\n[tool.hatch.envs.test.scripts]\n"
                       "test = 'python -m unittest discover -s pkg -p \"*tests.py\"'\n"),
    ("tox.ini", "[testenv]\ncommands = python -m unittest discover -s pkg -p '*tests.py'\n"),
    ("noxfile.py", "import nox\n\n@nox.session\ndef tests(session):\n"
                   "    session.run('python', '-m', 'unittest', 'discover',\n"
                   "                '-s', 'pkg', '-p', '*tests.py')\n"),
    (".github/workflows/ci.yml", "jobs:\n  test:\n    steps:\n"
                                 "      - run: python -m unittest discover -s pkg -p '*tests.py'\n"),
])
def test_the_command_is_found_where_projects_keep_it(tmp_path: Path, command_file: str, command: str) -> None:
    _mkdocs_like(tmp_path, command_file, command)
    found = find(tmp_path)
    assert found is not None
    assert (found.start, found.pattern, found.where) == ("pkg", "*tests.py", command_file)
    settings = pytest_settings_for(tmp_path)
    assert settings is not None
    assert settings[1] == {"testpaths": ["pkg"], "python_files": ["*tests.py", "test_*.py", "*_test.py"]}


def test_nothing_is_set_where_pytests_own_patterns_find_the_tests(tmp_path: Path) -> None:
    _mkdocs_like(tmp_path, "tox.ini", "[testenv]\ncommands = python -m unittest discover -s pkg\n")
    (tmp_path / "pkg" / "tests" / "test_more.py").write_text("def test_x():\n    pass\n")
    assert pytest_settings_for(tmp_path) is None


def test_init_writes_pytests_settings_where_the_project_has_none(tmp_path: Path) -> None:
    _mkdocs_like(tmp_path, "pyproject.toml",
                 "[project]\nname = 'pkg'\nversion = '1'\n[tool.hatch.envs.test.scripts]\n"
                 "test = 'python -m unittest discover -s pkg -p \"*tests.py\"'\n")
    project, planned, warnings = plan(tmp_path, InitOptions(base_image="python:3.11-slim"))
    assert project.test_paths == ("pkg",)
    assert not any("no test files" in warning for warning in warnings)
    apply(tmp_path, planned)
    options = read_toml(tmp_path / "pyproject.toml")["tool"]["pytest"]["ini_options"]
    assert options["python_files"][0] == "*tests.py" and options["testpaths"] == ["pkg"]
    # a second init reads them as the project's own: nothing more is written
    again = plan(tmp_path, InitOptions(base_image="python:3.11-slim"))
    assert again[0].unittest_settings is None and again[0].test_paths == ("pkg",)
    assert read_toml(tmp_path / "pyproject.toml")["tool"]["pytest"]["ini_options"] == options


def test_a_projects_own_pytest_settings_are_never_replaced(tmp_path: Path) -> None:
    _mkdocs_like(tmp_path, "tox.ini",
                 "[testenv]\ncommands = python -m unittest discover -s pkg -p '*tests.py'\n"
                 "[pytest]\naddopts = -ra\n")
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='pkg')\n")
    project, planned, _ = plan(tmp_path, InitOptions(base_image="python:3.11-slim"))
    assert project.unittest_settings is None
    apply(tmp_path, planned)
    assert "pytest" not in read_toml(tmp_path / "pyproject.toml")["tool"]


def test_init_writes_them_where_the_project_has_testdocks_settings_already(tmp_path: Path) -> None:
    _mkdocs_like(tmp_path, "pyproject.toml",
                 "[project]\nname = 'pkg'\nversion = '1'\n[tool.testdock]\nproject = 'pkg'\n"
                 "[tool.hatch.envs.test.scripts]\n"
                 "test = 'python -m unittest discover -s pkg -p \"*tests.py\"'\n")
    apply(tmp_path, plan(tmp_path, InitOptions(base_image="python:3.11-slim"))[1])
    assert read_toml(tmp_path / "pyproject.toml")["tool"]["pytest"]["ini_options"]["testpaths"] == ["pkg"]
