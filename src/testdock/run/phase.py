"""Run a phase's image: its default command (plus extra pytest arguments) under a memory limit,
output streamed live, results and monitoring written to the host as they are produced, an OOM
kill explained, and no container left behind whatever happens."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testdock import engine
from testdock.engine import platforms
from testdock.errors import BadInput, TestdockError
from testdock.images.phases import USER_ID, memory_limit
from testdock.images.render import app_pythonpath
from testdock.monitor.junit import junit_from_progress
from testdock.monitor.resources import CgroupResources
from testdock.monitor.sampler import MemoryStats, resources_line
from testdock.monitor.session import MonitoringFiles, MonitoringSession
from testdock.monitor.sources import CgroupSource, MemorySource, StatsSource, cgroup_files
from testdock.monitor.tests_running import ProgressFollower
from testdock.project.inspection import Project
from testdock.project.settings import MINIMUM_CONTAINER_MEMORY, PHASES, Settings
from testdock.run import missingmodules
from testdock.safepaths import check_inside, drop_links, output_folder
from testdock.validation import check_cpus, check_tag
from testdock.workspace import Workspace, as_workspace
from testdock_pytest.contract import LABEL_RUN, PROGRESS_FILE, RESULTS_DIR_ENV
from testdock_pytest.sizes import format_size, parse_size

if TYPE_CHECKING:
    import docker

RESULTS_DIR = "test-results"
MONITORING_DIR = "monitoring"
JUNIT_FILE = "junit.xml"
HISTORY_DIR = ".testdock"


@dataclass(frozen=True)
class RunOptions:
    pytest_args: Sequence[str] = ()
    tag: str = "latest"
    memory: str | None = None
    mount_source: bool = False
    monitor: bool = True
    metrics_port: int | None = None
    sample_interval: float = 0.05
    build_missing: bool = True
    command: Sequence[str] | None = None  # replaces the image's command (pytest_args still follow)
    registry: str | None = None  # where a missing image is pulled from before building it
    environment: Mapping[str, str] = field(default_factory=dict)  # added to the container's
    platform: str | None = None  # run the image built for this platform (TAG-ARCH), emulated if need be


@dataclass
class RunResult:
    phase: str
    image: str
    exit_code: int
    oom_killed: bool
    memory_limit: int
    stats: MemoryStats | None = None
    source: str = ""
    killed_tests: list[str] = field(default_factory=list)
    tests_done: int = 0
    tests_failed: int = 0
    plot: Path | None = None
    synthesized_junit: bool = False
    oom_kills: int | None = None  # the kernel's count for the container's cgroup, where readable
    read_only_failures: int = 0  # tests that failed writing into the read-only filesystem
    refused_writes: bool = False  # the output shows a write refused (a session fixture's database)
    # modules the tests import that the image lacks (named by the output, or found by the check
    # a failed run makes): module -> the first test file importing it, where known
    missing_modules: dict[str, str | None] = field(default_factory=dict)
    # modules of the project's own tree the tests import by a bare name pytest's path lacks
    project_modules: dict[str, str] = field(default_factory=dict)
    # pytest plugins the output shows the tests use: plugin -> the fixture, marker... it lacked
    missing_plugins: dict[str, str] = field(default_factory=dict)
    # of those, the ones an extra or group of the project provides: name -> (requirement, where)
    declared_owners: dict[str, tuple[str, str]] = field(default_factory=dict)
    read_only: bool = False  # the container's root filesystem was read-only
    # where the run's own time went, for `bench/overhead.py`: the container's start to its first
    # line of output (the engine, the interpreter, pytest's and its plugins' imports), and the
    # wait for the plot after the tests
    first_output_seconds: float | None = None
    plot_seconds: float = 0.0


# what a run writes on the host, mounted read-write into containers (the monitoring folder only
# into the stress phase's)
OUTPUT_FOLDERS = (RESULTS_DIR, MONITORING_DIR, HISTORY_DIR)


def writable_folder(root: Path, relative: str) -> Path:
    """A folder of the project that a container writes into: inside the project (a symbolic link
    is refused), with no link left in it, owned by the image's user when testdock runs as root."""
    path = output_folder(root, relative)
    drop_links(path)
    if os.getuid() == 0:  # the image's unprivileged user must be able to write here, and to
        # replace what is here already (a local run's results, a copied tree's): links are gone
        for current, folders, files in os.walk(path):
            for name in [*folders, *files]:
                os.chown(Path(current) / name, USER_ID, USER_ID, follow_symlinks=False)
        os.chown(path, USER_ID, USER_ID, follow_symlinks=False)
    return path


