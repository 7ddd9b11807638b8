"""Tests that fail beside others in xdist's workers and pass alone, in one process of their own.

A suite that plain `pytest` runs green can fail under the workers testdock chose for it: a test
reads `__main__.__file__` (an xdist worker's `__main__` has none), shares a file, a port or some
global state with a test another worker runs. At the end of a run with workers whose failures
are few, the controller runs them again, serially, in a fresh process, and names those that pass
there. The run still fails (its result is what it is); the user learns which tests are not safe
in parallel, and how to run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from testdock_pytest.contract import RESULTS_DIR_ENV
from testdock_pytest.memory.history import remember_alone
from testdock_pytest.memory.pertest import history_path

# more failures than this are not the workers' doing, and re-running them would cost too much
RECHECK_LIMIT = 20
RECHECK_TIMEOUT = 300.0
# set in the process that re-runs them: where it writes each test's outcome
RESULTS_ENV = "TESTDOCK_ALONE_RESULTS"


class Recheck:
    """In the controller of a run with workers: the failures, then their re-run alone."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.failed: list[str] = []
        self.passed_alone: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # not a test whose worker died (an OOM kill, most often): run again beside the controller
        # in the same memory limit, it could take the controller with it
        if report.failed and report.nodeid not in self.failed and "crashed while running" not in str(
                report.longrepr):
            self.failed.append(report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.TESTS_FAILED and 0 < len(self.failed) <= RECHECK_LIMIT:
            outcomes = run_alone(self.failed, self.config.invocation_params.dir,
                                 self.config.pluginmanager.hasplugin("pytest_cov"))
            self.passed_alone = [nodeid for nodeid in self.failed if outcomes.get(nodeid) == "passed"]
            if self.passed_alone:
                remember_alone(history_path(self.config), self.passed_alone)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.passed_alone:
            return
        terminalreporter.section("testdock: failed beside other tests, passed alone")
        terminalreporter.line(f"{len(self.passed_alone)} of the {len(self.failed)} failed test(s) pass "
                              "when run again alone, in one process: not safe in parallel (shared files, "
                              "ports or state; `__main__` in a worker). Later runs with workers run them "
                              "alone, after the others (the history keeps them); or run serially with "
                              "`-n 0`, or keep them on one worker with @pytest.mark.xdist_group(\"serial\").")
        for nodeid in self.passed_alone:
            terminalreporter.line(f"  {nodeid}")


class Outcomes:
    """In the process that re-runs them: each test's outcome, written at the end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        previous = self.outcomes.get(report.nodeid)
        if report.failed or previous == "failed":
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped:
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call" and previous is None:
            self.outcomes[report.nodeid] = "passed"

    def pytest_sessionfinish(self) -> None:
        Path(self.path).write_text(json.dumps(self.outcomes))


def run_alone(nodeids: list[str], folder: Path, without_coverage: bool,
              timeout: float = RECHECK_TIMEOUT) -> dict[str, str]:
    """The tests' outcomes when run again serially in a fresh process; {} when it could not run."""
    with tempfile.TemporaryDirectory(prefix="testdock-alone-") as scratch:
        results = Path(scratch) / "outcomes.json"
        environment = {**os.environ, RESULTS_ENV: str(results)}
        for name in ("TESTDOCK_MEMORY_DIR", RESULTS_DIR_ENV, "PYTEST_XDIST_AUTO_NUM_WORKERS"):
            environment.pop(name, None)
        # after the project's addopts: serial (its own `-n 4` too), nothing written where the
        # run's results are (JUnit, the memory report and history, coverage)
        arguments = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                     "-p", "no:randomly", f"--junitxml={Path(scratch) / 'junit.xml'}",
                     f"--testdock-report={Path(scratch) / 'memory.json'}",
                     f"--testdock-history={Path(scratch) / 'history.json'}",
                     *(["--no-cov"] if without_coverage else []), *nodeids]
        try:
            subprocess.run(arguments, cwd=folder, env=environment, capture_output=True, timeout=timeout,
                           check=False)
            data = json.loads(results.read_text())
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return {}
    return {str(nodeid): str(outcome) for nodeid, outcome in data.items()} if isinstance(data, dict) else {}


def register(config: pytest.Config) -> None:
    if os.environ.get(RESULTS_ENV):
        config.pluginmanager.register(Outcomes(os.environ[RESULTS_ENV]), "testdock-alone-outcomes")
    elif (not hasattr(config, "workerinput") and config.getoption("numprocesses", None)
          and not config.getoption("no_testdock_recheck", False)):
        config.pluginmanager.register(Recheck(config), "testdock-alone")
