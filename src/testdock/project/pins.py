"""The versions a project has pinned: its lock file (uv.lock, poetry.lock, pdm.lock) and the `-c`
constraints files of its requirements files. The images install within them, so that a test run
in an image uses the versions the project tests with, not the newest ones."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from testdock.errors import BadInput
from testdock.project.pyproject import read_toml
from testdock.project.requirements import names, read_requirements_file, requirement_text

LOCK_FILES = ("uv.lock", "poetry.lock", "pdm.lock")
_CONSTRAINT_LINE = re.compile(r"^(?:-c|--constraint)(?:\s+|=)(\S+)")
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+!_-]*$")
_URL = re.compile(r"^https?://")


def _from_registry(package: dict[str, Any]) -> bool:
    """Whether a locked package comes from an index (a git, path or URL source cannot be pinned
    with `==`; the project itself is installed separately)."""
    source = package.get("source")
    if isinstance(source, dict):
        if "type" in source:  # poetry: [package.source] type = "git", "directory", "legacy"...
            return str(source["type"]) in ("registry", "legacy")
        return "registry" in source  # uv: { registry = ... }, else git, path, editable, url
    return source is None or isinstance(source, str)


def lock_pins(path: Path, project_name: str) -> list[str]:
    """`name==version` for every package of the lock file that comes from an index and is locked
    at one version only (a lock may fork per platform or Python; those are left free)."""
    data = read_toml(path)
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise BadInput(f"{path}: no [[package]] entries; is it a lock file?")
    versions: dict[str, set[str]] = {}
    for package in packages:
        if not isinstance(package, dict):
            continue
        name, version = package.get("name"), package.get("version")
        if not (isinstance(name, str) and isinstance(version, str) and _VERSION.match(version)):
            continue
        key = canonicalize_name(name)
        if key == canonicalize_name(project_name) or not _from_registry(package):
            versions.setdefault(key, set()).add("?")  # not pinnable: stays free
            continue
        versions.setdefault(key, set()).add(version)
    return [f"{name}=={next(iter(found))}" for name, found in sorted(versions.items())
            if len(found) == 1 and "?" not in found]


def _constraint_lines(requirement_files: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """(requirements file, target) for every `-c TARGET` line of the project's requirements files."""
    for path in requirement_files:
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except OSError:
            continue
        for line in lines:
            match = _CONSTRAINT_LINE.match(line.strip())
            if match:
                yield path, match.group(1)


def constraint_urls(requirement_files: Iterable[Path]) -> list[str]:
    """`-c https://...` lines (a project's published constraints): pip reads them in the build."""
    return list(dict.fromkeys(target for _, target in _constraint_lines(requirement_files)
                              if _URL.match(target)))


def constraint_files(root: Path, requirement_files: Iterable[Path]) -> list[Path]:
    """The local files named by `-c` lines of the project's requirements files."""
    found: list[Path] = []
    for path, name in _constraint_lines(requirement_files):
        if _URL.match(name):
            continue
        target = (path.parent / name).resolve()
        if not target.is_file():
            raise BadInput(f"{path}: constraints file {name} not found")
        if not target.is_relative_to(root.resolve()):
            raise BadInput(f"{path}: constraints file {name} is outside the project")
        found.append(target)
    return list(dict.fromkeys(found))


def project_constraints(root: Path, project_name: str,
                        requirement_files: Iterable[Path]) -> tuple[list[str], str]:
    """(constraints, where they come from): the lock file's pins, else the `-c` files' lines and
    the exact pins (`name==1.2.3`) of the requirements files themselves: every image then installs
    within them, the collection image's few real installs too (starlette pins typing_extensions,
    which keeps anyio below the release whose deprecation its `filterwarnings = error` fails on)."""
    for name in LOCK_FILES:
        path = root / name
        if path.is_file():
            return lock_pins(path, project_name), name
    requirement_files = list(requirement_files)
    urls = constraint_urls(requirement_files)
    pins: list[str] = [f"-c {url}" for url in urls]
    files = constraint_files(root, requirement_files)
    for path in files:
        pins += [requirement_text(text, str(path.name)) for text in read_requirements_file(path, root)]
    pinned = [path for path in requirement_files if path not in files]
    exact = _exact_pins(root, pinned, names(pin for pin in pins if not pin.startswith("-c ")))
    sources = [*(path.name for path in files), *urls,
               *(f"{path.name} (its == pins)" for path in pinned if path.name in exact.values())]
    return [*pins, *exact], ", ".join(sources)


def _exact_pins(root: Path, files: list[Path], known: set[str]) -> dict[str, str]:
    """pin -> the file it comes from: each requirement of these files pinned to one version,
    without extras, markers or a URL, the first pin of a name winning."""
    found: dict[str, str] = {}
    for path in files:
        for text in read_requirements_file(path, root):
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            specifiers = list(requirement.specifier)
            name = canonicalize_name(requirement.name)
            if requirement.extras or requirement.marker or requirement.url or name in known \
                    or len(specifiers) != 1 or specifiers[0].operator != "==":
                continue
            known.add(name)
            found[text.strip()] = path.name
    return found
