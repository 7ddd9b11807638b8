"""`testdock run backend` on the real engine: the example app on PostgreSQL (a service container
built locally), its integration tests over HTTP, the app's memory timeline, nothing left behind;
and a broken health endpoint failing the run with the app's logs."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import docker
import pytest
import tomlkit

from tests.integration.conftest import run_cli
from tests.integration.test_build import _prefix, project  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


def _leftovers(client: docker.DockerClient, root: Path) -> list[object]:
    return list(client.containers.list(all=True, filters={"label": f"io.testdock.project={_prefix(root)}"}))


def test_backend_runs_the_integration_tests_against_the_app_on_postgres(
        project: Path, postgres_image: str, docker_client: docker.DockerClient) -> None:  # noqa: F811
    result = run_cli("run", "backend", str(project))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "starting service postgres (testdock-local/postgres:15)" in output
    assert "app healthy at http://127.0.0.1:" in output
    suite = ElementTree.parse(project / "test-results" / "backend-junit.xml").getroot()
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    # the integration folder only, and the app really used PostgreSQL
    assert "test_database_is_the_configured_one" in cases and "test_slow_leak[0]" not in cases
    assert not list(cases["test_database_is_the_configured_one"])  # no failure, no skip
    rows = (project / "monitoring" / "backend-app-memory.csv").read_text().splitlines()
    assert len(rows) > 3
    assert (project / "monitoring" / "backend-app-memory.png").read_bytes()[:4] == b"\x89PNG"
    assert "testdock: app memory idle" in output and "services used: postgres" in output
    assert _leftovers(docker_client, project) == []


def test_a_broken_health_endpoint_fails_the_run_with_the_apps_logs(
        project: Path, postgres_image: str, docker_client: docker.DockerClient) -> None:  # noqa: F811
    pyproject = project / "pyproject.toml"
    document = tomlkit.parse(pyproject.read_text())
    backend = document["tool"]["testdock"]["backend"]
    backend["health_path"] = "/no-such-endpoint"
    backend["health_timeout"] = 6.0
    pyproject.write_text(tomlkit.dumps(document))
    result = run_cli("run", "backend", str(project))
    assert result.returncode == 1
    assert "the app was not healthy after 6s" in result.stderr
    assert "HTTP Error 404" in result.stderr  # what the health check saw
    assert "Uvicorn running on http://127.0.0.1:" in result.stderr  # the app's own logs
    assert not (project / "test-results" / "backend-junit.xml").exists()
    assert _leftovers(docker_client, project) == []
