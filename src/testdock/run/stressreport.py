"""What a stress run found, read from the files its containers wrote (JUnit, pytest-benchmark's
JSON, the plugin's memory.json, locust's CSV), and the one self-contained HTML report of it."""

from __future__ import annotations

import base64
import csv
import json
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from testdock.safepaths import write_atomically
from testdock_pytest.contract import leak_confirmed
from testdock_pytest.sizes import format_size


@dataclass
class TestResults:
    __test__ = False

    total: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return self.total - len(self.failed) - self.skipped


@dataclass
class Benchmark:
    name: str
    mean: float  # seconds
    stddev: float
    rounds: int
    previous: float | None = None

    @property
    def change(self) -> float | None:
        return None if not self.previous else self.mean / self.previous - 1


@dataclass
class MemoryTest:
    nodeid: str
    peak: int
    growth: int
    retained: int
    duration: float
    cpu: float = 0.0  # CPU seconds its process used during it
    read_bytes: int = 0  # storage bytes its process read and wrote during it
    written_bytes: int = 0


@dataclass
class LeakSuspect:
    nodeid: str
    kept: list[int]
    leaks: bool


@dataclass
class LoadResult:
    users: int
    duration: float
    requests: int
    failures: int
    requests_per_second: float
    p50: float  # milliseconds
    p95: float
    p99: float
    app_idle: int = 0
    app_peak: int = 0
    app_limit: int = 0
    app_after: int = 0  # the app's memory once the load stopped


@dataclass
class StressSummary:
    project: str
    image: str
    exit_code: int
    seconds: float
    tests: TestResults
    benchmarks: list[Benchmark] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    regression_threshold: float = 0.10
    leaks: list[LeakSuspect] = field(default_factory=list)
    top_memory: list[MemoryTest] = field(default_factory=list)
    top_cpu: list[MemoryTest] = field(default_factory=list)  # the tests that used the most CPU
    top_io: list[MemoryTest] = field(default_factory=list)  # ... and moved the most storage bytes
    profiles: list[str] = field(default_factory=list)  # paths relative to monitoring/
    load: LoadResult | None = None
    load_skipped: str = ""
    memory_peak: int = 0
    memory_limit: int = 0
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StressSummary:
        load = data.get("load")
        return cls(
            **{**data, "tests": TestResults(**data["tests"]),
               "benchmarks": [Benchmark(**b) for b in data.get("benchmarks", [])],
               "leaks": [LeakSuspect(**s) for s in data.get("leaks", [])],
               "top_memory": [MemoryTest(**t) for t in data.get("top_memory", [])],
               "top_cpu": [MemoryTest(**t) for t in data.get("top_cpu", [])],
               "top_io": [MemoryTest(**t) for t in data.get("top_io", [])],
               "load": LoadResult(**load) if load else None})


def read_junit(path: Path) -> TestResults:
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return TestResults()
    results = TestResults()
    for suite in root.iter("testsuite"):
        results.seconds += float(suite.get("time", "0") or 0)
    for case in root.iter("testcase"):
        results.total += 1
        outcome = {child.tag for child in case}
        name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        if outcome & {"failure", "error"}:
            results.failed.append(name)
        elif "skipped" in outcome:
            results.skipped += 1
    return results


def read_benchmarks(path: Path) -> list[Benchmark]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    rows = []
    for entry in data.get("benchmarks", []):
        stats = entry.get("stats", {})
        rows.append(Benchmark(str(entry.get("fullname") or entry.get("name")), float(stats.get("mean", 0.0)),
                              float(stats.get("stddev", 0.0)), int(stats.get("rounds", 0))))
    return rows


def compare(current: list[Benchmark], previous: list[Benchmark], threshold: float) -> list[str]:
    """Set each benchmark's previous mean; the names of those slower by more than `threshold`."""
    before = {benchmark.name: benchmark.mean for benchmark in previous}
    regressions = []
    for benchmark in current:
        benchmark.previous = before.get(benchmark.name)
        change = benchmark.change
        if change is not None and change > threshold:
            regressions.append(benchmark.name)
    return regressions


def read_memory(path: Path, top: int = 10) -> tuple[list[MemoryTest], list[LeakSuspect]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], []
    tests = _tests(data)
    heaviest = sorted(tests, key=lambda t: (-t.peak, t.nodeid))[:top]
    suspects = [LeakSuspect(nodeid, [int(v) for v in kept], leak_confirmed([int(v) for v in kept]))
                for nodeid, kept in sorted(data.get("leak_checks", {}).items())]
    suspects.sort(key=lambda s: (not s.leaks, -sum(s.kept)))
    return heaviest, suspects


def _tests(data: dict[str, Any]) -> list[MemoryTest]:
    return [MemoryTest(t["nodeid"], int(t["peak"]), int(t.get("growth", 0)), int(t.get("retained", 0)),
                       float(t.get("duration", 0.0)), float(t.get("cpu", 0.0)), int(t.get("read_bytes", 0)),
                       int(t.get("written_bytes", 0))) for t in data.get("tests", [])]


