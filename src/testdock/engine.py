"""The one place testdock talks to Docker: the SDK for images and containers, the CLI for
BuildKit builds (the Engine API has no equivalent of `docker build` with BuildKit mounts)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testdock.errors import TestdockError

if TYPE_CHECKING:
    import docker


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


def find_builder() -> Builder:
    """A Docker client that builds with BuildKit: one with buildx, else a classic client
    (before 23.0) whose built-in BuildKit DOCKER_BUILDKIT=1 turns on."""
    candidates = [c for c in (os.environ.get("TESTDOCK_DOCKER"), shutil.which("docker"),
                              "/usr/bin/docker") if c and Path(c).is_file()]
    for binary in dict.fromkeys(candidates):
        if _has_buildx(binary):
            return Builder((binary, "buildx", "build", "--load"), {}, f"{binary} buildx")
    for binary in dict.fromkeys(candidates):
        version = _client_version(binary)
        if version is not None and version < (23,):
            return Builder((binary, "build"), {"DOCKER_BUILDKIT": "1"},
                           f"{binary} {'.'.join(map(str, version))} (DOCKER_BUILDKIT=1)")
    found = ", ".join(candidates) or "no docker client on PATH"
    raise EngineUnavailable(
        f"cannot build with BuildKit: no Docker client with buildx, nor a classic client before "
        f"23.0 (found: {found}); install the docker-buildx plugin")


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path
    tags: tuple[str, ...]
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False


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
    argv.append(str(request.context))
    return argv


def build(builder: Builder, request: BuildRequest, on_line: Callable[[str], None]) -> None:
    """Run one BuildKit build, streaming its output line by line; BuildFailed on failure."""
    argv = build_argv(builder, request)
    on_line(f"$ {shlex.join(argv)}")
    tail: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, **builder.env}, errors="replace") as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            tail = [*tail[-39:], line]
            on_line(line)
        returncode = process.wait()
    if returncode != 0:
        raise BuildFailed(request.tags[0], returncode, tail)


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


def image_size(docker_client: docker.DockerClient, image: str) -> int:
    size: Any = docker_client.images.get(image).attrs["Size"]
    return int(size)
