"""The tests of a project that runs them with `python -m unittest discover`, where pytest's own
file patterns find none: mkdocs names its test modules `*_tests.py` and runs `unittest discover
-s mkdocs -p "*tests.py"` (a hatch script); pytest, looking for `test_*.py` and `*_test.py`,
collected nothing. The command is read where projects keep it (hatch scripts in pyproject.toml,
tox, nox, a Makefile, CI workflows), and its start folder and pattern become pytest's `testpaths`
and `python_files`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from testdock.project.testimports import PYTEST_DEFAULT_FILES, holds_files_matching

# where a project keeps its test command, in the order read
_COMMAND_FILES = ("pyproject.toml", "tox.ini", "setup.cfg", "noxfile.py", "Makefile", "hatch.toml")
_WORKFLOW_FOLDERS = (".github/workflows",)
_WORKFLOW_FILES = (".gitlab-ci.yml",)
_DISCOVER = re.compile(r"\bunittest\b[\"',\s]+discover\b(?P<rest>.*)$")
DEFAULT_PATTERN = "test*.py"  # unittest's own


@dataclass(frozen=True)
class Discovery:
    start: str  # relative to the project's root; "." for the root
    pattern: str
    where: str  # the file the command was read from


def _arguments(rest: str) -> list[str]:
    """The words after `discover`, in a shell line or a Python call's string arguments
    (`session.run("python", "-m", "unittest", "discover", "-s", "src")`)."""
    rest = re.split(r"[;&|)]|\s#", rest, maxsplit=1)[0]
    rest = re.sub(r"[\"']\s*,\s*[\"']", " ", rest).strip().strip(",")
    try:
        return shlex.split(rest)
    except ValueError:
        return rest.replace('"', " ").replace("'", " ").split()


def parse(rest: str) -> tuple[str, str] | None:
    """(start folder, pattern) of `unittest discover`'s arguments; None where they are not plain
    (a variable, an option of another tool)."""
    words = _arguments(rest)
    start, pattern, positional = ".", DEFAULT_PATTERN, []
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("-s", "--start-directory", "-p", "--pattern", "-t", "--top-level-directory"):
            if index + 1 >= len(words):
                return None
            value = words[index + 1]
            if word in ("-s", "--start-directory"):
                start = value
            elif word in ("-p", "--pattern"):
                pattern = value
            index += 2
            continue
        if word in ("-k", "--durations"):
            index += 2  # a value of their own
            continue
        if word.startswith("-"):
            index += 1  # -v, -b, -f: no bearing on which files are tests
            continue
        if not any(mark in word for mark in ("{", "$", "%")):
            # a placeholder for more arguments (tox's {posargs}, a Makefile's $(ARGS), "$@")
            # names nothing
            positional.append(word)
        index += 1
    if positional:
        start = positional[0]
    if len(positional) > 1:
        pattern = positional[1]
    if any(marker in start + pattern for marker in ("$", "{", "%")):
        return None
    return start.strip("/") or ".", pattern


def _command_texts(root: Path) -> list[tuple[str, str]]:
    texts = []
    names = [*_COMMAND_FILES, *_WORKFLOW_FILES]
    for folder in _WORKFLOW_FOLDERS:
        if (root / folder).is_dir():
            names += sorted(f"{folder}/{path.name}" for path in (root / folder).iterdir()
                            if path.name.endswith((".yml", ".yaml")))
    for name in names:
        try:
            texts.append((name, (root / name).read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return texts


def find(root: Path) -> Discovery | None:
    """The first `unittest discover` command of the project whose start folder exists."""
    for where, text in _command_texts(root):
        lines = text.splitlines()
        for number, line in enumerate(lines):
            match = _DISCOVER.search(line)
            if match is None:
                continue
            rest = match.group("rest")
            if where.endswith(".py") and ")" not in rest:
                # a call's arguments over several lines (nox's `session.run(...)`)
                for following in lines[number + 1:number + 6]:
                    rest += " " + following.strip()
                    if ")" in following:
                        break
            parsed = parse(rest)
            if parsed is not None and (root / parsed[0]).is_dir():
                return Discovery(parsed[0], parsed[1], where)
    return None


def pytest_settings_for(root: Path) -> tuple[Discovery, dict[str, list[str]]] | None:
    """pytest's `testpaths` and `python_files` for a project whose unittest command names test
    files pytest's defaults miss; None where pytest finds them itself (or there is no command)."""
    discovery = find(root)
    if discovery is None:
        return None
    start = root / discovery.start
    if holds_files_matching(start, PYTEST_DEFAULT_FILES) or not holds_files_matching(
            start, (discovery.pattern,)):
        return None
    return discovery, {"testpaths": [discovery.start],
                       "python_files": [discovery.pattern, *PYTEST_DEFAULT_FILES]}
