"""A real Docker engine for integration tests: the one that answers, or one scripts/engine.sh
starts. No engine is a failure here, never a skip."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from testdock.ports import free_port as free_port  # re-exported for the integration tests
from tests.conftest import EXAMPLE, REPO

# A real third-party project from PyPI: its sdist carries its tests; no runtime dependencies,
# so every image's default command can pass before import stubbing exists.
REAL_PROJECT = ("more-itertools", "10.5.0")
CACHE = Path(os.environ.get("TESTDOCK_TEST_CACHE", Path.home() / ".cache" / "testdock-tests"))


def _engine_environment() -> dict[str, str]:
    result = subprocess.run(["bash", str(REPO / "scripts" / "engine.sh")], capture_output=True,
                            text=True, check=False, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"scripts/engine.sh could not provide a Docker engine:\n{result.stderr[-3000:]}")
    exports: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            exports[key] = value
    return exports


# the machine's set-up, made by scripts (engine.sh, service-images.sh), not by a test: kept
INFRASTRUCTURE = "testdock-local/"
# A run killed before its cleanup (a CI job's timeout) leaves its images behind; names of this
# session's own never meet them
SESSION_TOKEN = os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:6]


def unique_name(stem: str, tmp_path: Path, width: int = 10) -> str:
    """A project name for a test's images: the test's own (its temporary folder) and this session's."""
    test = tmp_path.name[-width:].lower().replace("_", "-").strip("-")
    return f"{stem}-{test}-{SESSION_TOKEN}"


def _tagged(client: docker.DockerClient) -> dict[str, str]:
    """Every tag, and the id of the image it names."""
    return {tag: str(image.id) for image in client.images.list() for tag in image.tags}


def _restore_tags(client: docker.DockerClient, tagged: dict[str, str]) -> None:
    """A tag a test moved to an image of its own (the example rebuilt under a developer's
    `shop-execution:latest`) names again the image it named before the session, where that image
    is still there: removing the test's image took the tag with it."""
    now = _tagged(client)
    for tag, image_id in tagged.items():
        if now.get(tag) != image_id:
            repository, _, name = tag.rpartition(":")
            with contextlib.suppress(docker.errors.APIError):
                client.images.get(image_id).tag(repository, name)


def _remove_what_the_session_made(client: docker.DockerClient, images: set[str], tags: dict[str, str],
                                  containers: set[str], volumes: set[str]) -> None:
    """Every container, image, tag and volume that appeared during the session goes, so that the
    tests leave the engine as they found it (scripts/test.sh checks). A build whose layers were
    all cached tags an image that was there already: the tag goes, the image stays."""
    for container in client.containers.list(all=True):
        if container.id not in containers:
            container.remove(force=True, v=True)
    for volume in client.volumes.list():
        if volume.id not in volumes:
            volume.remove(force=True)
    for tag in set(_tagged(client)) - set(tags):
        if not tag.startswith(INFRASTRUCTURE):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag, noprune=True)  # untagged only: the image may be older
    for _ in range(5):  # children before parents: an image with a child cannot go first
        new = [image for image in client.images.list(all=True) if image.id not in images
               and not any(tag.startswith(INFRASTRUCTURE) for tag in image.tags)]
        if not new:
            break
        for image in sorted(new, key=lambda image: str(image.attrs["Created"]), reverse=True):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(str(image.id), force=True)
    _restore_tags(client, tags)


@contextlib.contextmanager
def _shared_state() -> Iterator[Path]:
    """A file the xdist workers of one run share (the first one in writes the engine's state,
    the last one out cleans up against it), under an exclusive lock."""
    import fcntl
    import tempfile

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"serial-{os.getpid()}")
    folder = Path(tempfile.gettempdir()) / f"testdock-engine-state-{run}"
    folder.mkdir(exist_ok=True)
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder / "state.json"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The engine. What it holds when the first worker of the run starts is what it holds when
    the last one ends: every worker counts itself in and out, and only the last one out cleans
    up (a worker that ended first would remove what another worker's test is still using)."""
    import json

    os.environ.update(_engine_environment())
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(f"no Docker engine answers at {os.environ.get('DOCKER_HOST')}: {error}")
    with _shared_state() as state:
        if state.is_file():
            snapshot = json.loads(state.read_text())
            snapshot["workers"] += 1
        else:
            snapshot = {"workers": 1, "images": [str(image.id) for image in client.images.list(all=True)],
                        "tags": _tagged(client),
                        "containers": [str(container.id) for container in client.containers.list(all=True)],
                        "volumes": [str(volume.id) for volume in client.volumes.list()]}
        state.write_text(json.dumps(snapshot))
    yield client
    with _shared_state() as state:
        snapshot = json.loads(state.read_text())
        snapshot["workers"] -= 1
        if snapshot["workers"] > 0:
            state.write_text(json.dumps(snapshot))
        else:
            state.unlink()
            _remove_what_the_session_made(client, set(snapshot["images"]), snapshot["tags"],
                                          set(snapshot["containers"]), set(snapshot["volumes"]))
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> str:
    image = os.environ.get("TESTDOCK_BASE_IMAGE", "")
    if not image:
        pytest.fail("TESTDOCK_BASE_IMAGE is not set; scripts/engine.sh sets it")
    docker_client.images.get(image)
    return image


@pytest.fixture(scope="session")
def postgres_image(base_image: str) -> str:
    """The example's PostgreSQL service image, built here from the base image (no registry)."""
    result = subprocess.run(["bash", str(REPO / "scripts" / "service-images.sh")], capture_output=True,
                            text=True, check=False, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"scripts/service-images.sh failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def _run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "testdock", *args], capture_output=True,
                          text=True, cwd=cwd, check=False, timeout=1800)


def _initialised(project: Path, base_image: str) -> Path:
    result = _run_cli("init", str(project), "--base-image", base_image)
    assert result.returncode == 0, result.stderr
    return project


def _download_sdist(name: str, version: str) -> Path:
    target = CACHE / f"{name}-{version}"
    archives = list(target.glob("*.tar.gz")) if target.is_dir() else []
    if not archives:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", f"{name}=={version}", "--dest", str(target)],
                       check=True, timeout=600)
        archives = list(target.glob("*.tar.gz"))
    assert len(archives) == 1, archives
    return archives[0]


@pytest.fixture(scope="session")
def example_project(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Path:
    copy = tmp_path_factory.mktemp("example") / "shop"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info",
                                                                 ".pytest_cache", ".benchmarks"))
    return _initialised(copy, base_image)


@pytest.fixture(scope="session")
def real_project(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Path:
    archive = _download_sdist(*REAL_PROJECT)
    folder = tmp_path_factory.mktemp("real")
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    (root,) = folder.iterdir()
    return _initialised(root, base_image)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return _run_cli(*args, cwd=cwd)


def interrupt_when(args: list[str], ready: Callable[[], bool], what: str,
                   stop: signal.Signals = signal.SIGINT) -> tuple[int, str]:
    """Start `testdock ARGS`, send it `stop` once `ready()` holds; (exit code, stderr)."""
    process = subprocess.Popen([sys.executable, "-m", "testdock", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready():
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{what} never happened")
        time.sleep(0.2)
    process.send_signal(stop)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, stderr
