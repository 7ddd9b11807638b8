"""`testdock build` on the real engine: failures isolated, Ctrl-C, push to a real registry,
label-scoped cleanup, health tests and the JSON summary."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.conftest import EXAMPLE
from tests.integration.conftest import free_port, interrupt_when, run_cli, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path: Path, base_image: str) -> Path:
    """A fresh, initialised copy of the example, named uniquely so tests never share images."""
    copy = tmp_path / "shop"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    name = unique_name("shop", tmp_path, 12)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.testdock]\nproject = "{name}"\n')
    result = run_cli("init", str(copy), "--base-image", base_image)
    assert result.returncode == 0, result.stderr
    return copy


def _prefix(project: Path) -> str:
    for line in (project / "pyproject.toml").read_text().splitlines():
        if line.startswith("project = "):
            return line.split('"')[1]
    raise AssertionError("no project name")


def _tags(client: docker.DockerClient, prefix: str) -> set[str]:
    return {tag for image in client.images.list() for tag in image.tags if tag.startswith(prefix + "-")}


def _break(project: Path, dockerfile: str) -> None:
    path = project / "docker" / dockerfile
    lines = path.read_text().splitlines()
    cmd = max(i for i, line in enumerate(lines) if line.startswith("CMD"))
    lines.insert(cmd, "RUN echo 'deliberate failure' && exit 3")
    path.write_text("\n".join(lines) + "\n")


def test_a_failing_image_does_not_stop_the_others(project: Path,
                                                  docker_client: docker.DockerClient) -> None:
    _break(project, "backend.test.Dockerfile")
    result = run_cli("build", str(project), "--tag", "t1", "--json")
    assert result.returncode == 1, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    states = {row["phase"]: row["result"] for row in summary["images"]}
    assert states == {"collection": "built", "execution": "built", "stress": "built", "backend": "failed"}
    backend = next(row for row in summary["images"] if row["phase"] == "backend")
    assert any("deliberate failure" in line for line in backend["error_tail"])
    prefix = _prefix(project)
    tags = _tags(docker_client, prefix)
    assert f"{prefix}-execution:t1" in tags and f"{prefix}-backend:t1" not in tags
    assert not any("testdock-building" in tag for tag in tags)
    assert summary["images"][0]["size"] > 0 and summary["images"][0]["steps"] > 0


def test_stress_is_skipped_when_execution_fails(project: Path) -> None:
    _break(project, "pytest.execution.Dockerfile")
    result = run_cli("build", str(project), "--tag", "t2", "--json", "--phase", "execution",
                     "--phase", "stress")
    assert result.returncode == 1
    states = {row["phase"]: row["result"] for row in json.loads(result.stdout)["images"]}
    assert states == {"execution": "failed", "stress": "skipped"}


def test_ctrl_c_stops_builds_and_leaves_no_half_tagged_image(
        project: Path, docker_client: docker.DockerClient) -> None:
    log = project / "logs" / "build_test_images.log"
    returncode, stderr = interrupt_when(
        ["build", str(project), "--tag", "interrupted", "--no-cache"],
        lambda: log.is_file() and "RUN " in log.read_text(), "the builds' start")
    assert returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr
    tags = _tags(docker_client, _prefix(project))
    assert not any(tag.endswith(":interrupted") or "testdock-building" in tag for tag in tags), tags
    leftovers = subprocess.run(["pgrep", "-f", f"docker.*build.*{project}"], capture_output=True,
                               text=True, check=False)
    assert leftovers.stdout.strip() == ""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry (Debian's docker-registry) on 127.0.0.1."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is missing: scripts/test.sh installs Debian's docker-registry")
    folder = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = folder / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    server = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/v2/"], check=False,
                                   capture_output=True)
            if probe.returncode == 0:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_push_to_a_real_registry_and_pull_back(project: Path, registry: str,
                                                docker_client: docker.DockerClient) -> None:
    target = f"{registry}/team"
    result = run_cli("build", str(project), "--phase", "collection", "--tag", "pushed",
                     "--registry", target, "--push", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    row = json.loads(result.stdout)["images"][0]
    repository = f"{target}/{_prefix(project)}-collection"
    assert row["pushed"] == [f"{repository}:pushed", f"{repository}:latest"]
    docker_client.images.remove(f"{repository}:pushed")
    pulled = docker_client.images.pull(repository, tag="pushed")
    assert pulled.labels["io.testdock.phase"] == "collection"


def test_an_arm64_image_is_pushed_as_a_multi_platform_image_and_runs_under_emulation(
        project: Path, registry: str, docker_client: docker.DockerClient) -> None:
    """The execution image for linux/amd64 and linux/arm64 (QEMU user emulation through
    binfmt_misc: scripts/arm64.sh), pushed; the registry's plain tag is a manifest list of both;
    the arm64 image, pulled back by `run --platform`, runs the example's suite as aarch64."""
    arm64_base = os.environ.get("TESTDOCK_BASE_IMAGE_ARM64")
    if not arm64_base:
        pytest.fail("TESTDOCK_BASE_IMAGE_ARM64 is not set: scripts/test.sh runs scripts/arm64.sh")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text()
                         + f'\n[tool.testdock.build.platform_base_images]\n"linux/arm64" = "{arm64_base}"\n')
    result = run_cli("build", str(project), "--phase", "execution", "--platform", "linux/amd64,linux/arm64",
                     "--registry", registry, "--push", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout)["images"]
    repository = f"{registry}/{_prefix(project)}-execution"
    assert [(row["platform"], row["tag"], row["result"]) for row in rows] == [
        ("linux/amd64", "latest-amd64", "built"), ("linux/arm64", "latest-arm64", "built")]
    assert f"{repository}:latest" in rows[1]["pushed"] and f"{repository}:latest-arm64" in rows[1]["pushed"]
    assert docker_client.images.get(f"{repository}:latest-arm64").attrs["Architecture"] == "arm64"
    assert docker_client.images.get(f"{repository}:latest").attrs["Architecture"] == "amd64"  # the engine's
    request = urllib.request.Request(
        f"http://{registry}/v2/{_prefix(project)}-execution/manifests/latest",
        headers={"Accept": "application/vnd.docker.distribution.manifest.list.v2+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        listed = json.load(response)
    assert listed["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert sorted(entry["platform"]["architecture"] for entry in listed["manifests"]) == ["amd64", "arm64"]

    local = f"{_prefix(project)}-execution:latest-arm64"
    assert _tags(docker_client, _prefix(project)) == set()  # pushed names only: run pulls it
    result = run_cli("run", "execution", str(project), "--platform", "linux/arm64", "--registry", registry)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "29 passed" in result.stdout + result.stderr
    machine = docker_client.containers.run(
        local, ["python", "-c", "import platform; print(platform.machine())"], platform="linux/arm64",
        network_mode="host", remove=True)
    assert machine.decode().strip() == "aarch64"

    wrong = run_cli("run", "execution", str(project), "--platform", "linux/arm/v9")
    assert wrong.returncode == 2 and "is not a platform" in wrong.stderr


def test_push_needs_a_registry(project: Path) -> None:
    result = run_cli("build", str(project), "--push")
    assert result.returncode == 2
    assert "--push needs a registry" in result.stderr


def test_cleanup_keeps_the_newest_and_never_touches_foreign_images(
        project: Path, docker_client: docker.DockerClient, base_image: str, tmp_path: Path) -> None:
    prefix = _prefix(project)
    # A foreign image that even carries testdock's project label, but was not made by testdock.
    foreign_dir = tmp_path / "foreign"
    foreign_dir.mkdir()
    (foreign_dir / "Dockerfile").write_text(
        f"FROM {base_image}\nLABEL io.testdock.project=\"{prefix}\" io.testdock.phase=\"collection\"\n"
        "RUN echo foreign > /foreign\n")
    foreign, _ = docker_client.images.build(path=str(foreign_dir), tag=f"{prefix}-foreign:1",
                                            network_mode="host", rm=True, forcerm=True)
    ids: list[str] = []
    for number in range(3):
        (project / "src" / "shop" / "version_marker.py").write_text(f"MARK = {number}\n")
        result = run_cli("build", str(project), "--phase", "collection", "--tag", f"v{number}")
        assert result.returncode == 0, result.stderr[-2000:]
        ids.append(str(docker_client.images.get(f"{prefix}-collection:v{number}").id))
        time.sleep(1.1)  # distinct creation times
    result = run_cli("build", str(project), "--phase", "collection", "--tag", "v2", "--cleanup",
                     "--keep", "2", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)["cleanup"]
    assert any(ids[0].removeprefix("sha256:")[:12] in item for item in report["removed"])
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(ids[0])
    assert docker_client.images.get(ids[1]) and docker_client.images.get(ids[2])
    assert docker_client.images.get(str(foreign.id)).id == foreign.id


def test_health_tests_report_per_image(project: Path) -> None:
    result = run_cli("build", str(project), "--phase", "execution", "--phase", "stress",
                     "--phase", "backend", "--test", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {row["phase"]: row for row in json.loads(result.stdout)["images"]}
    assert all(row["health"]["ok"] for row in rows.values()), rows
    assert "pytest" in rows["execution"]["health"]["detail"]
    assert "healthy" in rows["backend"]["health"]["detail"]


def test_a_rebuild_after_a_code_change_reuses_the_dependency_layers(project: Path) -> None:
    first = run_cli("build", str(project), "--tag", "r1", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    (project / "src" / "shop" / "extra.py").write_text("VALUE = 1\n")
    second = run_cli("build", str(project), "--tag", "r2", "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    for row in json.loads(second.stdout)["images"]:
        # everything before the code is cached: requirements, dependencies, stress tools
        assert row["cache_hits"] >= row["steps"] - 3, row
    assert (project / "logs" / "build_test_images.log").is_file()


def _setuptools_project(root: Path, files: dict[str, str]) -> Path:
    """A setuptools project named after its folder, testing with pytest, made of these files."""
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{root.name}"\nversion = "1.0"\n[project.optional-dependencies]\n'
        'test = ["pytest"]\n')
    return root


def test_a_flat_setuptools_project_builds_and_runs(tmp_path: Path, base_image: str,
                                                   docker_client: docker.DockerClient) -> None:
    """docker/ next to a flat layout must not become a 'package' in the image's install; a test
    module written for a newer Python does not fail the build."""
    root = _setuptools_project(tmp_path / "flatpkg", {
        "flatpkg/__init__.py": "def double(x: int) -> int:\n    return 2 * x\n",
        "tests/test_double.py": ("from flatpkg import double\n\n"
                                 "def test_double():\n    assert double(2) == 4\n"),
        # cattrs's tests of PEP 695 generics, left out by its conftest below Python 3.12: the
        # build's bytecode step must not fail on them
        "tests/test_generics_695.py": "class Box[T]:\n    pass\n\ndef test_box():\n    assert Box\n",
        "tests/conftest.py": ("import sys\n\ncollect_ignore = [] if sys.version_info >= (3, 12) "
                              "else ['test_generics_695.py']\n"),
        # cloudpickle's: a package of the tests' own, which its requirements name by path
        "requirements-test.txt": "pytest\n./tests/helperpkg\n",
        "tests/helperpkg/pyproject.toml": ('[build-system]\nrequires = ["setuptools>=68"]\n'
                                           'build-backend = "setuptools.build_meta"\n'
                                           '[project]\nname = "flat-helper"\nversion = "1.0"\n'),
        "tests/helperpkg/flat_helper.py": "HALF = 0.5\n",
        "tests/test_helper.py": ("from flat_helper import HALF\n\n"
                                 "def test_half():\n    assert HALF * 2 == 1\n"),
        "docker/compose.yaml": "services: {}\n",  # the project's own, beside testdock's
        # sphinx's: a test project the tests list the files of (no bytecode written there)
        "tests/roots/test-root/conf.py": "project = 'x'\n"})
    # narwhals's sdist: a group names a uv workspace member the sdist leaves out, which uv refuses
    with (root / "pyproject.toml").open("a") as pyproject:
        pyproject.write('[dependency-groups]\nplugins = ["flat-plugin"]\n'
                        '[tool.uv.sources]\nflat-plugin = { workspace = true }\n')
    init = run_cli("init", str(root), "--base-image", base_image)
    assert init.returncode == 0 and "setuptools discovers packages automatically" in init.stderr
    result = run_cli("build", str(root), "--phase", "execution", "--phase", "collection", "--tag", "flat")
    assert result.returncode == 0, result.stderr[-3000:]
    container = docker_client.containers.run("flatpkg-execution:flat", detach=True,
                                             network_mode="host", labels={"io.testdock.test": "1"})
    try:
        assert container.wait(timeout=300)["StatusCode"] == 0, container.logs().decode()[-2000:]
        assert "2 passed" in container.logs().decode()  # the base image has Python 3.11
    finally:
        container.remove(force=True)
    # /app is the project's tree without testdock's files: a flat layout's build (pytest-checkdocs)
    # found docker/, logs/ and monitoring/ there as packages, pytest-ruff linted healthcheck.py
    for image in ("flatpkg-execution:flat", "flatpkg-collection:flat"):
        listing = docker_client.containers.run(
            image, ["sh", "-c", "ls -A /app /app/docker"], remove=True, network_mode="host").decode()
        assert "logs" not in listing.split() and "monitoring" not in listing.split(), listing
        assert "compose.yaml" in listing and "healthcheck.py" not in listing, listing
        assert "Dockerfile" not in listing and ".whl" not in listing, listing
    bytecode = docker_client.containers.run(
        "flatpkg-execution:flat", ["sh", "-c", "ls -A /app/tests /app/tests/roots/test-root"], remove=True,
        network_mode="host").decode()
    assert bytecode.count("__pycache__") == 1, bytecode  # the tests', not the test project's
    # the collection image has the tests' own package for real: its import is no missing module
    collected = docker_client.containers.run("flatpkg-collection:flat", remove=True,
                                             network_mode="host").decode()
    assert "tests/test_helper.py::test_half" in collected, collected[-2000:]


SPEED_C = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}

static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
"""


def test_a_project_with_a_c_extension_builds_with_zero_settings_and_no_compiler_ships(
        tmp_path: Path, base_image: str, docker_client: docker.DockerClient) -> None:
    """msgpack, SQLAlchemy, yarl...: the project's own C code is compiled where the compilers are
    (found by the project's setup.py), and the final image has its compiled module, not gcc; in a
    flat layout, beside the sources too, which `python -m pytest` in /app imports."""
    root = _setuptools_project(tmp_path / "cext", {
        "cext/__init__.py": "", "cext/_speed.c": SPEED_C,
        "tests/test_speed.py": "from cext._speed import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        # scikit-image's build runs a `#!/usr/bin/env python` script: the base image has python3 only
        "setup.py": 'import subprocess\nfrom setuptools import Extension, setup\n'
                    'subprocess.run(["python", "-c", "pass"], check=True)\n'
                    'setup(packages=["cext"], ext_modules=[Extension("cext._speed", ["cext/_speed.c"])])\n'})
    init = run_cli("init", str(root), "--base-image", base_image)
    assert init.returncode == 0 and "cext compiles extension modules of its own: gcc" in init.stdout
    result = run_cli("build", str(root), "--phase", "execution", "--phase", "backend", "--tag", "cext")
    assert result.returncode == 0, result.stderr[-3000:]
    # compiled once: the backend image waited for the execution image's wheel and found it cached
    assert "[backend] waiting: for execution" in result.stdout + result.stderr
    log = (root / "logs" / "build_test_images.log").read_text()
    steps = re.findall(r"\[backend\] (#\d+) \[project-wheel 1/1\]", log)
    assert steps and any(f"[backend] {step} CACHED" in log for step in steps), log[-3000:]
    # testdock's own files changing (a new plugin wheel, a rewritten Dockerfile) compile nothing again
    (root / "docker" / "notes.txt").write_text("not the project's code\n")
    before = len(log)
    again = run_cli("build", str(root), "--phase", "execution", "--tag", "cext")
    assert again.returncode == 0, again.stderr[-3000:]
    log = (root / "logs" / "build_test_images.log").read_text()[before:]  # the log is appended to
    steps = re.findall(r"\[execution\] (#\d+) \[project-wheel 1/1\]", log)
    assert steps and all(f"[execution] {step} CACHED" in log for step in steps), log[-3000:]
    output = docker_client.containers.run(
        "cext-execution:cext", ["sh", "-c", "python -m pytest -q -p no:cacheprovider --no-cov -n 0 tests; "
                                            "command -v gcc cc || echo no-compiler"],
        remove=True, network_mode="host").decode()
    assert "1 passed" in output and "no-compiler" in output, output[-2000:]


def test_system_packages_in_the_image_and_build_packages_only_where_built(
        project: Path, docker_client: docker.DockerClient, base_image: str) -> None:
    """The settings reach the images with no `testdock init`: at `build`, and at `run`, which
    builds an image again when the settings changed its files."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.testdock]\n", '[tool.testdock]\nsystem_packages = ["jq"]\nbuild_packages = ["gcc"]\n', 1))
    result = run_cli("build", str(project), "--phase", "execution", "--tag", "pkgs")
    assert result.returncode == 0, result.stderr[-3000:]
    applied = result.stderr.split("testdock: applied the settings to ")[1].splitlines()[0]
    assert "docker/pytest.execution.Dockerfile" in applied
    output = docker_client.containers.run(
        f"{_prefix(project)}-execution:pkgs", ["sh", "-c", "jq --version; command -v gcc || echo no-gcc"],
        remove=True, network_mode="host").decode()
    assert output.startswith("jq-") and "no-gcc" in output
    pyproject.write_text(pyproject.read_text().replace('system_packages = ["jq"]',
                                                       'system_packages = ["jq", "tree"]'))
    ran = run_cli("run", "execution", str(project), "--tag", "pkgs", "--no-monitor",
                  "--", "--co", "-q", "--no-cov")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    assert "was built before the settings changed; building it again" in ran.stdout + ran.stderr
    output = docker_client.containers.run(f"{_prefix(project)}-execution:pkgs", ["tree", "--version"],
                                          remove=True, network_mode="host").decode()
    assert output.startswith("tree ")


def test_the_images_install_the_versions_of_the_lock_file(project: Path,
                                                           docker_client: docker.DockerClient) -> None:
    (project / "uv.lock").write_text(
        'version = 1\n\n[[package]]\nname = "anyio"\nversion = "4.4.0"\n'
        'source = { registry = "https://pypi.org/simple" }\n')
    assert run_cli("init", str(project)).returncode == 0
    assert "anyio==4.4.0" in (project / "docker" / "constraints.txt").read_text()
    result = run_cli("build", str(project), "--phase", "execution", "--tag", "locked")
    assert result.returncode == 0, result.stderr[-3000:]
    script = "import importlib.metadata as m; print(m.version('anyio'))"
    output = docker_client.containers.run(f"{_prefix(project)}-execution:locked", ["python", "-c", script],
                                          remove=True, network_mode="host")
    assert output.decode().strip() == "4.4.0"


def _hold_memory(project: Path, phases: dict[str, str], mib: int, round_: str) -> None:
    """A step in each image that holds `mib` MiB for a few seconds (a compiler's peak, say):
    the last stage's, so the dependency layers come from the cache; `round_` makes it new (a
    step BuildKit has cached runs nothing, and measures nothing)."""
    for phase, dockerfile in phases.items():
        path = project / "docker" / dockerfile
        lines = [line for line in path.read_text().splitlines() if "testdock-test-hold" not in line]
        cmd = max(i for i, line in enumerate(lines) if line.startswith("CMD"))
        hold = f"b = bytearray({mib} * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(6)"
        lines.insert(cmd, f'RUN python3 -c "import time; {hold}"  # testdock-test-hold {phase} {round_}')
        path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def buildkit_limited() -> Iterator[int]:
    """The engine's BuildKit cgroup limited to 900 MiB, as on a small machine, and restored."""
    from testdock.engine import buildmemory

    found = buildmemory.buildkit_cgroup()
    assert found is not None, "this machine has no memory cgroups"
    folder, version = found
    folder.mkdir(parents=True, exist_ok=True)  # a fresh engine makes it with its first build step
    limit = folder / ("memory.limit_in_bytes" if version == 1 else "memory.max")
    before = limit.read_text().strip()
    limit.write_text(str(900 * 2**20))
    try:
        yield 900 * 2**20
    finally:
        limit.write_text("-1" if version == 1 else "max")
        assert version == 2 or before.isdigit()


def test_auto_builds_what_fits_and_a_build_killed_for_memory_is_retried_alone(
        project: Path, buildkit_limited: int) -> None:
    """Three builds that each hold 350 MiB for a while, with 900 MiB for BuildKit: with the
    memory their earlier builds took, `auto` runs two at once and none is killed; three at once
    (--parallel 3) gets one killed by the kernel, which is then built again, alone."""
    phases = {"collection": "pytest.collection.Dockerfile", "execution": "pytest.execution.Dockerfile",
              "backend": "backend.test.Dockerfile"}
    chosen = [argument for phase in phases for argument in ("--phase", phase)]
    run = uuid.uuid4().hex[:8]
    _hold_memory(project, phases, 350, f"{run}-1")
    first = run_cli("build", str(project), "--tag", "m1", "--json", "--parallel", "1", *chosen)
    assert first.returncode == 0, first.stderr[-3000:]
    peaks = {row["phase"]: row["peak_memory"] for row in json.loads(first.stdout)["images"]}
    assert all(peak and peak >= 350 * 2**20 for peak in peaks.values()), (peaks, first.stderr[-2000:])
    history = json.loads((project / ".testdock" / "build-memory.json").read_text())
    assert sorted(history) == sorted(phases)

    _hold_memory(project, phases, 350, f"{run}-2")
    fitted = run_cli("build", str(project), "--tag", "m2", "--json", *chosen)  # auto, the default
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    assert "--parallel auto: builds start while their memory fits 900.0 MiB" in fitted.stderr
    rows = json.loads(fitted.stdout)["images"]
    assert all(row["result"] == "built" and not row["retried_alone"] for row in rows), rows

    _hold_memory(project, phases, 350, f"{run}-3")
    crowded = run_cli("build", str(project), "--tag", "m3", "--json", "--parallel", "3", *chosen)
    assert crowded.returncode == 0, crowded.stderr[-3000:]
    rows = json.loads(crowded.stdout)["images"]
    assert all(row["result"] == "built" for row in rows), rows
    retried = [row["phase"] for row in rows if row["retried_alone"]]
    assert retried, "three 350 MiB steps in 900 MiB: the kernel should have killed one"
    log = (project / "logs" / "build_test_images.log").read_text()
    assert "killed for memory at [" in log
