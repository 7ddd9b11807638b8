"""The stress run's findings from its files, the HTML report and `testdock report`, without Docker."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image
import matplotlib.pyplot as plt
import pytest
from click.testing import CliRunner

from testdock.cli import main
from testdock.run.stressreport import (
    Benchmark,
    LoadResult,
    StressSummary,
    TestResults,
    compare,
    read_benchmarks,
    read_junit,
    read_locust,
    read_memory,
    read_resources,
    summary_lines,
    write_report,
)

MiB = 2**20
JUNIT = """<?xml version="1.0"?><testsuites><testsuite name="pytest" time="3.5">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad" time="0.1"><failure message="boom"/></testcase>
<testcase classname="tests.test_b" name="test_skip" time="0"><skipped/></testcase>
<testcase classname="tests.test_b" name="test_err" time="0"><error message="fixture"/></testcase>
</testsuite></testsuites>"""


def benchmarks_json(means: dict[str, float]) -> str:
    return json.dumps({"benchmarks": [
        {"fullname": name, "name": name.split("::")[-1],
         "stats": {"mean": mean, "stddev": mean / 10, "rounds": 50}}
        for name, mean in means.items()]})


def test_junit_counts_failures_errors_and_skips(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(JUNIT)
    results = read_junit(tmp_path / "junit.xml")
    assert (results.total, results.passed, results.skipped) == (4, 1, 1)
    assert results.failed == ["tests.test_a::test_bad", "tests.test_b::test_err"]
    assert results.seconds == 3.5
    assert read_junit(tmp_path / "missing.xml") == TestResults()


def test_benchmarks_slower_than_the_threshold_are_regressions(tmp_path: Path) -> None:
    now = {"b::fast": 1.0e-6, "b::slow": 2.0e-6, "b::new": 1e-3}
    (tmp_path / "now.json").write_text(benchmarks_json(now))
    (tmp_path / "before.json").write_text(benchmarks_json({"b::fast": 1.05e-6, "b::slow": 1.0e-6}))
    current = read_benchmarks(tmp_path / "now.json")
    regressions = compare(current, read_benchmarks(tmp_path / "before.json"), 0.10)
    assert regressions == ["b::slow"]
    by_name = {b.name: b for b in current}
    assert by_name["b::slow"].change == pytest.approx(1.0)
    assert by_name["b::fast"].change == pytest.approx(1.0 / 1.05 - 1)
    assert by_name["b::new"].previous is None and by_name["b::new"].change is None


def test_memory_report_gives_the_heaviest_tests_and_confirmed_leaks_first(tmp_path: Path) -> None:
    tests = [{"nodeid": f"t.py::t{i}", "peak": i * MiB, "growth": i * MiB // 2, "retained": 0,
              "duration": 0.1} for i in range(20)]
    (tmp_path / "memory.json").write_text(json.dumps({"tests": tests, "leak_checks": {
        "t.py::cache": [2 * MiB, 0, 0], "t.py::leak": [8 * MiB, 8 * MiB, 8 * MiB]}}))
    heaviest, suspects = read_memory(tmp_path / "memory.json", top=3)
    assert [t.nodeid for t in heaviest] == ["t.py::t19", "t.py::t18", "t.py::t17"]
    assert [(s.nodeid, s.leaks) for s in suspects] == [("t.py::leak", True), ("t.py::cache", False)]


def test_the_tests_that_used_the_most_cpu_and_storage_are_listed(tmp_path: Path) -> None:
    tests = [{"nodeid": f"t.py::t{i}", "peak": MiB, "duration": 1.0, "cpu": i / 10,
              "read_bytes": 0, "written_bytes": (20 - i) * MiB} for i in range(20)]
    tests.append({"nodeid": "t.py::old", "peak": MiB})  # a report from before these figures
    (tmp_path / "memory.json").write_text(json.dumps({"tests": tests}))
    busiest, moved = read_resources(tmp_path / "memory.json", top=2)
    assert [(t.nodeid, t.cpu) for t in busiest] == [("t.py::t19", 1.9), ("t.py::t18", 1.8)]
    assert [(t.nodeid, t.written_bytes) for t in moved] == [("t.py::t0", 20 * MiB), ("t.py::t1", 19 * MiB)]
    summary = _summary()
    summary.top_cpu, summary.top_io = busiest, moved
    lines = "\n".join(summary_lines(summary))
    assert "most CPU: t.py::t19 (1.90s of CPU in 1.00s)" in lines
    assert "most storage I/O: t.py::t0 (read 0 B, written 20.0 MiB)" in lines
    text = write_report(summary, tmp_path).read_text()
    assert "Top CPU tests" in text and "t.py::t18" in text and "20.0 MiB" in text
    assert StressSummary.from_json(summary.as_json()).top_io == moved


def test_locust_aggregated_row_is_read(tmp_path: Path) -> None:
    header = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
              "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
              "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%")
    rows = ["GET,/health,900,1,6,6.2,2,40,15,45.0,0.05,6,6,7,7,7,8,12,21,40,40,40",
            ",Aggregated,900,1,6,6.2,2,40,15,45.0,0.05,6,6,7,7,7,8,12,22,40,40,40"]
    (tmp_path / "locust_stats.csv").write_text("\n".join([header, *rows]) + "\n")
    result = read_locust(tmp_path / "locust_stats.csv", users=10, duration=20)
    assert result == LoadResult(10, 20, 900, 1, 45.0, 6.0, 8.0, 22.0)
    assert read_locust(tmp_path / "none.csv", 1, 1) is None


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.images: dict[str, str] = {}
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section" and attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if tag == "img":
            self.images[str(attributes.get("id"))] = str(attributes.get("src"))
        if tag == "a":
            self.links.append(str(attributes.get("href")))


def _summary() -> StressSummary:
    benchmarks = [Benchmark("tests/b.py::test_<script>", 2e-6, 1e-7, 100, previous=1e-6)]
    return StressSummary("shop", "shop-stress:latest", 1, 42.0, TestResults(10, ["t.py::bad"], 1, 5.0),
                         benchmarks, ["tests/b.py::test_<script>"], 0.1,
                         top_memory=[], profiles=["profiles/1-t.html"],
                         load=LoadResult(10, 20, 900, 0, 45.0, 6, 8, 22, 60 * MiB, 70 * MiB, 1024 * MiB,
                                         61 * MiB))


def test_the_html_report_parses_holds_every_section_and_its_image_loads(tmp_path: Path) -> None:
    figure, axes = plt.subplots(figsize=(2, 1))
    axes.plot([0, 1], [0, 1])
    figure.savefig(tmp_path / "memory-profile.png")
    plt.close(figure)
    report = write_report(_summary(), tmp_path)
    parser = _Sections()
    parser.feed(report.read_text())
    parser.close()
    assert parser.ids == ["results", "benchmarks", "leaks", "memory", "resources", "profiles", "load"]
    source = parser.images["timeline"]
    assert source.startswith("data:image/png;base64,")
    image = matplotlib.image.imread(io.BytesIO(base64.b64decode(source.split(",", 1)[1])), format="png")
    assert image.shape[0] > 10 and image.shape[1] > 10
    assert "profiles/1-t.html" in parser.links and "../test-results/stress-report.html" in parser.links
    text = report.read_text()
    assert "test_&lt;script&gt;" in text and "<script>" not in text  # names are escaped
    assert "+100.0%" in text and "22 ms" in text


def test_report_command_prints_the_latest_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["report", str(tmp_path)])
    assert missing.exit_code == 2 and "no stress run found" in missing.output
    write_report(_summary(), tmp_path / "monitoring")
    result = runner.invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "tests: 8 passed, 1 failed, 1 skipped" in result.output
    assert "REGRESSION tests/b.py::test_<script>" in result.output
    assert "latency p50 6 ms, p95 8 ms, p99 22 ms" in result.output
    assert result.output.strip().endswith("report.html")
