"""`testdock init`: plan the files for a project, show or write them, never clobbering edits."""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from testdock import __version__
from testdock.config import Settings, load_settings, settings_from_table
from testdock.errors import BadInput
from testdock.managed import Ownership, merge_block, ownership, stamp
from testdock.project import Project, inspect_project
from testdock.render import base_image, image_prefix, render_files

DOCKERIGNORE_LINES = [
    ".git", ".hg", ".svn", "**/.env", "**/.env.*", "**/*.pem", "**/*.key", "**/id_rsa*",
    "**/.netrc", "**/.pypirc", "**/secrets", ".venv", "venv", ".tox", ".nox", "**/__pycache__",
    "**/*.py[cod]", "**/.pytest_cache", "**/.mypy_cache", "**/.ruff_cache", ".coverage",
    ".coverage.*", "htmlcov", "dist", "**/*.egg-info", "node_modules", ".idea", ".vscode",
    "test-results", "monitoring", "logs", ".testdock", ".benchmarks",
]


class Action(Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"  # exists, and is not testdock's unedited file


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative to the project root
    old: str | None
    new: str
    action: Action


@dataclass(frozen=True)
class InitOptions:
    force: bool = False
    base_image: str | None = None
    app: str | None = None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text; move it away or fix it") from None


def _plan_one(path: str, old: str | None, new: str, owned: bool) -> PlannedFile:
    if old == new:
        return PlannedFile(path, old, new, Action.UNCHANGED)
    if old is None:
        return PlannedFile(path, old, new, Action.CREATE)
    return PlannedFile(path, old, new, Action.UPDATE if owned else Action.CONFLICT)


def _pyproject_text(root: Path, project: Project, settings: Settings, options: InitOptions) -> str:
    """pyproject.toml with a [tool.testdock] table (added, or kept as the user wrote it)."""
    path = root / "pyproject.toml"
    old = _read(path)
    try:
        document = tomlkit.parse(old) if old is not None else tomlkit.document()
    except TOMLKitError as error:
        raise BadInput(f"{path}: not valid TOML: {error}") from None
    tool = document.get("tool")
    if tool is None:
        tool = tomlkit.table(is_super_table=True)
        document["tool"] = tool
    existing = tool.get("testdock")
    if existing is None:
        section = tomlkit.table()
        section.add(tomlkit.comment("testdock's settings: see `testdock --help`. Image names are "
                                    "<project>-<phase>:<tag>."))
        section["project"] = image_prefix(project, settings)
        section["base_image"] = options.base_image or base_image(project, settings)
        if project.app is not None:
            backend = tomlkit.table()
            backend["app"] = options.app or project.app.target
            backend["health_path"] = settings.backend.health_path
            section["backend"] = backend
        tool["testdock"] = section
    else:
        if options.base_image:
            existing["base_image"] = options.base_image
        if options.app:
            backend_table = existing.setdefault("backend", tomlkit.table())
            backend_table["app"] = options.app
    return tomlkit.dumps(document)


def plan(root: Path, options: InitOptions) -> tuple[Project, list[PlannedFile]]:
    """What init would write; reads only. Bad input raises before anything is planned."""
    settings = load_settings(root)
    app = options.app or settings.backend.app
    project = inspect_project(root, app_override=app)
    overrides: dict[str, object] = {}
    if options.base_image:
        overrides["base_image"] = options.base_image
    if overrides:
        settings = settings_from_table({**settings.model_dump(exclude_defaults=True), **overrides},
                                       "--base-image")
    files: list[PlannedFile] = []
    for relative, body in render_files(project, settings).items():
        old = _read(root / relative)
        owned = ownership(old) in (Ownership.OURS, Ownership.MISSING) or options.force
        files.append(_plan_one(relative, old, stamp(body, __version__), owned))
    old_ignore = _read(root / ".dockerignore")
    files.append(_plan_one(".dockerignore", old_ignore, merge_block(old_ignore, DOCKERIGNORE_LINES),
                           owned=True))
    old_pyproject = _read(root / "pyproject.toml")
    new_pyproject = _pyproject_text(root, project, settings, options)
    files.append(_plan_one("pyproject.toml", old_pyproject, new_pyproject, owned=True))
    return project, files


def diff(planned: list[PlannedFile]) -> str:
    """A unified diff of every change the plan makes."""
    chunks: list[str] = []
    for item in planned:
        if item.action is Action.UNCHANGED:
            continue
        chunks += difflib.unified_diff(
            (item.old or "").splitlines(keepends=True), item.new.splitlines(keepends=True),
            fromfile=f"a/{item.path}" if item.old is not None else "/dev/null",
            tofile=f"b/{item.path}")
    return "".join(chunks)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(temporary).chmod(path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def apply(root: Path, planned: list[PlannedFile], force: bool) -> list[PlannedFile]:
    """Write the plan; refuses, writing nothing, if a file would clobber someone's edits."""
    conflicts = [item.path for item in planned if item.action is Action.CONFLICT]
    if conflicts and not force:
        raise BadInput(f"{', '.join(conflicts)}: not written by testdock or edited since; "
                       "keep them (no change made), or pass --force to overwrite, --diff to compare")
    written = [item for item in planned if item.action is not Action.UNCHANGED]
    for item in written:
        _write_atomically(root / item.path, item.new)
    return written
