"""`testdock run backend`: the services the app needs, then the app under uvicorn in the backend
image (memory-limited, on 127.0.0.1 and a free port), healthy before anything else happens; then
the integration tests against its URL, the app's memory sampled beside them; everything stopped
and removed afterwards, whatever happens."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testdock import engine
from testdock.errors import BadInput, TestdockError
from testdock.images.phases import memory_limit, uvicorn_command
from testdock.monitor.sampler import MemoryStats
from testdock.monitor.session import MonitoringFiles, MonitoringSession
from testdock.monitor.tests_running import ProgressFollower
from testdock.ports import free_port, port_open
from testdock.project.inspection import Project
from testdock.project.settings import ServiceSettings, Settings
from testdock.run.phase import (
    MONITORING_DIR,
    RESULTS_DIR,
    RunOptions,
    RunResult,
    check_phase_cpus,
    ensure_image,
    memory_source,
    run_phase,
    writable_folder,
)
from testdock.validation import check_tag
from testdock.workspace import Workspace, as_workspace
from testdock_pytest.contract import LABEL_MANAGED, LABEL_PROJECT, LABEL_RUN, PROGRESS_FILE
from testdock_pytest.sizes import format_size, parse_size

if TYPE_CHECKING:
    import docker

APP_URL_ENV = "TESTDOCK_APP_URL"
HEALTH_SCRIPT = "/opt/testdock/healthcheck.py"
APP_CSV = "backend-app-memory.csv"
APP_PLOT = "backend-app-memory.png"


class BackendFailed(TestdockError):
    """The app or a service did not come up; the message carries its logs' tail."""


def _tail(container: Any, lines: int = 25) -> str:
    try:
        text: str = container.logs(tail=lines).decode(errors="replace")
    except Exception:  # the container may be gone; its logs are a courtesy
        return "(no logs)"
    return text.rstrip() or "(no output)"


def _expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match.group(1), match.group(0)), text)


@dataclass
class RunningService:
    name: str
    container: Any
    port: int
    exports: dict[str, str]


def _labels(project_prefix: str, role: str) -> dict[str, str]:
    return {LABEL_RUN: role, LABEL_MANAGED: "true", LABEL_PROJECT: project_prefix}


def start_service(client: docker.DockerClient, name: str, service: ServiceSettings, prefix: str,
                  echo: Callable[[str], None]) -> RunningService:
    if engine.image_info(client, service.image) is None and not engine.pull(client, service.image):
        raise BadInput(f"[tool.testdock.backend.services.{name}] image {service.image} is not on this "
                       "engine and cannot be pulled; build or load it first")
    port = service.port or free_port()
    values = {"port": str(port)}
    memory = parse_size(service.memory)
    echo(f"testdock: starting service {name} ({service.image}) on 127.0.0.1:{port}")
    container = engine.start_container(client, engine.ContainerSpec(
        service.image, [_expand(part, values) for part in service.command] if service.command else None,
        memory, environment={key: _expand(value, values) for key, value in service.env.items()},
        labels=_labels(prefix, f"service-{name}"), profile=engine.Profile.SERVICE))
    running = RunningService(name, container, port,
                             {key: _expand(value, values) for key, value in service.exports.items()})
    try:
        _wait_ready(running, service, values)
    except BaseException:  # not ready, or interrupted: the caller never gets it to remove
        _remove(container)
        raise
    return running


def _wait_ready(running: RunningService, service: ServiceSettings, values: dict[str, str]) -> None:
    name, container, port = running.name, running.container, running.port
    deadline = time.monotonic() + service.ready_timeout
    while True:
        container.reload()
        if container.status in ("exited", "dead"):
            raise BackendFailed(f"service {name} exited before it was ready:\n{_tail(container)}")
        if service.ready:
            code, _ = container.exec_run([_expand(part, values) for part in service.ready])
            if code == 0:
                return
        elif port_open(port):
            return
        if time.monotonic() > deadline:
            raise BackendFailed(f"service {name} was not ready after {service.ready_timeout:.0f}s:\n"
                                f"{_tail(container)}")
        time.sleep(0.3)


def _remove(container: Any) -> None:
    with contextlib.suppress(Exception):
        container.stop(timeout=5)
    with contextlib.suppress(Exception):
        container.remove(force=True)


@contextlib.contextmanager
def services(client: docker.DockerClient, settings: Settings, prefix: str, echo: Callable[[str], None]
             ) -> Iterator[list[RunningService]]:
    """The configured services, started in order and removed in reverse, whatever happens."""
    started: list[RunningService] = []
    try:
        for name, service in settings.backend.services.items():
            started.append(start_service(client, name, service, prefix, echo))
        yield started
    finally:
        for running in reversed(started):
            _remove(running.container)


@dataclass
class App:
    container: Any
    url: str
    environment: dict[str, str]
    idle_memory: int = 0
    health_output: str = ""


