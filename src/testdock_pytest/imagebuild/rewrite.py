"""The tests' assert-rewritten bytecode, made when the image is built.

pytest rewrites the asserts of every test module and conftest.py as it imports them, and keeps
the result in __pycache__ for the next run. In a test image it cannot: /app is read-only and
PYTHONDONTWRITEBYTECODE is set, so every process of every run rewrote every test module again
(networkx's 4,970 tests: 8.5 s of a 10.2 s collection, in each xdist worker), and the installed
pytest plugins' modules, which pytest rewrites too. Made here once, by pytest's own rewriting
under the project's configuration (its `python_files`), they are read like any cached bytecode:
pytest checks each against its source's hash, and rewrites a file that changed. Best effort:
whatever stands in the way (a pytest whose internals differ, a project that turns on
`enable_assertion_pass_hook`) is said in one line and the build goes on.

    python -m testdock_pytest.imagebuild.rewrite ROOT [FOLDER ...]
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import importlib.util
import inspect
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# folders no test module lives in (the venv, version control, build output, testdock's own)
SKIPPED = {".git", ".hg", ".tox", ".nox", ".venv", "venv", "node_modules", "__pycache__", "build",
           "dist", "docker", "test-results", "monitoring", ".testdock"}


def candidates(folders: list[Path], patterns: list[str]) -> Iterator[Path]:
    """The files pytest rewrites on import, under `folders`: conftest.py and what matches one of
    the `python_files` patterns (pytest's own matching: a pattern without a slash names a file)."""
    from _pytest.pathlib import fnmatch_ex

    for folder in folders:
        for directory, subfolders, files in os.walk(folder):
            subfolders[:] = [name for name in subfolders
                             if name not in SKIPPED and not name.endswith(".egg-info")]
            for name in files:
                path = Path(directory, name)
                if name.endswith(".py") and (name == "conftest.py"
                                             or any(fnmatch_ex(pattern, path) for pattern in patterns)):
                    yield path


def plugin_files() -> list[Path]:
    """The modules of the installed pytest plugins (distributions with a `pytest11` entry point):
    pytest rewrites their asserts on import too (a tenth of a second a process for xdist,
    pytest-cov, pytest-timeout and testdock's own)."""
    from importlib import metadata

    files: list[Path] = []
    for distribution in metadata.distributions():
        if any(entry.group == "pytest11" for entry in distribution.entry_points):
            files += [Path(str(distribution.locate_file(file))) for file in distribution.files or []
                      if file.suffix == ".py"]
    return [path for path in files if path.is_file()]


def _validity(path: Path, source: bytes) -> bytes | os.stat_result:
    """What pytest's bytecode header records to tell a changed source: the source's hash from
    pytest 9 on, its modification time and size before (the image's files keep theirs from the
    build, so either holds at run time)."""
    from _pytest.assertion.rewrite import _write_pyc_fp

    parameters = list(inspect.signature(_write_pyc_fp).parameters)
    if parameters[1:2] == ["source_stat"]:
        return path.stat()
    if parameters[1:2] == ["source_hash"]:
        return importlib.util.source_hash(source)
    raise TypeError(f"pytest's bytecode header is not one this version knows ({', '.join(parameters)})")


def rewrite_file(path: Path) -> bool:
    """Rewrite one file's asserts and write the bytecode where pytest looks for it; False when it
    does not compile (pytest reports that itself at run time)."""
    from _pytest.assertion.rewrite import PYC_TAIL, _write_pyc_fp, get_cache_dir, rewrite_asserts

    source = path.read_bytes()
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError):
        return False
    rewrite_asserts(tree, source, str(path))  # no config: what a project without the pass hook gets
    code = compile(tree, str(path), "exec", dont_inherit=True)
    validity = _validity(path, source)
    cache = get_cache_dir(path)
    cache.mkdir(exist_ok=True)
    target = cache / (path.name[:-3] + PYC_TAIL)
    partial = target.with_name(f"{target.name}.{os.getpid()}")
    try:
        with partial.open("wb") as stream:
            _write_pyc_fp(stream, validity, code)  # type: ignore[arg-type]  # pytest < 9: a stat
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)  # nothing half-written left in the image
    return True


class Rewriter:
    """A pytest plugin that reads the project's configuration, rewrites, and ends the command
    before any session (no conftest, no collection: nothing of the project's code runs)."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self.outcome = ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config: pytest.Config) -> int:
        if config.getoption("assertmode") != "rewrite":
            self.outcome = "skipped: the project's options turn assert rewriting off"
        elif config.getini("enable_assertion_pass_hook"):
            self.outcome = "skipped: the project's enable_assertion_pass_hook rewrites at run time"
        else:
            self.outcome = self._rewrite(list(config.getini("python_files")))
        return 0

    def _rewrite(self, patterns: list[str]) -> str:
        tests = sorted(set(candidates(self.folders, patterns)))
        plugins = sorted(set(plugin_files()) - set(tests))
        with concurrent.futures.ProcessPoolExecutor() as pool:
            written = list(pool.map(rewrite_file, [*tests, *plugins], chunksize=8))
        return (f"{sum(written[:len(tests)])} of {len(tests)} test module(s) and conftest.py file(s), "
                f"{sum(written[len(tests):])} plugin module(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the project's folder (pytest's rootdir)")
    parser.add_argument("folders", type=Path, nargs="*", help="where the tests are (default: ROOT)")
    options = parser.parse_args(argv)
    rewriter = Rewriter([folder.resolve() for folder in options.folders] or [options.root.resolve()])
    arguments = ["--rootdir", str(options.root), "--noconftest", "-p", "no:cacheprovider",
                 "-o", "addopts=", "-o", "required_plugins=", "-q"]
    try:
        os.chdir(options.root)
        code = pytest.main(arguments, plugins=[rewriter])
    except (Exception, SystemExit) as error:  # the build goes on: a run rewrites what is missing
        rewriter.outcome = f"skipped: {type(error).__name__}: {error}"
    else:
        if not rewriter.outcome:
            rewriter.outcome = f"skipped: pytest could not read the project's configuration (exit {code})"
    print(f"testdock: assert-rewritten bytecode of the tests: {rewriter.outcome}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
