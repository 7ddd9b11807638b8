"""The backend phase's settings and choices that need no Docker: services, uvicorn's command,
which tests are the integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from testdock.errors import BadInput
from testdock.images.phases import uvicorn_command
from testdock.project.inspection import inspect_project
from testdock.project.settings import load_settings, settings_from_table
from testdock.run.backend import _expand, integration_selection
from tests.conftest import EXAMPLE


def test_the_examples_postgres_service_is_read() -> None:
    settings = load_settings(EXAMPLE)
    service = settings.backend.services["postgres"]
    assert service.image == "testdock-local/postgres:15"
    assert service.port is None  # a free port, chosen at run time
    assert service.ready == ["pg_isready", "-h", "127.0.0.1", "-p", "{port}"]
    assert "{port}" in service.exports["SHOP_DATABASE_URL"]
    assert service.memory == "256m"
    assert settings.backend.environment["SHOP_BASE_URL"] == "{app_url}"


@pytest.mark.parametrize(("table", "message"), [
    ({"backend": {"services": {"db": {"port": 5432}}}}, "image"),
    ({"backend": {"services": {"db": {"image": "Not An Image"}}}}, "not a Docker image reference"),
    ({"backend": {"services": {"db": {"image": "pg:15", "exports": {"1BAD": "x"}}}}}, "environment variable"),
    ({"backend": {"services": {"db": {"image": "pg:15", "memory": "lots"}}}}, "not a size"),
    ({"backend": {"services": {"db": {"image": "pg:15", "exprots": {}}}}}, "did you mean 'exports'"),
    ({"backend": {"workers": 0}}, "workers"),
    ({"backend": {"health_max_memory": 1.5}}, "health_max_memory"),
])
def test_bad_backend_settings_are_refused(table: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        settings_from_table(table)


def test_uvicorn_is_configured_for_a_memory_limited_container() -> None:
    default = uvicorn_command("shop.main:app", "asgi", settings_from_table({}))
    assert default == ["python", "-m", "uvicorn", "shop.main:app", "--workers", "1", "--limit-concurrency",
                       "64", "--timeout-keep-alive", "5", "--no-access-log"]
    tuned = uvicorn_command("app:wsgi", "wsgi", settings_from_table({"backend": {
        "workers": 2, "limit_concurrency": 16, "keep_alive": 2, "access_log": True}}))
    assert tuned[4:] == ["--workers", "2", "--limit-concurrency", "16", "--timeout-keep-alive", "2",
                         "--interface", "wsgi"]


def test_placeholders_are_expanded_and_unknown_ones_kept() -> None:
    assert _expand("postgresql://h:{port}/db?x={other}", {"port": "5433"}) == "postgresql://h:5433/db?x={other}"


def test_integration_tests_are_found_by_folder_then_marker_then_all(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    settings = load_settings(project)
    assert integration_selection(project, inspect_project(project), settings) == ["tests/integration"]
    shutil.rmtree(project / "tests" / "integration")
    assert integration_selection(project, inspect_project(project), settings) == ["-m", "integration"]
    text = (project / "pyproject.toml").read_text().replace('"integration: talks to the app over HTTP",', "")
    (project / "pyproject.toml").write_text(text)
    assert integration_selection(project, inspect_project(project), load_settings(project)) == []
    configured = settings_from_table({"backend": {"tests": ["-m", "api"]}})
    assert integration_selection(project, inspect_project(project), configured) == ["-m", "api"]




def test_a_configured_wsgi_app_is_served_as_wsgi(tmp_path: Path) -> None:
    from testdock.images.phases import default_command

    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.testdock.backend]\n",
        '[tool.testdock.backend]\napp = "shop.wsgi:application"\ninterface = "wsgi"\n', 1))
    settings = load_settings(project)
    inspected = inspect_project(project, app_override=settings.backend.app)
    command = default_command("backend", inspected, settings)
    assert command[3] == "shop.wsgi:application" and command[-2:] == ["--interface", "wsgi"]


def test_an_apps_own_serve_command_needs_no_app_and_gets_host_and_port() -> None:
    from testdock.run.backend import serve_command, serves_an_app

    project = inspect_project(EXAMPLE)
    settings = settings_from_table({"phases": {"backend": {"command": [
        "python", "-m", "myapp.serve", "--bind", "{host}:{port}", "--keep={other}"]}}})
    assert serve_command(project, settings, "127.0.0.1", 8123) == [
        "python", "-m", "myapp.serve", "--bind", "127.0.0.1:8123", "--keep={other}"]
    no_app = project.__class__(**{**project.__dict__, "app": None})
    assert serves_an_app(no_app, settings) and not serves_an_app(no_app, settings_from_table({}))
    assert serve_command(no_app, settings, "127.0.0.1", 1)[3] == "--bind"
    with pytest.raises(BadInput, match="factory = true"):
        serve_command(no_app, settings_from_table({}), "127.0.0.1", 1)


def test_a_factory_app_is_served_with_uvicorns_factory_flag() -> None:
    from testdock.run.backend import serve_command

    settings = settings_from_table({"backend": {"app": "shop.web:create_app", "factory": True}})
    command = serve_command(inspect_project(EXAMPLE), settings, "127.0.0.1", 1)
    assert command[3] == "shop.web:create_app" and command[-1] == "--factory"


def test_a_health_path_that_answers_404_gives_way_to_one_that_answers(tmp_path: Path) -> None:
    """A real HTTP server on 127.0.0.1: / and /ping answer 200, the rest 404."""
    import http.server
    import threading

    from testdock.run.backend import BackendFailed, _another_health_path

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path in ("/", "/ping") else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        said: list[str] = []
        assert _another_health_path(url, "/health", settings_from_table({}), said.append) == "/ping"
        assert "/health answered 404; using /ping" in said[0]
        assert _another_health_path(url, "/ping", settings_from_table({}), said.append) == "/ping"
        configured = settings_from_table({"backend": {"health_path": "/status"}})
        answered = "/status answered 404; paths that answered 2xx: /ping, /; set"
        with pytest.raises(BackendFailed, match=answered):
            _another_health_path(url, "/status", configured, said.append)
    finally:
        server.shutdown()
        server.server_close()
    # nothing answers: not up yet, the deadline decides
    assert _another_health_path(url, "/health", settings_from_table({}), said.append) == "/health"
