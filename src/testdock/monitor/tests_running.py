"""Follow the progress file testdock's pytest plugin appends to: tests running, done, failed."""

from __future__ import annotations

import json
import threading
from pathlib import Path


class ProgressFollower:
    """Reads new progress events on each poll; tolerant of a missing or half-written file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._pending = b""
        self._lock = threading.Lock()
        self.running: dict[str, float] = {}  # node id -> start time
        self.done = 0
        self.failed = 0
        self.last_started: str | None = None

    def poll(self) -> None:
        with self._lock:
            try:
                with self.path.open("rb") as handle:
                    handle.seek(self._offset)
                    chunk = handle.read()
            except OSError:
                return
            self._offset += len(chunk)
            data = self._pending + chunk
            lines = data.split(b"\n")
            self._pending = lines.pop()  # an incomplete last line waits for the next poll
            for line in lines:
                self._apply(line)

    def _apply(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        kind, nodeid = event.get("event"), event.get("nodeid")
        if kind == "start" and nodeid:
            self.running[nodeid] = float(event.get("ts", 0))
            self.last_started = nodeid
        elif kind == "finish" and nodeid:
            self.running.pop(nodeid, None)
            self.done += 1
            if event.get("outcome") == "failed":
                self.failed += 1

    def current(self) -> list[str]:
        """The tests running now, oldest first."""
        with self._lock:
            return sorted(self.running, key=lambda nodeid: self.running[nodeid])
