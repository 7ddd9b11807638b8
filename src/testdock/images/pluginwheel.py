"""testdock's pytest plugin as one wheel file, the only piece of testdock a project's repository holds.

The images install it (`pip install docker/testdock_pytest-*.whl`), which registers the plugin
through its `pytest11` entry point: no PYTHONPATH, no PYTEST_PLUGINS. The wheel is made here,
from the plugin package testdock runs with, so that testdock and its images always agree on the
contract between them; it is byte-for-byte reproducible (fixed timestamps, sorted entries), so an
unchanged plugin never invalidates an image layer. The format is PEP 427's; a pure-Python wheel
needs no build backend, and the host may have none.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import io
import re
import zipfile
from collections.abc import Iterator
from importlib.resources.abc import Traversable
from pathlib import Path

from packaging.utils import canonicalize_version

import testdock_pytest
from testdock import __version__
from testdock.errors import BadInput
from testdock.images.stamps import Ownership, ownership, stamp
from testdock.safepaths import write_atomically

DISTRIBUTION = "testdock_pytest"
WHEEL_FOLDER = "docker"
WHEEL_GLOB = f"{DISTRIBUTION}-*.whl"
LEGACY_FOLDER = "docker/testdock_pytest"
ENTRY_POINT = "testdock = testdock_pytest.plugin"
# Collection images stub the imports of dependencies they do not install from the interpreter's
# start: pytest resolves the warning categories its configuration names before it loads any
# plugin. Inert unless the image sets TESTDOCK_STUB_IMPORTS.
STARTUP_PTH = ("import os; os.environ.get('TESTDOCK_STUB_IMPORTS', '') in ('1', 'true', 'yes') and "
               "__import__('testdock_pytest.collection.stubs').collection.stubs.install_from_environment()\n")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _version() -> str:
    return canonicalize_version(testdock_pytest.__version__, strip_trailing_zero=False)


def wheel_name() -> str:
    return f"{DISTRIBUTION}-{_version()}-py3-none-any.whl"


def wheel_path(root: Path) -> Path:
    return root / WHEEL_FOLDER / wheel_name()


def _record_line(name: str, body: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(body)}"


def _contents() -> dict[str, bytes]:
    files = dict(_package_files(importlib.resources.files("testdock_pytest"), "testdock_pytest"))
    version = _version()
    info = f"{DISTRIBUTION}-{version}.dist-info"
    files["testdock_stubs.pth"] = STARTUP_PTH.encode()
    files[f"{info}/METADATA"] = (
        "Metadata-Version: 2.1\n"
        f"Name: testdock-pytest\nVersion: {version}\n"
        "Summary: testdock's pytest plugin: per-test memory, memory-aware scheduling, progress\n"
        "License: MIT\nRequires-Dist: pytest\n").encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: testdock {version}\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n").encode()
    files[f"{info}/entry_points.txt"] = f"[pytest11]\n{ENTRY_POINT}\n".encode()
    record = [_record_line(name, body) for name, body in sorted(files.items())]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]).encode() + b"\n"
    return files


def _package_files(folder: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    """The plugin's modules (and py.typed), its subpackages included; no bytecode."""
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            yield from _package_files(entry, f"{prefix}/{entry.name}")
        elif entry.is_file() and (entry.name.endswith(".py") or entry.name == "py.typed"):
            yield f"{prefix}/{entry.name}", entry.read_bytes()


def wheel_bytes() -> bytes:
    """The plugin's wheel; the same bytes every time for the same plugin."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        contents = _contents()
        # the dist-info last, RECORD at the very end, as installers expect
        for name in sorted(contents, key=lambda n: (".dist-info/" in n, n.endswith("/RECORD"), n)):
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, contents[name])
    return buffer.getvalue()


def write_wheel(root: Path) -> str:
    """Put this testdock's plugin wheel in the project's docker/ folder, replacing any other
    version there (the images install whichever one wheel is there). Returns what happened:
    "create", "update" or "unchanged"."""
    target = wheel_path(root)
    body = wheel_bytes()
    others = [other for other in sorted((root / WHEEL_FOLDER).glob(WHEEL_GLOB)) if other.name != target.name]
    try:
        current: bytes | None = target.read_bytes()
    except OSError:
        current = None
    if current != body:
        write_atomically(target, body)
    for other in others:
        other.unlink()
    if current == body and not others:
        return "unchanged"
    return "update" if current is not None or others else "create"


def legacy_files() -> dict[str, str]:
    """The plugin as the source tree testdock 0.1.0 copied into docker/testdock_pytest/, which the
    Dockerfiles it wrote still copy into the images: kept current for them until `testdock init`
    rewrites those Dockerfiles."""
    files = _package_files(importlib.resources.files("testdock_pytest"), LEGACY_FOLDER)
    return {path: body.decode("utf-8") for path, body in sorted(files) if path.endswith(".py")}


def uses_legacy_folder(root: Path) -> bool:
    """Whether any Dockerfile in docker/ still copies the plugin's source folder."""
    copies = re.compile(rf"{re.escape(LEGACY_FOLDER)}(?![\w-])")
    return any(copies.search(path.read_text(encoding="utf-8", errors="replace"))
               for path in (root / WHEEL_FOLDER).glob("*Dockerfile") if path.is_file())


def refresh_legacy_folder(root: Path) -> tuple[list[str], list[str]]:
    """Bring docker/testdock_pytest (where the Dockerfiles of testdock 0.1.0 take the plugin from)
    up to this testdock's plugin after an upgrade, without `testdock init`; modules of an older
    layout that are testdock's and unedited go. All or nothing: the modules import one another, so
    when the user edited one (init's rule: it is theirs), none is touched. Returns (the files
    rewritten or removed, the edited files that stopped it)."""
    wanted = legacy_files()
    stale: dict[Path, str | None] = {}
    edited: list[str] = []
    for relative, body in wanted.items():
        path = root / relative
        try:
            old: str | None = path.read_text(encoding="utf-8")
        except OSError:
            old = None
        current = stamp(body, __version__)
        if old == current:
            continue
        if ownership(old) in (Ownership.OURS, Ownership.MISSING):
            stale[path] = current
        else:
            edited.append(relative)
    for path in sorted((root / LEGACY_FOLDER).rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if (relative not in wanted and "__pycache__" not in path.parts and not path.is_symlink()
                and ownership(path.read_text(encoding="utf-8", errors="replace")) is Ownership.OURS):
            stale[path] = None
    if edited or not stale:
        return [], edited if stale else []
    for path, text in stale.items():
        try:
            if text is None:
                path.unlink()
            else:
                write_atomically(path, text)
        except OSError as error:
            raise BadInput(f"{path}: cannot write: {error.strerror}") from None
    return [path.relative_to(root).as_posix() for path in stale], []
