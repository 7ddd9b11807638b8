"""One run of a project at a time: runs share test-results/, monitoring/ and the memory history,
so a second run waits for the first (saying so) rather than mixing or overwriting its results.
The lock is the kernel's (flock), released when a process ends however it ends, and it lives
outside the project, where no container can reach it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

_held: dict[str, int] = {}  # lock path -> nesting depth (a backend run runs a phase inside it)
_guard = threading.Lock()


def lock_path(root: Path) -> Path:
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"testdock-run-{digest}.lock"


def _open(path: Path) -> int:
    """The lock file, opened without following a link; read-only when another user made it."""
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o644)
    except PermissionError:
        return os.open(path, os.O_RDONLY | flags)


@contextlib.contextmanager
def one_run_at_a_time(root: Path, what: str, echo: Callable[[str], None]) -> Iterator[None]:
    """Hold the project's run lock for the block; wait, saying why, while another run holds it."""
    path = lock_path(root)
    key = str(path)
    with _guard:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    descriptor = _open(path)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            echo(f"testdock: another testdock run of {root} is under way (it writes the same "
                 f"test-results/ and monitoring/); this {what} waits for it to end (Ctrl-C to give up)")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        with _guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _guard:
                del _held[key]
    finally:
        os.close(descriptor)  # releases the lock
