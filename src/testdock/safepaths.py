"""The folders testdock writes into, chowns and mounts inside a project it did not write: each is a
real folder inside the project (no symbolic link on the way, not a file), or the command stops
with one line before anything is written. What a container leaves behind in a mounted folder is
untrusted too: links in it are removed before the host writes there."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from testdock.errors import BadInput


def check_inside(root: Path, relative: str | Path, *, folder: bool = True) -> Path:
    """root/relative, refused (BadInput) when a component is a symbolic link, when a folder on
    the way is a file, or when it would resolve outside the project. Creates nothing."""
    root = root.resolve()
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts:
        raise BadInput(f"{relative}: testdock writes only inside the project ({root})")
    current = root
    for index, part in enumerate(parts):
        current = current / part
        last = index == len(parts) - 1
        if current.is_symlink():
            raise BadInput(f"{current} is a symbolic link (to {current.readlink()}); testdock writes "
                           "and mounts only inside the project: remove the link, and testdock makes "
                           "a real folder there")
        if current.exists() and not current.is_dir() and (folder or not last):
            raise BadInput(f"{current} is a file, but testdock writes its results into a folder of "
                           "that name: move the file away")
    return current


def output_folder(root: Path, relative: str | Path) -> Path:
    """The folder root/relative, made when missing, checked as check_inside does, and writable."""
    folder = check_inside(root, relative)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(f"{folder}: cannot make the folder: {error.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"{folder} is not writable by this user; fix its permissions "
                       f"(chmod u+w {folder}) or remove it")
    return folder


def drop_links(folder: Path) -> list[Path]:
    """Remove every symbolic link under `folder` (not followed): a container can leave one
    pointing anywhere on the host, and the host must not write through it. Returns them."""
    removed: list[Path] = []
    if folder.is_symlink() or not folder.is_dir():
        return removed
    for current, folders, files in os.walk(folder):
        links = {name for name in [*folders, *files] if (Path(current) / name).is_symlink()}
        for name in sorted(links):
            (Path(current) / name).unlink()
            removed.append(Path(current) / name)
        folders[:] = [name for name in folders if name not in links]
    return removed


def open_for_writing(path: Path) -> int:
    """A file descriptor for writing `path` afresh, never through a symbolic link."""
    if path.is_symlink():
        path.unlink()
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write `path` whole or not at all: a fresh temporary file beside it (never an existing one,
    which could be a link), renamed over it (a link there is replaced, not followed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
        mode = path.stat().st_mode & 0o7777 if path.exists() and not path.is_symlink() else 0o644
        Path(temporary).chmod(mode)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
