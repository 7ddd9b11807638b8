"""`testdock init`: plan the files for a project, show or write them, never clobbering edits."""

from __future__ import annotations

import difflib
import os
import re
import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from testdock import __version__
from testdock.engine.credentials import IGNORE_LINES, fixture_patterns, named_like_credential
from testdock.engine.dockerignore import Matcher
from testdock.errors import BadInput
from testdock.images import basepython
from testdock.images.pluginwheel import (
    LEGACY_FOLDER,
    WHEEL_FOLDER,
    uses_legacy_folder,
    wheel_name,
    write_wheel,
)
from testdock.images.render import base_image, image_prefix, render_files
from testdock.images.stamps import Ownership, merge_block, ownership, remove_block, stamp
from testdock.project.inspection import Project, inspect_project
from testdock.project.pyproject import read_toml
from testdock.project.settings import Settings, load_settings, settings_from_table
from testdock.project.testimports import files_of_tests
from testdock.safepaths import check_inside, write_atomically

DOCKERIGNORE_LINES = [
    ".git", *IGNORE_LINES, ".venv", "venv", ".tox", ".nox", "**/__pycache__",
    "**/*.py[cod]", "**/.pytest_cache", "**/.mypy_cache", "**/.ruff_cache", ".coverage",
    ".coverage.*", "htmlcov", "dist", "**/*.egg-info", "node_modules", ".idea", ".vscode",
    "test-results", "monitoring/*.csv", "monitoring/*.png", "monitoring/*.prom", "logs/*.log",
    ".testdock", ".benchmarks",
    # Sphinx's output, which some sdists ship (imbalanced-learn's 37 MB, whose example scripts
    # pytest then collected), and sphinx-gallery's generated gallery (its 15 MB of figures,
    # notebooks and zips): never in a checkout, where git ignores them
    "doc/_build", "docs/_build", "doc/auto_examples", "docs/auto_examples",
]
# the files of the project's settings the images read (pytest's, coverage's)
NEEDED_SETTINGS = ("pyproject.toml", "setup.cfg", "pytest.ini", ".pytest.ini", "tox.ini", "conftest.py",
                   ".coveragerc")
# With an allow-list .dockerignore ("*" then "!src"...), the images still need these.
DOCKERIGNORE_REINCLUDES = ["!docker", "!pyproject.toml", "!setup.py", "!setup.cfg", "!README*",
                           "!LICEN[CS]E*", "!requirements*.txt", "!requirements"]


