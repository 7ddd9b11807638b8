"""The command line: help, version, exit codes and one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from testdock import __version__
from testdock.cli import main
from tests.conftest import EXAMPLE


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", ["init", "build", "run", "inspect"])
def test_every_command_explains_itself(runner: CliRunner, command: str) -> None:
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage: main" in result.output or "Usage:" in result.output
    assert len(result.output.splitlines()) > 5


@pytest.mark.parametrize(("args", "message"), [
    (["init", "/nonexistent/project"], "no such directory"),
    (["inspect", "{tmp}"], "not a Python project"),
    (["build", "{tmp}"], "not a Python project"),
])
def test_bad_input_is_one_line_and_exit_2(runner: CliRunner, tmp_path: Path, args: list[str],
                                          message: str) -> None:
    result = runner.invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("testdock: error: ") and message in lines[0]


def test_init_prints_what_it_wrote_and_diff_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    result = runner.invoke(main, ["init", str(project), "--diff"])
    assert result.exit_code == 0 and "+++ b/docker/pytest.collection.Dockerfile" in result.output
    assert not (project / "docker").exists()
    result = runner.invoke(main, ["init", str(project)])
    assert result.exit_code == 0
    assert "wrote      docker/pytest.stress.Dockerfile" in result.output
    assert "app shop.main:app" in result.output
    result = runner.invoke(main, ["init", str(project)])
    assert "Nothing to change." in result.output


def test_build_without_init_says_so(runner: CliRunner, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    result = runner.invoke(main, ["build", str(project)])
    assert result.exit_code == 2
    assert "run `testdock init` first" in result.output


def test_inspect_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["inspect", str(EXAMPLE), "--json"])
    assert result.exit_code == 0
    assert '"name": "shop"' in result.output and '"module": "shop.main"' in result.output


def test_bake_without_buildx_says_what_is_missing(runner: CliRunner, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    assert runner.invoke(main, ["init", str(project)]).exit_code == 0
    # a PATH whose only docker is a stub without buildx
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "docker"
    stub.write_text("#!/bin/sh\nexit 1\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("TESTDOCK_DOCKER", str(stub))
    import testdock.engine as engine

    monkeypatch.setattr(engine, "_has_buildx", lambda binary: False)
    result = runner.invoke(main, ["build", str(project), "--bake"])
    assert result.exit_code == 1
    assert "--bake needs docker buildx" in result.output


def test_inspect_shows_the_configured_app_as_every_command_sees_it(runner: CliRunner, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "src" / "shop" / "other.py").write_text("def make():\n    return None\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.testdock.backend]\n", '[tool.testdock.backend]\napp = "shop.other:make"\n'))
    result = runner.invoke(main, ["inspect", str(project), "--json"])
    assert result.exit_code == 0, result.output
    assert '"module": "shop.other"' in result.output and '"attribute": "make"' in result.output


def test_after_ctrl_c_the_command_exits_130_and_a_late_ctrl_c_cannot_kill_it() -> None:
    """At the interpreter's exit a Python signal handler gives way to the default action, so a
    second Ctrl-C arriving then killed the process (exit -2) instead of letting it exit 130."""
    script = ("import os, signal, sys\n"
              "from testdock.cli import _exit_interrupted\n"
              "try:\n"
              "    _exit_interrupted('testdock: interrupted')\n"
              "finally:\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == "testdock: interrupted"


@pytest.mark.parametrize(("args", "path", "pytest_args"), [
    (["run", "execution", "--", "-k", "users"], ".", ("-k", "users")),
    (["run", "execution", "-k", "users"], ".", ("-k", "users")),
    (["run", "execution", "{project}", "--", "-x", "tests/a.py"], "{project}", ("-x", "tests/a.py")),
    (["run", "execution", "{project}", "-x"], "{project}", ("-x",)),
    (["run", "execution", "--tag", "ci", "--", "--", "-q"], ".", ("--", "-q")),
])
def test_arguments_after_the_double_dash_all_go_to_pytest(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], path: str,
        pytest_args: tuple[str, ...]) -> None:
    from testdock import cli
    from testdock.run.phase import RunOptions, RunResult
    from testdock.workspace import Workspace

    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    monkeypatch.chdir(project)
    seen: dict[str, object] = {}

    def fake_run(phase: str, workspace: Workspace, options: RunOptions, local: bool) -> RunResult:
        seen.update(root=workspace.root, args=options.pytest_args)
        return RunResult(phase, "image", 0, False, 2**30)

    monkeypatch.setattr(cli, "_run_phase", fake_run)
    result = runner.invoke(main, [arg.replace("{project}", str(project)) for arg in args])
    assert result.exit_code == 0, result.output
    assert seen == {"root": project.resolve(), "args": pytest_args}
