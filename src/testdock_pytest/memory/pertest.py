"""Per-test memory: measured in every process (controller or xdist worker), gathered by the
controller into test-results/memory.json and .testdock/memory-history.json, summarised in the
terminal; the `memory_limit` marker fails a test whose growth exceeds its limit."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from testdock_pytest import sizes
from testdock_pytest.contract import (
    HISTORY_ENV,
    HISTORY_FILE,
    MEMORY_REPORT_FILE,
    RESULTS_DIR_ENV,
    leak_confirmed,
)
from testdock_pytest.memory import budget as budgets
from testdock_pytest.memory import leaks, unfinished
from testdock_pytest.memory.history import (
    Overhead,
    RecordWriter,
    TestMemory,
    read_records,
    run_dispatch_cost,
    update_history,
    write_report,
)
from testdock_pytest.memory.measure import (
    Probe,
    Reading,
    current_rss,
    private_memory,
    process_age,
    release_memory,
)
from testdock_pytest.memory.unfinished import RunFolder

MEMORY_DIR_ENV = "TESTDOCK_MEMORY_DIR"
RESULTS_ENV = RESULTS_DIR_ENV
GC_THRESHOLD = 1 << 20  # collect garbage before measuring what a test kept only when it grew this much
GC_ALWAYS = 16 << 20  # ... every time from this much on, within GC_SHARE
GC_INTERVAL = 1.0  # ... else at most once in this many seconds
# ... and the collections take at most this share of the process's time: on a heap of hundreds of
# MiB (a plotting library's worker) one costs tens of milliseconds, and collecting after every
# test that grew took 8-15% of such a suite's wall; at 1% each, the workers' collections summed
# still came to 2% of seaborn's wall beside the rest of the measuring
GC_SHARE = 0.005
FIRST_COLLECTION_GUESS = 0.01
SECTION = "testdock memory"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("testdock", "testdock: per-test memory and memory-aware scheduling")
    group.addoption("--no-testdock-memory", action="store_true", default=None,
                    help="Do not measure per-test memory.")
    group.addoption("--memory-budget", metavar="SIZE",
                    help="Memory the run must stay under when no cgroup limit applies (e.g. 4g).")
    group.addoption("--testdock-report", metavar="PATH",
                    help="Per-test memory report (default: $TESTDOCK_RESULTS_DIR or test-results, "
                         "memory.json).")
    group.addoption("--testdock-history", metavar="PATH",
                    help="Memory history kept between runs (default: .testdock/memory-history.json).")
    group.addoption("--testdock-leaks", action="store_true", default=False,
                    help="Confirm leak suspects (tests that kept memory) by running each a few "
                         "more times in a fresh process, and list what each run keeps.")
    group.addoption("--testdock-leak-runs", type=int, default=3, metavar="N",
                    help="Runs per suspect for --testdock-leaks (default 3).")
    parser.addini("testdock_memory", "Measure per-test memory (default true).", type="bool", default=True)
    parser.addini("memory_budget", "Like --memory-budget.", default="")
    parser.addini("testdock_history_runs", "Runs kept per test in the history.", default="10")


def register(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "memory_limit(size): fail the test when its memory growth "
                                       "exceeds size, e.g. memory_limit('300 MiB').")
    if config.getoption("no_testdock_memory") or not config.getini("testdock_memory"):
        return
    try:
        plugin = MemoryPlugin(config)
    except OSError as error:  # a plugin never stops the tests: it says why and steps aside
        config.issue_config_time_warning(
            pytest.PytestWarning(f"testdock: no per-test memory ({error})"), stacklevel=2)
        return
    config.pluginmanager.register(plugin, "testdock-memory")


def overhead_line(overhead: Overhead, tests: int) -> str:
    """What testdock's plugin cost the run, in one line of its summary."""
    line = (f"measuring cost {overhead.measuring:.2f}s of CPU over {tests} tests "
            f"({overhead.measuring / max(1, tests) * 1000:.2f} ms a test")
    if overhead.collections:
        line += f"; {overhead.collections} garbage collection(s) it triggered took {overhead.collecting:.2f}s"
    line += ")"
    if overhead.workers:
        line += f"; {overhead.workers} worker(s) took {overhead.worker_starts:.1f}s to start"
    return line


