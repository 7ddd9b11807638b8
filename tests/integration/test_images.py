"""`testdock init` + `testdock build` on the real engine: the four images of the example project
and of a real third-party project build, carry testdock's labels, and their default commands work."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from testdock.engine import find_builder
from testdock.project.inspection import inspect_project
from testdock.project.settings import PHASES
from tests.conftest import REPO
from tests.integration.conftest import free_port, run_cli

pytestmark = pytest.mark.integration

TEST_LABEL = {"io.testdock.test": "1"}


@pytest.fixture(scope="module", params=["example", "real"])
def built(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> tuple[Path, str]:
    """A project whose four images were built by `testdock build`, and its image prefix."""
    project: Path = request.getfixturevalue(f"{request.param}_project")
    result = run_cli("build", str(project), "--tag", "it")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    prefix = "shop" if request.param == "example" else "more-itertools"
    return project, prefix


def _run(client: docker.DockerClient, image: str, results: Path | None = None,
         command: list[str] | None = None, memory: str = "1g") -> tuple[int, str]:
    volumes = {str(results): {"bind": "/app/test-results", "mode": "rw"}} if results else {}
    container: Container = client.containers.run(
        image, command, detach=True, network_mode="host", mem_limit=memory, memswap_limit=memory,
        labels=TEST_LABEL, volumes=volumes)
    try:
        status = container.wait(timeout=900)
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    return int(status["StatusCode"]), logs


def _results_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "test-results"
    folder.mkdir()
    folder.chmod(0o777)  # the images run as an unprivileged user
    return folder


def test_build_makes_four_labelled_images(built: tuple[Path, str],
                                          docker_client: docker.DockerClient) -> None:
    project, prefix = built
    for phase in PHASES:
        for tag in ("it", "latest"):
            image = docker_client.images.get(f"{prefix}-{phase}:{tag}")
            labels = image.labels
            assert labels["io.testdock.project"] == prefix
            assert labels["io.testdock.phase"] == phase
            assert labels["io.testdock.managed"] == "true"
            assert image.attrs["Config"]["User"] == "10001:10001"
    dockerfiles = sorted(str(p) for p in (project / "docker").glob("*Dockerfile"))
    assert len(dockerfiles) == 4
    lint = subprocess.run([str(Path(sys.executable).parent / "hadolint"), "--config",
                           str(REPO / ".hadolint.yaml"), *dockerfiles],
                          capture_output=True, text=True, check=False)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout
    log = (project / "logs" / "build_test_images.log").read_text()
    assert all(f"[{phase}] built {prefix}-{phase}:it" in log for phase in PHASES)


def test_images_share_layers_and_stay_lean(built: tuple[Path, str],
                                           docker_client: docker.DockerClient,
                                           base_image: str) -> None:
    _, prefix = built
    base = docker_client.images.get(base_image).attrs["Size"]
    size = {p: docker_client.images.get(f"{prefix}-{p}:it").attrs["Size"] for p in PHASES}
    # The collection image holds pytest and the source only.
    assert size["collection"] - base < 30 * 2**20
    # Stress is the execution image plus tools: its layers start with execution's.
    execution_layers = docker_client.images.get(f"{prefix}-execution:it").attrs["RootFS"]["Layers"]
    stress_layers = docker_client.images.get(f"{prefix}-stress:it").attrs["RootFS"]["Layers"]
    assert stress_layers[: len(execution_layers)] == execution_layers
    assert size["collection"] < size["execution"] < size["stress"]


def test_execution_image_runs_the_suite_under_a_memory_limit(
        built: tuple[Path, str], docker_client: docker.DockerClient, tmp_path: Path) -> None:
    project, prefix = built
    results = _results_folder(tmp_path)
    code, logs = _run(docker_client, f"{prefix}-execution:it", results)
    assert code == 0, logs[-3000:]
    assert " passed" in logs.splitlines()[-1]
    junit = (results / "junit.xml").read_text()
    assert "<testsuite" in junit and 'failures="0"' in junit
    # coverage is measured when the project measures it (the example has a [tool.coverage] table)
    assert (results / "coverage.xml").is_file() == inspect_project(project).measures_coverage


def test_execution_image_has_precompiled_bytecode(
        built: tuple[Path, str], docker_client: docker.DockerClient) -> None:
    _, prefix = built
    script = "import pathlib; print(len(list(pathlib.Path('/app').rglob('*.pyc'))) > 0)"
    code, logs = _run(docker_client, f"{prefix}-execution:it", command=["python", "-c", script])
    assert code == 0, logs
    assert logs.split() == ["True"]


_REWRITES = """
import _pytest.assertion.rewrite as rewrite, pytest
seen = []
original = rewrite._rewrite_test
def counted(path, config):
    seen.append(str(path))
    return original(path, config)
