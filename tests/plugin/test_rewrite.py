"""The tests' assert-rewritten bytecode made at image build time (imagebuild.rewrite): made for
what pytest rewrites under the project's configuration, and used by a later run that may not
write bytecode (the test images' read-only /app)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import _pytest.assertion.rewrite
import pytest

pytest_plugins = ["pytester"]

FAILING = """
def test_compares():
    numbers = [1, 2]
    assert numbers == [1, 3]
"""


def _rewrite(pytester: pytest.Pytester) -> str:
    """The build's step, in a process of its own as in the image's build; what it said."""
    result = pytester.run(sys.executable, "-m", "testdock_pytest.imagebuild.rewrite", str(pytester.path))
    assert result.ret == 0
    return result.stderr.str()


def _cached(folder: Path) -> set[str]:
    return {path.name.split(".")[0] for path in folder.rglob(f"*{_pytest.assertion.rewrite.PYC_TAIL}")}


def test_what_pytest_rewrites_is_rewritten_once_and_used_by_a_run_that_writes_no_bytecode(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\npython_files = check_*.py\n")
    pytester.makeconftest("import pytest\n")
    pytester.makepyfile(check_numbers=FAILING, helper="VALUE = 1\n", test_ignored="def test_x():\n    pass\n")
    assert "2 of 2 test module(s)" in _rewrite(pytester)
    assert _cached(pytester.path) == {"check_numbers", "conftest"}  # the project's python_files

    rewritten: list[str] = []
    original = _pytest.assertion.rewrite._rewrite_test

    def counted(path: Path, config: pytest.Config) -> tuple[bytes, object]:
        rewritten.append(path.name)
        return original(path, config)

    monkeypatch.setattr(_pytest.assertion.rewrite, "_rewrite_test", counted)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:testdock")
    result.assert_outcomes(failed=1)
    assert not {"check_numbers.py", "conftest.py"} & set(rewritten)
    result.stdout.fnmatch_lines(["*At index 1 diff: 2 != 3*"])  # asserts rewritten all the same


def test_a_changed_test_module_is_rewritten_again_at_run_time(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_numbers=FAILING)
    _rewrite(pytester)
    pytester.makepyfile(test_numbers=FAILING.replace("[1, 3]", "[1, 4]"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:testdock")
    result.stdout.fnmatch_lines(["*At index 1 diff: 2 != 4*"])  # the source's hash no longer matches


def test_a_project_with_the_assertion_pass_hook_is_left_to_pytest(
        pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nenable_assertion_pass_hook = true\n")
    pytester.makepyfile(test_numbers=FAILING)
    assert "skipped: the project's enable_assertion_pass_hook" in _rewrite(pytester)
    assert not _cached(pytester.path)


def test_a_module_that_does_not_compile_is_left_for_pytest_to_report(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken="def test_x(:\n", test_fine=FAILING)
    assert "1 of 2 test module(s)" in _rewrite(pytester)
    assert _cached(pytester.path) == {"test_fine"}


@pytest.fixture(scope="module")
def older_pytest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest 8.3 (the last whose bytecode header records the source's time and size, not its
    hash), installed apart: projects pin it, and their images get it."""
    target = tmp_path_factory.mktemp("pytest-8")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(target), "pytest==8.3.4"], check=True, capture_output=True)
    return target


def test_an_older_pytest_gets_the_bytecode_it_reads_and_nothing_half_written(
        pytester: pytest.Pytester, older_pytest: Path) -> None:
    pytester.makepyfile(test_numbers=FAILING)
    environment = {**os.environ, "PYTHONPATH": str(older_pytest), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
                   "PYTHONDONTWRITEBYTECODE": "1"}

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", *arguments], cwd=pytester.path, env=environment,
                              capture_output=True, text=True, check=False)

    built = run("testdock_pytest.imagebuild.rewrite", str(pytester.path))
    assert "1 of 1 test module(s)" in built.stderr
    cache = pytester.path / "__pycache__"
    assert [path.name for path in cache.iterdir()] == ["test_numbers.cpython-"
                                                       f"{sys.version_info.major}{sys.version_info.minor}-pytest-8.3.4.pyc"]
    tested = run("pytest", "-p", "no:cacheprovider", "--debug=trace.log")
    assert "At index 1 diff: 2 != 3" in tested.stdout
    trace = (pytester.path / "trace.log").read_text()
    # pytest 8 traces "rewriting 'PATH'" for each file it rewrites
    assert "found cached rewritten pyc" in trace and "rewriting '" not in trace