def untrusted_links_dropped(root: Path) -> None:
    """After a container ran: the links it may have left in the mounted folders are removed, so
    that what the host writes there next stays in the project."""
    for relative in OUTPUT_FOLDERS:
        drop_links(root / relative)


def ensure_image(workspace: Workspace, phase: str, tag: str, client: docker.DockerClient,
                 echo: Callable[[str], None], build_missing: bool, registry: str = "",
                 platform: str | None = None) -> Any:
    """The phase's image: present, else pulled from `registry`, else built (unless told not to).
    Present but made from files that the settings have changed since: built again. For another
    `platform`, the image built for it (TAG-ARCH)."""
    import docker.errors

    from testdock.images.sync import sync_generated_files

    image_name = workspace.image(phase, tag + (platforms.suffix(platform) if platform else ""))
    synced = sync_generated_files(workspace)
    for message in synced.messages():
        echo(message)
    stale = False
    try:
        image = client.images.get(image_name)
        if not synced.written or not build_missing:
            return image
        stale = True
        echo(f"testdock: {image_name} was built before the settings changed; building it again")
    except docker.errors.ImageNotFound:
        if registry:
            remote = f"{registry.rstrip('/')}/{image_name}"
            echo(f"testdock: {image_name} is missing; pulling {remote}")
            if engine.pull(client, remote):
                engine.tag(client, remote, [image_name])
                return client.images.get(image_name)
            echo(f"testdock: {remote} could not be pulled")
        if not build_missing:
            how = f" --platform {platform}" if platform else ""
            raise BadInput(f"image {image_name} not found; run `testdock build --phase {phase}{how}`"
                           ) from None
    from testdock.engine.builds import BuildOptions, PlainListener, build_images

    if not stale:
        echo(f"testdock: {image_name} is missing; building it first")
    missing_execution = phase == "stress" and (
        stale or engine.image_info(client, workspace.image("execution", tag)) is None)
    phases = ("execution", "stress") if missing_execution else (phase,)
    results = build_images(workspace, BuildOptions(phases=phases, tag=tag,
                                                   platforms=(platform,) if platform else ()),
                           PlainListener(echo))
    failed = [result for result in results if not result.ok]
    if failed:
        raise BadInput(f"building {failed[0].image} failed; see logs/build_test_images.log")
    return client.images.get(image_name)


def _volumes(root: Path, project: Project, mount_source: bool, phase: str) -> dict[str, dict[str, str]]:
    volumes: dict[str, dict[str, str]] = {}
    if mount_source:
        volumes[str(root)] = {"bind": "/app", "mode": "ro"}
    volumes[str(writable_folder(root, RESULTS_DIR))] = {"bind": f"/app/{RESULTS_DIR}", "mode": "rw"}
    monitoring = str(writable_folder(root, MONITORING_DIR))  # the host writes the timeline and plot
    if phase == "stress":
        # its load test (locust's CSV) and memory profiles (memray) are written there; elsewhere
        # /app stays the project's tree (a flat layout's build takes monitoring/ for a package)
        volumes[monitoring] = {"bind": f"/app/{MONITORING_DIR}", "mode": "rw"}
    # the plugin's memory history lives on the host, so the next run can schedule with it
    volumes[str(writable_folder(root, HISTORY_DIR))] = {"bind": f"/app/{HISTORY_DIR}", "mode": "rw"}
    return volumes


def _environment(project: Project, mount_source: bool) -> dict[str, str]:
    environment = {RESULTS_DIR_ENV: f"/app/{RESULTS_DIR}"}
    if mount_source:
        # the mounted tree must win over the copy installed in the image
        environment["PYTHONPATH"] = f"/opt/testdock:{app_pythonpath(project)}"
    return environment


