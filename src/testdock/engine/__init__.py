"""The one place testdock talks to Docker: the SDK for images and containers, the CLI for
BuildKit builds (the Engine API has no equivalent of `docker build` with BuildKit mounts). Every
container testdock starts goes through `start_container`, with one hardening profile and its
named exceptions (Profile)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from testdock.errors import TestdockError
from testdock_pytest.contract import LABEL_MANAGED

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container


class EngineUnavailable(TestdockError):
    """No Docker engine answers, or it cannot build with BuildKit."""


class BuildFailed(TestdockError):
    def __init__(self, image: str, returncode: int, tail: list[str]) -> None:
        super().__init__(f"building {image} failed (exit {returncode})")
        self.image = image
        self.returncode = returncode
        self.tail = tail


@dataclass(frozen=True)
class Builder:
    """How this machine builds with BuildKit: the argv prefix and the environment it needs."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    description: str


def _client_version(binary: str) -> tuple[int, ...] | None:
    try:
        result = subprocess.run([binary, "version", "--format", "{{.Client.Version}}"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    digits = result.stdout.strip().split("+")[0].split("-")[0].split(".")
    try:
        return tuple(int(d) for d in digits[:3])
    except ValueError:
        return None


def _has_buildx(binary: str) -> bool:
    try:
        result = subprocess.run([binary, "buildx", "version"], capture_output=True, text=True,
                                timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _docker_clients() -> list[str]:
    """Docker clients worth trying: TESTDOCK_DOCKER, the one on PATH, Debian's."""
    candidates = [c for c in (os.environ.get("TESTDOCK_DOCKER"), shutil.which("docker"),
                              "/usr/bin/docker") if c and Path(c).is_file()]
    return list(dict.fromkeys(candidates))


def find_builder() -> Builder:
    """A Docker client that builds with BuildKit: one with buildx, else a classic client
    (before 23.0) whose built-in BuildKit DOCKER_BUILDKIT=1 turns on."""
    candidates = _docker_clients()
    for binary in candidates:
        if _has_buildx(binary):
            return Builder((binary, "buildx", "build", "--load"), {}, f"{binary} buildx")
    for binary in candidates:
        version = _client_version(binary)
        if version is not None and version < (23,):
            return Builder((binary, "build"), {"DOCKER_BUILDKIT": "1"},
                           f"{binary} {'.'.join(map(str, version))} (DOCKER_BUILDKIT=1)")
    found = ", ".join(candidates) or "no docker client on PATH"
    raise EngineUnavailable(
        f"cannot build with BuildKit: no Docker client with buildx, nor a classic client before "
        f"23.0 (found: {found}); install the docker-buildx plugin")


def find_bake() -> Builder:
    """A Docker client with buildx, for `docker buildx bake`."""
    candidates = _docker_clients()
    for binary in candidates:
        if _has_buildx(binary):
            return Builder((binary, "buildx", "bake"), {}, f"{binary} buildx bake")
    raise EngineUnavailable(
        f"--bake needs docker buildx, and no client here has it ({', '.join(candidates) or 'none'}); "
        "install the docker-buildx plugin, or build without --bake")


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path
    tags: tuple[str, ...]
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    target: str | None = None
    cache_from: tuple[str, ...] = ()  # images whose inline cache BuildKit may reuse
    labels: Mapping[str, str] = field(default_factory=dict)  # on the image built
    iidfile: Path | None = None  # where the client writes the built image's id
    platform: str | None = None  # os/arch to build for (None: the engine's)


def build_argv(builder: Builder, request: BuildRequest) -> list[str]:
    argv = [*builder.argv, "--progress=plain", "--network=host", "--file", str(request.dockerfile)]
    for tag in request.tags:
        argv += ["--tag", tag]
    for key, value in sorted(request.build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    if request.no_cache:
        argv.append("--no-cache")
    if request.pull:
        argv.append("--pull")
    if request.target:
        argv += ["--target", request.target]
    for image in request.cache_from:
        argv += ["--cache-from", image]
    for key, value in sorted(request.labels.items()):
        argv += ["--label", f"{key}={value}"]
    if request.iidfile is not None:
        argv += ["--iidfile", str(request.iidfile)]
    if request.platform is not None:
        argv += ["--platform", request.platform]

    argv.append(str(request.context))
    return argv


class Processes:
    """Build processes alive now, so that Ctrl-C can stop every one of them."""

    def __init__(self) -> None:
        self._alive: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def add(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            if self.stopping:
                process.terminate()
            self._alive.add(process)

    def discard(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._alive.discard(process)

    def stop_all(self, grace: float = 10.0) -> None:
        """Interrupt every build (the client cancels it on the engine), then terminate, then kill."""
        with self._lock:
            self.stopping = True
            alive = list(self._alive)
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            for process in alive:
                if process.poll() is None:
                    process.send_signal(stop_signal)
            deadline = time.monotonic() + grace
            for process in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
            alive = [p for p in alive if p.poll() is None]
            if not alive:
                return


def build(builder: Builder, request: BuildRequest, on_line: Callable[[str], None],
          processes: Processes | None = None) -> None:
    """Run one BuildKit build, streaming its output line by line; BuildFailed on failure."""
    argv = build_argv(builder, request)
    on_line(f"$ {shlex.join(argv)}")
    tail: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, **builder.env}, errors="replace",
                          start_new_session=True) as process:
        if processes is not None:
            processes.add(process)
        try:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip("\n")
                tail = [*tail[-39:], line]
                on_line(line)
            returncode = process.wait()
        finally:
            if processes is not None:
                processes.discard(process)
    if returncode != 0:
        raise BuildFailed(request.tags[0] if request.tags else str(request.target), returncode, tail)


def client() -> docker.DockerClient:
    """The Docker SDK client for the engine DOCKER_HOST (or the default socket) names."""
    import docker
    import docker.errors

    try:
        docker_client = docker.from_env(timeout=120)
        docker_client.ping()
    except docker.errors.DockerException as error:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise EngineUnavailable(f"no Docker engine answers at {where} ({error}); start one, "
                                "or set DOCKER_HOST (scripts/engine.sh starts one)") from None
    return docker_client


def cpu_count(docker_client: docker.DockerClient) -> int:
    """How many CPUs the engine's machine has."""
    return int(docker_client.info().get("NCPU") or os.cpu_count() or 1)


class PushFailed(TestdockError):
    pass


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    size: int
    created: str
    labels: Mapping[str, str]


def _info(image: Any) -> ImageInfo:
    return ImageInfo(image.id, tuple(image.tags), int(image.attrs["Size"]),
                     str(image.attrs["Created"]), dict(image.labels or {}))


def image_info(docker_client: docker.DockerClient, reference: str) -> ImageInfo | None:
    import docker.errors

    try:
        return _info(docker_client.images.get(reference))
    except docker.errors.ImageNotFound:
        return None


def tag(docker_client: docker.DockerClient, source: str, targets: Sequence[str]) -> None:
    """Give the image `source` every tag in `targets` (repository:tag)."""
    image = docker_client.images.get(source)
    for target in targets:
        repository, _, name = target.rpartition(":")
        image.tag(repository, name)


def untag(docker_client: docker.DockerClient, reference: str) -> None:
    """Remove one tag; the image stays while other tags name it. Missing tags are fine."""
    import docker.errors

    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(reference, noprune=False)


def images_with_labels(docker_client: docker.DockerClient, labels: Mapping[str, str]) -> list[ImageInfo]:
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    return [_info(image) for image in docker_client.images.list(filters=filters)]


def dangling_with_labels(docker_client: docker.DockerClient, labels: Mapping[str, str]) -> list[ImageInfo]:
    filters: dict[str, Any] = {"dangling": True,
                               "label": [f"{key}={value}" for key, value in labels.items()]}
    return [_info(image) for image in docker_client.images.list(filters=filters)]


def remove_image(docker_client: docker.DockerClient, reference: str) -> str | None:
    """Remove a tag (the engine removes the image once no tag and no child image holds it), or an
    untagged image by id (unless a child image needs it); never forced. Returns why not, when
    the engine refuses."""
    import docker.errors

    try:
        docker_client.images.remove(reference, noprune=False)  # never forced
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as error:
        return str(error.explanation or error)
    return None


def push(docker_client: docker.DockerClient, reference: str) -> None:
    """Push one repository:tag; PushFailed carries the registry's words."""
    repository, _, name = reference.rpartition(":")
    for event in docker_client.images.push(repository, tag=name, stream=True, decode=True):
        if isinstance(event, dict) and event.get("error"):
            raise PushFailed(f"pushing {reference} failed: {event['error']}")


def pull(docker_client: docker.DockerClient, reference: str) -> bool:
    """Pull one repository:tag; False when the registry does not have it or cannot be reached."""
    import docker.errors

    repository, _, name = reference.rpartition(":")
    try:
        docker_client.images.pull(repository, tag=name)
    except docker.errors.APIError:
        return False
    return True


# -- containers: every one testdock starts goes through here ----------------------------------
class Profile(Enum):
    """How a container is confined. HARDENED is the rule for the project's code; the others are
    the named exceptions."""

    HARDENED = "hardened"  # the project's tests and app: no capabilities, no new privileges, a
    # pids limit, a read-only root (unless the phase says otherwise) with a tmpfs /tmp
    SERVICE = "service"  # a third-party service image (PostgreSQL): it runs as its image says,
    # as root where it must (it owns its data directory), and writes where it expects to
    PLAIN = "plain"  # an image as `docker run IMAGE` runs it: the health tests check the image's
    # own defaults, and the collection comparison and the install hint's probe read the images


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    command: Sequence[str] | None = None  # None: the image's CMD
    memory: int | None = None  # bytes; swap is set equal (no swap)
    cpus: float | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    volumes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    profile: Profile = Profile.HARDENED
    read_only: bool = True  # HARDENED: the root filesystem
    user: str | None = None  # HARDENED: uid:gid; None: the image's user
    tmp_size: str = "512m"  # HARDENED: the size of the tmpfs /tmp
    pids_limit: int = 4096  # HARDENED
    healthcheck: Mapping[str, Any] | None = None
    network: str = "host"  # containers share the host's network (never a bridge here)
    platform: str | None = None  # os/arch of the image to run (None: the engine's)


def container_options(spec: ContainerSpec) -> dict[str, Any]:
    """The Docker SDK's keyword arguments for `spec` (detached)."""
    options: dict[str, Any] = {
        "detach": True, "network_mode": spec.network, "environment": dict(spec.environment),
        "volumes": {path: dict(mount) for path, mount in spec.volumes.items()},
        "labels": {LABEL_MANAGED: "true", **spec.labels}}
    if spec.memory is not None:
        options.update(mem_limit=spec.memory, memswap_limit=spec.memory)
    if spec.cpus:
        options["nano_cpus"] = int(spec.cpus * 1e9)
    if spec.healthcheck is not None:
        options["healthcheck"] = dict(spec.healthcheck)
    if spec.platform is not None:
        options["platform"] = spec.platform
    if spec.profile is Profile.HARDENED:
        options.update(cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=spec.pids_limit,
                       # exec: Docker's tmpfs is noexec by default, and suites run what they write
                       # there (pexpect's scripts, a virtualenv in tmp_path), as in a plain container
                       read_only=spec.read_only, tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={spec.tmp_size}"},
                       user=spec.user)
    return options


def start_container(docker_client: docker.DockerClient, spec: ContainerSpec) -> Container:
    """Start a container as `spec` says; the caller removes it."""
    command = list(spec.command) if spec.command is not None else None
    container = docker_client.containers.run(spec.image, command, **container_options(spec))
    return cast("Container", container)  # detached: a Container, never the output


def run_to_completion(docker_client: docker.DockerClient, spec: ContainerSpec,
                      timeout: float = 1800) -> tuple[int, str]:
    """Run a container to its end: (exit code, its output); it is removed whatever happens."""
    container = start_container(docker_client, spec)
    try:
        status = container.wait(timeout=timeout)
        return int(status["StatusCode"]), container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
