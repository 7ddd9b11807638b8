"""Per-test memory records: written by each process as it goes (one JSON object a line, in a
folder shared with xdist workers), merged by the controller into a report and a history."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

HISTORY_VERSION = 2  # 2: a run is a list (RUN_FIELDS), not an object: half the size
RUN_FIELDS = ("growth", "peak", "retained", "duration", "outcome", "ts")
GROWTH, PEAK, RETAINED, DURATION, OUTCOME, TS = range(len(RUN_FIELDS))
_quote = encode_basestring_ascii  # a JSON string, in C
FORGET_AFTER_RUNS = 50  # a test not seen for this many runs (renamed, deleted) is dropped


@dataclass(frozen=True)
class TestMemory:
    __test__ = False  # not a pytest test class

    nodeid: str
    worker: str
    baseline: int  # the process's RSS when the test started
    peak: int  # the process's peak RSS during setup + call + teardown
    retained: int  # RSS after the test (after a gc when it grew) minus the baseline
    duration: float  # seconds, less the time spent waiting for a CPU another process held
    outcome: str
    cpu: float = 0.0  # CPU seconds the process used during the test (all its threads)
    read_bytes: int = 0  # bytes the process read from storage during the test
    written_bytes: int = 0  # ... and wrote to it (counted when it dirtied the pages)

    @property
    def growth(self) -> int:
        """How far above its starting point the test took the process."""
        return max(0, self.peak - self.baseline)


class RecordWriter:
    """Appends records to the process's own file, a few at a time (a write a test cost as much as
    the rest of the measuring on suites of millisecond tests): at most FLUSH_SECONDS of them are
    lost with a process the kernel kills, and those tests are measured again next run. Records
    left pending while the process waits (for its next test, or in a long one) are written by a
    thread of its own within IDLE_FLUSH_SECONDS: a run killed then keeps them."""

    FLUSH_SECONDS = 0.25
    IDLE_FLUSH_SECONDS = 0.5

    def __init__(self, folder: Path, worker: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.path = folder / f"{worker}-{os.getpid()}.jsonl"
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._pending: list[str] = []
        self._flushed = time.monotonic()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._flush_when_idle, name="testdock-records", daemon=True).start()

    def add(self, nodeid: str, worker: str, baseline: int, peak: int, retained: int, duration: float,
            outcome: str, cpu: float, read_bytes: int, written_bytes: int) -> None:
        """A test's record (TestMemory's fields, in order), as a JSON array: formatted here in one
        go, as json's Python-level encoder costs as much again under a tracer."""
        line = (f'[{_quote(nodeid)},{_quote(worker)},{baseline},{peak},{retained},'
                f'{duration:.6f},"{outcome}",{cpu:.4f},{read_bytes},{written_bytes}]')
        with self._lock:
            self._pending.append(line)
        if time.monotonic() - self._flushed >= self.FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if self._pending and self._fd is not None:
                os.write(self._fd, ("\n".join(self._pending) + "\n").encode())
                self._pending.clear()
            self._flushed = time.monotonic()

    def _flush_when_idle(self) -> None:
        while not self._closed.wait(self.IDLE_FLUSH_SECONDS):
            if self._pending and time.monotonic() - self._flushed >= self.FLUSH_SECONDS:
                with contextlib.suppress(OSError):
                    self.flush()

    def _write_line(self, line: str) -> None:
        with self._lock:
            self._pending.append(line)
        self.flush()

    def write_startup(self, seconds: float, rss: int, collection: float | None = None) -> None:
        """How long this worker took from its start to the end of its collection (interpreter,
        imports, collection) and, of that, its collection; the memory it holds then of its own
        (its libraries' pages, shared with other workers, apart): what starting another one costs."""
        line: dict[str, Any] = {"worker": self.worker, "startup": round(seconds, 3),
                                "rss": rss}
        if collection is not None:
            line["collection"] = round(collection, 3)
        self._write_line(json.dumps(line))

    def write_overhead(self, measuring: float, collecting: float, collections: int) -> None:
        """What measuring cost this process: seconds in testdock's own per-test code, and
        the garbage collections it triggered (their seconds and number)."""
        self._write_line(json.dumps({"worker": self.worker, "overhead": {
            "measuring": round(measuring, 4), "collecting": round(collecting, 4),
            "collections": collections}}))

    def close(self) -> None:
        self._closed.set()
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass
class Overhead:
    """What testdock's plugin cost a run, summed over its processes."""

    measuring: float = 0.0  # seconds in testdock's per-test code, garbage collections included
    collecting: float = 0.0  # seconds of the garbage collections it triggered
    collections: int = 0
    worker_starts: float = 0.0  # seconds the xdist workers took to their first test, summed
    workers: int = 0
    worker_memory: list[int] = field(default_factory=list)  # each worker's own memory at its first test
    worker_collections: list[float] = field(default_factory=list)  # each worker's collection, seconds

    def add(self, data: dict[str, Any]) -> None:
        self.measuring += float(data.get("measuring", 0))
        self.collecting += float(data.get("collecting", 0))
        self.collections += int(data.get("collections", 0))


