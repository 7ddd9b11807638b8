"""What a collection found, in lines no project setting can reshape: `testdock collect` and
`testdock shard` set $TESTDOCK_LIST_COLLECTED and read `TESTDOCK-NODEID <id>` and
`TESTDOCK-ERROR <path>` lines, whatever verbosity, colour or summary options the project's
addopts choose (a `-v` in addopts turns `--collect-only -q` into a tree)."""

from __future__ import annotations

import os
import sys

import pytest

from testdock_pytest.contract import ERROR_PREFIX, LIST_ENV, NODEID_PREFIX


class CollectedListing:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(report.nodeid or ".")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        lines = [*(NODEID_PREFIX + item.nodeid for item in session.items),
                 *(ERROR_PREFIX + error for error in self.errors)]
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()


def register(config: pytest.Config) -> None:
    if os.environ.get(LIST_ENV) == "1":
        config.pluginmanager.register(CollectedListing(), "testdock-listing")
