"""The controller of a run keeps every report to the end (pytest's summary counts them), three a
test, and under xdist each arrives with its own copies of the test's id, location and keywords,
rebuilt from what its worker sent. In a tight memory budget the controller's growth is taken
from the workers (xarray's grew from about 390 to 655 MiB over 13,000 tests in 1 GiB). A
test's later reports share its first one's copies where they are equal, and every report the
strings that are the same in many (its phase, its outcome, its worker's name); nothing changes
but where the values live."""

from __future__ import annotations

from typing import Any

import pytest

SHARED_FIELDS = ("_id", "nodeid", "location", "keywords")  # the same within a test's reports
COMMON_FIELDS = ("when", "outcome", "worker_id", "testrun_uid")  # strings few in a whole run
PLUGIN_NAME = "testdock-shared-reports"


class ReportSharing:
    def __init__(self) -> None:
        self._first: dict[str, dict[str, Any]] = {}  # the tests under way: their first report's fields
        self._common: dict[str, str] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        fields = report.__dict__
        nodeid = report.nodeid
        first = self._first.get(nodeid)
        if first is None:
            self._first[nodeid] = {name: fields[name] for name in SHARED_FIELDS if name in fields}
        else:
            for name, value in first.items():
                if name in fields and fields[name] is not value and fields[name] == value:
                    fields[name] = value
        for name in COMMON_FIELDS:
            value = fields.get(name)
            if isinstance(value, str):
                fields[name] = self._common.setdefault(value, value)
        if report.when == "teardown":
            self._first.pop(nodeid, None)


def register(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(ReportSharing(), PLUGIN_NAME)
