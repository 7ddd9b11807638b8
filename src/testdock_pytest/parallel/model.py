"""The memory model `--dist memory` schedules by: what each test is expected to add, what each
worker holds, what fits in the budget, and how many workers are worth starting. Pure logic, no
xdist: imported in every process, where the scheduler itself (and xdist's machinery) is only
imported by the controller of a distributed run."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from testdock_pytest.sizes import format_size

MiB = 1 << 20
DEFAULT_GROWTH = 64 * MiB


@dataclass
class MemoryModel:
    budget: int
    margin: float
    controller_rss: int
    expected: dict[str, tuple[int, float]] = field(default_factory=dict)  # nodeid -> growth, seconds
    default_growth: int = DEFAULT_GROWTH
    baselines: dict[Any, int] = field(default_factory=dict)
    retained: dict[str, int] = field(default_factory=dict)  # nodeid -> memory it leaves behind
    max_worker_rss: int | None = None  # replace a worker above this; None: when it leaves no room
    # growths measured so far (history, then this run) by family: a test function's
    # parametrizations, its class, its module; what one member showed informs the others
    families: dict[str, list[int]] = field(default_factory=dict)
    worker_start: float | None = None  # seconds a worker took to its first test, in recent runs
    worker_collection: float | None = None  # ... of which its collection of the suite
    dispatch_cost: float | None = None  # seconds a test cost runs with workers beyond its own
    dispatch_samples: int = 0  # of how many recent runs with workers
    serial_cost: float | None = None  # seconds a test cost serial runs beyond its own
    # what workers held at their first test (imports, collection), in recent runs, then in this
    # one: what a worker that has not reported yet holds, or soon will
    started: list[int] = field(default_factory=list)
    # what the controller has grown by since the run started (its reports, coverage data): it
    # shares the budget, and a long run's controller holds much more than it did at its start
    controller_growth: int = 0
    # the pages of files (shared libraries, mapped data) in the processes' memory: one copy for
    # all that map them, so counted once, as the most any one process has shown; every other
    # figure here is what a process holds of its own
    shared_files: int = 0
    # tests earlier runs found failing beside others and passing alone: run alone, at the end
    alone: frozenset[str] = frozenset()
    # tests whose worker died twice in earlier runs (never measured: more than the budget)
    killed: frozenset[str] = frozenset()
    # the last run recorded ended before its end (killed: its measurements recovered by the next):
    # the tests it never reached, and the one that killed it, are not in the history
    unfinished: bool = False
    observations: int = 0  # tests measured in this run
    # a family's heaviest and typical growths, kept as members are learnt: the scheduler asks
    # for them at every step, and a family holds thousands of tests in a large suite (a walk over
    # them per step made a first run of 27,000 tests spend 7 s of its controller in max())
    _heaviest: dict[str, int] = field(default_factory=dict, repr=False)
    _typical: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)  # median, of how many

    def __post_init__(self) -> None:
        for nodeid, (growth, _) in self.expected.items():
            self._learn(nodeid, growth)

    def _learn(self, nodeid: str, growth: int) -> None:
        for key in family_keys(nodeid):
            self.families.setdefault(key, []).append(growth)
            if growth > self._heaviest.get(key, -1):
                self._heaviest[key] = growth

    def _typical_growth(self, key: str) -> int:
        """The family's median growth, computed again only once the family has grown by a tenth
        since (a sort per learnt test would cost a large family's first run its length squared)."""
        measured = self.families[key]
        typical, count = self._typical.get(key, (0, 0))
        if len(measured) > count * 1.1:  # a family only grows
            ordered = sorted(measured)
            typical, count = ordered[len(ordered) // 2], len(ordered)
            self._typical[key] = (typical, count)
        return typical

    @property
    def fresh_baseline(self) -> int:
        """What a worker holds before it has kept anything: the most a worker held at its first
        test (recent runs, this one); before any was measured, the lowest baseline seen."""
        if self.started:
            return max(self.started)
        return min([self.controller_rss, *self.baselines.values()])

    @property
    def usable(self) -> int:
        return (int(self.budget * (1 - self.margin)) - self.controller_rss - self.controller_growth
                - self.shared_files)

    def growth(self, nodeid: str) -> int:
        """What the test is expected to add, with 10% for run-to-run noise: its own measurement;
        else the heaviest of its function's other parametrizations; else at least the typical
        test of its class, then its module; else the conservative default."""
        known = self.expected.get(nodeid)
        if known:
            return int(known[0] * 1.1)
        keys = family_keys(nodeid)
        if "[" in nodeid and keys[0] in self.families:
            return int(self._heaviest[keys[0]] * 1.1)
        numbered = next((key for key in keys[1:] if key.endswith("#")), None)
        if numbered in self.families:  # the heaviest numbered sibling, as for parametrizations
            return int(self._heaviest[numbered] * 1.1)
        for key in keys[1:]:
            if self.families.get(key):
                return max(self.default_growth, int(self._typical_growth(key) * 1.1))
        return self.default_growth

    def unmeasured_siblings(self, nodeid: str) -> str | None:
        """The test's nearest family (its function's parametrizations, or its numbered
        siblings) when nothing of that family was measured yet; None otherwise, or for a test
        with no siblings. Its members are not run side by side until one of them has been
        measured: a heavy family shows in its first member, not in an OOM kill of two."""
        keys = family_keys(nodeid)
        if "[" in nodeid:
            key = keys[0]
        elif len(keys) > 1 and keys[1].endswith("#"):
            key = keys[1]
        else:
            return None
        return None if key in self.families or nodeid in self.expected else key

    def informed(self, nodeid: str) -> bool:
        """Whether anything measured speaks for the test: itself, or a member of its family."""
        return nodeid in self.expected or any(key in self.families for key in family_keys(nodeid))

    def duration(self, nodeid: str) -> float:
        known = self.expected.get(nodeid)
        return known[1] if known else 0.0

    def baseline(self, node: Any) -> int:
        """What the worker holds between tests, as it last reported it; before its first report,
        what fresh workers hold once their imports and collection are done (a worker's start is
        when it grows the most: the suite's libraries, its collection), else the controller's."""
        known = self.baselines.get(node)
        if known is not None:
            return known
        return max(self.started) if self.started else self.controller_rss

    def observe(self, node: Any, nodeid: str, growth: int, rss: int, start: int | None = None,
                files: int = 0) -> None:
        """What a finished test showed: the worker's new baseline (what it holds of its own), and
        the test's growth; with its first test, the worker's memory before it (`start`: what a
        fresh worker holds); and its files' pages (`files`), shared with the other processes."""
        self.shared_files = max(self.shared_files, files)
        if node not in self.baselines and start is not None:
            self.started.append(start)
            before = start
        else:
            before = self.baseline(node)
        self.baselines[node] = rss
        self.expected[nodeid] = (growth, self.expected.get(nodeid, (0, 0.0))[1])
        self.retained[nodeid] = max(0, rss - before)
        self._learn(nodeid, growth)
        self.observations += 1


@functools.cache  # asked for every pending test at every scheduling step: a dict lookup, not a parse
def family_keys(nodeid: str) -> tuple[str, ...]:
    """The families a test belongs to, nearest first: its function (all its parametrizations),
    its numbered siblings (`test_case_1`, `test_case_2`: the same test written out by hand), its
    class, its module. `t.py::C::test_f[2]` -> [`t.py::C::test_f`, `t.py::C`, `t.py`];
    `t.py::test_load_3` -> [`t.py::test_load_3`, `t.py::test_load_#`, `t.py`]."""
    function = nodeid.split("[", 1)[0]
    parts = function.split("::")
    keys = [function]
    stem = parts[-1].rstrip("0123456789")
    if len(parts) > 1 and stem != parts[-1] and stem.rstrip("_") not in ("", "test"):
        keys.append("::".join([*parts[:-1], stem + "#"]))
    if len(parts) > 2:
        keys.append("::".join(parts[:-1]))
    if len(parts) > 1:
        keys.append(parts[0])
    return tuple(keys)


# what a worker costs before its first test: an interpreter, pytest and the plugins, and its own
# collection of the suite; on a suite the history knows to be shorter than this saves, the run
# is serial, in one process. Assumed until a run with workers has measured it.
WORKER_START_SECONDS = 1.0
# what handing a test to a worker costs beyond the test (its reports sent to the controller and
# handled there, on the same CPUs), until a run with workers has measured it
DISPATCH_SECONDS = 0.0005
# how many runs with workers it takes to settle that a suite runs faster serially, where workers
# could save at least this much (below it, one run's word is enough: little is at stake)
DISPATCH_SAMPLES = 3
PROBE_WORTH_SECONDS = 30.0


def choose_workers(model: MemoryModel, cpus: int) -> tuple[int, str]:
    """How many xdist workers `-n auto` starts (0: none, the tests run in pytest's own process),
    and why. As many as the CPUs and the budget allow for the typical test; none when the history
    says the whole suite fits in one process and workers would cost more than they save; one,
    not none, when a test may not fit, so that the run survives its OOM kill."""
    growths = sorted(growth for growth, _ in model.expected.values())
    # a worker holds what fresh workers held at their first test (the controller's size before any
    # was measured), and grows by the typical test
    per_worker = model.fresh_baseline + (growths[len(growths) // 2] if growths else model.default_growth)
    workers = max(1, min(cpus, model.usable // max(per_worker, 1)))
    if not growths:
        return workers, f"{workers} worker(s): no history yet, as many as the CPUs and the budget allow"
    total = sum(seconds for _, seconds in model.expected.values())
    # in one process, the tests run beside the suite's imports and collection (what a fresh worker
    # holds: falcon's test modules build 900 MiB of data at import), and a test that killed its
    # worker twice was never measured
    in_one_process = model.fresh_baseline + int(growths[-1] * 1.1)
    fits = not model.killed and not model.unfinished and in_one_process <= model.usable + model.controller_rss
    start = model.worker_start if model.worker_start is not None else WORKER_START_SECONDS
    if model.serial_cost is None and model.worker_collection is not None:
        # a run in one process collects the suite too: until one has measured what it pays beyond
        # its tests (collection included), the workers' collection is not theirs alone
        start = max(0.0, start - model.worker_collection)
    dispatch = model.dispatch_cost if model.dispatch_cost is not None else DISPATCH_SECONDS
    distributing = len(growths) * dispatch
    # a serial run pays pytest's own work around each test too (its reports, JUnit, the
    # plugins' hooks), measured in serial runs: werkzeug's 9.8 s of tests took 16.7 s serially
    around = len(growths) * (model.serial_cost or 0.0)
    saved = total + around - (total + distributing) / workers
    measured = "measured" if model.worker_start is not None else "assumed"
    if fits and saved < start:
        # what workers would save, handing out free: where that is much, one run with workers
        # slowed by something else on the machine (builds beside it) must not make every later
        # run serial, and serial runs measure nothing more: a few runs with workers decide
        worth = total * (1 - 1 / workers)
        if workers > 1 and model.dispatch_samples < DISPATCH_SAMPLES and worth >= PROBE_WORTH_SECONDS:
            return workers, (f"{workers} workers: serial by the {model.dispatch_samples} run(s) with "
                             f"workers so far, where workers could save up to {worth:.0f}s; measuring "
                             f"again ({DISPATCH_SAMPLES} runs decide)")
        return 0, (f"serial: the tests took {total:.1f}s (+{around:.1f}s around them in one process); "
                   f"{workers} worker(s) would save {saved:.1f}s "
                   f"(handing them out costs {distributing:.1f}s, "
                   f"{'measured' if model.dispatch_cost is not None else 'assumed'}) "
                   f"and cost {start:.1f}s to start ({measured})")
    if workers == 1:
        why = " (the last run ended before its end: what killed it is not known)" if model.unfinished else ""
        return 1, f"1 worker: one test at a time, in a worker that an OOM kill does not end the run with{why}"
    return workers, f"{workers} workers: as many as the CPUs and the budget allow"


def conservative_default(expected: dict[str, tuple[int, float]]) -> int:
    """For tests never measured: the 90th percentile of known growths, at least 64 MiB."""
    growths = sorted(growth for growth, _ in expected.values())
    if not growths:
        return DEFAULT_GROWTH
    return max(DEFAULT_GROWTH, growths[int(0.9 * (len(growths) - 1))])


def describe(model: MemoryModel) -> str:
    return (f"testdock --dist memory: budget {format_size(model.budget)}, usable "
            f"{format_size(model.usable)} for workers, {len(model.expected)} tests with history, "
            f"unknown tests assumed {format_size(model.default_growth)}")
