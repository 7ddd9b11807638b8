"""Conftest files that implement pytest hooks with py.path arguments (`path`, `fspath`), which
pytest 9 no longer passes: such a suite fails at start-up under pytest 9 with "Argument(s)
{'path'} are declared in the hookimpl but can not be found in the hookspec" (wrapt 1.17). Where
the project does not choose its pytest, the images then install pytest 8."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# the hooks whose py.path arguments pytest 7 deprecated and pytest 9 removed
_HOOK = re.compile(r"^\s*def\s+pytest_(?:collect_file|ignore_collect|pycollect_makemodule|report_header"
                   r"|report_collectionfinish)\s*\(([^)]*)\)", re.MULTILINE)
_PY_PATH_ARGUMENT = re.compile(r"(?<![\w.])(?:path|fspath|startdir)\b(?!\s*[.\w])")
_MOST_CONFTESTS = 200


def py_path_hook_files(root: Path, test_paths: Iterable[str]) -> list[str]:
    """The conftest files (relative to root) whose hooks take py.path arguments."""
    found: list[str] = []
    candidates = [root / "conftest.py"]
    for test_path in test_paths:
        folder = root / test_path
        if folder.is_dir() and folder != root:
            candidates += sorted(folder.rglob("conftest.py"))[:_MOST_CONFTESTS]
    for conftest in dict.fromkeys(candidates):
        try:
            text = conftest.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if any(_PY_PATH_ARGUMENT.search(arguments) for arguments in _HOOK.findall(text)):
            found.append(conftest.relative_to(root).as_posix())
    return found
