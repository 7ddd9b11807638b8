"""`testdock run stress`: in the stress image, the whole suite with its benchmarks (compared with
the previous run) and the leak hunt; memray profiles of the heaviest tests; when the project has
an app, a bounded locust load test against it with the app's memory under load; then one
self-contained HTML report, monitoring/report.html."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from testdock import engine
from testdock.errors import TestdockError
from testdock.images.phases import default_command
from testdock.monitor.session import MonitoringFiles, MonitoringSession
from testdock.project.inspection import Project
from testdock.project.settings import Settings
from testdock.run import backend
from testdock.run.phase import (
    HISTORY_DIR,
    MONITORING_DIR,
    RESULTS_DIR,
    RunOptions,
    ensure_image,
    memory_source,
    run_phase,
    writable_folder,
)
from testdock.run.stressreport import (
    StressSummary,
    compare,
    read_benchmarks,
    read_junit,
    read_locust,
    read_memory,
    read_resources,
    write_report,
)
from testdock.safepaths import write_atomically
from testdock.workspace import Workspace, as_workspace
from testdock_pytest.contract import HISTORY_ENV, MEMORY_REPORT_FILE, RESULTS_DIR_ENV
from testdock_pytest.sizes import format_size

BENCHMARKS_FILE = "benchmarks.json"
BASELINE_FILE = "benchmarks-baseline.json"  # in .testdock/: the previous run's, for comparison
PROFILES_DIR = "profiles"
LOAD_CSV = "load-app-memory.csv"

# Runs in the stress image: each test under memray, then its flame graph (the raw capture is
# dropped: the HTML holds what a reader needs, at a fraction of the size).
_PROFILE_DRIVER = """
import pathlib, re, subprocess, sys
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for index, nodeid in enumerate(sys.argv[2:], 1):
    name = f"{index}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-80:]
    capture = out / (name + ".bin")
    subprocess.call([sys.executable, "-m", "memray", "run", "--quiet", "--force", "-o", str(capture),
                     "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", nodeid])
    if capture.exists():
        subprocess.call([sys.executable, "-m", "memray", "flamegraph", "--force", "-o",
                         str(out / (name + ".html")), str(capture)])
        capture.unlink()
"""

_DEFAULT_LOCUSTFILE = '''"""testdock's default load: GET the health endpoint, RATE times a second per user."""
import os

from locust import HttpUser, constant_throughput, task


class HealthUser(HttpUser):
    wait_time = constant_throughput(float(os.environ.get("TESTDOCK_LOAD_RATE_PER_USER", "5")))

    @task
    def health(self):
        self.client.get(os.environ.get("TESTDOCK_HEALTH_PATH", "/health"))
