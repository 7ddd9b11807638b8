"""`testdock run backend` on the real engine: the example app on PostgreSQL (a service container
built locally), its integration tests over HTTP, the app's memory timeline, nothing left behind;
and a broken health endpoint failing the run with the app's logs."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import docker
import pytest
import tomlkit

from tests.integration.conftest import run_cli, unique_name
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


def test_a_configured_health_path_that_answers_404_fails_at_once_naming_those_that_answer(
        project: Path, postgres_image: str, docker_client: docker.DockerClient) -> None:  # noqa: F811
    pyproject = project / "pyproject.toml"
    document = tomlkit.parse(pyproject.read_text())
    backend = document["tool"]["testdock"]["backend"]
    backend["health_path"] = "/no-such-endpoint"
    backend["health_timeout"] = 120.0  # it fails long before
    pyproject.write_text(tomlkit.dumps(document))
    started = time.monotonic()
    result = run_cli("run", "backend", str(project))
    assert result.returncode == 1
    assert time.monotonic() - started < 60
    assert ("the app answers, but its health path /no-such-endpoint answered 404; paths that answered "
            "2xx: /health, /docs, /openapi.json; set [tool.testdock.backend] health_path") in result.stderr, \
        result.stderr[-3000:]
    assert "Uvicorn running on http://127.0.0.1:" in result.stderr  # the app's own logs
    assert not (project / "test-results" / "backend-junit.xml").exists()
    assert _leftovers(docker_client, project) == []


FACTORY_APP = """
from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="tinyapi")

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/items")
    def items() -> list[int]:
        return [1, 2, 3]

    return app
"""

FACTORY_TESTS = """
import json
import os
import urllib.request


def test_items_over_http():
    with urllib.request.urlopen(os.environ["TESTDOCK_APP_URL"] + "/items", timeout=10) as response:
        assert json.loads(response.read()) == [1, 2, 3]
"""


def test_an_app_factory_with_no_health_route_is_served_with_zero_settings_and_by_its_own_command(
        tmp_path: Path, base_image: str, docker_client: docker.DockerClient) -> None:
    root = tmp_path / "tinyapi"
    (root / "src" / "tinyapi").mkdir(parents=True)
    (root / "src" / "tinyapi" / "__init__.py").write_text("")
    (root / "src" / "tinyapi" / "app.py").write_text(FACTORY_APP)
    (root / "tests" / "integration").mkdir(parents=True)
    (root / "tests" / "integration" / "test_api.py").write_text(FACTORY_TESTS)
    name = unique_name("tinyapi", tmp_path)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tinyapi"\nversion = "1.0"\ndependencies = ["fastapi", "uvicorn"]\n'
        '[project.optional-dependencies]\ntest = ["pytest"]\n'
        f'[tool.testdock]\nproject = "{name}"\n')
    init = run_cli("init", str(root), "--base-image", base_image)
    assert init.returncode == 0, init.stderr
    assert "app tinyapi.app:create_app" in init.stdout
    result = run_cli("run", "backend", str(root))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "--factory" in output.split("testdock: starting ")[1].splitlines()[0]
    assert "/health answered 404; using /ping, which answers 2xx, as the health path" in output
    assert "1 passed" in output
    # the app's own serve command, {host} and {port} filled in, no app setting needed
    pyproject = root / "pyproject.toml"
    document = tomlkit.parse(pyproject.read_text())
    document["tool"]["testdock"]["backend"] = {"health_path": "/ping"}
    document["tool"]["testdock"]["phases"] = {"backend": {"command": [
        "python", "-m", "uvicorn", "--factory", "tinyapi.app:create_app", "--host", "{host}",
        "--port", "{port}"]}}
    pyproject.write_text(tomlkit.dumps(document))
    own = run_cli("run", "backend", str(root))
    output = own.stdout + own.stderr
    assert own.returncode == 0, output[-4000:]
    assert "--host 127.0.0.1 --port " in output and "1 passed" in output
    assert _leftovers(docker_client, root) == []