class FullCollectionClock:
    """How long the interpreter's last full garbage collection took, its own or the plugin's: what
    the next one will cost. A suite whose session keeps a million objects (27,000 tests' reports)
    pays 0.2 s for each, twenty times the guess that went before the plugin's first one."""

    def __init__(self) -> None:
        self.last = 0.0
        self._started = 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self._started = time.perf_counter()
            else:
                self.last = time.perf_counter() - self._started

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._observe)


# the worker deaths of this run, a line each for the summary (a distributed run's controller
# writes them)
CRASHES_KEY = pytest.StashKey[list[str]]()


def history_path(config: pytest.Config) -> Path:
    """The memory history: --testdock-history, else $TESTDOCK_HISTORY, else .testdock/."""
    return Path(config.getoption("testdock_history") or os.environ.get(HISTORY_ENV)
                or config.rootpath / ".testdock" / HISTORY_FILE)


def _worker(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


def _kept_runs(config: pytest.Config) -> int:
    return int(config.getini("testdock_history_runs") or 10)


RECOVERED_KEY = pytest.StashKey[int]()


def recover_unfinished(config: pytest.Config) -> int:
    """Add the measurements of runs that died before writing them to the history, once a run
    and before anything reads it: `-n auto` and the scheduler plan from the history before the
    memory plugin starts (pandera's run after a killed one planned as if it had none). How many
    tests' measurements were recovered; none in a worker, a nested run or a collection."""
    if RECOVERED_KEY not in config.stash:
        measuring = not config.getoption("no_testdock_memory") and config.getini("testdock_memory")
        own = measuring and not hasattr(config, "workerinput") and not os.environ.get(leaks.NESTED_ENV)
        config.stash[RECOVERED_KEY] = (unfinished.recover(history_path(config), _kept_runs(config))
                                       if own and not config.option.collectonly else 0)
    return config.stash[RECOVERED_KEY]


class MemoryPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.probe = Probe()
        self.worker = _worker(config)
        self._owned_folder: RunFolder | None = None
        self._previous_folder = os.environ.get(MEMORY_DIR_ENV)
        self.recovered = 0
        if self.is_worker and self._previous_folder:
            self.folder = Path(self._previous_folder)
        else:
            # the controller (or a plain run) makes the shared folder; xdist workers inherit it
            history = history_path(config)
            if os.environ.get(leaks.NESTED_ENV) or config.option.collectonly:
                self._owned_folder = RunFolder.open_temporary()
            else:
                self.recovered = recover_unfinished(config)
                self._owned_folder = RunFolder.open(history)
            self.folder = self._owned_folder.path
            os.environ[MEMORY_DIR_ENV] = str(self.folder)
        self.writer = RecordWriter(self.folder, self.worker)
        self._baseline = self._read = self._written = self._waited = 0
        self._started = self._cpu = self._ended = self._cpu_used = 0.0
        self._teardown: Reading | None = None
        self._limits: dict[str, str] = {}
        self.startups: dict[str, float] = {}
        self._last_gc = 0.0
        # what the next collection will cost, by the last one; before any, a guess: a worker's
        # heap right after the suite's imports takes 10-30 ms, more than a short run's share
        self._collection_cost = FIRST_COLLECTION_GUESS
        self._began = time.perf_counter()
        self._collection_started: float | None = None
        self._failed: set[str] = set()
        budget_option = config.getoption("memory_budget") or config.getini("memory_budget") or None
        self.budget, self.budget_source = budgets.find_budget(budget_option)
        self.records: list[TestMemory] = []
        self.leak_checks: dict[str, list[int]] = {}
        # CPU seconds this process spent in its per-test code (what measuring costs): its thread's
        # CPU time, not the wall, which beside busy workers and their controller counts the time
        # the kernel gave them (under -n 2 on 2 CPUs the wall said 0.21 ms a test, the CPU 0.05)
        self.measuring = 0.0
        self.collecting = 0.0  # ... of which in the garbage collections it triggered
        self.collections = 0
        self.overhead = Overhead()
        self._full_collections = FullCollectionClock()  # last: nothing above may fail after it

    # -- measuring, in every process ----------------------------------------------------------
    def pytest_collection(self, session: pytest.Session) -> None:
        self._collection_started = time.perf_counter()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """A worker is ready: what it took to get here is what starting another one costs."""
        age = process_age() if self.is_worker else None
        if age is not None:
            started = self._collection_started
            self.writer.write_startup(age, private_memory(),
                                      None if started is None else time.perf_counter() - started)

    # new-style wrappers (wrapper=True): pluggy calls them at a fraction of the old style's cost,
    # paid four times a test; and few Python calls a test (see measure.Probe)
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None
                                ) -> Generator[None, object, object]:
        entered = time.thread_time()
        self._baseline, self._waited, self._read, self._written = self.probe.start()
        self._teardown = None
        self._cpu = time.process_time()
        self._started = time.perf_counter()
        self.measuring += time.thread_time() - entered
        try:
            return (yield)
        finally:
            self._measured(item)

    def _measured(self, item: pytest.Item) -> None:
        resumed = time.thread_time()
        peak, after, waited, read, written = self._teardown or self._settle()
        self.probe.stop()
        # the time it waited for a CPU is the run's contention, not the test's: the next run's plan
        # (serial or how many workers) needs what the test takes on its own
        duration = max(0.0, self._ended - self._started - (waited - self._waited) / 1e9)
        outcome = "failed" if item.nodeid in self._failed else "passed"
        self.writer.add(item.nodeid, self.worker, self._baseline, max(peak, self._baseline),
                        after - self._baseline, duration, outcome, self._cpu_used,
                        max(0, read - self._read), max(0, written - self._written))
        self.measuring += time.thread_time() - resumed

    def _settle(self) -> Reading:
        """The readings at the test's end, what it kept measured after its garbage is collected
        and the C allocator's free pages are given back (see measure.release_memory). Before the
        report goes to the controller, so --dist memory sees what the worker truly holds."""
        self._ended = time.perf_counter()
        self._cpu_used = round(time.process_time() - self._cpu, 4)
        reading = self.probe.read()
        # a full collection of a big heap costs milliseconds: after a big growth within the
        # share; after small ones (a coverage tracer's data grows with every test) at most once a
        # second and only when the next one, by the last one's cost, stays within it (the first
        # would cost a short run more than its share); what that lets through, leak
        # confirmation filters
        grown = reading[1] - self._baseline
        allowed = GC_SHARE * (self._ended - self._began)
        if (grown > GC_ALWAYS and self.collecting <= allowed) or (
                grown > GC_THRESHOLD and time.monotonic() - self._last_gc > GC_INTERVAL
                and self.collecting + max(self._collection_cost, self._full_collections.last) <= allowed):
            collecting = time.thread_time()
            release_memory()
            self._last_gc = time.monotonic()
            self._collection_cost = time.thread_time() - collecting
            self.collecting += self._collection_cost
            self.collections += 1
            reading = (reading[0], current_rss(), *reading[2:])
        return reading

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.failed:
            self._failed.add(item.nodeid)
        if call.when == "teardown":
            resumed = time.thread_time()
            self._teardown = reading = self._settle()
            if self.is_worker:
                # for --dist memory: how far the test took the worker, and what the worker holds
                # now and held before it, of its own (its libraries' pages, shared with the other
                # workers, counted apart: once for all)
                report.testdock_growth = max(0, reading[0] - self._baseline)  # type: ignore[attr-defined]
                report.testdock_rss = reading[1] - self.probe.files_now  # type: ignore[attr-defined]
                report.testdock_before = self._baseline - self.probe.files_at_start  # type: ignore[attr-defined]
                report.testdock_files = self.probe.files_now  # type: ignore[attr-defined]
            self.measuring += time.thread_time() - resumed
        elif call.when == "call" and item.nodeid in self._limits:
            self._check_limit(item, report)
        return report

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # looked up once here, not at every test (a marker lookup walks the item's parents)
        self._limits = {item.nodeid: str(marker.args[0]) for item in items
                        if (marker := item.get_closest_marker("memory_limit")) is not None and marker.args}

    def _check_limit(self, item: pytest.Item, report: pytest.TestReport) -> None:
        limit = sizes.parse_size(self._limits[item.nodeid])
        growth = max(0, self.probe.read()[0] - self._baseline)
        if growth > limit and report.outcome != "failed":
            report.outcome = "failed"
            report.longrepr = (f"memory limit exceeded: the test grew the process by "
                               f"{sizes.format_size(growth)}, its limit is {sizes.format_size(limit)}")
            report.sections.append((SECTION, f"growth {sizes.format_size(growth)} > limit "
                                             f"{sizes.format_size(limit)} (method {self.probe.method})"))
            self._failed.add(item.nodeid)

    # -- gathering, in the controller ---------------------------------------------------------
    def _paths(self) -> tuple[Path, Path]:
        results = os.environ.get(RESULTS_ENV) or str(self.config.rootpath / "test-results")
        report = self.config.getoption("testdock_report") or str(Path(results) / MEMORY_REPORT_FILE)
        return Path(report), history_path(self.config)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.writer.write_overhead(self.measuring, self.collecting, self.collections)
        self.writer.close()
        if self.is_worker:
            return
        self.records, self.startups, self.overhead = read_records(self.folder)
        if not self.records:
            return
        if self.config.getoption("testdock_leaks") and not os.environ.get(leaks.NESTED_ENV):
            suspects = sorted({r.nodeid for r in self.records if r.retained > GC_THRESHOLD})
            if suspects:
                self.leak_checks = leaks.check(suspects, self.config.getoption("testdock_leak_runs"),
                                               self.config.rootpath)
        report_path, history_path = self._paths()
        try:
            write_report(report_path, self.records, self.budget, self.budget_source, self.probe.method,
                         self.leak_checks, self.overhead)
            keep = _kept_runs(self.config)
            workers = len(self.config.getoption("tx", None) or []) if self.overhead.workers else 0
            elapsed = time.perf_counter() - self._began
            # a run whose workers died spent its time recovering (their tests lost, their
            # replacements started): what handing tests out costs is not measured there
            deaths = self.config.stash.get(CRASHES_KEY, [])
            dispatch = run_dispatch_cost(elapsed, workers, self.records,
                                         self.overhead.worker_starts) if workers and not deaths else None
            # the same measure for a run in one process: what its tests cost beyond their own time
            serial = None if workers else run_dispatch_cost(elapsed, 1, self.records, 0.0)
            update_history(history_path, self.records, keep, self.startups, self.overhead.worker_memory,
                           dispatch, serial, self.overhead.worker_collections)
        except OSError as error:
            self.config.issue_config_time_warning(
                pytest.PytestWarning(f"testdock: cannot write the memory report: {error}"), stacklevel=2)

    def pytest_report_header(self) -> list[str]:
        if not self.recovered:
            return []
        return [f"testdock: the history has {self.recovered} more test measurement(s), recovered from "
                "a run that ended before it could write them"]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not self.records:
            return
        size = sizes.format_size
        peak = max(self.records, key=lambda r: r.peak)
        writer = terminalreporter
        writer.section("testdock memory")
        budget = size(self.budget) if self.budget else "unknown"
        writer.line(f"budget {budget} ({self.budget_source}); run peak {size(peak.peak)} "
                    f"in {peak.worker} during {peak.nodeid}; measured by {self.probe.method}")
        writer.line(overhead_line(self.overhead, len(self.records)))
        grown = [r for r in self.records if r.growth > 0]
        if grown:
            writer.line("top tests by peak growth:")
        for record in sorted(grown, key=lambda r: r.growth, reverse=True)[:10]:
            writer.line(f"  {size(record.growth):>11}  {record.duration:6.2f}s  {record.nodeid}")
        if self.leak_checks:
            writer.line(f"leak check ({self.config.getoption('testdock_leak_runs')} more runs each, "
                        "in a fresh process; memory kept by each run):")
            for nodeid, kept_runs in sorted(self.leak_checks.items()):
                verdict = "LEAKS" if leak_confirmed(kept_runs) else "no leak confirmed"
                runs = ", ".join(size(value) for value in kept_runs) or "did not run"
                writer.line(f"  {verdict:<18} {runs:<40} {nodeid}")
        kept = [r for r in self.records if r.retained > GC_THRESHOLD]
        if kept and not self.leak_checks:
            writer.line("top tests by memory kept after them (leak suspects):")
            for record in sorted(kept, key=lambda r: r.retained, reverse=True)[:10]:
                writer.line(f"  {size(record.retained):>11}  {record.nodeid}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._full_collections.stop()
        if self._owned_folder is not None:
            self._owned_folder.close()
            if self._previous_folder is None:
                os.environ.pop(MEMORY_DIR_ENV, None)
            else:
                os.environ[MEMORY_DIR_ENV] = self._previous_folder
