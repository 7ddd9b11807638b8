"""`testdock run --local`: the phase without Docker, monitored through the process tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


def test_local_run_makes_the_environment_once_and_monitors(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLE, root)
    assert run_cli("init", str(root)).returncode == 0
    first = run_cli("run", "execution", str(root), "--local", "--", "-q", "-p", "no:randomly",
                    "tests/unit", "tests/memory")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "creating .testdock/venvs/execution-" in first.stdout
    assert "process tree" in first.stderr and "testdock: memory peak" in first.stderr
    rows = (root / "monitoring" / "memory.csv").read_text().splitlines()
    assert max(int(row.split(",")[2]) for row in rows[1:]) > 150 * 2**20
    assert "tests/memory/" in (root / "monitoring" / "memory.csv").read_text()
    assert (root / "test-results" / "junit.xml").is_file()
    second = run_cli("run", "execution", str(root), "--local", "--", "-q", "tests/unit")
    assert second.returncode == 0 and "creating" not in second.stdout


def test_local_refuses_the_backend_phase(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLE, root)
    assert run_cli("init", str(root)).returncode == 0
    result = run_cli("run", "backend", str(root), "--local")
    assert result.returncode == 2 and "needs a container" in result.stderr
