"""The pytest entry point of testdock's plugin (`pytest11`, or PYTEST_PLUGINS in the images)."""

from __future__ import annotations

from typing import Any

import pytest

from testdock_pytest import memory, progress

try:
    import xdist  # noqa: F401
except ImportError:  # the xdist parts stay out
    HAS_XDIST = False
else:
    HAS_XDIST = True
    from testdock_pytest.distribute import (  # noqa: F401  (hooks, found by name)
        add_dist_choice,
        pytest_handlecrashitem,
        pytest_report_teststatus,
        pytest_runtest_logreport,
        pytest_terminal_summary,
        pytest_xdist_auto_num_workers,
        pytest_xdist_make_scheduler,
    )

_parser: list[pytest.Parser] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    memory.add_options(parser)
    group = parser.getgroup("testdock")
    group.addoption("--testdock-margin", metavar="PERCENT",
                    help="Headroom --dist memory keeps under the budget (default 10%%).")
    parser.addini("testdock_margin", "Like --testdock-margin.", default="10%")
    group.addoption("--max-worker-rss", metavar="SIZE",
                    help="--dist memory replaces a worker whose memory between tests exceeds SIZE "
                         "(default: when what it keeps leaves no room for the next test).")
    parser.addini("max_worker_rss", "Like --max-worker-rss.", default="")
    _parser.append(parser)


def pytest_plugin_registered(plugin: Any, manager: pytest.PytestPluginManager) -> None:
    if HAS_XDIST and _parser:
        add_dist_choice(_parser[-1])


def pytest_configure(config: pytest.Config) -> None:
    progress.register(config)
    memory.register(config)
