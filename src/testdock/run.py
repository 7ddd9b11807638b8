"""Run a phase's image: its default command (plus extra pytest arguments) under a memory
limit, output streamed live, results written to the host as they are produced."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from testdock import engine
from testdock.config import PHASES, load_settings
from testdock.errors import BadInput
from testdock.phases import USER_ID, memory_limit
from testdock.project import inspect_project
from testdock.render import image_prefix
from testdock.units import format_size, parse_size

RESULTS_DIR = "test-results"
MONITORING_DIR = "monitoring"


@dataclass(frozen=True)
class RunResult:
    phase: str
    image: str
    exit_code: int
    oom_killed: bool
    memory_limit: int


def _writable_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:  # the image's unprivileged user must be able to write here
        os.chown(path, USER_ID, USER_ID)
    return path


def run_phase(root: Path, phase: str, pytest_args: Sequence[str] = (), tag: str = "latest",
              memory: str | None = None, echo: Callable[[str], None] = print) -> RunResult:
    """Run the phase's image to completion; Ctrl-C removes the container and re-raises."""
    if phase not in PHASES:
        raise BadInput(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}")
    root = root.resolve()  # the SDK reads a relative source as a named volume
    settings = load_settings(root)
    project = inspect_project(root, app_override=settings.backend.app)
    image_name = f"{image_prefix(project, settings)}-{phase}:{tag}"
    limit_text = memory or memory_limit(phase, settings)
    try:
        limit = parse_size(limit_text)
    except ValueError as error:
        raise BadInput(f"--memory: {error}") from None
    client = engine.client()
    import docker.errors

    try:
        image = client.images.get(image_name)
    except docker.errors.ImageNotFound:
        raise BadInput(f"image {image_name} not found; run `testdock build --phase {phase}` first") from None
    command = [*(image.attrs["Config"].get("Cmd") or []), *pytest_args] if pytest_args else None
    volumes = {
        str(_writable_folder(root / RESULTS_DIR)): {"bind": f"/app/{RESULTS_DIR}", "mode": "rw"},
        str(_writable_folder(root / MONITORING_DIR)): {"bind": f"/app/{MONITORING_DIR}", "mode": "rw"},
    }
    cpus = getattr(settings.phases, phase).cpus
    # As root, the image's own unprivileged user writes into folders chowned to it; otherwise
    # the container runs as the caller, so that results on the host belong to them.
    user = None if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"
    container = client.containers.run(
        image_name, command, detach=True, network_mode="host", mem_limit=limit, memswap_limit=limit,
        nano_cpus=int(cpus * 1e9) if cpus else None, pids_limit=4096, volumes=volumes,
        cap_drop=["ALL"], security_opt=["no-new-privileges"], tmpfs={"/tmp": "rw,size=256m"},
        read_only=True, labels={"io.testdock.run": phase}, user=user)
    try:
        for chunk in container.logs(stream=True, follow=True):
            echo(chunk.decode(errors="replace").rstrip("\n"))
        status = container.wait()
        container.reload()
        oom = bool(container.attrs["State"].get("OOMKilled"))
    except BaseException:
        container.remove(force=True)
        raise
    container.remove(force=True)
    exit_code = int(status["StatusCode"])
    if oom or exit_code == 137:
        echo(f"testdock: the {phase} container was killed (exit {exit_code}"
             f"{', OOMKilled' if oom else ''}) at its memory limit of {format_size(limit)}; "
             f"raise it with --memory or [tool.testdock.phases.{phase}] memory")
    return RunResult(phase, image_name, exit_code, oom, limit)