def check_phase_cpus(client: docker.DockerClient, phase: str, settings: Settings) -> None:
    """The phase's CPU limit fits the engine (Docker refuses more CPUs than it has)."""
    cpus = getattr(settings.phases, phase).cpus
    if cpus:
        check_cpus(cpus, engine.cpu_count(client), f"[tool.testdock.phases.{phase}] cpus")


def memory_source(container: Any) -> MemorySource:
    files = cgroup_files(str(container.id))
    if files is not None:
        return CgroupSource(files, CgroupResources(str(container.id), files.version))
    return StatsSource(container)


def run_phase(target: Path | Workspace, phase: str, options: RunOptions = RunOptions(),
              echo: Callable[[str], None] = print) -> RunResult:
    """Run the phase's image to completion. Ctrl-C (KeyboardInterrupt) removes the container,
    keeps what was written and re-raises."""
    if phase not in PHASES:
        raise BadInput(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}")
    workspace = as_workspace(target)
    root, settings, project = workspace.root, workspace.settings, workspace.project
    platform = platforms.check_platform(options.platform) if options.platform else None
    image_name = workspace.image(phase, options.tag + (platforms.suffix(platform) if platform else ""))
    check_tag(options.tag)
    for relative in OUTPUT_FOLDERS:
        check_inside(root, relative)
    limit_text = options.memory or memory_limit(phase, settings)
    what = "--memory" if options.memory else f"[tool.testdock.phases.{phase}] memory"
    try:
        limit = parse_size(limit_text)
    except ValueError as error:
        raise BadInput(f"{what}: {error}") from None
    if limit < MINIMUM_CONTAINER_MEMORY:
        raise BadInput(f"{what} {limit_text}: Docker needs at least 6 MiB")
    client = engine.client()
    check_phase_cpus(client, phase, settings)
    image = ensure_image(workspace, phase, options.tag, client, echo, options.build_missing,
                         workspace.registry(options.registry), platform)
    if platform and not platforms.same_platform(platform, platforms.image_platform(image)):
        raise BadInput(f"{image_name} is a {platforms.image_platform(image)} image, not {platform}; "
                       f"build it again: testdock build --phase {phase} --platform {platform}")
    default_command = list(options.command or image.attrs["Config"].get("Cmd") or [])
    command = [*default_command, *options.pytest_args] if options.pytest_args or options.command else None
    volumes = _volumes(root, project, options.mount_source, phase)  # checked before anything is touched
    progress_path = root / RESULTS_DIR / PROGRESS_FILE
    progress_path.unlink(missing_ok=True)
    (root / RESULTS_DIR / JUNIT_FILE).unlink(missing_ok=True)
    starting = time.monotonic()
    container = _start(client, image_name, command, limit, phase, settings, volumes,
                       {**_environment(project, options.mount_source),
                        **getattr(settings.phases, phase).environment, **options.environment}, platform)
    result = RunResult(phase, image_name, -1, False, limit,
                       read_only=getattr(settings.phases, phase).read_only)
    monitoring: MonitoringSession | None = None
    follower = ProgressFollower(progress_path)
    interrupted = False
    gone = False  # removed by someone else while it ran
    removal: ContainerRemoval | None = None
    scanner = missingmodules.OutputScanner()
    from docker.errors import NotFound

    try:
        if options.monitor:
            monitoring = MonitoringSession(
                memory_source(container), MonitoringFiles(
                    root / MONITORING_DIR / "memory.csv", root / MONITORING_DIR / "memory-profile.png",
                    f"{image_name}: memory over time", root / MONITORING_DIR / "metrics.prom"),
                follower, options.sample_interval, phase, options.metrics_port).start()
            result.source = monitoring.source.name
        carried = ""
        for chunk in container.logs(stream=True, follow=True):
            if result.first_output_seconds is None:
                result.first_output_seconds = time.monotonic() - starting
            text = chunk.decode(errors="replace")
            echo(text.rstrip("\n"))
            result.refused_writes = result.refused_writes or any(
                marker in carried + text for marker in REFUSED_WRITE_MARKERS)
            scanner.feed(text)
            if monitoring is not None and PYTEST_SUMMARY.search(text):
                monitoring.draw_early()
            carried = text[-100:]
        try:
            status = container.wait()
            container.reload()
        except NotFound:
            gone = True
            raise TestdockError(f"the {phase} container was removed while it ran (by `docker rm`, a "
                                "cleanup job, another tool?); the tests that finished are kept") from None
        result.exit_code = int(status["StatusCode"])
        result.oom_killed = bool(container.attrs["State"].get("OOMKilled"))
        # the container has exited: nothing in it writes any more, so its removal (a tenth of a
        # second or more of the engine's time) overlaps the plot's drawing
        removal = ContainerRemoval(container)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if removal is None and not gone:
            _remove_container(container)
        untrusted_links_dropped(root)
        if monitoring is not None:
            result.stats = monitoring.stop()
            if isinstance(monitoring.source, CgroupSource):
                result.oom_kills = monitoring.source.last_oom_kills
        follower.poll()
        result.tests_done, result.tests_failed = follower.done, follower.failed
        result.killed_tests = follower.current()
        if monitoring is not None:
            drawing = time.monotonic()
            result.plot = monitoring.finish()
            result.plot_seconds = time.monotonic() - drawing
        if removal is not None:
            removal.wait()
        if (interrupted or gone) and not (root / RESULTS_DIR / JUNIT_FILE).exists():
            # the tests that finished are kept, as after an OOM kill; the running ones were stopped
            why = "interrupted (Ctrl-C)" if interrupted else "its container removed"
            junit_from_progress(progress_path, root / RESULTS_DIR / JUNIT_FILE, result.killed_tests,
                                f"{why} before it finished")
    if result.oom_killed and result.oom_kills is not None:
        result.oom_kills = max(result.oom_kills, 1)  # the last kill can come after the last sample
    near_limit = result.stats is not None and result.stats.peak >= 0.95 * limit
    if result.exit_code == 137 and near_limit:
        result.oom_killed = True
    if (scanner.missing or scanner.plugins) and result.exit_code not in (0, 137):
        if scanner.missing:
            missing = missingmodules.every_missing(client, image_name, project, scanner.missing)
            result.project_modules = missingmodules.project_modules(project.root, missing)
            result.missing_modules = {module: where for module, where in missing.items()
                                      if module not in result.project_modules}
        result.missing_plugins = scanner.plugins
        result.declared_owners = missingmodules.declared_owners(
            result.missing_modules, project.optional_requirements, scanner.plugins)
    if getattr(settings.phases, phase).read_only and result.exit_code == 1:
        result.read_only_failures = read_only_failures(root / RESULTS_DIR / JUNIT_FILE)
    if (result.oom_killed or result.exit_code == 137) and not (root / RESULTS_DIR / JUNIT_FILE).exists():
        junit_from_progress(progress_path, root / RESULTS_DIR / JUNIT_FILE, result.killed_tests,
                            f"killed at the container's memory limit of {format_size(limit)}")
        result.synthesized_junit = True
    return result


