"""The modules a project's test files import unconditionally: at module level, outside a try
block that handles ImportError and outside `if TYPE_CHECKING:`. A test module that imports one
cannot be collected without it, whatever the project's metadata says its tests need."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from testdock_pytest.collection.guards import ABSENCE_ERRORS, catches_absence

_SKIPPED_DIRS = {"node_modules", "build", "dist", "docker", "site-packages", "__pycache__"}
_MAX_FILES = 5000
_TEST_DIRS = {"test", "tests", "testing"}
_TEST_FILE = re.compile(r"^(?:test_.*|.*_test|tests)\.py$")  # pytest's defaults, Django's tests.py
_BLOCKS = ("body", "orelse", "finalbody")


def files_of_tests(root: Path, test_paths: Iterable[str], modules_only: bool = False) -> Iterator[Path]:
    """The Python files of the tests under the test paths: test modules, conftests and the modules
    of tests folders (with `modules_only`, the files pytest collects by default alone); virtual
    environments and hidden folders left out (not even walked); at most a few thousand."""
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
            tests_here = not modules_only and (in_tests_folder or any(
                part.lower() in _TEST_DIRS for part in here.relative_to(base).parts))
            for name in sorted(names):
                if name.endswith(".py") and (tests_here or _TEST_FILE.match(name) or (
                        name == "conftest.py" and not modules_only)):
                    seen += 1
                    if seen > _MAX_FILES:
                        return
                    yield here / name


def _guards_absence(statement: ast.With | ast.AsyncWith) -> bool:
    """`with suppress(ImportError):`, `with pytest.raises(ModuleNotFoundError):`: an import in the
    block may fail."""
    return any(isinstance(node, (ast.Name, ast.Attribute)) and
               (node.id if isinstance(node, ast.Name) else node.attr) in ABSENCE_ERRORS | {"raises"}
               for item in statement.items for node in ast.walk(item.context_expr))


def _unconditional(body: list[ast.stmt]) -> Iterator[str]:
    """Top-level module names imported by the statements that always run when the module is
    imported: not under an `if` (TYPE_CHECKING, `__main__`, a feature flag), nor in a try block or
    a `with` that handles ImportError."""
    for statement in body:
        if isinstance(statement, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            if statement.level == 0 and statement.module:
                yield statement.module.partition(".")[0]
        elif isinstance(statement, ast.Try) or type(statement).__name__ == "TryStar":
            handlers: list[ast.ExceptHandler] = getattr(statement, "handlers", [])
            if not any(catches_absence(h) for h in handlers):
                yield from _unconditional(getattr(statement, "body", []))
            for block in _BLOCKS[1:]:
                yield from _unconditional(getattr(statement, block, []))
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            if not _guards_absence(statement):
                yield from _unconditional(statement.body)
        elif isinstance(statement, ast.ClassDef):
            yield from _unconditional(statement.body)


def _skipped_without(tree: ast.Module) -> set[str]:
    """Modules the file skips itself without: `pytest.importorskip("torch")` anywhere in it."""
    skipped: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (getattr(node.func, "attr", "") == "importorskip" or
                                           getattr(node.func, "id", "") == "importorskip"):
            argument = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "modname"), None)
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                skipped.add(argument.value.partition(".")[0])
    return skipped


def _parse(source: str | bytes, filename: str) -> ast.Module | None:
    try:
        return ast.parse(source, filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def unconditional_imports(source: str | bytes, filename: str = "<test>") -> set[str]:
    """The top-level modules `source` imports whenever it is imported, but for those it skips
    itself without (importorskip); empty if it does not parse."""
    tree = _parse(source, filename)
    if tree is None:
        return set()
    return set(_unconditional(tree.body)) - _skipped_without(tree)


class _FolderSkips:
    """Modules a folder's `__init__.py` or `conftest.py` (or a parent's) importorskip: the whole
    folder's tests skip without them (sentry-sdk's tests/integrations/spark)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._by_folder: dict[Path, set[str]] = {}

    def __call__(self, folder: Path) -> set[str]:
        if folder not in self._by_folder:
            skipped: set[str] = set()
            for name in ("__init__.py", "conftest.py"):
                try:
                    tree = _parse((folder / name).read_bytes(), str(folder / name))
                except OSError:
                    continue
                if tree is not None:
                    skipped |= _skipped_without(tree)
            if folder != self._root and self._root in folder.parents:
                skipped |= self(folder.parent)
            self._by_folder[folder] = skipped
        return self._by_folder[folder]


def imported_by_tests(root: Path, test_paths: Iterable[str], modules: Iterable[str]) -> dict[str, str]:
    """Which of `modules` the test files import unconditionally: module -> the first file (relative
    to `root`) that does. Files that do not name a module are not parsed."""
    wanted = set(modules)
    if not wanted:
        return {}
    mention = re.compile(rb"\b(?:" + b"|".join(re.escape(m.encode()) for m in sorted(wanted)) + rb")\b")
    folder_skips = _FolderSkips(root)
    found: dict[str, str] = {}
    for path in files_of_tests(root, test_paths):
        try:
            source = path.read_bytes()
        except OSError:
            continue
        if not mention.search(source):
            continue
        imported = unconditional_imports(source, str(path)) & wanted
        for module in sorted(imported - folder_skips(path.parent)):
            found.setdefault(module, os.path.relpath(path, root).replace(os.sep, "/"))
    return found
