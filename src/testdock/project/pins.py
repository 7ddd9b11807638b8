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
    """`name==version` for every package of the lock file that comes from an index. A package
    locked at several versions (a lock forks per Python or platform: flask's uv.lock has pytest
    8.4.2 below Python 3.10 and 9.0.2 from it) is pinned at each with the markers it is locked
    under, where the lock says them for every version; else it is left free."""
    data = read_toml(path)
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise BadInput(f"{path}: no [[package]] entries; is it a lock file?")
    versions: dict[str, dict[str, str | None]] = {}  # name -> version -> its markers
    free: set[str] = set()
    for package in packages:
        if not isinstance(package, dict):
            continue
        name, version = package.get("name"), package.get("version")
        if not (isinstance(name, str) and isinstance(version, str) and _VERSION.match(version)):
            continue
        key = canonicalize_name(name)
        if key == canonicalize_name(project_name) or not _from_registry(package):
            free.add(key)  # not pinnable: stays free
            continue
        versions.setdefault(key, {})[version] = _locked_under(package)
    pins: list[str] = []
    for name, found in sorted(versions.items()):
        if name in free:
            continue
        if len(found) == 1:
            pins.append(f"{name}=={next(iter(found))}")
        elif all(found.values()):
            pins += [f"{name}=={version}; {marker}" for version, marker in found.items()]
    return pins


def _locked_under(package: dict[str, Any]) -> str | None:
    """The environment markers a locked version applies under (uv's `resolution-markers`, poetry's
    and pdm's `markers`/`marker`), as one PEP 508 marker; None where the lock does not say, or says
    what does not parse."""
    from packaging.markers import InvalidMarker, Marker

    markers = package.get("resolution-markers")
    if isinstance(markers, list) and markers and all(isinstance(item, str) for item in markers):
        text = " or ".join(f"({item})" for item in markers) if len(markers) > 1 else markers[0]
    else:
        text = next((value for key in ("markers", "marker")
                     if isinstance(value := package.get(key), str) and value.strip()), None)
    if text is None:
        return None
    try:
        Marker(text)
    except InvalidMarker:
        return None
    return text


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
