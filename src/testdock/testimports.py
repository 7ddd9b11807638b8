"""The modules a project's test files import unconditionally: at module level, outside a try
block that handles ImportError and outside `if TYPE_CHECKING:`. A test module that imports one
cannot be collected without it, whatever the project's metadata says its tests need."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

_SKIPPED_DIRS = {"node_modules", "build", "dist", "docker", "site-packages", "__pycache__"}
_MAX_FILES = 5000
_TEST_DIRS = {"test", "tests", "testing"}
_TEST_FILE = re.compile(r"^(?:test_.*|.*_test|tests|conftest)\.py$")  # pytest's defaults, Django's tests.py
_ABSENCE_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
_BLOCKS = ("body", "orelse", "finalbody")


def files_of_tests(root: Path, test_paths: Iterable[str]) -> Iterator[Path]:
    """The Python files of the tests under the test paths: test modules, conftests and the modules
    of tests folders; virtual environments and hidden folders left out (not even walked); at most
    a few thousand."""
    seen = 0
    for test_path in test_paths:
        base = root / test_path
        if base.is_file():
            yield base
            continue
        in_tests_folder = base.name.lower() in _TEST_DIRS
        for folder, subfolders, names in os.walk(base):
            subfolders[:] = sorted(d for d in subfolders
                                   if not (d.startswith(".") or d in _SKIPPED_DIRS or "venv" in d))
            here = Path(folder)
            tests_here = in_tests_folder or any(
                part.lower() in _TEST_DIRS for part in here.relative_to(base).parts)
            for name in sorted(names):
                if name.endswith(".py") and (tests_here or _TEST_FILE.match(name)):
                    seen += 1
                    if seen > _MAX_FILES:
                        return
                    yield here / name


def _handles_absence(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((t.id if isinstance(t, ast.Name) else getattr(t, "attr", "")) in _ABSENCE_ERRORS
               for t in types)


def _type_checking(test: ast.expr) -> bool:
    name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
    return name == "TYPE_CHECKING"


def _unconditional(body: list[ast.stmt]) -> Iterator[str]:
    """Top-level module names imported by the statements run when the module is imported."""
    for statement in body:
        if isinstance(statement, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            if statement.level == 0 and statement.module:
                yield statement.module.partition(".")[0]
        elif isinstance(statement, ast.If):
            if not _type_checking(statement.test):
                yield from _unconditional(statement.body)
                yield from _unconditional(statement.orelse)
        elif isinstance(statement, ast.Try) or type(statement).__name__ == "TryStar":
            handlers: list[ast.ExceptHandler] = getattr(statement, "handlers", [])
            if not any(_handles_absence(h) for h in handlers):
                yield from _unconditional(getattr(statement, "body", []))
            for block in _BLOCKS[1:]:
                yield from _unconditional(getattr(statement, block, []))
        elif isinstance(statement, (ast.With, ast.ClassDef)):
            yield from _unconditional(statement.body)


def unconditional_imports(source: str | bytes, filename: str = "<test>") -> set[str]:
    """The top-level modules `source` imports whenever it is imported; empty if it does not parse."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return set()
    return set(_unconditional(tree.body))


def imported_by_tests(root: Path, test_paths: Iterable[str], modules: Iterable[str]) -> dict[str, str]:
    """Which of `modules` the test files import unconditionally: module -> the first file (relative
    to `root`) that does. Files that do not name a module are not parsed."""
    wanted = sorted(set(modules))
    if not wanted:
        return {}
    mention = re.compile(rb"^[ \t]*(?:import|from)[ \t]+(?:" +
                         b"|".join(re.escape(m.encode()) for m in wanted) + rb")\b", re.MULTILINE)
    found: dict[str, str] = {}
    for path in files_of_tests(root, test_paths):
        try:
            source = path.read_bytes()
        except OSError:
            continue
        if not mention.search(source):
            continue
        for module in sorted(unconditional_imports(source, str(path)) & set(wanted)):
            found.setdefault(module, path.relative_to(root).as_posix())
    return found
