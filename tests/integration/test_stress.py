"""`testdock run stress` on the real engine, on the example: the suite with its benchmarks and the
leak hunt (the example's deliberate leak is caught and named), memray profiles, a bounded load
test against the app on PostgreSQL, and the HTML report, which parses and whose image loads."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import docker
import matplotlib.image
import pytest

from tests.integration.conftest import run_cli
from tests.integration.test_build import _prefix, project  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


class _Report(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self.sections.append(str(attributes.get("id")))
        elif tag == "img":
            self.images[str(attributes.get("id"))] = str(attributes.get("src"))


def test_stress_run_on_the_example(project: Path, postgres_image: str,  # noqa: F811
                                   docker_client: docker.DockerClient) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.testdock.stress.load]\nusers = 4\nduration = 6.0\n")
    result = run_cli("run", "stress", str(project))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # the deliberate leak is caught and named; the benchmarks are not taken for leaks
    assert re.search(r"LEAKS tests/memory/test_leak.py::test_slow_leak\[\d\]: keeps 8.0 MiB a run", output)
    assert "LEAKS tests/benchmarks" not in output
    assert "benchmarks: 3, 0 regression(s)" in output
    assert (project / ".testdock" / "benchmarks-baseline.json").is_file()
    summary = json.loads((project / "monitoring" / "stress-summary.json").read_text())
    load = summary["load"]
    assert load["users"] == 4 and load["requests"] > 20 and load["failures"] == 0
    assert 0 < load["p50"] <= load["p95"] <= load["p99"]
    assert 0 < load["app_idle"] <= load["app_peak"] < load["app_limit"]
    assert len(summary["profiles"]) == 3
    for profile in summary["profiles"]:
        assert "memray" in (project / "monitoring" / profile).read_text()
    assert summary["top_memory"][0]["nodeid"] == "tests/memory/test_allocations.py::test_allocate[300]"
    report = _Report()
    report.feed((project / "monitoring" / "report.html").read_text())
    assert report.sections == ["results", "benchmarks", "leaks", "memory", "resources", "profiles", "load"]
    assert summary["top_cpu"] and summary["top_cpu"][0]["cpu"] > 0  # per test, from the plugin
    for name in ("timeline", "load-timeline"):
        png = base64.b64decode(report.images[name].removeprefix("data:image/png;base64,"))
        assert matplotlib.image.imread(io.BytesIO(png), format="png").shape[0] > 100
    printed = run_cli("report", str(project))
    assert printed.returncode == 0
    assert "test_slow_leak" in printed.stdout and printed.stdout.strip().endswith("report.html")
    assert list(docker_client.containers.list(
        all=True, filters={"label": f"io.testdock.project={_prefix(project)}"})) == []
