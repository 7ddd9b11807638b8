"""The records of a run in progress live beside the history (.testdock/runs/run-ID/), the folder
locked by the run's controller while it lives. A run whose controller died before writing the
history (the OOM killer took the container, a CI job's time-out ended it) leaves its
measurements there, and the next run adds them to the history before it plans: the heavy tests
that killed it are known the next time instead of killing it again."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from testdock_pytest.memory.history import read_records, update_history

RUNS_DIR = "runs"
LIVE_PREFIX = "run-"  # a run's folder while its controller lives (or until a later run recovers it)
LOCK_FILE = ".lock"


@dataclass
class RunFolder:
    """Where one run's processes write their records; `close` removes it."""

    path: Path
    _lock: int | None = None
    _temporary: tempfile.TemporaryDirectory[str] | None = None
    _made: tuple[Path, ...] = ()  # the folders above it this run made, removed again when empty

    @classmethod
    def open(cls, history: Path) -> RunFolder:
        """A locked folder beside the history; a temporary one where that cannot be written."""
        try:
            parent = history.parent / RUNS_DIR
            made = tuple(folder for folder in (parent, history.parent) if not folder.exists())
            parent.mkdir(parents=True, exist_ok=True)
            # locked before it takes the runs' pattern: no other run can take it for a dead one's
            starting = Path(tempfile.mkdtemp(prefix="starting-", dir=parent))
            lock = os.open(starting / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o644)
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = starting.with_name(LIVE_PREFIX + starting.name.removeprefix("starting-"))
            starting.rename(path)
            return cls(path, lock, _made=made)
        except OSError:
            return cls.open_temporary()

    @classmethod
    def open_temporary(cls) -> RunFolder:
        """A folder of its own, never recovered (a nested run's)."""
        temporary = tempfile.TemporaryDirectory(prefix="testdock-memory-")
        return cls(Path(temporary.name), None, temporary)

    def close(self) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()
            return
        # renamed out of the runs' pattern first (atomic), so that no later run takes a half-removed
        # folder for a dead one; the lock goes last
        with contextlib.suppress(OSError):
            finished = self.path.with_name(f"finished-{self.path.name}")
            self.path.rename(finished)
            shutil.rmtree(finished, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        for folder in self._made:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: the history, or another run, may be there now


def recover(history: Path, keep: int) -> int:
    """Add the records of every run beside the history whose controller is gone to the history
    (each of its tests' measurements as one more run of it) and remove its folder. Returns how
    many tests' measurements were recovered."""
    parent = history.parent / RUNS_DIR
    try:
        folders = sorted(parent.glob(f"{LIVE_PREFIX}*"))
    except OSError:
        return 0
    recovered = 0
    for folder in folders:
        claimed = _claim(folder)
        if claimed is None:
            continue
        try:
            records, startups, overhead = read_records(claimed)
            # without records too: the run died, and what killed it is not known
            update_history(history, records, keep, startups, overhead.worker_memory,
                           worker_collections=overhead.worker_collections, finished=False)
            recovered += len(records)
        except OSError:
            pass
        finally:
            shutil.rmtree(claimed, ignore_errors=True)
    return recovered


def _claim(folder: Path) -> Path | None:
    """The folder, renamed for this process alone, if no live controller holds its lock (a folder
    without a lock is one being made); None otherwise."""
    try:
        lock = os.open(folder / LOCK_FILE, os.O_WRONLY)
    except OSError:
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        claimed = folder.with_name(f"recovering-{folder.name}")
        folder.rename(claimed)  # only one of two runs recovering at once succeeds
        return claimed
    except OSError:
        return None
    finally:
        os.close(lock)
