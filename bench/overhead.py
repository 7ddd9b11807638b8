"""Overhead benchmark (issue 18): `testdock run execution` against plain pytest, on the clock, in
the same execution image and the same container limits, doing the same work (coverage on or off
as testdock chose it for the project, said in the table).

Per suite (the example, and real projects' suites from their sdists on PyPI):
- plain `pytest` and plain `pytest -n auto`, testdock's plugin off;
- plain `pytest` with the reports testdock's command adds (JUnit XML, the per-test timeout), its
  plugin off: what the reports cost apart from testdock's own work (not a plain row of the ratio);
- `testdock run execution` with no history (a first run), then again with the history the first
  run left (a second run), then the second run's configuration without monitoring;
- each the best (lowest wall) of the suite's runs (three, one for the long suite), after one
  warm-up run that fills the page cache; the runs go in rounds (each configuration once a round),
  so that the machine's drift over minutes falls on every row alike.

Wall is measured around the whole run (the container's start and removal included, the same for
every row). The ratio column is against the better of the two plain rows; the target is <= 1.05.

A second table says where each row's time went: the container's start to its first line of output
(the engine, the interpreter, pytest's and its plugins' imports), the xdist workers' start (summed
over the workers, and how many were replaced), testdock's per-test measuring (the CPU time of its
per-test code, summed over the processes; the garbage collections it triggered apart, and as a
share of the wall: beside busy workers, the wall of that code also counts the time the kernel gave
the others), and the wait
for the plot after the tests.

    python bench/overhead.py [SUITE ...]   # needs DOCKER_HOST and TESTDOCK_BASE_IMAGE (scripts/engine.sh)
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from collect import Quiet, chosen, project_root  # bench/collect.py, beside this file

from testdock import engine
from testdock.engine.builds import BuildOptions, build_images
from testdock.images.initialize import InitOptions, apply, place_plugin, plan
from testdock.images.phases import default_command
from testdock.run.phase import RunOptions, RunResult, run_phase
from testdock.workspace import Workspace
from testdock_pytest.contract import LABEL_PROJECT

# name -> (PyPI version, extra pyproject text, container memory, runs); version None: the example
SUITES: dict[str, tuple[str | None, str, str, int]] = {
    "example": (None, "", "2g", 3),
    "more-itertools": ("10.5.0", "", "2g", 3),
    "python-dateutil": ("2.9.0.post0", "", "2g", 3),
    # about 7,000 tests (a JSON Schema test suite's cases), a second or two of them each second
    "jsonschema": ("4.23.0", "", "2g", 1),
    # about 27,000 tests (version specifiers, requirements, markers), under a millisecond each:
    # what testdock adds per test shows here
    "packaging": ("25.0", "", "2g", 3),
    # about 15,000 tests of a dataframe-agnostic library, most of them skipped or milliseconds long
    "narwhals": ("2.29.0", "", "1g", 1),
    # a plotting library's suite (about 2,400 tests) in a tight limit: its libraries cache
    # hundreds of MiB per worker; one run each, they take minutes
    "seaborn": ("0.13.2", '[tool.testdock.phases.execution]\nmemory = "1g"\n', "1g", 1),
}
SUMMARY = re.compile(r"=+ (.*?) in ([\d.]+)s")


@dataclass
class Row:
    suite: str
    name: str
    wall: float
    pytest_seconds: float
    outcome: str
    exit_code: int
    oom_kills: int
    plan: str = ""  # what testdock's -n auto chose, from its report header
    breakdown: Breakdown | None = None


@dataclass
class Breakdown:
    """Where one run's time went (see the module's docstring)."""

    first_output: float = 0.0
    worker_starts: float = 0.0
    workers: int = 0
    replaced: int = 0
    measuring: float = 0.0
    collecting: float = 0.0
    plot: float = 0.0


def _outcome(lines: list[str]) -> tuple[str, float]:
    """pytest's last summary line ("120 passed, 2 skipped") and the seconds it reports."""
    for line in reversed(lines):
        match = SUMMARY.search(line)
        if match:
            return match.group(1), float(match.group(2))
    # a run that stopped before its tests: its last error line says why
    errors = [line.strip() for line in lines if line.strip().startswith(("ERROR", "error:"))]
    errors = errors or [line.strip() for line in lines if line.strip()]  # else its last line
    return f"no summary: {errors[-1][:80]}" if errors else "no summary", 0.0


Run = tuple[float, str, float, int, int, str, Breakdown]


def _breakdown(root: Path, result: RunResult, output: list[str]) -> Breakdown:
    report = root / "test-results" / "memory.json"
    try:
        overhead = json.loads(report.read_text())["overhead"] if report.is_file() else {}
    except (ValueError, KeyError):
        overhead = {}
    return Breakdown(result.first_output_seconds or 0.0, overhead.get("worker_starts", 0.0),
                     overhead.get("workers", 0), sum("replaced by a fresh worker" in line for line in output),
                     overhead.get("measuring", 0.0), overhead.get("collecting", 0.0), result.plot_seconds)


def _run(root: Path, command: list[str] | None, memory: str, monitor: bool = True) -> Run:
    lines: list[str] = []
    (root / "test-results" / "memory.json").unlink(missing_ok=True)
    started = time.monotonic()
    result = run_phase(root, "execution", RunOptions(memory=memory, command=command, monitor=monitor),
                       echo=lines.append)
    wall = time.monotonic() - started
    output = "\n".join(lines).splitlines()
    outcome, seconds = _outcome(output)
    plan = next((line.split(": ", 1)[1].split(":")[0] for line in output
                 if line.startswith("testdock -n auto: ")), "")
    return (wall, outcome, seconds, result.exit_code, result.oom_kills or 0, plan,
            _breakdown(root, result, output))


