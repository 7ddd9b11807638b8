"""The settings are the source of truth: at each `build` and `run`, the files testdock generated and
nobody edited are rendered again from [tool.testdock] and the project's dependencies, so that a
changed setting reaches the images without `testdock init`. A file someone edited is left alone,
with one line saying what of the settings no longer reaches it."""

from __future__ import annotations

from dataclasses import dataclass, field

from testdock import __version__
from testdock.errors import BadInput
from testdock.images.initialize import read_existing
from testdock.images.render import render_files
from testdock.images.stamps import Ownership, ownership, stamp
from testdock.safepaths import write_atomically
from testdock.workspace import Workspace


@dataclass
class SyncResult:
    written: list[str] = field(default_factory=list)  # rendered again (or created): relative paths
    kept: list[tuple[str, str]] = field(default_factory=list)  # edited files: (path, a line it lacks)

    def messages(self) -> list[str]:
        lines = []
        if self.written:
            lines.append(f"testdock: applied the settings to {', '.join(self.written)}")
        for path, missing in self.kept:
            lines.append(f"testdock: {path} is edited, so the settings no longer reach it (testdock "
                         f"would write `{_shorten(missing)}`); `testdock init --diff` shows the "
                         "difference, `testdock init --force` rewrites it")
        return lines


def _shorten(line: str, width: int = 70) -> str:
    line = " ".join(line.split())
    return line if len(line) <= width else line[:width - 3] + "..."


def sync_generated_files(workspace: Workspace) -> SyncResult:
    """Render testdock's files again; write those that are testdock's own and unedited (or
    missing, once `init` has run), report the edited ones that the settings would change."""
    root = workspace.root
    result = SyncResult()
    for relative, body in render_files(workspace.project, workspace.settings).items():
        path = root / relative
        old = read_existing(path)  # a file that is not UTF-8 text is one error, never overwritten
        new = stamp(body, __version__)
        if old == new:
            continue
        state = ownership(old)
        if state is Ownership.MISSING and not path.parent.is_dir():
            continue  # init has not run (the build says so); nothing is created beside it
        if state in (Ownership.OURS, Ownership.MISSING):
            if path.is_symlink():
                continue
            try:
                write_atomically(path, new)
            except OSError as error:
                raise BadInput(f"{path}: cannot write: {error.strerror}") from None
            result.written.append(relative)
            continue
        present = {line.strip() for line in (old or "").splitlines()}
        missing = [line for line in body.splitlines()
                   if line.strip() and not line.lstrip().startswith("#") and line.strip() not in present]
        if missing:
            result.kept.append((relative, missing[0]))
    return result
