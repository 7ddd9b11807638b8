"""`testdock run --local PHASE`: the phase without Docker, in a virtual environment made from the
phase's requirement set, monitored the same way through the process tree."""

from __future__ import annotations

import hashlib
import os
import subprocess
import venv
from collections.abc import Callable
from pathlib import Path

from testdock.errors import BadInput
from testdock.images.phases import SPECS, default_command, memory_limit
from testdock.images.pluginwheel import wheel_path, write_wheel
from testdock.monitor.junit import junit_from_progress
from testdock.monitor.session import MonitoringFiles, MonitoringSession
from testdock.monitor.sources import ProcessTreeSource
from testdock.monitor.tests_running import ProgressFollower
from testdock.run.phase import JUNIT_FILE, MONITORING_DIR, RESULTS_DIR, RunOptions, RunResult
from testdock.safepaths import output_folder
from testdock.workspace import Workspace, as_workspace
from testdock_pytest.contract import PROGRESS_FILE, RESULTS_DIR_ENV
from testdock_pytest.sizes import format_size, parse_size

LOCAL_PHASES = ("collection", "execution", "stress")


def _environment_dir(root: Path, phase: str, requirements: Path) -> Path:
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    return root / ".testdock" / "venvs" / f"{phase}-{digest}"


def _prepare(root: Path, phase: str, installable: bool, echo: Callable[[str], None]) -> Path:
    requirements = root / SPECS[phase].requirements_path
    extra = [root / SPECS["execution"].requirements_path] if phase == "stress" else []
    for path in (requirements, *extra):
        if not path.is_file():
            raise BadInput(f"{path} is missing; run `testdock init` first")
    folder = _environment_dir(root, phase, requirements)
    python = folder / "bin" / "python"
    if python.is_file():
        return python
    echo(f"testdock: creating {folder.relative_to(root)} (once per requirement set)")
    partial = folder.with_name(folder.name + ".partial")
    venv.EnvBuilder(with_pip=True, clear=True).create(partial)
    pip = [str(partial / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for path in (*extra, requirements):
        subprocess.run([*pip, "--requirement", str(path)], check=True)
    if installable and phase != "collection":
        subprocess.run([*pip, "--no-deps", "--editable", str(root)], check=True)
    partial.rename(folder)  # only a complete environment gets the real name
    return python


def _install_plugin(root: Path, python: Path) -> None:
    """testdock's plugin in the local environment, as in the images: this testdock's wheel,
    reinstalled whenever it changed (the environment outlives testdock upgrades)."""
    stamp = python.parent.parent / ".testdock-plugin"
    write_wheel(root)
    wheel = wheel_path(root)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == digest:
        return
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--force-reinstall", str(wheel)], check=True)
    stamp.write_text(digest, encoding="utf-8")


def run_local(target: Path | Workspace, phase: str, options: RunOptions,
              echo: Callable[[str], None] = print) -> RunResult:
    if phase not in LOCAL_PHASES:
        raise BadInput(f"--local runs {', '.join(LOCAL_PHASES)}; the {phase} phase needs a container")
    workspace = as_workspace(target)
    root, settings, project = workspace.root, workspace.settings, workspace.project
    limit = parse_size(options.memory or memory_limit(phase, settings))
    try:
        python = _prepare(root, phase, project.installable, echo)
        _install_plugin(root, python)
    except subprocess.CalledProcessError as error:
        raise BadInput(f"installing the {phase} requirement set failed (exit {error.returncode})") from None
    command = [str(python), *default_command(phase, project, settings)[1:], *options.pytest_args]
    results = output_folder(root, RESULTS_DIR)
    output_folder(root, MONITORING_DIR)
    progress_path = results / PROGRESS_FILE
    progress_path.unlink(missing_ok=True)
    (results / JUNIT_FILE).unlink(missing_ok=True)
    source_roots = [str(root / r) for r in project.source_roots]
    environment = {**os.environ, **getattr(settings.phases, phase).environment,
                   RESULTS_DIR_ENV: str(results),
                   "COVERAGE_FILE": str(results / ".coverage"),
                   "PYTHONPATH": os.pathsep.join(source_roots)}
    environment.pop("VIRTUAL_ENV", None)
    result = RunResult(phase, f"local {python.parent.parent.name}", -1, False, limit, source="")
    follower = ProgressFollower(progress_path)
    process = subprocess.Popen(command, cwd=root, env=environment)
    monitoring = None
    if options.monitor:
        monitoring = MonitoringSession(ProcessTreeSource(process.pid, limit), MonitoringFiles(
            root / MONITORING_DIR / "memory.csv", root / MONITORING_DIR / "memory-profile.png",
            f"{project.name} {phase} (local): memory over time"), follower, options.sample_interval).start()
        result.source = monitoring.source.name
    try:
        result.exit_code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=30)
        raise
    finally:
        if monitoring is not None:
            result.stats = monitoring.stop()
            result.plot = monitoring.finish()
        follower.poll()
        result.tests_done, result.tests_failed = follower.done, follower.failed
        result.killed_tests = follower.current()
    if result.exit_code < 0 and not (results / JUNIT_FILE).exists():
        junit_from_progress(progress_path, results / JUNIT_FILE, result.killed_tests,
                            f"killed by signal {-result.exit_code}")
        result.synthesized_junit = True
    if result.stats is not None and result.stats.peak > limit:
        echo(f"testdock: warning: the run peaked at {format_size(result.stats.peak)}, above the "
             f"{phase} phase's limit of {format_size(limit)}: in its container it would be OOM-killed")
    return result