def read_records(folder: Path) -> tuple[list[TestMemory], dict[str, float], Overhead]:
    """Every test record in the folder, each worker's start-up seconds by its name, and what
    measuring cost; a line cut short by a killed worker is skipped."""
    records: list[TestMemory] = []
    startups: dict[str, float] = {}
    overhead = Overhead()
    for path in sorted(folder.glob("*.jsonl")):
        for data in _json_lines(path.read_text(encoding="utf-8", errors="replace")):
            try:
                if isinstance(data, list):
                    records.append(TestMemory(*data))
                elif "startup" in data:
                    startups[str(data["worker"])] = float(data["startup"])
                    if "rss" in data:
                        overhead.worker_memory.append(int(data["rss"]))
                    if "collection" in data:
                        overhead.worker_collections.append(float(data["collection"]))
                elif "overhead" in data:
                    overhead.add(data["overhead"])
            except (ValueError, TypeError, KeyError):
                continue
    overhead.worker_starts, overhead.workers = sum(startups.values()), len(startups)
    return records, startups, overhead


def _json_lines(text: str) -> list[Any]:
    """The values of a file of JSON lines, parsed in one call (one per line cost 27,000 calls on
    a large suite); line by line, skipping what does not parse, where a line was cut short."""
    lines = text.splitlines()
    with _no_garbage_collection():
        try:
            values = json.loads(f"[{','.join(lines)}]")
            if isinstance(values, list) and len(values) == len(lines):
                return values
        except ValueError:
            pass
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                continue
        return parsed


