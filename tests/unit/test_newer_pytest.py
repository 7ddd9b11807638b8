"""A suite whose settings make warnings errors is not failed by pytest's own deprecations of how it
uses pytest (the images install a pytest that may be newer than the suite: scrapy 2.19 under pytest
9.2 lost 149 tests to "Session-scoped fixtures defined as instance methods are deprecated")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testdock.images.phases import PYTEST_DEPRECATIONS_IGNORED, default_command
from testdock.project.inspection import inspect_project
from testdock.project.settings import load_settings
from tests.conftest import write_tree

PYPROJECT = '[project]\nname = "demo"\nversion = "1"\n'
WARNINGS_FAIL = PYPROJECT + '[tool.pytest.ini_options]\nfilterwarnings = ["error", "ignore::ImportWarning"]\n'
# a fixture using what a newer pytest deprecates, and a test the project's own warning must fail
TESTS = '''
import warnings

import pytest


@pytest.fixture
def old_style():
    warnings.warn(pytest.PytestRemovedIn10Warning("deprecated in a newer pytest"), stacklevel=1)
    return 1


def test_uses_it(old_style):
    assert old_style == 1


def test_its_own_deprecation_still_fails():
    warnings.warn("the project's own", DeprecationWarning, stacklevel=1)
'''


def test_only_suites_whose_warnings_fail_get_the_filter_in_every_pytest_command(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": WARNINGS_FAIL, "demo/__init__.py": "", "tests/test_a.py": ""})
    project, settings = inspect_project(tmp_path), load_settings(tmp_path)
    assert project.warnings_fail
    for phase in ("collection", "execution", "stress", "backend"):
        command = default_command(phase, project, settings)
        assert command[command.index("-W") + 1] == PYTEST_DEPRECATIONS_IGNORED, phase
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT})
    assert "-W" not in default_command("execution", inspect_project(tmp_path), load_settings(tmp_path))


def test_the_filter_beats_the_settings_error_for_pytests_deprecations_only(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": WARNINGS_FAIL, "tests/test_old.py": TESTS})

    def run(*arguments: str) -> str:
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:testdock",
                               "-p", "no:xdist", "-p", "no:cov", "-q", *arguments, "tests"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120).stdout

    assert "1 failed, 1 error" in run()  # without it, the fixture's deprecation errors the test
    assert "1 failed, 1 passed" in run("-W", PYTEST_DEPRECATIONS_IGNORED)