def app_target(project: Project, settings: Settings) -> tuple[str, str, bool]:
    """(module:attribute, "asgi" or "wsgi", whether it is a factory) of the app to serve."""
    if settings.backend.app:
        return settings.backend.app, settings.backend.interface, settings.backend.factory
    if project.app is None:
        raise BadInput("no app to serve: set [tool.testdock.backend] app = \"module:attribute\" "
                       "(an ASGI or WSGI application; factory = true when it is a function that "
                       "returns one), or the app's own serve command as [tool.testdock.phases.backend] "
                       "command, with {host} and {port}")
    return project.app.target, project.app.interface, project.app.factory


def serves_an_app(project: Project, settings: Settings) -> bool:
    """Whether the backend phase has an app to serve: a serve command, a configured or found app."""
    return bool(settings.phases.backend.command or settings.backend.app or project.app)


def serve_command(project: Project, settings: Settings, host: str, port: int) -> list[str]:
    """The app's serve command: the configured one with {host} and {port} filled in, else uvicorn
    for the configured or found app."""
    configured = settings.phases.backend.command
    if configured:
        values = {"host": host, "port": str(port)}
        return [_expand(part, values) for part in configured]
    target, interface, factory = app_target(project, settings)
    return uvicorn_command(target, interface, settings, factory)


HEALTH_PATH_FILE = "/tmp/testdock-health-path"  # read by docker/healthcheck.py
HEALTH_CANDIDATES = ("/health", "/healthz", "/ping", "/status", "/readyz", "/livez",
                     "/api/health", "/", "/docs", "/openapi.json")


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status a GET of the URL answers, None when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


def answering_paths(url: str, candidates: tuple[str, ...] = HEALTH_CANDIDATES) -> list[str]:
    """The usual health paths that answer 2xx at the app's URL, in the order tried."""
    return [path for path in candidates if (status := http_status(url + path)) is not None
            and 200 <= status < 300]


@contextlib.contextmanager
def app(client: docker.DockerClient, workspace: Workspace, tag: str, exports: dict[str, str],
        echo: Callable[[str], None]) -> Iterator[App]:
    """The backend image serving the app, healthy (or BackendFailed with its logs); removed after."""
    settings, project = workspace.settings, workspace.project
    image = workspace.image("backend", tag)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**exports, **{key: _expand(value, {"app_url": url, "port": str(port)})
                                 for key, value in settings.backend.environment.items()}}
    environment[APP_URL_ENV] = url
    limit = parse_size(memory_limit("backend", settings))
    cpus = settings.phases.backend.cpus
    command = serve_command(project, settings, "127.0.0.1", port)
    shown = " ".join(command)
    echo(f"testdock: starting {image} ({shown if len(shown) <= 200 else shown[:197] + '...'}) on {url}, "
         f"memory limit {format_size(limit)}")
    health_path = settings.backend.health_path
    container = engine.start_container(client, engine.ContainerSpec(
        image, command, limit, cpus,
        environment={"HOME": "/tmp", **environment, "UVICORN_HOST": "127.0.0.1", "UVICORN_PORT": str(port),
                     "HOST": "127.0.0.1", "PORT": str(port), "TESTDOCK_HEALTH_PATH": health_path,
                     "TESTDOCK_HEALTH_MAX_MEMORY": str(settings.backend.health_max_memory)},
        labels=_labels(workspace.prefix, "backend-app"),
        tmp_size="256m", pids_limit=1024,
        healthcheck={"test": ["CMD", "python", HEALTH_SCRIPT], "interval": 2_000_000_000,
                     "timeout": 5_000_000_000, "retries": 2, "start_period": 0}))
    running = App(container, url, environment)
    try:
        deadline = time.monotonic() + settings.backend.health_timeout
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs["State"].get("ExitCode")
                raise BackendFailed(f"the app exited before it was healthy (exit {code}); its logs:\n"
                                    f"{_tail(container)}")
            code, output = container.exec_run(["python", HEALTH_SCRIPT],
                                              environment={"TESTDOCK_HEALTH_PATH": health_path})
            text = output if isinstance(output, bytes) else b"".join(output)
            running.health_output = text.decode(errors="replace").strip()
            if code == 0:
                break
            try:
                found = _another_health_path(url, health_path, settings, echo)
            except BackendFailed as error:
                raise BackendFailed(f"{error}; its logs:\n{_tail(container)}") from None
            if found != health_path:  # the image's own health check reads it too
                container.exec_run(["python", "-c", f"open({HEALTH_PATH_FILE!r}, 'w').write({found!r})"])
                health_path = found
            if time.monotonic() > deadline:
                raise BackendFailed(
                    f"the app was not healthy after {settings.backend.health_timeout:.0f}s "
                    f"({running.health_output or 'no answer'}); its logs:\n{_tail(container)}")
            time.sleep(0.5)
        echo(f"testdock: app healthy at {url} ({running.health_output})")
        yield running
    finally:
        _remove(container)


