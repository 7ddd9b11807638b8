"""`testdock build --test`: each image's health test in a memory-limited container."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from testdock import engine
from testdock.images.phases import memory_limit
from testdock.ports import free_port
from testdock.project.inspection import Project
from testdock.project.settings import Settings
from testdock_pytest.sizes import parse_size

TEST_LABELS = {"io.testdock.health-test": "1"}
PROFILERS = "memray, pympler, memory_profiler, pytest_benchmark, pytest_html, locust, psutil"


@dataclass(frozen=True)
class HealthResult:
    phase: str
    image: str
    ok: bool
    detail: str
    seconds: float


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _run_to_end(client: docker.DockerClient, image: str, command: list[str] | None, memory: int,
                timeout: float = 600) -> tuple[int, str]:
    return engine.run_to_completion(client, engine.ContainerSpec(
        image, command, memory, labels=TEST_LABELS, profile=engine.Profile.PLAIN), timeout)


def _backend_app(client: docker.DockerClient, image: str, memory: int, timeout: float) -> tuple[bool, str]:
    config: dict[str, Any] = client.images.get(image).attrs["Config"]
    test = (config.get("Healthcheck") or {}).get("Test") or []
    port = free_port()
    container = engine.start_container(client, engine.ContainerSpec(
        image, None, memory, environment={"UVICORN_PORT": str(port)}, labels=TEST_LABELS,
        profile=engine.Profile.PLAIN,
        healthcheck={"test": test, "interval": 1_000_000_000, "timeout": 5_000_000_000,
                     "retries": 3, "start_period": 0}))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            health = container.attrs["State"].get("Health") or {}
            if health.get("Status") == "healthy":
                log = health.get("Log") or [{}]
                return True, _last_line(str(log[-1].get("Output", "")))
            if container.status == "exited":
                return False, "the app exited: " + _last_line(container.logs().decode(errors="replace"))
            time.sleep(0.5)
        return False, f"not healthy within {timeout:.0f}s: " + _last_line(
            container.logs().decode(errors="replace"))
    finally:
        container.remove(force=True)


def health_test(client: docker.DockerClient, phase: str, image: str, project: Project,
                settings: Settings, timeout: float = 120) -> HealthResult:
    memory = parse_size(memory_limit(phase, settings))
    started = time.monotonic()
    try:
        if phase == "collection":
            code, logs = _run_to_end(client, image, None, memory)
            ok, detail = code == 0, _last_line(logs)
        elif phase == "execution":
            imports = "; ".join(f"import {package}" for package in project.packages) or "pass"
            code, logs = _run_to_end(client, image, [
                "sh", "-c", f'python -c "{imports}" && python -m pytest --version'], memory)
            ok, detail = code == 0, _last_line(logs)
        elif phase == "stress":
            code, logs = _run_to_end(client, image, [
                "sh", "-c", f'python -c "import {PROFILERS}" && py-spy --version'], memory)
            ok, detail = code == 0, _last_line(logs)
        elif project.app is not None:
            ok, detail = _backend_app(client, image, memory, timeout)
        else:
            code, logs = _run_to_end(client, image, ["python", "-m", "pytest", "--version"], memory)
            ok, detail = code == 0, _last_line(logs)
    except docker.errors.DockerException as error:
        ok, detail = False, str(error)[:160]
    return HealthResult(phase, image, ok, detail, time.monotonic() - started)
