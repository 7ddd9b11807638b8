"""Compile a project's tests (and its source, where it runs from /app) to bytecode at build time,
leaving its data folders as they are.

At run time /app is read-only: what is not compiled here is compiled again by every process of
every run. But a `__pycache__` folder written into a folder of test data is a file the tests did
not expect: sphinx lists the files of its test projects (`tests/roots/test-root`) and five of its
tests failed in the image on the bytecode `compileall` had put there. A folder's Python files are
compiled where Python imports them as code: the folders given, the packages below them (an
`__init__.py` in every folder on the way), and every folder holding test modules or a conftest.py
(pytest imports those by their folder).

    python -m testdock_pytest.imagebuild.precompile FOLDER [FOLDER ...]
"""

from __future__ import annotations

import compileall
import concurrent.futures
import functools
import os
import re
import sys
from pathlib import Path

TEST_FILE = re.compile(r"^(?:test_.*|.*_test|conftest)\.py$")  # pytest's default python_files
SKIPPED = frozenset({"__pycache__", "node_modules", ".git", ".tox", ".nox", "build", "dist"})


def code_files(folder: Path) -> list[Path]:
    """The Python files under `folder` that are imported as code (see the module's docstring)."""
    found: list[Path] = []

    def visit(directory: Path, parent_is_code: bool, top: bool) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return
        files = [entry.name for entry in entries if entry.is_file() and entry.name.endswith(".py")]
        is_code = top or any(TEST_FILE.match(name) for name in files) or (
            parent_is_code and "__init__.py" in files)
        if is_code:
            found.extend(directory / name for name in files)
        for entry in entries:
            if (entry.is_dir(follow_symlinks=False) and entry.name not in SKIPPED
                    and not entry.name.startswith(".") and "venv" not in entry.name):
                visit(Path(entry.path), is_code, top=False)

    visit(folder, parent_is_code=False, top=True)
    return found


def main(argv: list[str]) -> int:
    files = sorted({path for folder in argv for path in code_files(Path(folder))})
    compile_one = functools.partial(compileall.compile_file, quiet=2)
    # a file this Python cannot compile is the run's to report, not the build's (a conftest may
    # leave out modules written for newer Pythons)
    with concurrent.futures.ProcessPoolExecutor() as pool:
        compiled = sum(bool(ok) for ok in pool.map(compile_one, files, chunksize=32))
    print(f"testdock: bytecode of {compiled} of {len(files)} Python file(s) under {' '.join(argv)} "
          "(data folders left as they are)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