class ContainerRemoval:
    """A stopped container's removal, in the background while the run's end is written; wait()
    tries once more in the foreground if it failed there, and raises what that raises."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.failed = False
        self._thread = threading.Thread(target=self._remove, daemon=True)
        self._thread.start()

    def _remove(self) -> None:
        try:
            _remove_container(self.container)
        except Exception:  # told in wait(), where the caller can hear it
            self.failed = True

    def wait(self) -> None:
        self._thread.join()
        if self.failed:
            _remove_container(self.container)


def _remove_container(container: Any) -> None:
    """Remove it; one removed already (by `docker rm`, a cleanup job) is as good."""
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        container.remove(force=True)


def _start(client: docker.DockerClient, image_name: str, command: list[str] | None, limit: int, phase: str,
           settings: Settings, volumes: dict[str, dict[str, str]], environment: dict[str, str],
           platform: str | None = None) -> Any:
    cpus = getattr(settings.phases, phase).cpus
    # As root, the image's own unprivileged user writes into folders chowned to it; otherwise
    # the container runs as the caller, so that results on the host belong to them.
    user = None if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"
    read_only = getattr(settings.phases, phase).read_only
    if read_only or user is not None:
        # tools write their caches and settings under ~ (matplotlib, numba, huggingface): the home
        # folder is in the read-only root, or is / for a caller's uid the image does not know
        environment = {"HOME": "/tmp", **environment}
    return engine.start_container(client, engine.ContainerSpec(
        image_name, command, limit, cpus, environment, volumes, {LABEL_RUN: phase},
        read_only=read_only, user=user, platform=platform))


READ_ONLY_ERROR = "[Errno 30] Read-only file system"
# pytest's last line ("===== 3 failed, 120 passed in 4.21s =====", "no tests ran in 0.01s", with
# `-q` without the rules): the tests are over, what follows is the container's exit
PYTEST_SUMMARY = re.compile(r"^=* ?(?:no tests ran|\d+ [a-z]+(?:, \d+ [a-z]+)*) in [\d.]+s"
                            r"(?: \([\d:]+\))? ?=*\s*$", re.MULTILINE)
# how a refused write shows in the output: Python's error, and SQLite's for a database file
REFUSED_WRITE_MARKERS = ("Read-only file system", "unable to open database file",
                         "unable to open database:", "attempt to write a readonly database")


def read_only_failures(junit: Path) -> int:
    """How many tests failed writing into the read-only image (counted in the JUnit report)."""
    try:
        text = junit.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    return sum(READ_ONLY_ERROR in case for case in text.split("<testcase")[1:])


def summary_lines(result: RunResult) -> list[str]:
    """The end-of-run memory summary, and the OOM block when the container was killed."""
    lines: list[str] = []
    if result.read_only_failures:
        lines.append(f"testdock: {result.read_only_failures} test(s) failed writing into the image's "
                     "read-only filesystem; to let them write into their tree, set "
                     f"[tool.testdock.phases.{result.phase}] read_only = false, or use tmp_path")
    elif result.refused_writes and result.read_only and result.exit_code not in (0, 137):
        lines.append("testdock: the run failed writing into the image's read-only filesystem (see the "
                     "output: a database or file created in the working directory?); to let the "
                     f"suite write into its tree, set [tool.testdock.phases.{result.phase}] "
                     "read_only = false")
    if lines and os.getuid() != 0:
        lines.append("testdock: (the image's /app belongs to its own user, and testdock runs the "
                     "container as yours: tests write into /app only when testdock runs as root)")
    lines += missingmodules.hint(result.phase, result.missing_modules, result.declared_owners,
                                 result.missing_plugins)
    lines += missingmodules.local_hint(result.project_modules)
    stats = result.stats
    if stats is not None and stats.samples:
        rate = stats.samples / stats.duration if stats.duration else 0.0
        headroom = stats.headroom
        lines.append(
            f"testdock: memory peak {format_size(stats.peak)} of {format_size(result.memory_limit)}"
            f" (headroom {format_size(headroom) if headroom is not None else 'unlimited'}),"
            f" {stats.seconds_above_90:.1f}s above 90%; {stats.samples} samples at {rate:.0f} Hz"
            f" from {result.source}")
        resources = resources_line(stats)
        if resources is not None:
            lines.append(f"testdock: {resources}")
        if result.plot is not None:
            lines.append(f"testdock: timeline in {MONITORING_DIR}/memory.csv, "
                         f"plot in {MONITORING_DIR}/{result.plot.name}")
    if result.oom_killed:
        running = result.killed_tests or (stats.peak_tests if stats else [])
        what = (f"the {result.phase} container was killed at its memory limit" if result.exit_code == 137
                else f"the kernel killed a process in the {result.phase} container at its memory "
                     "limit; the run went on")
        lines += [
            f"testdock: OOM: {what}",
            f"  limit    {format_size(result.memory_limit)}",
            f"  peak     {format_size(stats.peak) if stats and stats.samples else 'not measured'}",
            f"  running  {', '.join(running) if running else 'unknown (no progress events)'}",
            f"  finished {result.tests_done} test(s), {result.tests_failed} failed; "
            f"JUnit: {RESULTS_DIR}/{JUNIT_FILE}"
            + (" (written by testdock from the progress events)" if result.synthesized_junit else ""),
            f"  raise the limit with --memory or [tool.testdock.phases.{result.phase}] memory",
        ]
    return lines
