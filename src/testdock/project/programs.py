"""Whether a project's tests run programs (subprocess, os.system, shutil.which): in a distroless
image only `python` exists, so such tests fail there; testdock says which files do it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from testdock.project.testimports import files_of_tests

# a call that starts a program (the interpreter itself, sys.executable, is fine, but a scan
# cannot tell: the warning names the files for the user to judge)
_RUNS_PROGRAMS = re.compile(r"\b(?:subprocess\.(?:run|call|check_call|check_output|Popen|getoutput)|"
                            r"os\.(?:system|popen|exec\w+|spawn\w+)|shutil\.which|pexpect\.spawn)\s*\(")


def files_running_programs(root: Path, test_paths: Iterable[str], limit: int = 3) -> list[str]:
    """Up to `limit` test files (relative paths) that call something starting a program."""
    found: list[str] = []
    for path in files_of_tests(root, test_paths):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _RUNS_PROGRAMS.search(text):
            found.append(str(path.relative_to(root)))
            if len(found) >= limit:
                break
    return found
