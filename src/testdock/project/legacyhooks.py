"""What pytest 9 refuses that pytest 8 ran: conftest files that implement pytest hooks with py.path
arguments (`path`, `fspath`), which pytest 9 no longer passes (the suite fails at start-up with
"Argument(s) {'path'} are declared in the hookimpl but can not be found in the hookspec": wrapt
1.17), and test files that apply a mark to a fixture ("Marks cannot be applied to fixtures": the
module fails to collect, and the run stops there: seaborn 0.13.2). Where the project's own pytest
requirement admits pytest 8, the images then install pytest 8. And what pytest 9.1 deprecates that
a project's `filterwarnings = error` turns into a failed start: plugins reading `config.inicfg`
(black 26.10: an INTERNALERROR before the first test); the images then install pytest 9.0."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from testdock.project.testimports import files_of_tests

# the hooks whose py.path arguments pytest 7 deprecated and pytest 9 removed
_HOOK = re.compile(r"^\s*def\s+pytest_(?:collect_file|ignore_collect|pycollect_makemodule|report_header"
                   r"|report_collectionfinish)\s*\(([^)]*)\)", re.MULTILINE)
_PY_PATH_ARGUMENT = re.compile(r"(?<![\w.])(?:path|fspath|startdir)\b(?!\s*[.\w])")
_MOST_CONFTESTS = 200


def py_path_hook_files(root: Path, test_paths: Iterable[str]) -> list[str]:
    """The conftest files (relative to root) whose hooks take py.path arguments."""
    return _files_where(root, test_paths, "conftest.py", _MOST_CONFTESTS, lambda text: any(
        _PY_PATH_ARGUMENT.search(arguments) for arguments in _HOOK.findall(text)))


def _files_where(root: Path, test_paths: Iterable[str], name: str, most: int,
                 matches: Callable[[str], bool], limit: int | None = None) -> list[str]:
    """The root's conftest.py and the files named `name` (a glob) under the test folders, at most
    `most` a folder, whose text `matches`: relative to root, `limit` of them at most."""
    found: list[str] = []
    candidates = [root / "conftest.py"]
    for test_path in test_paths:
        folder = root / test_path
        if folder.is_dir() and folder != root:
            candidates += sorted(folder.rglob(name))[:most]
    for path in dict.fromkeys(candidates):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if matches(text):
            found.append(path.relative_to(root).as_posix())
            if limit is not None and len(found) >= limit:
                break
    return found


_FIXTURE_DECORATOR = re.compile(r"@(?:pytest\.)?fixture\b")
_MARK_DECORATOR = re.compile(r"@(?:pytest\.)?mark\.")
_BRACKETS = str.maketrans("", "", "()[]{}")


def marked_fixture_files(root: Path, test_paths: Iterable[str], limit: int = 3) -> list[str]:
    """Up to `limit` test files (relative to root) that apply a mark to a fixture."""
    found: list[str] = []
    for path in files_of_tests(root, test_paths):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "fixture" in text and "mark." in text and _marks_a_fixture(text):
            found.append(path.relative_to(root).as_posix())
            if len(found) >= limit:
                break
    return found


def _marks_a_fixture(text: str) -> bool:
    """Whether a function's decorators, read line by line (a decorator's call may span lines),
    include both a fixture and a mark."""
    fixture = mark = False
    depth = 0  # brackets a decorator's call left open
    for line in text.splitlines():
        stripped = line.strip()
        opened = len(stripped) - len(stripped.translate(_BRACKETS))  # brackets, either way
        if depth > 0:
            depth += 2 * sum(stripped.count(c) for c in "([{") - opened
            continue
        if stripped.startswith("@"):
            fixture |= bool(_FIXTURE_DECORATOR.match(stripped))
            mark |= bool(_MARK_DECORATOR.match(stripped))
            depth = 2 * sum(stripped.count(c) for c in "([{") - opened
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if fixture and mark and stripped.startswith(("def ", "async def ")):
            return True
        fixture = mark = False
    return False


_INICFG = re.compile(r"\.inicfg\b")
_MOST_FILES = 2000


def inicfg_files(root: Path, test_paths: Iterable[str], limit: int = 3) -> list[str]:
    """Up to `limit` Python files under the tests (conftests and the plugins they load) or at the
    root that read `config.inicfg`."""
    return _files_where(root, test_paths, "*.py", _MOST_FILES,
                        lambda text: "inicfg" in text and bool(_INICFG.search(text)), limit)