def write_report(path: Path, records: list[TestMemory], budget: int | None, budget_source: str,
                 method: str, leak_checks: dict[str, list[int]] | None = None,
                 overhead: Overhead | None = None) -> None:
    report = {
        "budget": budget, "budget_source": budget_source, "method": method,
        "peak": max((r.peak for r in records), default=0),
        "tests": [{**vars(r), "growth": r.growth} for r in records],
        "leak_checks": leak_checks or {},
        "overhead": {key: round(value, 4) if isinstance(value, float) else value
                     for key, value in vars(overhead or Overhead()).items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    # no indent: an indented dump runs json's pure-Python encoder, 0.3 s on 8,000 tests
    temporary.write_text(json.dumps(report, separators=(",", ":")), encoding="utf-8")
    temporary.replace(path)


@contextlib.contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """Nothing to collect while building a big tree of new objects that all stay: the collector
    would only walk them, repeatedly."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _empty() -> dict[str, Any]:
    return {"version": HISTORY_VERSION, "run": 0, "tests": {}}


def current_format(data: dict[str, Any]) -> dict[str, Any]:
    """A history read from a file, in this version's format (version 1 kept each run as an
    object)."""
    if data.get("version") != 1:
        return data
    for entry in data.get("tests", {}).values():
        entry["runs"] = [[run.get(name, 0) for name in RUN_FIELDS] for run in entry.get("runs", [])
                         if isinstance(run, dict)]
    return {**data, "version": HISTORY_VERSION}


# tests that failed beside others under workers and passed alone, in one process of their own
ALONE_KEY = "alone"
ALONE_KEEP = 200


def load_history(path: Path) -> dict[str, Any]:
    """The history at path (an empty one where there is none or it cannot be read). Not kept:
    its objects (hundreds of thousands on a big suite) held through a run would make every full
    garbage collection of the run walk them, which cost a run of 27,000 tests 2 s."""
    try:
        with _no_garbage_collection():  # it would walk the new objects again and again: 0.15 s
            data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _empty()
    if not isinstance(data, dict) or not isinstance(data.get("tests"), dict):
        return _empty()
    data = current_format(data)
    return data if data.get("version") == HISTORY_VERSION else _empty()


def update_history(path: Path, records: list[TestMemory], keep: int,
                   startups: dict[str, float] | None = None,
                   worker_memory: list[int] | None = None,
                   dispatch: float | None = None, serial: float | None = None,
                   worker_collections: list[float] | None = None, finished: bool = True) -> dict[str, Any]:
    """Add this run's records (the last `keep` runs per test), its workers' start-up times (and
    their collections') and memory, and what a test cost beyond its own time, distributed to
    workers (see dispatch_cost) or in one process (`serial`); forget long-unseen tests. A run
    not `finished` (recovered after its death) leaves the history marked so (see unfinished)."""
    with _no_garbage_collection():
        return _updated_history(path, records, keep, startups, worker_memory, dispatch, serial,
                                worker_collections, finished)


def _updated_history(path: Path, records: list[TestMemory], keep: int, startups: dict[str, float] | None,
                     worker_memory: list[int] | None, dispatch: float | None,
                     serial: float | None, worker_collections: list[float] | None,
                     finished: bool) -> dict[str, Any]:
    history = load_history(path)
    history[UNFINISHED_KEY] = not finished
    if worker_collections:
        history["worker_collection"] = [*history.get("worker_collection", []),
                                        *(round(value, 3) for value in worker_collections)][-keep:]
    if dispatch is not None:
        history["dispatch_cost"] = [*history.get("dispatch_cost", []), round(dispatch, 6)][-keep:]
    if serial is not None:
        history["serial_cost"] = [*history.get("serial_cost", []), round(serial, 6)][-keep:]
    if startups:
        history["worker_start"] = [*history.get("worker_start", []), *startups.values()][-keep:]
    if worker_memory:
        history["worker_memory"] = [*history.get("worker_memory", []), *worker_memory][-keep:]
    run = int(history.get("run", 0)) + 1
    tests: dict[str, Any] = history.get("tests", {})
    now = round(time.time())
    for record in records:
        runs = tests.get(record.nodeid, {}).get("runs", [])
        tests[record.nodeid] = {"runs": [*runs, [record.growth, record.peak, record.retained,
                                                 round(record.duration, 4), record.outcome, now]][-keep:],
                                "last_run": run}
    for nodeid in [n for n, e in tests.items() if run - int(e.get("last_run", run)) > FORGET_AFTER_RUNS]:
        del tests[nodeid]
    history.update({"version": HISTORY_VERSION, "run": run, "tests": tests})
    _write(path, history)
    return history


def _write(path: Path, history: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(history, separators=(",", ":")), encoding="utf-8")
    temporary.replace(path)


def _remember(path: Path, key: str, nodeids: list[str]) -> None:
    """Add the tests to the history's list under `key` (the most recent ALONE_KEEP)."""
    with _no_garbage_collection():
        history = load_history(path)
        history[key] = list(dict.fromkeys([*history.get(key, []), *nodeids]))[-ALONE_KEEP:]
        _write(path, history)


def _listed(history: dict[str, Any], key: str) -> frozenset[str]:
    return frozenset(str(nodeid) for nodeid in history.get(key, []))


def remember_alone(path: Path, nodeids: list[str]) -> None:
    """Keep the tests that failed beside others and passed alone: later runs with workers run
    them alone, at the end."""
    _remember(path, ALONE_KEY, nodeids)


def alone_tests(history: dict[str, Any]) -> frozenset[str]:
    """The tests earlier runs found failing beside others and passing alone."""
    return _listed(history, ALONE_KEY)


KILLED_KEY = "killed"
UNFINISHED_KEY = "unfinished"


def unfinished(history: dict[str, Any]) -> bool:
    """Whether the last run the history holds ended before its end (its measurements recovered
    by the next run): the test that ended it is not known."""
    return bool(history.get(UNFINISHED_KEY, False))


def remember_killed(path: Path, nodeids: list[str]) -> None:
    """Keep the tests whose worker died twice, the second time alone (more than the budget, an
    OOM kill most likely): they have no measurement, and a later run's plan must not put them in
    pytest's own process, where their OOM kill ends the run."""
    _remember(path, KILLED_KEY, nodeids)


def killed_tests(history: dict[str, Any]) -> frozenset[str]:
    """The tests whose worker died twice in earlier runs."""
    return _listed(history, KILLED_KEY)


def expectations(history: dict[str, Any]) -> tuple[dict[str, tuple[int, float]], dict[str, int]]:
    """From the history, per test: (highest recent growth, mean duration), and the most it kept."""
    expected: dict[str, tuple[int, float]] = {}
    retained: dict[str, int] = {}
    for nodeid, entry in history.get("tests", {}).items():
        runs = entry.get("runs", [])
        if runs:
            expected[nodeid] = (max(int(r[GROWTH]) for r in runs),
                                sum(float(r[DURATION]) for r in runs) / len(runs))
            retained[nodeid] = max(int(r[RETAINED]) for r in runs)
    return expected, retained


def worker_start(history: dict[str, Any]) -> float | None:
    """What starting an xdist worker cost in recent runs (the median), None before any did."""
    starts = sorted(float(value) for value in history.get("worker_start", []))
    return starts[len(starts) // 2] if starts else None


def worker_collection(history: dict[str, Any]) -> float | None:
    """Of a worker's start, what its collection of the suite took in recent runs (the median):
    what a run in one process pays too. None before a run recorded it."""
    seconds = sorted(float(value) for value in history.get("worker_collection", []))
    return seconds[len(seconds) // 2] if seconds else None


def run_dispatch_cost(wall: float, workers: int, records: list[TestMemory], worker_starts: float) -> float:
    """Seconds a test cost a run with workers beyond its own time: the workers' time (wall x
    workers) less the tests' own and the workers' starts, per test. What xdist's distribution
    costs (each test's reports sent to the controller and handled there, on the same CPUs), and
    the waits for memory: on a suite of sub-millisecond tests it is more than the tests."""
    busy = sum(record.duration for record in records)
    return max(0.0, (wall * workers - busy - worker_starts) / max(1, len(records)))


def dispatch_cost(history: dict[str, Any]) -> float | None:
    """What distributing a test to workers cost in recent runs with workers (the median)."""
    costs = sorted(float(value) for value in history.get("dispatch_cost", []))
    return costs[len(costs) // 2] if costs else None


def serial_cost(history: dict[str, Any]) -> float | None:
    """What a test cost serial runs beyond its own time (the median of recent ones): pytest's own
    work around each test (its reports, the JUnit file, the plugins' hooks) and the collection."""
    costs = sorted(float(value) for value in history.get("serial_cost", []))
    return costs[len(costs) // 2] if costs else None


def dispatch_samples(history: dict[str, Any]) -> int:
    """Of how many recent runs with workers dispatch_cost is the median."""
    return len(history.get("dispatch_cost", []))


def worker_memory(history: dict[str, Any]) -> list[int]:
    """What a fresh xdist worker held at its first test (its imports and collection), in recent
    runs."""
    return [int(value) for value in history.get("worker_memory", [])]


def merge_histories(histories: list[dict[str, Any]]) -> dict[str, Any]:
    """One history from those of shards that started from the same one: each test keeps the entry
    of the shard that ran it last (the highest run number, then the most recent measurement)."""
    def recency(entry: dict[str, Any]) -> tuple[int, int]:
        runs = entry.get("runs", [])
        return int(entry.get("last_run", 0)), int(runs[-1][TS]) if runs else 0

    tests: dict[str, Any] = {}
    for history in histories:
        for nodeid, entry in history.get("tests", {}).items():
            if nodeid not in tests or recency(entry) > recency(tests[nodeid]):
                tests[nodeid] = entry
    run = max((int(history.get("run", 0)) for history in histories), default=0)
    merged: dict[str, Any] = {"version": HISTORY_VERSION, "run": run, "tests": tests}
    for key in ("worker_start", "worker_collection", "worker_memory", "dispatch_cost", "serial_cost",
                ALONE_KEY, KILLED_KEY):
        values = [value for history in histories for value in history.get(key, [])]
        if values:
            merged[key] = values
    return merged