rewrite._rewrite_test = counted
pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"])
print("REWRITTEN", sorted(seen))
"""


def test_the_tests_asserts_are_rewritten_when_the_image_is_built_not_at_every_run(
        built: tuple[Path, str], docker_client: docker.DockerClient) -> None:
    """pytest finds the rewritten bytecode of every test module and plugin module in the image
    (/app is read-only at run time, and bytecode is not written): it rewrites none again."""
    _, prefix = built
    code, logs = _run(docker_client, f"{prefix}-execution:it", command=["python", "-c", _REWRITES])
    assert code == 0, logs
    assert " collected" in logs or "tests collected" in logs, logs[-2000:]
    assert "REWRITTEN []" in logs, logs[-2000:]


_PLUGIN_CHECK = ("import importlib.metadata as m, os, pathlib; "
                 "print([e.value for e in m.entry_points(group='pytest11') if e.name == 'testdock'], "
                 "'PYTEST_PLUGINS' in os.environ, pathlib.Path('/opt/testdock/testdock_pytest').exists())")


def test_one_image_builds_by_hand_the_seeds_way_with_the_plugin_installed_as_a_package(
        built: tuple[Path, str], docker_client: docker.DockerClient) -> None:
    """`docker build -f docker/pytest.execution.Dockerfile .` needs nothing but the project: the
    plugin comes from the one wheel in docker/ and registers itself with pytest."""
    project, prefix = built
    tag = f"{prefix}-execution:by-hand"
    builder = find_builder()  # `docker build` with BuildKit, as this machine's client spells it
    build = subprocess.run([*builder.argv, "--quiet", "--network", "host", "-f",
                            "docker/pytest.execution.Dockerfile", "--label", "io.testdock.test=1",
                            "-t", tag, "."], cwd=project,
                           capture_output=True, text=True, env={**os.environ, **builder.env})
    try:
        assert build.returncode == 0, build.stderr[-4000:]
        code, logs = _run(docker_client, tag, command=["python", "-c", _PLUGIN_CHECK])
        assert code == 0, logs
        assert logs.strip() == "['testdock_pytest.plugin'] False False"
    finally:
        subprocess.run(["docker", "rmi", "--force", tag], capture_output=True, check=False)


_INSTALLERS = ("import importlib.util, shutil, sys; "
               "print([m for m in sys.argv[1:] if importlib.util.find_spec(m)], "
               "[c for c in ('pip', 'pip3', 'easy_install', 'uv') if shutil.which(c)])")


@pytest.mark.parametrize("phase", PHASES)
def test_no_image_holds_an_installer(built: tuple[Path, str], docker_client: docker.DockerClient,
                                     phase: str) -> None:
    """Neither the base image's Python nor the venv has pip, setuptools or ensurepip, and no pip
    or uv command is on the PATH, whatever the base image shipped."""
    _, prefix = built
    # the venv keeps setuptools where a dependency needs it; the base image's Python has none
    for python, modules in (("/usr/bin/python3", ["pip", "setuptools", "ensurepip", "wheel"]),
                            ("python", ["pip", "ensurepip"])):
        code, logs = _run(docker_client, f"{prefix}-{phase}:it",
                          command=[python, "-c", _INSTALLERS, *modules])
        assert code == 0, logs
        assert logs.strip() == "[] []", (python, logs)


_INSTALLED_BY = ("import importlib.metadata as m; "
                 "print(m.distribution('shop').read_text('INSTALLER').strip(), "
                 "m.distribution('httpx').read_text('INSTALLER').strip())")


def _example_built_with(tmp_path: Path, base_image: str, name: str, build_settings: str) -> str:
    """The example's execution image, built under another project name with these build
    settings; its image name."""
    import shutil

    project = tmp_path / name
    shutil.copytree(REPO / "examples" / "shop", project, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.testdock]\nproject = "{name}"\n'
                         f"[tool.testdock.build]\n{build_settings}\n")
    assert run_cli("init", str(project), "--base-image", base_image).returncode == 0
    result = run_cli("build", str(project), "--tag", "it", "--phase", "execution")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return f"{name}-execution:it"


def test_uv_installs_by_default_and_pip_on_request(tmp_path: Path, base_image: str,
                                                  docker_client: docker.DockerClient) -> None:
    """The dependencies and the project are installed by uv (the default), or by pip with
    `installer = "pip"`: the same versions, and the suite passes in both."""
    versions = ("import importlib.metadata as m; "
                "print(sorted((d.name.lower(), d.version) for d in m.distributions()))")
    found = {}
    for installer in ("uv", "pip"):
        image = _example_built_with(tmp_path, base_image, f"shop-{installer}", f'installer = "{installer}"')
        code, logs = _run(docker_client, image, command=["python", "-c", _INSTALLED_BY])
        assert code == 0 and logs.strip() == f"{installer} {installer}", logs
        code, found[installer] = _run(docker_client, image, command=["python", "-c", versions])
        assert code == 0, found[installer]
        results = tmp_path / installer
        results.mkdir()
        code, logs = _run(docker_client, image, _results_folder(results))
        assert code == 0 and "29 passed" in logs.splitlines()[-1], logs[-3000:]
    # the same distributions at the same versions; but for one release that one installer's cached
    # index (each keeps one in the build's cache mount) has not seen yet: opentelemetry-api 1.45.3
    # against 1.45.2, one way in one CI run and the other way in the next
    uv, pip = (dict(ast.literal_eval(found[name].strip())) for name in ("uv", "pip"))
    assert set(uv) == set(pip)
    differing = {name: (uv[name], pip[name]) for name in uv if uv[name] != pip[name]}
    assert len(differing) <= 1, differing


_TEST_SUITES = ("import pathlib, site; root = pathlib.Path(site.getsitepackages()[0]); "
                "print(sorted(str(p.relative_to(root)) for pattern in ('*/tests', '*/test', '*/*/tests') "
                "for p in root.glob(pattern) if p.is_dir()))")


def test_the_execution_image_holds_no_test_suite_of_its_dependencies(
        built: tuple[Path, str], docker_client: docker.DockerClient) -> None:
    """Pruned at build time (the build log lists what went, when the step ran)."""
    _, prefix = built
    code, logs = _run(docker_client, f"{prefix}-execution:it", command=["python", "-c", _TEST_SUITES])
    assert code == 0, logs
    assert logs.strip() == "[]"


def test_collection_image_collects(built: tuple[Path, str], docker_client: docker.DockerClient) -> None:
    _, prefix = built
    code, logs = _run(docker_client, f"{prefix}-collection:it", memory="512m")
    assert code == 0, logs[-3000:]
    assert "tests collected" in logs
    if prefix == "shop":  # its dependencies are missing in this image, and stubbed
        assert "stubbed 3 module(s) that are not installed: fastapi, pydantic, sqlalchemy" in logs


def test_collection_matches_the_execution_image(built: tuple[Path, str]) -> None:
    project, _ = built
    result = run_cli("collect", str(project), "--compare", "--tag", "it")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "identical node ids" in result.stdout
    counts = [int(line.split()[1]) for line in result.stdout.splitlines()
              if line.startswith(("collection", "execution"))]
    assert len(counts) == 2 and counts[0] == counts[1] > 10


def test_stress_image_has_its_tools_and_writes_an_html_report(
        built: tuple[Path, str], docker_client: docker.DockerClient, tmp_path: Path) -> None:
    _, prefix = built
    code, logs = _run(docker_client, f"{prefix}-stress:it",
                      command=["python", "-c", "import memray, pympler, memory_profiler, "
                               "pytest_benchmark, pytest_html, locust, psutil; print('tools ok')"],
                      memory="2g")
    assert code == 0 and "tools ok" in logs, logs[-3000:]
    results = _results_folder(tmp_path)
    code, logs = _run(docker_client, f"{prefix}-stress:it", results, memory="2g")
    assert code == 0, logs[-3000:]
    assert "<html" in (results / "stress-report.html").read_text().lower()


def _wait_healthy(container: Container, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = "starting"
    while time.monotonic() < deadline:
        container.reload()
        status = container.attrs["State"].get("Health", {}).get("Status", "none")
        if status in ("healthy", "unhealthy") or container.status == "exited":
            break
        time.sleep(0.5)
    return status


def test_backend_image(built: tuple[Path, str], docker_client: docker.DockerClient) -> None:
    _, prefix = built
    image = f"{prefix}-backend:it"
    if prefix == "more-itertools":
        # No web app in this project: the backend image runs the full suite instead.
        code, logs = _run(docker_client, image)
        assert code == 0, logs[-3000:]
        assert docker_client.images.get(image).attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]
        return
    port = free_port()
    container: Container = docker_client.containers.run(
        image, detach=True, network_mode="host", mem_limit="1g", labels=TEST_LABEL,
        environment={"UVICORN_PORT": str(port)})
    try:
        assert _wait_healthy(container, timeout=90) == "healthy", container.logs().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
        probe = container.attrs["State"]["Health"]["Log"][-1]["Output"]
        assert "of the limit" in probe
    finally:
        container.remove(force=True)


def test_a_distroless_execution_image_runs_the_suite_and_holds_no_shell(
        tmp_path: Path, base_image: str, docker_client: docker.DockerClient) -> None:
    """`distroless = true`: the execution image holds the Python runtime, the venv, the project and
    the shared libraries they need, and no shell; it runs the example's suite as the full one
    does, and the stress image on it has its tools."""
    import shutil

    project = tmp_path / "shop"
    shutil.copytree(REPO / "examples" / "shop", project, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.testdock]\nproject = "shop-distroless"\n'
                         "[tool.testdock.build]\ndistroless = true\n")
    assert run_cli("init", str(project), "--base-image", base_image).returncode == 0
    # --no-cache: a step BuildKit takes from its cache prints nothing, and the listing is its output
    result = run_cli("build", str(project), "--tag", "it", "--phase", "execution", "--phase", "stress",
                     "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    log = (project / "logs" / "build_test_images.log").read_text()
    assert "testdock distroless: shared libraries " in log  # where its megabytes are, listed
    image = "shop-distroless-execution:it"
    results = _results_folder(tmp_path)
    code, logs = _run(docker_client, image, results)
    assert code == 0, logs[-3000:]
    assert "29 passed" in logs.splitlines()[-1]
    assert 'failures="0"' in (results / "junit.xml").read_text()
    for program in ("sh", "/bin/sh", "bash", "pip", "apt-get"):
        with pytest.raises(docker.errors.APIError):  # no such program: the container cannot start
            docker_client.containers.run(image, [program, "-c", "true"], remove=True, labels=TEST_LABEL,
                                         network_mode="host")
    code, logs = _run(docker_client, image, command=["python", "-c", "import ssl, sqlite3, zoneinfo, ctypes; "
                                                     "import urllib.request; print(ssl.OPENSSL_VERSION)"])
    assert code == 0 and "OpenSSL" in logs, logs
    code, logs = _run(docker_client, "shop-distroless-stress:it",
                      command=["python", "-c", "import memray, pytest_benchmark, locust; print('tools')"])
    assert code == 0 and logs.strip().endswith("tools"), logs[-3000:]
    base = docker_client.images.get(base_image).attrs["Size"]
    assert docker_client.images.get(image).attrs["Size"] < base  # smaller than the base alone
