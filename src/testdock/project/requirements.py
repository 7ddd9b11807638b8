"""Requirement strings and requirements files, parsed strictly and written back safely."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from testdock.errors import BadInput

# Characters that have no business in a requirement and could escape into a shell or Dockerfile.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f$`\\|&{}]")
# Lines that name the project itself ("-e .", ".", "-e .[test]"): the images install it separately.
_SELF = re.compile(r"^(?:-e\s+|--editable\s+)?\.(\[[^\]]*\])?$")
SELF_REFERENCE = "testdock-this-project"  # stands for the project in `-e .[extra]`
_EDITABLE_URL = re.compile(r"^(?:-e|--editable)\s+((?:git\+)?https?://[^\s#]+)#egg=([\w.-]+)")
# pip's lines that give an archive's URL or a local path alone, no name
_NAMELESS = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|\.{0,2}/|~)", re.IGNORECASE)
_OPTION_WITH_FILE = re.compile(r"^(-r|--requirement|-c|--constraint)\s*=?\s*(\S+)$")
# a local folder of the project's own ("./tests/testpkg", "-e ./packages/core"): its requirement
# names it by a file URL under this prefix, and the images install it from the project's tree
LOCAL_PACKAGE_URL = "file:///testdock-local-package/"
_LOCAL_PATH = re.compile(
    r"^(?:(?:-e|--editable)\s+)?(\.{1,2}(?:/[^\s;#\[:]*)?|[\w.-]+/[^\s;#\[:]*)(\[[^\]]*\])?$")
_PACKAGE_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


def parse_requirement(text: str, where: str) -> Requirement:
    """A requirement string, checked; `where` names its origin for the error message."""
    if _UNSAFE.search(text):
        raise BadInput(f"{where}: unsafe character in requirement {text!r}; remove it")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        first_line = str(error).splitlines()[0]
        raise BadInput(f"{where}: invalid requirement {text!r}: {first_line}") from None
    if requirement.url and not re.match(r"^(?:git\+)?https?://", requirement.url):
        raise BadInput(f"{where}: cannot install {text!r} in an image (only http(s) and git+https "
                       "URLs reach the build); publish it or vendor it into the project")
    return requirement


def requirement_text(text: str, where: str) -> str:
    """A requirement string, checked (as parse_requirement) and written in one canonical form,
    whatever the version of packaging: `name[extras]specifier`, ` @ url`, `; marker`."""
    requirement = parse_requirement(text, where)
    parts = [requirement.name]
    if requirement.extras:
        parts.append(f"[{','.join(sorted(requirement.extras))}]")
    if requirement.specifier:
        parts.append(str(requirement.specifier))
    if requirement.url:
        parts.append(f" @ {requirement.url}" + (" " if requirement.marker else ""))
    if requirement.marker:
        parts.append(f"; {requirement.marker}")
    return "".join(parts)


def _logical_lines(path: Path) -> Iterable[tuple[int, str]]:
    """Lines of a requirements file with continuations joined and comments removed."""
    pending = ""
    start = 0
    try:
        text = path.read_text(encoding="utf-8-sig")  # pip accepts a byte-order mark
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text; save it as UTF-8") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            yield start, line
    if pending.strip():
        yield start, pending.strip()


def read_requirements_file(path: Path, root: Path, _seen: frozenset[Path] = frozenset()) -> list[str]:
    """The requirements a pip requirements file names, following `-r` includes.

    Constraint files (`-c`), pip options (`--index-url`, `--hash` ...) and the project itself
    (`-e .`) are left out: the images install the project on their own.
    """
    resolved = path.resolve()
    if resolved in _seen:
        return []
    if not resolved.is_file():
        raise BadInput(f"{path}: requirements file not found")
    requirements: list[str] = []
    for number, line in _logical_lines(resolved):
        where = f"{_relative(path, root)}:{number}"
        include = _OPTION_WITH_FILE.match(line)
        if include:
            if include.group(1) in ("-r", "--requirement"):
                target = path.parent / include.group(2)
                requirements += read_requirements_file(target, root, _seen | {resolved})
            continue
        self_line = _SELF.match(line)
        if self_line:
            if self_line.group(1):  # its extras' requirements are wanted: the project expands them
                requirements.append(f"{SELF_REFERENCE}{self_line.group(1)}")
            continue
        local = _LOCAL_PATH.match(line)
        folder = path.parent / local.group(1) if local else None
        if local and folder and (local.group(1).startswith(".") or folder.is_dir()):
            if folder.resolve() == root.resolve():  # "./": the project
                if local.group(2):
                    requirements.append(f"{SELF_REFERENCE}{local.group(2)}")
            else:
                requirements.append(_local_package(local.group(1), folder, root, where))
            continue
        editable_url = _EDITABLE_URL.match(line)
        if editable_url:  # "-e git+https://...#egg=name": the same package, installed normally
            url, name = editable_url.groups()
            requirements.append(requirement_text(f"{name} @ {url}", where))
            continue
        if line.startswith("-"):
            continue
        text = re.split(r"\s+--", line, maxsplit=1)[0].strip()
        if _NAMELESS.match(text):
            text = _named_url(text, where)
        requirements.append(requirement_text(text, where))
    return requirements


def _local_package(text: str, folder: Path, root: Path, where: str) -> str:
    """The requirement that stands for a package folder of the project's own tree (`text`, as
    the line gave it, names `folder`)."""
    resolved = folder.resolve()
    try:
        relative = resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise BadInput(f"{where}: cannot install the local path {text!r} in an image: it "
                       "lies outside the project; publish it or vendor it into the project") from None
    if not any((resolved / marker).is_file() for marker in _PACKAGE_MARKERS):
        raise BadInput(f"{where}: {relative!r} is not a Python package (no pyproject.toml, setup.py "
                       "or setup.cfg); name the package's own folder")
    if not re.fullmatch(r"[\w./-]+", relative):
        raise BadInput(f"{where}: unsafe character in the path {relative!r}; rename the folder")
    name = re.sub(r"[^A-Za-z0-9]+", "-", resolved.name).strip("-") or "local"
    return f"{name} @ {LOCAL_PACKAGE_URL}{relative}"


def local_package_path(requirement: str) -> str | None:
    """The project-relative folder of a requirement that stands for a local package, else None."""
    url = Requirement(requirement).url
    return url.removeprefix(LOCAL_PACKAGE_URL) if url and url.startswith(LOCAL_PACKAGE_URL) else None


def _named_url(text: str, where: str) -> str:
    """`name @ url` for a line that gives a URL alone, named by its `#egg=` fragment."""
    egg = re.search(r"#egg=([\w.-]+)", text)
    if egg and "://" in text:
        return f"{egg.group(1)} @ {text[:egg.start()]}"
    if "://" not in text:
        raise BadInput(f"{where}: cannot install the local path {text!r} in an image; "
                       "publish it or vendor it into the project")
    raise BadInput(f"{where}: {text!r} names no project; write it as 'NAME @ {text}'")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def unpinned(text: str) -> str:
    """The requirement without its versions or URL: its name, extras and marker."""
    requirement = Requirement(text)
    requirement.specifier = SpecifierSet()
    requirement.url = None
    return str(requirement)


def merge(*groups: Iterable[str], overriding: Iterable[str] = ()) -> tuple[str, ...]:
    """Requirements from several sources, one per name (and marker): the first mention's version
    range (or the first range given, where the first mention has none: the project's pins win
    over the tools' minimums) and every mention's extras (`httpx2` in one extra, `httpx2[zstd]`
    in a dependency group: the suite needs zstd). The `overriding` ones (the user's settings)
    replace the range or the URL of the same name: `pytest<9.1` there holds back the project's
    `pytest>=7`, which it would otherwise follow."""
    merged: dict[tuple[str, str], Requirement] = {}
    for group in groups:
        for text in group:
            requirement = Requirement(text)
            key = (canonicalize_name(requirement.name), str(requirement.marker or ""))
            first = merged.get(key)
            if first is None:
                merged[key] = requirement
            elif not first.url and not requirement.url:
                first.extras |= requirement.extras
                if not first.specifier:
                    first.specifier = requirement.specifier
    for text in overriding:
        requirement = Requirement(text)
        key = (canonicalize_name(requirement.name), str(requirement.marker or ""))
        first = merged.get(key)
        if first is not None and not (requirement.specifier or requirement.url):
            first.extras |= requirement.extras
            continue
        if first is not None:
            requirement.extras |= first.extras
        merged[key] = requirement
    return tuple(str(requirement) for requirement in merged.values())


def names(requirements: Iterable[str]) -> set[str]:
    """The canonical project names in a list of requirement strings."""
    return {canonicalize_name(Requirement(text).name) for text in requirements}