def read_resources(path: Path, top: int = 10) -> tuple[list[MemoryTest], list[MemoryTest]]:
    """The tests that used the most CPU, and those that moved the most storage bytes (none that
    used none), from the plugin's memory.json."""
    try:
        tests = _tests(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError):
        return [], []
    busiest = sorted((t for t in tests if t.cpu > 0), key=lambda t: (-t.cpu, t.nodeid))[:top]
    moved = sorted((t for t in tests if t.read_bytes + t.written_bytes > 0),
                   key=lambda t: (-(t.read_bytes + t.written_bytes), t.nodeid))[:top]
    return busiest, moved


def read_locust(stats_csv: Path, users: int, duration: float) -> LoadResult | None:
    """The "Aggregated" row of locust's `--csv` statistics."""
    try:
        with stats_csv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return None
    total = next((row for row in rows if row.get("Name") == "Aggregated"), None)
    if total is None:
        return None

    def number(key: str) -> float:
        try:
            return float(total.get(key) or 0)
        except ValueError:
            return 0.0

    return LoadResult(users, duration, int(number("Request Count")), int(number("Failure Count")),
                      number("Requests/s"), number("50%"), number("95%"), number("99%"))


def _image(path: Path) -> str | None:
    try:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    except OSError:
        return None


def render_html(summary: StressSummary, monitoring: Path) -> str:
    environment = Environment(loader=PackageLoader("testdock.images", "templates"),
                              autoescape=select_autoescape(["html", "j2"]), keep_trailing_newline=True)
    environment.filters["size"] = format_size
    template = environment.get_template("stress-report.html.j2")
    return template.render(s=summary, timeline=_image(monitoring / "memory-profile.png"),
                           load_timeline=_image(monitoring / "load-app-memory.png"))


def write_report(summary: StressSummary, monitoring: Path) -> Path:
    monitoring.mkdir(parents=True, exist_ok=True)
    report = monitoring / "report.html"
    write_atomically(report, render_html(summary, monitoring))
    write_atomically(monitoring / "stress-summary.json", json.dumps(summary.as_json(), indent=1))
    return report


def summary_lines(summary: StressSummary) -> list[str]:
    tests = summary.tests
    lines = [f"stress run of {summary.project} ({summary.image}): {summary.seconds:.0f}s, "
             f"exit {summary.exit_code}",
             f"  tests: {tests.passed} passed, {len(tests.failed)} failed, {tests.skipped} skipped"]
    lines += [f"    failed: {name}" for name in tests.failed[:10]]
    if summary.memory_peak:
        lines.append(f"  memory: peak {format_size(summary.memory_peak)} "
                     f"of {format_size(summary.memory_limit)}")
    if summary.benchmarks:
        lines.append(f"  benchmarks: {len(summary.benchmarks)}, {len(summary.regressions)} "
                     f"regression(s) over {summary.regression_threshold:.0%}")
        for benchmark in summary.benchmarks:
            if benchmark.name in summary.regressions and benchmark.change is not None:
                lines.append(f"    REGRESSION {benchmark.name}: {benchmark.mean * 1e6:.1f} us, "
                             f"{benchmark.change:+.0%} on the previous run")
    leaking = [suspect for suspect in summary.leaks if suspect.leaks]
    lines.append(f"  leaks: {len(leaking)} confirmed of {len(summary.leaks)} suspect(s)")
    lines += [f"    LEAKS {s.nodeid}: keeps {format_size(sum(s.kept) / max(len(s.kept), 1))} a run"
              for s in leaking]
    if summary.top_memory:
        heaviest = summary.top_memory[0]
        lines.append(f"  heaviest test: {heaviest.nodeid} (peak {format_size(heaviest.peak)}, "
                     f"growth {format_size(heaviest.growth)})")
    if summary.top_cpu:
        busiest = summary.top_cpu[0]
        lines.append(f"  most CPU: {busiest.nodeid} ({busiest.cpu:.2f}s of CPU in {busiest.duration:.2f}s)")
    if summary.top_io:
        moved = summary.top_io[0]
        lines.append(f"  most storage I/O: {moved.nodeid} (read {format_size(moved.read_bytes)}, "
                     f"written {format_size(moved.written_bytes)})")
    if summary.profiles:
        lines.append(f"  memory profiles: {', '.join(summary.profiles)}")
    if summary.load is not None:
        load = summary.load
        lines.append(f"  load: {load.users} users for {load.duration:.0f}s: {load.requests} requests "
                     f"({load.requests_per_second:.0f}/s), {load.failures} failed; "
                     f"latency p50 {load.p50:.0f} ms, p95 {load.p95:.0f} ms, p99 {load.p99:.0f} ms")
        lines.append(f"  app memory: idle {format_size(load.app_idle)}, peak under load "
                     f"{format_size(load.app_peak)}, after {format_size(load.app_after)}")
    elif summary.load_skipped:
        lines.append(f"  load: skipped ({summary.load_skipped})")
    lines += [f"  note: {note}" for note in summary.notes]
    return lines
