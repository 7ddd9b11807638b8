"""What a collection found, as one versioned JSON record (contract.CollectionRecord) that no
project setting can reshape: `testdock collect` and `testdock shard` set $TESTDOCK_LIST_COLLECTED
and read it, whatever verbosity, colour or summary options the project's addopts choose (a `-v`
in addopts turns `--collect-only -q` into a tree)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

import pytest

from testdock_pytest.collection import realids, stubs
from testdock_pytest.contract import LIST_ENV, CollectionRecord

# a frame of the project's own code in a traceback: a relative path (/opt/venv's are absolute)
_PROJECT_FRAME = re.compile(r"^([^/<\s][^:\s]*\.py):\d+: in ", re.MULTILINE)


def project_frames(longrepr: object) -> list[str]:
    """The project's files in a failure's traceback, in order, each once."""
    return list(dict.fromkeys(_PROJECT_FRAME.findall(str(longrepr))))


class CollectedListing:
    def __init__(self) -> None:
        self.record = CollectionRecord()
        self.files: list[str] = []  # the test modules this collection went through, in order
        self.deselected: set[str] = set()  # by the run's -m or -k

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.nodeid.endswith(".py") and "::" not in report.nodeid:
            self.files.append(report.nodeid)
        if report.failed:
            nodeid = report.nodeid or "."
            self.record.errors.append(nodeid)
            self.record.error_frames[nodeid] = project_frames(report.longrepr)

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.deselected.update(item.nodeid for item in items)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.record.nodeids = [item.nodeid for item in session.items]
        verdict = session.config.pluginmanager.get_plugin("testdock-verdict")
        if verdict is not None:
            self.record.unverifiable = dict(verdict.unverifiable)
        if stubs.installed() is not None:
            self.record.nodeids, self.record.from_real_run = realids.with_real_ids(
                session.config.rootpath, realids.ids_path(session.config), self.record.nodeids,
                set(self.record.errors), set(self.record.unverifiable), self.files,
                realids.selection(session.config), frozenset(self.deselected))
        finder = stubs.installed()
        if finder is not None:
            self.record.stubbed = sorted(finder.stubbed)
            self.record.left_missing = sorted(finder.left_missing)
            self.record.predicted = list(finder.predicted)
        sys.stdout.write(self.record.line() + "\n")
        sys.stdout.flush()


def register(config: pytest.Config) -> None:
    if os.environ.get(LIST_ENV) == "1":
        config.pluginmanager.register(CollectedListing(), "testdock-listing")
