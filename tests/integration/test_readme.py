"""The README's quickstart works as written: its commands, run one after the other in a copy of
the example, as a new user would type them."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from tests.integration.conftest import run_cli, unique_name

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_commands() -> list[list[str]]:
    """The `testdock ...` lines of the README's quickstart block, without their comments."""
    block = README.read_text().split("## Quickstart on your project", 1)[1].split("```")[1]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("testdock ")]


def test_the_quickstart_reads_as_a_new_user_types_it() -> None:
    commands = quickstart_commands()
    assert [command[:2] for command in commands][:3] == [["testdock", "init"], ["testdock", "build"],
                                                        ["testdock", "run"]]
    assert 4 <= len(commands) <= 6


def test_the_readmes_quickstart_works_as_written_on_the_example(
        tmp_path: Path, base_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "your-project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "test-results", "monitoring", ".testdock"))
    name = unique_name("readme", tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.testdock]\nproject = "{name}"\n')
    monkeypatch.setenv("TESTDOCK_BASE_IMAGE", base_image)  # `init` reads it: no registry here
    for command in quickstart_commands():
        result = run_cli(*command[1:], cwd=project)
        assert result.returncode == 0, (command, result.stdout[-3000:] + result.stderr[-3000:])
    assert (project / "test-results" / "junit.xml").is_file()
    assert (project / "monitoring" / "memory-profile.png").is_file()
    last = run_cli("run", "execution", "--no-monitor", "--", "-k", "item", "-q", cwd=project)
    assert " passed" in last.stdout and " failed" not in last.stdout
