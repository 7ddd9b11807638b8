"""Progress events, one JSON object a line, appended to a file the runner watches: which tests
are running right now, and how many finished or failed. Written by the controller only (under
xdist, workers report to it), flushed at every event so a killed run still leaves them."""

from __future__ import annotations

import json
import os
import time
from json.encoder import encode_basestring_ascii as quote
from pathlib import Path
from typing import Any

import pytest

from testdock_pytest.contract import PROGRESS_FILE, RESULTS_DIR_ENV

RESULTS_ENV = RESULTS_DIR_ENV


class ProgressWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # O_APPEND: each event is one write, never interleaved with another process's
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._failed: set[str] = set()

    def _write(self, event: dict[str, Any]) -> None:
        event["ts"] = round(time.time(), 4)
        os.write(self._fd, (json.dumps(event, separators=(",", ":")) + "\n").encode())

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._write({"event": "session_start", "pid": os.getpid()})

    # the two events of every test are formatted here, in one go: json's Python-level encoder
    # costs several times as much under a tracer (coverage)
    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        os.write(self._fd, f'{{"event":"start","nodeid":{quote(nodeid)},"ts":{time.time():.4f}}}\n'.encode())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self._failed.add(report.nodeid)

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        outcome = "failed" if nodeid in self._failed else "passed"
        os.write(self._fd, f'{{"event":"finish","nodeid":{quote(nodeid)},"outcome":"{outcome}",'
                           f'"ts":{time.time():.4f}}}\n'.encode())

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._write({"event": "session_finish", "exitstatus": int(exitstatus)})
        os.close(self._fd)


def register(config: pytest.Config) -> None:
    """Write progress events where TESTDOCK_RESULTS_DIR says, on the controller only."""
    folder = os.environ.get(RESULTS_ENV)
    if not folder or hasattr(config, "workerinput"):
        return
    try:
        writer = ProgressWriter(Path(folder) / PROGRESS_FILE)
    except OSError as error:  # a plugin never stops the tests: it says why and steps aside
        config.issue_config_time_warning(
            pytest.PytestWarning(f"testdock: no progress events ({error})"), stacklevel=2)
        return
    config.pluginmanager.register(writer, "testdock-progress")