class Action(Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    KEEP = "keep"  # exists and is not testdock's unedited file: left alone (unless --force)


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


def read_existing(path: Path) -> str | None:
    """A file testdock may write, as text; None when it does not exist (not UTF-8: one-line error)."""
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
    return PlannedFile(path, old, new, Action.UPDATE if owned else Action.KEEP)


def _check_writable(root: Path, relative: str) -> None:
    """Every folder on the way to the file is a real folder inside the project (or can be made one)."""
    check_inside(root, Path(relative).parent)
    current = root
    for part in Path(relative).parts[:-1]:
        current = current / part
        if current.exists() and not current.is_dir():
            raise BadInput(f"{current}: is a file, but testdock writes {relative} inside it; "
                           "move it away")
    target = root / relative
    if target.exists() and not target.is_file():
        raise BadInput(f"{target}: is not a regular file; move it away")


def _pyproject_text(root: Path, project: Project, settings: Settings, options: InitOptions) -> str:
    """pyproject.toml with a [tool.testdock] table (added, or kept as the user wrote it)."""
    path = root / "pyproject.toml"
    old = read_existing(path)
    try:
        document = tomlkit.parse(old) if old is not None else tomlkit.document()
    except TOMLKitError as error:
        raise BadInput(f"{path}: not valid TOML: {error}") from None
    tool = document.get("tool")
    if tool is not None and not isinstance(tool, dict):
        raise BadInput(f"{path}: [tool] must be a table")
    if tool is not None and not isinstance(tool.get("testdock", {}), dict):
        raise BadInput(f"{path}: [tool.testdock] must be a table")
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
            if project.app.factory and not options.app:
                backend["factory"] = True
            backend["health_path"] = settings.backend.health_path
            section["backend"] = backend
        tool["testdock"] = section
    else:
        if options.base_image:
            existing["base_image"] = options.base_image
        if options.app:
            backend_table = existing.setdefault("backend", tomlkit.table())
            backend_table["app"] = options.app
    if project.unittest_settings is not None and "pytest" not in tool:
        where, pytest_settings = project.unittest_settings
        ini_options = tomlkit.table()
        ini_options.add(tomlkit.comment(f"written by testdock init from the unittest discover command "
                                        f"in {where}: pytest's own patterns find none of these tests"))
        for key, values in pytest_settings.items():
            ini_options[key] = values
        pytest_table = tomlkit.table(is_super_table=True)
        pytest_table["ini_options"] = ini_options
        tool["pytest"] = pytest_table
    return tomlkit.dumps(document)


def _dockerignore(old: str | None, test_paths: tuple[str, ...] = (), root: Path | None = None,
                  allowed: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """testdock's exclusions first, so the user's own lines (re-includes too) win; an allow-list
    file also gets the re-includes the images need, last. Keys and certificates stay out of the
    images, except under the test paths, where they are the tests' fixtures (TLS tests). What the
    project's own lines leave out that the images need (its tests, its pytest and coverage
    settings: a .dockerignore written for another image, pygments's docs) is re-included last
    too, keys and certificates out again. What `[tool.testdock.build] allow_credentials` lets
    through on purpose goes in as the fixtures do. Returns the text and what was re-included that
    way."""
    fixtures = [f"!{pattern}" for pattern in [*fixture_patterns(test_paths), *allowed]]
    # (the re-includes block repeats the key lines: not the user's own, which the top block skips)
    text = merge_block(remove_block(old or "", name="re-includes"), [*DOCKERIGNORE_LINES, *fixtures],
                       at_top=True)
    user_lines = {line.strip() for line in (old or "").splitlines()}
    reincludes = list(DOCKERIGNORE_REINCLUDES) if user_lines & {"*", "**", "/*"} else []
    left_out = _left_out(text, test_paths, root) if root else []
    if left_out:
        reincludes += [f"!{path}" for path in left_out] + [*IGNORE_LINES, *fixtures]
    if reincludes:
        text = merge_block(text, reincludes, name="re-includes", repeat=bool(left_out))
    return text, left_out


def _left_out(text: str, test_paths: tuple[str, ...], root: Path) -> list[str]:
    """The test paths and the settings files the images need that these lines leave out."""
    matcher = Matcher([line.strip() for line in text.splitlines()
                       if line.strip() and not line.lstrip().startswith("#")])
    needed = [path.strip("/") for path in test_paths
              if path not in (".", "") and not any(c in path for c in "*?[") and (root / path).exists()]
    needed += [name for name in NEEDED_SETTINGS if (root / name).is_file()]
    left_out = []
    for path in needed:
        # a folder's first test module too: `tests/*.py` leaves the folder in, its modules out
        folder = (root / path).is_dir()
        first = next(files_of_tests(root, [path], modules_only=True), None) if folder else None
        inside = [first.relative_to(root).as_posix()] if first else []
        if any(matcher.matches(candidate) for candidate in [path, *inside]):
            left_out.append(path)
    return left_out


def _credentials_left_out_of_tests(text: str, test_paths: tuple[str, ...], root: Path,
                                   limit: int = 2000) -> list[str]:
    """Files under the test paths that these lines leave out as credentials (flask's
    tests/test_apps/.env, which its dotenv tests read): relative paths, sorted; at most `limit`
    files looked at."""
    matcher = Matcher([line.strip() for line in text.splitlines()
                       if line.strip() and not line.lstrip().startswith("#")])
    found: list[str] = []
    looked = 0
    for test_path in test_paths:
        folder = root / test_path
        if test_path in (".", "") or not folder.is_dir():
            continue
        for current, subfolders, files in os.walk(folder):
            subfolders[:] = sorted(name for name in subfolders if name not in (".git", "__pycache__"))
            for name in files:
                looked += 1
                relative = (Path(current) / name).relative_to(root).as_posix()
                if named_like_credential(relative) and matcher.matches(relative):
                    found.append(relative)
            if looked >= limit:
                break
    return sorted(found)


def _flat_setuptools_warning(root: Path, project: Project, data: dict[str, object]) -> str | None:
    """setuptools' automatic discovery takes any top-level folder with a valid name for a
    package, docker/ included: say so where it applies."""
    build_system = data.get("build-system")
    backend = build_system.get("build-backend", "") if isinstance(build_system, dict) else ""
    if not project.installable or project.source_roots != (".",):
        return None
    if backend and not str(backend).startswith("setuptools"):
        return None
    tool = data.get("tool")
    setuptools_table = tool.get("setuptools", {}) if isinstance(tool, dict) else {}
    if isinstance(setuptools_table, dict) and ({"packages", "py-modules"} & set(setuptools_table)):
        return None
    setup_cfg = root / "setup.cfg"
    if setup_cfg.is_file() and re.search(r"(?m)^\s*(packages|py_modules)\s*=",
                                         setup_cfg.read_text(encoding="utf-8", errors="replace")):
        return None
    setup_py = root / "setup.py"
    if setup_py.is_file() and re.search(r"\b(packages|py_modules)\s*=",
                                        setup_py.read_text(encoding="utf-8", errors="replace")):
        return None
    include = ", ".join(f'"{package}*"' for package in project.packages) or '"yourpackage*"'
    return ("setuptools discovers packages automatically in this flat layout and will take "
            "testdock's docker/, logs/ and monitoring/ folders for packages (`pip install .` then fails); "
            "list yours in pyproject.toml: "
            f"[tool.setuptools.packages.find] include = [{include}]. The images are not affected.")


def planned_settings(root: Path, options: InitOptions) -> Settings:
    """The settings init renders with: the project's, with --base-image applied."""
    settings = load_settings(root)
    if options.base_image:
        settings = settings_from_table(
            {**settings.model_dump(exclude_defaults=True), "base_image": options.base_image}, "--base-image")
    return settings


def plan(root: Path, options: InitOptions) -> tuple[Project, list[PlannedFile], list[str]]:
    """What init would write, and warnings; reads only. Bad input raises before anything is planned."""
    settings = planned_settings(root, options)
    project = inspect_project(root, app_override=options.app or settings.backend.app)
    files: list[PlannedFile] = []
    for relative, body in render_files(project, settings).items():
        _check_writable(root, relative)
        old = read_existing(root / relative)
        owned = ownership(old) in (Ownership.OURS, Ownership.MISSING) or options.force
        files.append(_plan_one(relative, old, stamp(body, __version__), owned))
    _check_writable(root, ".dockerignore")
    old_ignore = read_existing(root / ".dockerignore")
    ignore_text, left_out = _dockerignore(old_ignore, project.test_paths, root,
                                          tuple(settings.build.allow_credentials))
    files.append(_plan_one(".dockerignore", old_ignore, ignore_text, owned=True))
    old_pyproject = read_existing(root / "pyproject.toml")
    new_pyproject = _pyproject_text(root, project, settings, options)
    files.append(_plan_one("pyproject.toml", old_pyproject, new_pyproject, owned=True))
    warnings = [f"kept {item.path}: edited since testdock wrote it, or not written by testdock "
                "(--force overwrites it, --diff shows the difference)"
                for item in files if item.action is Action.KEEP]
    if left_out:
        warnings.append(f".dockerignore: the project's own lines leave out {', '.join(left_out)} (written "
                        "for another image?); the test images need them: re-included at the end of the file")
    held_back = _credentials_left_out_of_tests(ignore_text, project.test_paths, root)
    if held_back:
        listed = ", ".join(held_back[:3]) + (f" and {len(held_back) - 3} more" if len(held_back) > 3 else "")
        warnings.append(f".dockerignore leaves out {listed} of the tests, named like credentials; if the "
                        f"tests read them, list them in [tool.testdock.build] allow_credentials "
                        f"(\"{held_back[0]}\") and run init again")
    python_warning = basepython.describe(project, settings)[1]
    if python_warning:
        warnings.append(python_warning)
    data = read_toml(root / "pyproject.toml") if old_pyproject is not None else {}
    flat = _flat_setuptools_warning(root, project, data)
    if flat:
        warnings.append(flat)
    if project.unittest_settings is None and not _has_test_files(root, project.test_paths):
        warnings.append(f"no test files in {', '.join(project.test_paths)}: the images will collect no "
                        "tests; set [tool.pytest.ini_options] testpaths if they live elsewhere (an "
                        "sdist often ships without its tests)")
    return project, files, warnings


def _has_test_files(root: Path, test_paths: tuple[str, ...]) -> bool:
    """Whether pytest would find test files under the test paths (globs expanded); true when the
    project names its own test files (`python_files`), which testdock does not second-guess."""
    for name in ("pyproject.toml", "pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg"):
        if "python_files" in (read_existing(root / name) or ""):
            return True
    paths = [str(match.relative_to(root)) for pattern in test_paths if any(c in pattern for c in "*?[")
             for match in root.glob(pattern)]
    paths += [path for path in test_paths if not any(c in path for c in "*?[")]
    return next(files_of_tests(root, paths, modules_only=True), None) is not None


def diff(planned: list[PlannedFile]) -> str:
    """A unified diff of every change the plan makes."""
    chunks: list[str] = []
    for item in planned:
        if item.action in (Action.UNCHANGED, Action.KEEP):
            continue
        chunks += difflib.unified_diff(
            (item.old or "").splitlines(keepends=True), item.new.splitlines(keepends=True),
            fromfile=f"a/{item.path}" if item.old is not None else "/dev/null",
            tofile=f"b/{item.path}")
    return "".join(chunks)


def apply(root: Path, planned: list[PlannedFile]) -> list[PlannedFile]:
    """Write what the plan creates or updates; files it keeps are left as they are."""
    written = [item for item in planned if item.action in (Action.CREATE, Action.UPDATE)]
    for item in written:
        try:
            write_atomically(root / item.path, item.new)
        except OSError as error:
            raise BadInput(f"{root / item.path}: cannot write: {error.strerror}") from None
    return written


def place_plugin(root: Path) -> list[tuple[str, str]]:
    """The plugin's wheel in docker/ (the images install it), and the plugin's source folder that
    older testdocks copied removed once no Dockerfile copies it and nothing in it is the user's.
    Returns (action, path) pairs: "create", "update", "unchanged" or "remove"."""
    try:
        actions = [(write_wheel(root), f"{WHEEL_FOLDER}/{wheel_name()}")]
    except OSError as error:
        raise BadInput(f"{root / WHEEL_FOLDER}: cannot write the plugin's wheel: {error.strerror}") from None
    legacy = root / LEGACY_FOLDER
    if legacy.is_dir() and not legacy.is_symlink() and not uses_legacy_folder(root):
        entries = [entry for entry in legacy.rglob("*") if "__pycache__" not in entry.parts]
        if all((entry.is_dir() and not entry.is_symlink())
               or (entry.is_file() and not entry.is_symlink() and entry.suffix == ".py"
               and ownership(read_existing(entry)) is Ownership.OURS) for entry in entries):
            shutil.rmtree(legacy)
            actions.append(("remove", LEGACY_FOLDER))
    return actions
