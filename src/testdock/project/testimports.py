"""The modules a project's test files import unconditionally: at module level, outside a try
block that handles ImportError and outside `if TYPE_CHECKING:`. A test module that imports one
cannot be collected without it, whatever the project's metadata says its tests need."""

from __future__ import annotations

import ast
import fnmatch
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from testdock_pytest.collection.guards import ABSENCE_ERRORS, catches_absence

_SKIPPED_DIRS = {"node_modules", "build", "dist", "docker", "site-packages", "__pycache__"}
_MAX_FILES = 5000
TEST_DIRS = ("test", "tests", "testing")  # folders whose files are the tests'
_TEST_FILE = re.compile(r"^(?:test_.*|.*_test|tests)\.py$")  # pytest's defaults, Django's tests.py
_BLOCKS = ("body", "orelse", "finalbody")


PYTEST_DEFAULT_FILES = ("test_*.py", "*_test.py")  # pytest's own python_files


def holds_files_matching(folder: Path, patterns: tuple[str, ...], limit: int = 2000) -> bool:
    """Whether a Python file under `folder` matches one of the patterns (pytest's `python_files`
    globs); hidden folders, virtualenvs and node_modules skipped; a folder of more than `limit`
    folders counts as holding one."""
    for count, (_, subfolders, files) in enumerate(os.walk(folder)):
        if count >= limit:
            return True
        subfolders[:] = [name for name in subfolders if not name.startswith(".")
                         and name != "node_modules" and "venv" not in name]
        if any(name.endswith(".py") and any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
               for name in files):
            return True
    return False


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
        in_tests_folder = base.name.lower() in TEST_DIRS
        for folder, subfolders, names in os.walk(base):
            subfolders[:] = sorted(d for d in subfolders
                                   if not (d.startswith(".") or d in _SKIPPED_DIRS or "venv" in d))
            here = Path(folder)
            tests_here = not modules_only and (in_tests_folder or any(
                part.lower() in TEST_DIRS for part in here.relative_to(base).parts))
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


def _unconditional(body: list[ast.stmt], dotted: bool = False) -> Iterator[str]:
    """Top-level module names imported by the statements that always run when the module is
    imported: not under an `if` (TYPE_CHECKING, `__main__`, a feature flag), nor in a try block or
    a `with` that handles ImportError. With `dotted`, the full names, and for `from a import b`
    both `a` and `a.b` (b may be a submodule)."""
    for statement in body:
        if isinstance(statement, ast.Import):
            yield from (alias.name if dotted else alias.name.partition(".")[0] for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            if statement.level == 0 and statement.module:
                yield statement.module if dotted else statement.module.partition(".")[0]
                if dotted:
                    yield from (f"{statement.module}.{alias.name}" for alias in statement.names)
        elif isinstance(statement, ast.Try) or type(statement).__name__ == "TryStar":
            handlers: list[ast.ExceptHandler] = getattr(statement, "handlers", [])
            if not any(catches_absence(h) for h in handlers):
                yield from _unconditional(getattr(statement, "body", []), dotted)
            for block in _BLOCKS[1:]:
                yield from _unconditional(getattr(statement, block, []), dotted)
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            if not _guards_absence(statement):
                yield from _unconditional(statement.body, dotted)
        elif isinstance(statement, ast.ClassDef):
            yield from _unconditional(statement.body, dotted)


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


def _test_files_naming(root: Path, test_paths: Iterable[str], names: set[str]
                       ) -> Iterator[tuple[Path, bytes]]:
    """The test files whose text names one of `names` (the others need no parsing), with it."""
    mention = re.compile(rb"\b(?:" + b"|".join(re.escape(name.encode()) for name in sorted(names)) + rb")\b")
    for path in files_of_tests(root, test_paths):
        try:
            source = path.read_bytes()
        except OSError:
            continue
        if mention.search(source):
            yield path, source


def imported_by_tests(root: Path, test_paths: Iterable[str], modules: Iterable[str]) -> dict[str, str]:
    """Which of `modules` the test files import unconditionally: module -> the first file (relative
    to `root`) that does. Files that do not name a module are not parsed."""
    wanted = set(modules)
    if not wanted:
        return {}
    folder_skips = _FolderSkips(root)
    found: dict[str, str] = {}
    for path, source in _test_files_naming(root, test_paths, wanted):
        imported = unconditional_imports(source, str(path)) & wanted
        for module in sorted(imported - folder_skips(path.parent)):
            found.setdefault(module, os.path.relpath(path, root).replace(os.sep, "/"))
    return found


def _own_module_files(dotted: str, source_folders: list[Path]) -> list[Path]:
    """The files of the project's own modules that importing `dotted` runs: each package's
    __init__.py on the way, and the module's file."""
    parts = dotted.split(".")
    for folder in source_folders:
        if not ((folder / parts[0]).is_dir() or (folder / f"{parts[0]}.py").is_file()):
            continue
        files: list[Path] = []
        for depth in range(1, len(parts) + 1):
            base = folder.joinpath(*parts[:depth])
            for candidate in (base / "__init__.py", base.with_suffix(".py")):
                if candidate.is_file():
                    files.append(candidate)
                    break
            else:
                break
        return files
    return []


def _importing_own_files(folders: list[Path], wanted: set[str]) -> dict[Path, set[str]]:
    """The files of the project's own packages and modules that import some of `wanted` at
    their top level, with those modules. Files that do not name one are not parsed."""
    # at the start of a line: a library's modules import most of theirs inside functions, and
    # parsing each file that names one cost networkx's inspection 0.3 s
    names = b"|".join(re.escape(module.encode()) for module in sorted(wanted))
    mention = re.compile(rb"^(?:import|from)[ \t]+(?:" + names + rb")\b", re.MULTILINE)
    found: dict[Path, set[str]] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_dir() and (entry / "__init__.py").is_file() and entry.name.lower() not in TEST_DIRS:
                paths = [Path(directory, file) for directory, _subfolders, files in os.walk(entry)
                         for file in files if file.endswith(".py")]
            elif entry.suffix == ".py" and entry.is_file():
                paths = [entry]
            else:
                continue
            for path in paths:
                try:
                    source = path.read_bytes()
                except OSError:
                    continue
                if mention.search(source):
                    imported = unconditional_imports(source, str(path)) & wanted
                    if imported:
                        found[path] = imported
    return found


def imported_through_project(root: Path, test_paths: Iterable[str], source_roots: Iterable[str],
                             modules: Iterable[str]) -> dict[str, str]:
    """Which of `modules` the project's own modules import at their top level, where the test
    files import those modules unconditionally (pyparsing's tests import `pyparsing.diagram`,
    which imports jinja2): module -> "test file (via the project's file)", relative to root."""
    wanted = set(modules)
    folders = [root / source_root for source_root in source_roots]
    importing = _importing_own_files(folders, wanted) if wanted else {}
    if not importing:
        return {}
    # a test file that imports one of them names its module (`diagram`) or, through a package's
    # __init__.py, its package
    names = {(path.parent if path.name == "__init__.py" else path.with_suffix("")).name for path in importing}
    found: dict[str, str] = {}
    for path, source in _test_files_naming(root, test_paths, names):
        tree = _parse(source, str(path))
        if tree is None:
            continue
        for dotted in sorted(set(_unconditional(tree.body, dotted=True))):
            for module_file in _own_module_files(dotted, folders):
                for module in sorted(importing.get(module_file, ())):
                    found.setdefault(module, f"{os.path.relpath(path, root)} (via "
                                             f"{os.path.relpath(module_file, root)})".replace(os.sep, "/"))
    return found