'''


def _suite_command(project: Project, settings: Settings) -> list[str]:
    command = default_command("stress", project, settings)
    extra = [f"--benchmark-json={RESULTS_DIR}/{BENCHMARKS_FILE}", "--testdock-leaks",
             f"--testdock-leak-runs={settings.stress.leak_runs}"]
    return [*command, *(argument for argument in extra if argument not in command)]


def _locustfile(root: Path, settings: Settings) -> str:
    """The locustfile's path inside the container (/app is the project)."""
    configured = settings.stress.load.locustfile
    if configured:
        return configured
    if (root / "locustfile.py").is_file():
        return "locustfile.py"
    generated = root / HISTORY_DIR / "locustfile.py"
    generated.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(generated, _DEFAULT_LOCUSTFILE)
    return f"{HISTORY_DIR}/locustfile.py"


def _profiles(workspace: Workspace, options: RunOptions, nodeids: list[str],
              echo: Callable[[str], None]) -> list[str]:
    root = workspace.root
    folder = root / MONITORING_DIR / PROFILES_DIR
    shutil.rmtree(folder, ignore_errors=True)
    writable_folder(root, f"{MONITORING_DIR}/{PROFILES_DIR}")
    echo(f"testdock: memory profiles (memray) of the {len(nodeids)} heaviest test(s)")
    run_phase(workspace, "stress", RunOptions(
        (), options.tag, options.memory, options.mount_source, monitor=False, build_missing=False,
        command=["python", "-c", _PROFILE_DRIVER, f"{MONITORING_DIR}/{PROFILES_DIR}", *nodeids],
        environment={**options.environment, RESULTS_DIR_ENV: "/tmp/testdock-profiles",
                     HISTORY_ENV: "/tmp/testdock-profiles/history.json"}), echo)
    return sorted(f"{PROFILES_DIR}/{path.name}" for path in folder.glob("*.html"))


def _load_test(workspace: Workspace, options: RunOptions, echo: Callable[[str], None],
               summary: StressSummary) -> None:
    root, project, settings = workspace.root, workspace.project, workspace.settings
    load = settings.stress.load
    if not backend.serves_an_app(project, settings):  # no app: nothing to load
        summary.load_skipped = "the project has no app (set [tool.testdock.backend] app)"
        return
    if not load.enabled:
        summary.load_skipped = "disabled by [tool.testdock.stress.load] enabled = false"
        return
    client = engine.client()
    prefix = workspace.prefix
    ensure_image(workspace, "backend", options.tag, client, echo, options.build_missing,
                 workspace.registry(options.registry))
    locustfile = _locustfile(root, settings)
    monitoring = root / MONITORING_DIR
    for stale in monitoring.glob("locust_*.csv"):
        stale.unlink()
    with backend.services(client, settings, prefix, echo) as running:
        exports = {key: value for service in running for key, value in service.exports.items()}
        with backend.app(client, workspace, options.tag, exports, echo) as served:
            source = memory_source(served.container)
            idle = source.read()
            session = MonitoringSession(source, MonitoringFiles(
                monitoring / LOAD_CSV, monitoring / "load-app-memory.png",
                f"{prefix} app: memory under load"), None, 0.1).start()
            echo(f"testdock: load test: {load.users} users (at most {load.rate_per_user:g} requests/s each) "
                 f"for {load.duration:g}s against {served.url}")
            try:
                run_phase(workspace, "stress", RunOptions(
                    (), options.tag, options.memory, options.mount_source, monitor=False, build_missing=False,
                    command=["locust", "-f", locustfile, "--headless", "--users", str(load.users),
                             "--spawn-rate", f"{load.spawn_rate:g}", "--run-time", f"{round(load.duration)}s",
                             "--host", served.url, "--csv", f"{MONITORING_DIR}/locust", "--only-summary",
                             "--stop-timeout", "5", "--loglevel", "WARNING"],
                    environment={"HOME": "/tmp", "TESTDOCK_LOAD_RATE_PER_USER": f"{load.rate_per_user:g}",
                                 "TESTDOCK_HEALTH_PATH": settings.backend.health_path,
                                 **served.environment}), echo)
            finally:
                stats = session.stop()
            after = source.read()
    session.finish()
    result = read_locust(monitoring / "locust_stats.csv", load.users, load.duration)
    if result is None:
        summary.load_skipped = "locust wrote no statistics (see its output above)"
        return
    result.app_idle = idle.usage if idle is not None else 0
    result.app_peak = stats.peak
    result.app_limit = stats.limit or 0
    result.app_after = after.usage if after is not None else 0
    summary.load = result


def run_stress(target: Path | Workspace, options: RunOptions | None = None,
               echo: Callable[[str], None] = print) -> StressSummary:
    options = options or RunOptions()
    started = time.monotonic()
    workspace = as_workspace(target)
    root, settings, project = workspace.root, workspace.settings, workspace.project
    results = root / RESULTS_DIR
    for stale in (BENCHMARKS_FILE, MEMORY_REPORT_FILE, "stress-junit.xml"):
        (results / stale).unlink(missing_ok=True)
    suite = run_phase(workspace, "stress", RunOptions(
        options.pytest_args, options.tag, options.memory, options.mount_source, options.monitor,
        options.metrics_port, options.sample_interval, options.build_missing,
        command=_suite_command(project, settings), registry=options.registry,
        environment=options.environment), echo)
    threshold = float(settings.stress.regression.rstrip("%")) / 100
    summary = StressSummary(project.name, suite.image, suite.exit_code, 0.0,
                            read_junit(results / "stress-junit.xml"), regression_threshold=threshold)
    if suite.stats is not None:
        summary.memory_peak, summary.memory_limit = suite.stats.peak, suite.memory_limit
    if suite.oom_killed:
        summary.notes.append(f"the suite's container was OOM-killed at {format_size(suite.memory_limit)}")
    summary.benchmarks = read_benchmarks(results / BENCHMARKS_FILE)
    baseline = root / HISTORY_DIR / BASELINE_FILE
    summary.regressions = compare(summary.benchmarks, read_benchmarks(baseline), threshold)
    if summary.benchmarks:
        baseline.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results / BENCHMARKS_FILE, baseline)
    summary.top_memory, summary.leaks = read_memory(results / MEMORY_REPORT_FILE)
    summary.top_cpu, summary.top_io = read_resources(results / MEMORY_REPORT_FILE)
    if settings.stress.profile_top and summary.top_memory:
        heaviest = [test.nodeid for test in summary.top_memory[:settings.stress.profile_top]]
        summary.profiles = _profiles(workspace, options, heaviest, echo)
    try:
        _load_test(workspace, options, echo, summary)
    except TestdockError as error:  # the suite's findings are still worth their report
        summary.load_skipped = f"failed: {str(error).splitlines()[0]}"
        summary.notes.append(f"the load test failed: {error}")
        if summary.exit_code == 0:
            summary.exit_code = 1
    summary.seconds = time.monotonic() - started
    report = write_report(summary, root / MONITORING_DIR)
    echo(f"testdock: report in {report}")
    return summary


def latest(root: Path) -> StressSummary | None:
    path = root / MONITORING_DIR / "stress-summary.json"
    try:
        return StressSummary.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None
