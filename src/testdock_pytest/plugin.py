"""The pytest entry point of testdock's plugin (`pytest11`, or PYTEST_PLUGINS in the images)."""

from __future__ import annotations

import pytest

from testdock_pytest import memory, progress


def pytest_addoption(parser: pytest.Parser) -> None:
    memory.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    progress.register(config)
    memory.register(config)
