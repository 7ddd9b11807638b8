"""Whether a project's tests run programs (subprocess, os.system, shutil.which): in a distroless
image only `python` exists, so such tests fail there; testdock says which files do it. And which
well-known programs they run, for the images to install."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from testdock.project.testimports import files_of_tests

# a call that starts a program (the interpreter itself, sys.executable, is fine, but a scan
# cannot tell: the warning names the files for the user to judge)
_RUNS_PROGRAMS = re.compile(r"\b(?:subprocess\.(?:run|call|check_call|check_output|Popen|getoutput)|"
                            r"os\.(?:system|popen|exec\w+|spawn\w+)|shutil\.which|pexpect\.spawn)\s*\(")


def _texts(root: Path, test_paths: Iterable[str]) -> Iterator[tuple[Path, str]]:
    """Each test file with its text, those that cannot be read left out."""
    for path in files_of_tests(root, test_paths):
        try:
            yield path, path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue


def files_running_programs(root: Path, test_paths: Iterable[str], limit: int = 3) -> list[str]:
    """Up to `limit` test files (relative paths) that call something starting a program."""
    found: list[str] = []
    for path, text in _texts(root, test_paths):
        if _RUNS_PROGRAMS.search(text):
            found.append(str(path.relative_to(root)))
            if len(found) >= limit:
                break
    return found


# programs tests commonly run, by the Debian package that has them: installed in the images
# that run the tests where a test names one (isort's tests `git init` a folder; without git, 11
# of them failed on FileNotFoundError)
PROGRAM_PACKAGES = {"git": "git", "hg": "mercurial", "svn": "subversion", "make": "make",
                    "patch": "patch", "unzip": "unzip", "zip": "zip", "rsync": "rsync",
                    "file": "file", "openssl": "openssl", "sqlite3": "sqlite3", "curl": "curl"}
_SUBPROCESS_CALL = r"(?:subprocess\.)?(?:run|call|check_call|check_output|Popen)"
# the program a call starts: `run(["git", "init"])`, `check_output("git rev-parse", shell=True)`,
# `shutil.which("git")` (a test skipped without it: a developer's machine runs it)
_PROGRAM_NAMED = re.compile(
    rf"\b(?:{_SUBPROCESS_CALL}\(\s*[\[(]?\s*|shutil\.which\(\s*)[rbuf]?[\"']([A-Za-z][\w.+-]*)[\s\"']")


def packages_for_programs(root: Path, test_paths: Iterable[str]) -> tuple[str, ...]:
    """The Debian packages of the well-known programs the tests run, by name, in the files'
    order."""
    found: dict[str, None] = {}
    for _, text in _texts(root, test_paths):
        for program in _PROGRAM_NAMED.findall(text):
            if program in PROGRAM_PACKAGES:
                found[PROGRAM_PACKAGES[program]] = None
    return tuple(found)


# distributions that run a program at import or in every use, by the Debian package that has it:
# GitPython refuses to import without git (pylint's primer tests: 4 errors in the image)
DISTRIBUTION_PROGRAMS = {"gitpython": "git", "python-hglib": "mercurial", "graphviz": "graphviz",
                         "pydot": "graphviz", "pdf2image": "poppler-utils",
                         "pytesseract": "tesseract-ocr",
                         # its library: libmagic1 on Debian 12, libmagic1t64 on 13; `file` brings either
                         "python-magic": "file"}


def packages_for_distributions(requirements: Iterable[str]) -> tuple[str, ...]:
    """The Debian packages of the programs that the given requirements' distributions run."""
    found: dict[str, None] = {}
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        name = canonicalize_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # for another platform or Python (`; sys_platform == "win32"`)
        if name in DISTRIBUTION_PROGRAMS:
            found[DISTRIBUTION_PROGRAMS[name]] = None
    return tuple(found)