def _another_health_path(url: str, path: str, settings: Settings, echo: Callable[[str], None]) -> str:
    """When the app answers, but not 2xx at the health path: the configured path fails at once,
    naming the usual paths that did answer; the default one gives way to the first of them."""
    status = http_status(url + path)
    if status is None or 200 <= status < 300 or status >= 500:
        return path  # not up yet, or failing for now: the deadline decides
    answered = answering_paths(url)
    if "health_path" in settings.backend.model_fields_set:
        raise BackendFailed(
            f"the app answers, but its health path {path} answered {status}; paths that answered "
            f"2xx: {', '.join(answered) if answered else 'none of ' + ', '.join(HEALTH_CANDIDATES)}; "
            "set [tool.testdock.backend] health_path to one that does")
    if not answered:
        raise BackendFailed(
            f"the app answers, but {path} answered {status} and none of {', '.join(HEALTH_CANDIDATES)} "
            "answered 2xx; set [tool.testdock.backend] health_path to a path that does")
    echo(f"testdock: {path} answered {status}; using {answered[0]}, which answers 2xx, as the health "
         "path (set [tool.testdock.backend] health_path to choose)")
    return answered[0]


def integration_selection(root: Path, project: Project, settings: Settings) -> list[str]:
    """What the backend phase runs: the configured arguments, else an `integration` folder of the
    test paths, else the tests marked `integration` when the marker is declared, else all."""
    if settings.backend.tests:
        return list(settings.backend.tests)
    for test_path in project.test_paths:
        folder = root / test_path / "integration"
        if folder.is_dir():
            return [f"{test_path}/integration"]
    for config in ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini"):
        path = root / config
        if path.is_file() and re.search(r"^\s*[\"']?integration\s*:", path.read_text(errors="replace"), re.M):
            return ["-m", "integration"]
    return []


@dataclass
class BackendResult:
    tests: RunResult
    url: str
    app_stats: MemoryStats | None = None
    app_idle: int = 0
    app_plot: Path | None = None
    app_unhealthy: str = ""
    services: list[str] = field(default_factory=list)


def run_backend(target: Path | Workspace, options: RunOptions | None = None,
                echo: Callable[[str], None] = print) -> BackendResult:
    options = options or RunOptions()
    workspace = as_workspace(target)
    root, settings, project, prefix = workspace.root, workspace.settings, workspace.project, workspace.prefix
    check_tag(options.tag)
    client = engine.client()
    check_phase_cpus(client, "backend", settings)
    ensure_image(workspace, "backend", options.tag, client, echo, options.build_missing,
                 workspace.registry(options.registry))
    selection = integration_selection(root, project, settings)
    with services(client, settings, prefix, echo) as running_services:
        exports = {key: value for service in running_services for key, value in service.exports.items()}
        with app(client, workspace, options.tag, exports, echo) as served:
            writable_folder(root, MONITORING_DIR)
            follower = ProgressFollower(root / RESULTS_DIR / PROGRESS_FILE)
            monitoring = MonitoringSession(memory_source(served.container), MonitoringFiles(
                root / MONITORING_DIR / APP_CSV, root / MONITORING_DIR / APP_PLOT,
                f"{prefix} backend app: memory during the integration tests"),
                follower, options.sample_interval).start()
            reading = monitoring.source.read()
            served.idle_memory = reading.usage if reading is not None else 0
            command = ["python", "-m", "pytest", "-p", "no:cacheprovider",
                       "--junitxml=test-results/backend-junit.xml", *selection]
            try:
                tests = run_phase(workspace, "backend", RunOptions(
                    options.pytest_args, options.tag, options.memory, options.mount_source, options.monitor,
                    options.metrics_port, options.sample_interval, build_missing=False, command=command,
                    environment={**served.environment, **options.environment}), echo)
            finally:
                stats = monitoring.stop()
            served.container.reload()
            health = (served.container.attrs["State"].get("Health") or {}).get("Status", "")
            result = BackendResult(tests, served.url, stats, served.idle_memory,
                                   services=[service.name for service in running_services])
            if served.container.status != "running":
                result.app_unhealthy = f"the app stopped during the tests:\n{_tail(served.container)}"
            elif health == "unhealthy":
                log = (served.container.attrs["State"].get("Health") or {}).get("Log") or [{}]
                result.app_unhealthy = f"the app turned unhealthy: {str(log[-1].get('Output', '')).strip()}"
    result.app_plot = monitoring.finish()
    return result


def summary_lines(result: BackendResult) -> list[str]:
    lines = []
    stats = result.app_stats
    if stats is not None and stats.samples:
        lines.append(f"testdock: app memory idle {format_size(result.app_idle)}, "
                     f"peak {format_size(stats.peak)} of {format_size(stats.limit or 0)} during the tests; "
                     f"timeline in {MONITORING_DIR}/{APP_CSV}, plot in {MONITORING_DIR}/{APP_PLOT}")
    if result.services:
        lines.append(f"testdock: services used: {', '.join(result.services)}")
    if result.app_unhealthy:
        lines.append(f"testdock: {result.app_unhealthy}")
    return lines
