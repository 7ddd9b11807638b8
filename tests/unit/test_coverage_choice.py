"""Coverage in the execution phase: measured when the project measures it, or the setting says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testdock.images.phases import default_command
from testdock.project.inspection import inspect_project
from testdock.project.settings import load_settings
from tests.conftest import write_tree

PYPROJECT = '[project]\nname = "demo"\nversion = "1"\n'


def _command(root: Path) -> list[str]:
    return default_command("execution", inspect_project(root), load_settings(root))


@pytest.mark.parametrize(("files", "measured"), [
    ({}, False),
    ({".coveragerc": "[run]\nbranch = True\n"}, True),
    ({"pyproject.toml": PYPROJECT + "[tool.coverage.run]\nbranch = true\n"}, True),
    ({"pyproject.toml": PYPROJECT + '[tool.pytest.ini_options]\naddopts = "-ra --cov=demo"\n'}, True),
    ({"pyproject.toml": PYPROJECT + '[tool.pytest.ini_options]\naddopts = ["-ra", "--cov"]\n'}, True),
    ({"setup.cfg": "[tool:pytest]\naddopts = --cov=demo --cov-report=term\n"}, True),
    ({"tox.ini": "[coverage:run]\nsource = demo\n"}, True),
    ({"pytest.ini": "[pytest]\naddopts = -ra\n"}, False),
    # pytest 9's own TOML settings: the table of pyproject.toml and pytest.toml
    ({"pyproject.toml": PYPROJECT + '[tool.pytest]\naddopts = ["--cov=demo"]\n'}, True),
    ({"pytest.toml": '[pytest]\naddopts = ["-ra", "--cov"]\n'}, True),
    # only the file pytest reads counts: pytest.ini shadows setup.cfg's options
    ({"pytest.ini": "[pytest]\naddopts = -ra\n", "setup.cfg": "[tool:pytest]\naddopts = --cov\n"}, False),
])
def test_coverage_is_measured_only_where_the_project_measures_it(
        tmp_path: Path, files: dict[str, str], measured: bool) -> None:
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT, "demo/__init__.py": "", "tests/test_a.py": "",
                          **files})
    command = _command(tmp_path)
    assert any(argument == "--cov" or argument.startswith("--cov=") for argument in command) is measured
    assert ("--cov-report=xml:test-results/coverage.xml" in command) is measured


@pytest.mark.parametrize("files", [
    {"pyproject.toml": PYPROJECT + '[tool.coverage.run]\ninclude = ["demo/*", "tests/*"]\n'},
    {".coveragerc": "[run]\nsource = demo\n"},
    {"setup.cfg": "[coverage:run]\nsource_pkgs = demo\n"},
    {"tox.ini": "[coverage:run]\ninclude = demo/*\n"},
])
def test_a_coverage_configuration_that_says_what_to_measure_is_left_to_say_it(
        tmp_path: Path, files: dict[str, str]) -> None:
    """httpx's `include = ["httpx/*", "tests/*"]`: a `--cov=httpx` made coverage warn that the
    include is ignored, and its `filterwarnings = error` ended the run before its first test."""
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT, "demo/__init__.py": "", "tests/test_a.py": "",
                          **files})
    command = _command(tmp_path)
    assert "--cov" in command and not [argument for argument in command if argument.startswith("--cov=")]
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT + "[tool.coverage.run]\nbranch = true\n",
                          ".coveragerc": "[run]\n", "setup.cfg": "", "tox.ini": ""})
    assert "--cov=demo" in _command(tmp_path)  # a configuration that does not say: the packages


@pytest.mark.parametrize(("files", "enforced"), [
    ({"pyproject.toml": PYPROJECT + "[tool.coverage.report]\nfail_under = 76\n"}, False),
    ({".coveragerc": "[report]\nfail_under = 76\n"}, False),
    ({"pyproject.toml": PYPROJECT + '[tool.coverage.report]\nfail_under = 76\n[tool.pytest.ini_options]\n'
      'addopts = "--cov=demo"\n'}, True),
    ({"setup.cfg": "[tool:pytest]\naddopts = --cov=demo\n[coverage:report]\nfail_under = 76\n"}, True),
])
def test_a_coverage_threshold_fails_only_runs_whose_pytest_options_ask_for_coverage(
        tmp_path: Path, files: dict[str, str], enforced: bool) -> None:
    """platformdirs's `fail_under = 76` is its CI's, combined over three systems: plain `pytest`
    does not measure coverage, and testdock's run, measuring it for the report, failed at 71%."""
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT, "demo/__init__.py": "", "tests/test_a.py": "",
                          **files})
    command = _command(tmp_path)
    assert "--cov-report=xml:test-results/coverage.xml" in command
    assert ("--cov-fail-under=0" not in command) is enforced