def _best(suite: str, name: str, runs: list[Run]) -> Row:
    """The fastest of a configuration's runs."""
    wall, outcome, seconds, code, _, plan, breakdown = min(runs, key=lambda run: run[0])
    print(f"    {name}: {wall:.1f}s ({outcome})", file=sys.stderr)
    return Row(suite, name, wall, seconds, outcome, code, max(run[4] for run in runs), plan, breakdown)


def measure(suite: str, root: Path, base_image: str) -> list[Row]:
    _, planned, _ = plan(root, InitOptions(base_image=base_image))
    apply(root, planned)
    place_plugin(root)
    results = build_images(root, BuildOptions(phases=("execution",), tag="latest"), Quiet())
    if not all(result.ok for result in results):
        raise SystemExit(f"{suite}: the execution image failed to build")
    workspace = Workspace.load(root)
    testdock = default_command("execution", workspace.project, workspace.settings)
    coverage = [argument for argument in testdock if argument.startswith("--cov")]
    plain = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:testdock", *coverage]
    history = root / ".testdock" / "memory-history.json"
    memory = SUITES[suite][2]
    _run(root, plain, memory, monitor=False)  # warm-up: the image's files in the page cache
    # testdock's reports without testdock: the JUnit XML and the per-test timeout its command adds
    reporting = [*plain, "--junitxml=test-results/junit.xml", "--timeout=600"]
    # (name, command, monitoring, history removed before) in the order of a round
    configurations: list[tuple[str, list[str] | None, bool, bool]] = [
        ("pytest", plain, False, False),
        ("pytest -n auto", [*plain, "-n", "auto"], False, False),
        ("reports: pytest + JUnit + timeout", reporting, False, False),
        ("testdock, first run", None, True, True),
        ("testdock, second run", None, True, False),  # the first run's history
        ("testdock, second run, --no-monitor", None, False, False)]
    runs: dict[str, list[Run]] = {name: [] for name, *_ in configurations}
    # in rounds, every configuration once a round: this machine's speed drifts by 10-20% over
    # minutes, and configurations run back to back in blocks would compare the drift
    for _ in range(SUITES[suite][3]):
        for name, command, monitor, fresh in configurations:
            if fresh:
                history.unlink(missing_ok=True)
            runs[name].append(_run(root, command, memory, monitor))
    rows = [_best(suite, name, runs[name]) for name, *_ in configurations]
    for row in rows:
        row.name += " (coverage)" if coverage else ""
    remove_images(workspace.prefix)
    return rows


def remove_images(prefix: str) -> None:
    """The engine as the benchmark found it: the images it built for the suite, dangling ones too."""
    client = engine.client()
    for _ in range(3):  # tags first, then what they left untagged, children before parents
        images = client.images.list(all=True, filters={"label": f"{LABEL_PROJECT}={prefix}"})
        for image in sorted(images, key=lambda image: str(image.attrs["Created"]), reverse=True):
            for reference in image.tags or [str(image.id)]:
                engine.remove_image(client, reference)


def main() -> None:
    base_image, chosen_suites = chosen(SUITES, "suite")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as temporary:
        for suite in chosen_suites:
            print(f"  {suite}", file=sys.stderr)
            version, settings, _, _ = SUITES[suite]
            root = project_root(suite, version, Path(temporary), f"bench-{suite}")
            (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + settings)
            rows += measure(suite, root, base_image)
    print("best of the runs given per suite; ratio: wall / the better plain pytest wall; "
          "plan: what testdock's -n auto chose")
    print(f"{'suite':<18}{'limit':<6}{'configuration':<46}{'wall':>8}{'pytest':>9}{'ratio':>7}"
          f"{'OOM':>5}  {'plan':<13}outcome")
    for suite in chosen_suites:
        mine = [row for row in rows if row.suite == suite]
        # a plain row that stopped at a collection error ran nothing to compare with
        plain = min((row.wall for row in mine if row.name.startswith("pytest")
                     and " passed" in f" {row.outcome}"), default=float("nan"))
        for row in mine:
            print(f"{row.suite:<18}{SUITES[suite][2]:<6}{row.name:<46}{row.wall:>7.1f}s{row.pytest_seconds:>8.1f}s"
                  f"{row.wall / plain:>7.2f}{row.oom_kills:>5}  {row.plan or '-':<13}{row.outcome}")
    print()
    print("where the time went (the fastest run of each row): first output: the container's start to "
          "pytest's first line; workers: their start, summed (replaced); measuring: the CPU time of "
          "testdock's per-test code, summed over the processes (gc: the collections it triggered), "
          "and its share of the wall")
    print(f"{'suite':<18}{'configuration':<46}{'wall':>8}{'first out':>10}{'workers':>14}"
          f"{'measuring':>11}{'gc':>7}{'share':>7}{'plot':>7}")
    for row in rows:
        b = row.breakdown or Breakdown()
        workers = f"{b.worker_starts:.1f}s/{b.workers}" + (f" ({b.replaced})" if b.replaced else "")
        print(f"{row.suite:<18}{row.name:<46}{row.wall:>7.1f}s{b.first_output:>9.2f}s"
              f"{workers if b.workers else '-':>14}{b.measuring:>10.3f}s{b.collecting:>6.3f}s"
              f"{b.measuring / row.wall:>7.1%}{b.plot:>6.2f}s")


if __name__ == "__main__":
    main()