def test_the_setting_turns_coverage_on_or_off_whatever_the_project_does(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT + "[tool.testdock.phases.execution]\ncoverage = true\n",
                          "demo/__init__.py": "", "tests/test_a.py": ""})
    assert "--cov=demo" in _command(tmp_path)
    write_tree(tmp_path, {".coveragerc": "[run]\n", "pyproject.toml": PYPROJECT
                          + "[tool.testdock.phases.execution]\ncoverage = false\n"})
    assert not [argument for argument in _command(tmp_path) if argument.startswith("--cov")]


@pytest.mark.parametrize("files", [
    {"pyproject.toml": PYPROJECT + '[tool.coverage.run]\ndynamic_context = "test_function"\n'},
    {".coveragerc": "[run]\ndynamic_context = test_function\n"},
    {"setup.cfg": "[coverage:run]\ndynamic_context = test_function\n"},
])
def test_a_context_per_test_function_runs_in_one_process(tmp_path: Path, files: dict[str, str]) -> None:
    """pytest-cov refuses `dynamic_context = test_function` under xdist (jsonschema's
    configuration): the run is measured, in one process, rather than stopped."""
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT, "demo/__init__.py": "", "tests/test_a.py": "",
                          **files})
    command = _command(tmp_path)
    assert "--cov=demo" in command and "-n" not in command and "--dist" not in command
    # pytest-cov's start-up advice about such contexts does not fail a `filterwarnings = error`
    # project (fastapi)
    assert command[command.index("-W") + 1] == "ignore:Detected dynamic_context=test_function:Warning"
    settings = "[tool.testdock.phases.execution]\ncoverage = false\n"
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT + settings})
    assert "--dist" in _command(tmp_path)  # no coverage measured: the workers come back


@pytest.mark.parametrize(("files", "default_timeout"), [
    ({}, True),
    ({"pyproject.toml": PYPROJECT + '[tool.pytest]\ntimeout = "20"\n'}, False),
    ({"pyproject.toml": PYPROJECT + "[tool.pytest.ini_options]\ntimeout = 20\n"}, False),
    ({"setup.cfg": "[tool:pytest]\naddopts = -ra --timeout=30\n"}, False),
    ({"tox.ini": "[pytest]\ntimeout = 5\n"}, False),
    # a timeout in a file pytest does not read (pytest.ini wins) is not the project's
    ({"pytest.ini": "[pytest]\n", "tox.ini": "[pytest]\ntimeout = 5\n"}, True),
])
def test_the_projects_own_timeout_is_kept_and_testdocks_applies_only_without_one(
        tmp_path: Path, files: dict[str, str], default_timeout: bool) -> None:
    """fastapi sets `timeout = "20"`: testdock's `--timeout=600` on the command line overrode it."""
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT, "demo/__init__.py": "", "tests/test_a.py": "",
                          **files})
    assert ("--timeout=600" in _command(tmp_path)) is default_timeout


@pytest.mark.parametrize("addopts", ["-q --junitxml=junit.xml", "--junit-xml junit.xml -ra"])
def test_the_collection_image_writes_no_junit_file_its_addopts_ask_for(tmp_path: Path, addopts: str) -> None:
    """arrow's `addopts = ... --junitxml=junit.xml`, and a junit.xml in its sdist, which the
    collection image's user cannot overwrite: every test collected, then exit 1 (PermissionError
    at the session's end)."""
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT + f'[tool.pytest.ini_options]\naddopts = "{addopts}"\n',
                          "demo/__init__.py": "", "tests/test_a.py": "def test_a():\n    pass\n"})
    command = default_command("collection", inspect_project(tmp_path), load_settings(tmp_path))
    assert command[-1] == "--junitxml="
    result = subprocess.run([sys.executable, *command[1:], "-p", "no:testdock"], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_a" in result.stdout and not (tmp_path / "junit.xml").exists()
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT})
    plain = default_command("collection", inspect_project(tmp_path), load_settings(tmp_path))
    assert "--junitxml=" not in plain
