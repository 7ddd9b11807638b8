"""`--dist memory`: hand tests to xdist workers so that the memory in use stays under the budget.

The model: every worker holds its baseline (its RSS between tests, as it last reported it) and,
while it runs a test, that test's expected growth (from the history; unknown tests get a
conservative estimate). A test starts only if the sum over all workers stays under the usable
budget (budget minus margin minus the controller), or if nothing else runs (then it has the whole
budget, once idle workers that keep much memory have been replaced by fresh ones). A worker that
keeps memory is replaced only when none of the tests left fits beside it: a fresh worker costs its
start, and heavy tests wait for room instead. xdist starts a worker's queued test only when it
receives the next one (or shutdown): the last test in a worker's queue waits, and is admitted by
sending its successors. Where memory is plentiful, successors go in batches (light tests whose
growth is known, the largest of them counted for the worker), so that short tests do not each wait
for a round trip to the controller; near the end of the run, and where memory is short, one at a
time. A test a worker died running is re-run alone at the end; a second death fails it as "needs
more than the budget".
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from xdist.scheduler.load import LoadScheduling
from xdist.workermanage import WorkerController

from testdock_pytest.memory.pertest import CRASHES_KEY
from testdock_pytest.parallel import units
from testdock_pytest.parallel.model import MemoryModel, MiB, family_keys
from testdock_pytest.parallel.xdist_internals import (
    end_finished_worker,
    skip_next_replacement,
    start_replacement_worker,
)
from testdock_pytest.sizes import format_size

MAX_BATCH = 50  # tests sent to a worker at once, at most
BATCH_SECONDS = 0.5  # ... and at most this many seconds of them, by their history
BATCH_KEPT = 32 * MiB  # ... and at most this much memory left behind by them, by their history
PICK_SCAN = 200  # pending tests looked at for one that fits now, at most (in the run's order)
SKIP_SCAN = 5000  # ... and passed over as siblings of a test being measured, at most
REPLACEMENT_WAIT = 5.0  # seconds a fresh worker waits, at most, for a retired one's memory to go
# a test may start in the room kept for a test sent to wait on another worker when it is expected
# to end before that one starts, with this much of its history's seconds to spare
BACKFILL_SLACK = 1.5
# tests of one module that died alone, with the whole budget, after which the tests of that module
# kept for the end because the others died are not run: each would cost a fresh worker's start
ABANDON_AFTER = 3


def same_tests(first: Sequence[str], other: Sequence[str]) -> bool:
    """Two workers' collections name the same tests in the same order, ids made anew aside: ids
    made of the time or of random values (`test_parse[17:31:47 2026-12-03]`) differ between
    workers that collect a second apart, and plain xdist stops the run there. Tests are handed out
    by position, so each still runs once, with the values its worker made. The same ids in
    another order (a set of classes, ordered by address) are not the same tests at each place."""
    if len(first) != len(other):
        return False
    differing = [(mine, theirs) for mine, theirs in zip(first, other, strict=True) if mine != theirs]
    if not differing:
        return True
    mine_all, theirs_all = set(first), set(other)
    return all("[" in mine and "[" in theirs and mine.partition("[")[0] == theirs.partition("[")[0]
               and mine not in theirs_all and theirs not in mine_all for mine, theirs in differing)


class MemoryScheduling(LoadScheduling):
    collection: list[str] | None
    numnodes: int
    pending: list[int]
    node2pending: dict[Any, list[int]]

    def __init__(self, config: Any, log: Any, model: MemoryModel,
                 controller_memory: Callable[[], int] | None = None,
                 memory_in_use: Callable[[], int | None] | None = None,
                 dist_mode: str | None = None) -> None:
        super().__init__(config, log)
        self.model = model
        self.dist_mode = dist_mode  # the project's own --dist, which testdock's replaced
        self.units: dict[int, tuple[int, ...]] = {}  # test -> the tests run with it, in order
        # a unit's tests left for the worker that runs it, handed out one at a time, in order
        self._pinned: dict[WorkerController, list[int]] = {}
        self.controller_memory = controller_memory  # what the controller holds of its own now
        # what the container holds now, as the kernel counts it (None outside a limited cgroup):
        # the model counts the processes it knows of; this counts everything, workers on their way
        # out (saving their coverage data) and children of tests included
        self.memory_in_use = memory_in_use
        self._in_use_read: tuple[float, int | None] = (-1.0, None)
        self._controller_read = -1.0  # when the controller's memory was last read
        self.shutdown_sent: set[WorkerController] = set()
        self.retiring: set[WorkerController] = set()  # to be replaced by a fresh worker
        self.replaced: list[str] = []
        self.starting = 0  # replacement workers started and not yet ready (not in node2pending)
        self.solo: list[int] = []  # tests to run alone at the end (a worker died running it...)
        self.alone_indices: set[int] = set()  # every test ever kept for the end, queued ones too
        self.crashes: Counter[str] = Counter()
        self._died_functions: dict[str, set[str]] = {}  # module -> its functions a worker died in
        self._died_alone: Counter[str] = Counter()  # the group kept for the end -> its deaths there
        self._kept_with: dict[str, str] = {}  # test kept for the end -> the group it was kept with
        self.abandoned: list[str] = []  # tests not run: their module's tests die even alone
        self.differing_ids = 0  # tests whose parametrization ids differ between the workers
        self.collection_deaths: list[str] = []  # workers that died collecting, not replaced
        self._keeper_requested = False  # a worker retired early for the tests kept for the end
        self._waited_for_exits: set[int] = set()  # tests run alone that waited for ended workers
        self._sends = itertools.count()
        self._sent_order: dict[int, int] = {}  # test -> when it was sent to its worker, in order
        self._head_started: dict[WorkerController, float] = {}  # when the worker's running test started
        # the lightest pending test's growth when last walked: (growth, pending, learnt, when)
        self._lightest: tuple[int, int, int, float] | None = None

    # -- the memory arithmetic ---------------------------------------------------------------
    def _running(self, node: WorkerController) -> int | None:
        """The test the worker runs now (the head of its queue, once admitted)."""
        admitted = self._admitted(node)
        return admitted[0] if admitted else None

    def _admitted(self, node: WorkerController) -> list[int]:
        """The worker's tests that will run without another word from the controller: its queue
        but the last (which waits for a successor), all of it once shutdown was sent."""
        queue = self.node2pending.get(node, [])
        return [int(index) for index in (queue if node in self.shutdown_sent else queue[:-1])]

    def _reserved(self, node: WorkerController) -> int | None:
        """The growth the worker's admitted tests may reach, one at a time: the largest."""
        admitted = self._admitted(node)
        return max(self._growth(index) for index in admitted) if admitted else None

    def _growth(self, index: int) -> int:
        assert self.collection is not None
        if index in self.solo_indices:
            return max(self.model.usable, self.model.growth(self.collection[index]))
        return self.model.growth(self.collection[index])

    @property
    def solo_indices(self) -> set[int]:
        """The tests that run alone: those waiting for their turn (`solo`, kept with them), and
        those on their way."""
        return self.alone_indices

    def _run_alone(self, indices: Sequence[int], why: str = "", once: bool = False) -> None:
        """Keep these tests for the end of the run, each then run alone with the other workers
        ended; with `why`, the run says so."""
        if not indices:
            return
        kept = set(indices)
        self.pending[:] = [index for index in self.pending if index not in kept]
        self.solo.extend(indices)
        self.alone_indices.update(indices)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter") if self.config and why else None
        if reporter is not None:
            example = self._nodeid(indices[0])
            reporter.write_line(f"testdock: {len(indices)} test(s) {why} run alone, after the others"
                                f"{', once' if once else ''} (e.g. {example}: "
                                f"{format_size(self.model.growth(example))} expected)")

    def _all_queued(self) -> list[int]:
        return [index for queue in self.node2pending.values() for index in queue]

    def _nodeid(self, index: int) -> str:
        assert self.collection is not None
        return str(self.collection[index])

    def _in_use(self, exclude: WorkerController | None = None,
                ending_within: float | None = None) -> tuple[int, int]:
        """(memory the workers use now, how many tests run) not counting `exclude`'s test. A
        replacement worker still starting counts as what fresh workers hold: it is importing the
        suite's libraries and collecting it, the steepest growth of a worker's life. A test sent
        to wait behind a worker's running ones keeps its room, unless the test asking for room
        ends (within `ending_within` seconds, by its history) before they do."""
        total = sum(self.model.baseline(node) for node in self.node2pending)
        total += self.starting * self.model.fresh_baseline
        running = 0
        for node, queue in self.node2pending.items():
            reserved = self._reserved(node)
            if reserved is not None and node is not exclude:
                if (len(queue) >= 2 and node not in self.shutdown_sent
                        and not self._ends_before(node, ending_within)):
                    # the test waiting behind is the worker's next, sent already: once its
                    # predecessor ends it needs its room, or its worker idles until there is
                    reserved = max(reserved, self._growth(queue[-1]))
                total += reserved
                running += 1
        return total, running

    def _ends_before(self, node: WorkerController, seconds: float | None) -> bool:
        """Whether a test of `seconds` (by its history; None: unknown), started now, ends before
        the worker's admitted tests do, by their history: it may run in the room kept for the
        test waiting behind them (backfilling). Scikit-image's 1 s tests of 250 MiB waited 5.5 s
        behind a 6 s test of another worker for the room of the test queued after it."""
        started = self._head_started.get(node)
        if seconds is None or started is None:
            return False
        ahead = 0.0
        for index in self._admitted(node):
            known = self.model.expected.get(self._nodeid(index))
            if known is None:
                return False
            ahead += known[1]
        return seconds * BACKFILL_SLACK < ahead - (time.monotonic() - started)

    def _waiting(self, exclude: WorkerController) -> list[int]:
        """The tests queued on the other workers and not admitted yet, each its worker's only one
        (tests run alone wait for the others to end: not counted)."""
        return [queue[0] for node, queue in self.node2pending.items()
                if node is not exclude and len(queue) == 1 and node not in self.shutdown_sent
                and queue[0] not in self.solo_indices]

    def _blocked_growth(self, exclude: WorkerController) -> int:
        """The largest test waiting on another worker: admissions leave room for it, so that
        memory drains until it fits and heavy tests never starve. Counted whether or not it fits
        now: a test that fits by the model but not by the kernel's count (scikit-image's 233 MiB
        test) waited 90 s while the other worker, asked first each time, ran light test after
        light test."""
        return max((self._growth(index) for index in self._waiting(exclude)), default=0)

    def _may_start(self, node: WorkerController, index: int) -> bool:
        if index in self.solo_indices:
            if len(self.node2pending) > 1 or self.starting:
                return False  # the other workers end first (see _spare_for_solo): it has the budget
            self._wait_for_exits(index)
        known = self.model.expected.get(self._nodeid(index))
        total, running = self._in_use(exclude=node, ending_within=known[1] if known else None)
        growth, blocked = self._growth(index), self._blocked_growth(node)
        beside_blocked = total + growth + blocked <= self.model.usable and self._room_in_fact(index, blocked)
        if running == 0:
            if not beside_blocked and any(self._sent_order[other] < self._sent_order[index]
                                          for other in self._waiting(node)):
                return False  # a test sent before it waits on another worker: it goes first
            # alone, it has the whole budget, less what the idle workers keep: those that keep
            # much are replaced first when that makes it fit
            fits = total + growth <= self.model.usable and self._room_in_fact(index)
            return fits or not self._slim_idle_workers(node)
        if index in self.solo_indices:
            return False
        return beside_blocked

    def _room_in_fact(self, index: int, beside: int = 0) -> bool:
        """Whether the container's memory as the kernel counts it now leaves room for the
        test's growth (and `beside` more) under the budget less the margin."""
        in_use = self._in_use_in_fact()
        model = self.model
        return in_use is None or in_use + self._growth(index) + beside <= model.budget * (1 - model.margin)

    def _in_use_in_fact(self) -> int | None:
        """The container's memory as the kernel counts it (read at most every 20 ms); None
        outside a limited cgroup."""
        if self.memory_in_use is None:
            return None
        read_at, in_use = self._in_use_read
        if time.monotonic() - read_at > 0.02:
            in_use = self.memory_in_use()
            self._in_use_read = (time.monotonic(), in_use)
        return in_use

    # -- replacing workers that keep memory ------------------------------------------------------
    def _slim_idle_workers(self, waiting: WorkerController) -> bool:
        """Retire the idle workers (nothing queued) that keep memory, for a test waiting on
        `waiting` that does not fit beside them; True while any idle worker is on its way out
        (the test waits for it to go), False when none can give memory back."""
        slimming = False
        for other in list(self.node2pending):
            if other is waiting or self.node2pending[other]:
                continue
            if other in self.shutdown_sent:
                slimming = True  # ending (a spare one, once only the tests that run alone are left)
                continue
            if self.model.baseline(other) - self.model.fresh_baseline < 32 * MiB:
                continue
            other.shutdown()
            self.shutdown_sent.add(other)
            self.retiring.add(other)
            slimming = True
        return slimming

    def _too_full(self, node: WorkerController, baseline: int) -> bool:
        """Whether a worker holding `baseline` should be replaced: above --max-worker-rss, or
        when what it keeps leaves room for none of the tests left, where a fresh one would. A
        worker that can still run some of them is kept: a fresh one costs its start (an
        interpreter, the imports, its own collection), and heavy tests wait for room instead.
        The room is the model's, or less where the kernel's count leaves less once the tests
        running now have ended: seaborn's workers, holding 450 MiB each, left room for a test by
        the model and none by the kernel's count, and one idled 26 s without being replaced."""
        model = self.model
        if model.max_worker_rss is not None:
            return baseline > model.max_worker_rss
        if self._pinned.get(node):
            return False  # its unit's tests share what it holds (a document's namespace)
        kept = baseline - model.fresh_baseline
        if kept < 32 * MiB or not self.pending:
            return False
        others = sum(model.baseline(n) for n in self.node2pending if n is not node)
        room = model.usable - others - baseline
        in_fact = self._room_in_fact_once_idle()
        if in_fact is not None:
            room = min(room, in_fact)
        if self._growth(self.pending[0]) <= room:
            return False  # the lightest fits too: no walk over every pending test (asked per test)
        lightest = self._lightest_pending()
        return lightest > room and lightest <= room + kept

    def _room_in_fact_once_idle(self) -> int | None:
        """The room under the budget less the margin by the kernel's count, with the growth the
        tests running now are expected to reach given back (they end); None outside a limited
        cgroup."""
        in_use = self._in_use_in_fact()
        if in_use is None:
            return None
        running = sum(reserved for node in self.node2pending
                      if (reserved := self._reserved(node)) is not None)
        return int(self.model.budget * (1 - self.model.margin)) - in_use + running

    def _lightest_pending(self) -> int:
        """The least any pending test is expected to add. A walk over every pending test, asked
        after every test while the next one does not fit: on scikit-image's 8,000 tests with
        history that was 26 million growths, a minute of the controller's CPU beside the
        workers. Walked again once the pending tests or what the model has learnt changed by a
        twentieth, or after a second: in between, the lightest only grows as tests leave."""
        pending, learnt = len(self.pending), self.model.observations
        last = self._lightest
        if last is not None:
            value, at_pending, at_learnt, at_time = last
            if (at_pending - pending <= at_pending / 20 and learnt - at_learnt <= max(at_learnt, 20) / 20
                    and time.monotonic() - at_time < 1.0):
                return value
        value = min(self._growth(index) for index in self.pending)
        self._lightest = (value, pending, learnt, time.monotonic())
        return value

    def _retire_after(self, node: WorkerController, index: int) -> bool:
        """True when the test about to start is to be the worker's last (its history says it
        leaves the worker too full), or the worker is too full already."""
        if node in self.retiring:
            return True
        predicted = self.model.baseline(node) + self.model.retained.get(self._nodeid(index), 0)
        if self._too_full(node, predicted):
            self.retiring.add(node)
            return True
        return False

    def _replace(self, node: WorkerController) -> None:
        """Ask xdist for a fresh worker in place of a retired one (xdist replaces only crashed
        workers on its own), once the container has room for its start."""
        self._wait_for_room(self.model.fresh_baseline)
        start_replacement_worker(self.config, node)
        self.starting += 1
        self.replaced.append(f"{node.gateway.id}: {format_size(self.model.baseline(node))} "
                                 "kept; replaced by a fresh worker")

    def _replacement_pays(self) -> bool:
        """Whether a fresh worker in place of a retired one finishes the run sooner than the
        workers left do on their own. `w` workers share `left` seconds of tests: alone they take
        left / w; with a fresh one that joins after its start `s`, (left + s) / (w + 1), which is
        sooner only while left > w * s. Near the end of a run whose workers start slowly (an
        interpreter, the suite's imports, a collection of thousands of tests: 14 s each on
        scikit-image's), the others finish first. Tests that run alone at the end do not count:
        one worker runs them either way, and where they are all that is left, the worker was
        retired for them (it keeps too much for the next): a fresh one runs them. Without a
        measured start, or with no worker left, a fresh worker starts."""
        start = self.model.worker_start
        workers = len(self.node2pending) + self.starting
        if start is None or workers == 0 or self._keeper_needs_fresh():
            return True
        if not self.pending:
            return bool(self.solo) and not self.starting  # one fresh worker runs them all
        left = self._seconds_left()
        return left is None or left > workers * start

    def _seconds_left(self) -> float | None:
        """The pending tests' seconds by the history (unknown ones at the mean of the known); None
        when none is known."""
        known = [entry[1] for index in self.pending
                 if (entry := self.model.expected.get(self._nodeid(index))) is not None]
        if not known:
            return None
        return sum(known) + sum(known) / len(known) * (len(self.pending) - len(known))

    def _keeper_needs_fresh(self) -> bool:
        """Whether the tests kept to run alone at the end need a fresh worker: every worker keeps
        too much for the heaviest of them beside it, and a fresh one holds at least 32 MiB less
        (scikit-image's 600 MiB test, run last on a worker that had run 4,000 tests, was killed
        with it and passed on its fresh replacement)."""
        if not self.solo or self.starting:
            return False
        model = self.model
        workers = [node for node in self.node2pending if node not in self.retiring]
        if not workers:
            return False
        leanest = min(model.baseline(node) for node in workers)
        needs = max(model.growth(self._nodeid(index)) for index in self.solo)
        return leanest + needs > model.usable and leanest - model.fresh_baseline >= 32 * MiB

    def _start_keeper_early(self) -> None:
        """Retire a worker for the fresh one the tests kept for the end need, once the tests left
        take the workers no longer than a fresh worker's start: it starts while the others finish
        them, not after (a start is 14 s on scikit-image's suite). Once a run."""
        start = self.model.worker_start
        if self._keeper_requested or start is None or not self.pending or not self._keeper_needs_fresh():
            return
        left = self._seconds_left()
        workers = [node for node in self.node2pending if node not in self.retiring
                   and node not in self.shutdown_sent and not node.shutting_down]
        if left is None or len(workers) < 2 or left > len(workers) * start:
            return
        self._keeper_requested = True
        self.retiring.add(max(workers, key=self.model.baseline))  # it ends after its queued tests

    def _wait_for_exits(self, index: int) -> None:
        """Before a test that runs alone starts: wait for the ended workers' processes to be gone
        (the container holds no more than the model counts, the controller and the worker left),
        or for room for the test, at most REPLACEMENT_WAIT seconds, once a test. An ended worker
        leaves the scheduler when it says it finished, and its process some moments later:
        scikit-image's 600 MiB test, started beside the 260 MiB of one still exiting, was killed
        with its worker."""
        if index in self._waited_for_exits:
            return
        self._waited_for_exits.add(index)
        model = self.model
        counted = (sum(model.baseline(node) for node in self.node2pending) + model.controller_rss
                   + model.controller_growth + 64 * MiB)  # 64 MiB: what the counts leave out
        self._wait_for_room(self.model.growth(self._nodeid(index)), or_below=counted)

    def _wait_for_room(self, needed: int, timeout: float = REPLACEMENT_WAIT, or_below: int = 0) -> None:
        """Wait until the container's memory as the kernel counts it leaves `needed` under the
        budget less the margin, or is `or_below` at most, or `timeout`. A retired worker has said
        it finished, but its process gives its memory back only when it has exited (after its
        coverage data is saved): a fresh worker importing the suite's libraries beside it, and
        beside the other workers, is how a worker's replacement ended in an OOM kill. The other
        workers run the tests they were given meanwhile."""
        if self.memory_in_use is None:
            return
        ceiling = self.model.budget * (1 - self.model.margin)
        deadline = time.monotonic() + timeout
        while True:
            in_use = self.memory_in_use()
            self._in_use_read = (time.monotonic(), in_use)
            if (in_use is None or in_use + needed <= ceiling or in_use <= or_below
                    or time.monotonic() >= deadline):
                return
            time.sleep(0.02)

    # -- xdist's scheduling interface --------------------------------------------------------
    def _check_nodes_have_same_collection(self) -> bool:
        collections = list(self.node2collection.values())
        if not all(same_tests(collections[0], other) for other in collections[1:]):
            return bool(super()._check_nodes_have_same_collection())  # xdist reports the difference
        differing = [test for index, test in enumerate(collections[0])
                     if any(other[index] != test for other in collections[1:])]
        self.differing_ids = len(differing)
        if differing:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter") if self.config else None
            if reporter is not None:
                example = differing[0]
                reporter.write_line(
                    f"testdock: {self.differing_ids} test id(s) differ between the workers' collections "
                    f"in their parametrization only (ids made of the time or of random values, e.g. "
                    f"{example}): each runs once, by its place in the collection")
        return True

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        if self.collection is not None and list(collection) != self.collection \
                and same_tests(self.collection, collection):
            self.node2collection[node] = list(collection)  # a replacement, its ids made anew
            return
        super().add_node_collection(node, collection)

    def _position(self, nodeid: str) -> int:
        """The test's index in the run's collection, by the id a worker gave it."""
        assert self.collection is not None
        try:
            return self.collection.index(nodeid)
        except ValueError:
            for collection in self.node2collection.values():
                if nodeid in collection:
                    return int(collection.index(nodeid))
            raise

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is None:
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            collection = list(next(iter(self.node2collection.values())))
            self.collection = collection
            # in the collection's order, as plain xdist hands them out: each worker runs a
            # subsequence of it. Longest first made shorter runs, but suites depend on their order
            # more often than they say (packaging's tests of a function's cached result pass only
            # after the tests that clear the cache); tests leave it only to wait for memory
            self.pending[:] = range(len(collection))
            if not collection:
                return
            self.units = units.units(collection, self.dist_mode, units.read_groups(self.config))
            line = units.describe(collection, self.units, self.dist_mode)
            reporter = self.config.pluginmanager.get_plugin("terminalreporter") if line else None
            if reporter is not None:
                reporter.write_line(line)
            self._keep_alone(collection)
            self._keep_heaviest_alone(collection)
            self._keep_killers_alone(collection)
        self._fill_all()

    def _keep_alone(self, collection: list[str]) -> None:
        """The tests earlier runs found failing beside others and passing alone run alone, after
        the others (as a worker's crashed test is re-run): each then passes as it did alone."""
        alone = [index for index in self.pending if collection[index] in self.model.alone]
        self._run_alone(alone, "that failed beside others in an earlier run and passed alone")

    def _keep_killers_alone(self, collection: list[str]) -> None:
        """The tests whose worker died twice in an earlier run, the second time alone, run alone
        at the end, once: a death there fails them at once (as a second death does), without the
        death beside the others first, which cost falcon a worker and its 900 MiB collection each."""
        killers = [index for index in self.pending if collection[index] in self.model.killed]
        for index in killers:
            self.crashes[collection[index]] += 1  # as if it had died beside the others already
        self._run_alone(killers, "whose worker died twice in an earlier run", once=True)

    def _keep_heaviest_alone(self, collection: list[str]) -> None:
        """Tests the history says need more than the budget leaves beside the other workers, even
        fresh ones, run alone after the others, when the workers not running them have ended (as a
        test whose worker died is re-run): beside a worker idling at its baseline, scikit-image's
        600 MiB test was killed with its worker in every run."""
        model = self.model
        if self.numnodes < 2 or not model.started:
            return
        room = model.usable - self.numnodes * model.fresh_baseline
        heaviest = [index for index in self.pending
                    if collection[index] in model.expected and self._growth(index) > room]
        self._run_alone(heaviest, "that need more than the budget leaves beside other workers")

    def add_node(self, node: WorkerController) -> None:
        if self.collection is not None:  # a replacement, ready (the first workers come before)
            self.starting = max(0, self.starting - 1)
        super().add_node(node)

    def check_schedule(self, node: WorkerController, duration: float = 0) -> None:
        self._fill_all()

    def mark_test_complete(self, node: WorkerController, item_index: int, duration: float = 0) -> None:
        self.node2pending[node].remove(item_index)
        if item_index in self.alone_indices:
            # a test kept for the end with others ran to its end: their deaths were not all of them
            nodeid = self._nodeid(item_index)
            self._died_alone.pop(self._kept_with.get(nodeid, ""), None)
            self._died_alone.pop(f"function {family_keys(nodeid)[0]}", None)
        self._head_started[node] = time.monotonic()  # its next admitted test, if any, starts now
        if self.controller_memory is not None and time.monotonic() - self._controller_read > 0.05:
            # at most every 50 ms: the read gives up the interpreter's lock, which execnet's
            # threads take meanwhile (39 us a test, a second of a 27,000-test run's controller)
            self._controller_read = time.monotonic()
            self.model.controller_growth = max(0, self.controller_memory() - self.model.controller_rss)
        if node not in self.retiring and self._too_full(node, self.model.baseline(node)):
            self.retiring.add(node)
        self._fill_all()

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        self.pending.insert(0, self._position(item))
        self._fill_all()

    def remove_node(self, node: WorkerController) -> str | None:
        self.shutdown_sent.discard(node)
        self._head_started.pop(node, None)
        # a worker that dies before its collection came (or before it said it was ready, which
        # xdist's KeyError stands for), while others still collect
        if self.collection is None and node not in self.node2collection and set(self.node2pending) - {node}:
            self.node2pending.pop(node, None)
            self._died_collecting(node)
            return None
        pending = self.node2pending.pop(node)
        if not pending and getattr(node, "workeroutput", None) is not None:
            # it finished: its process would idle until the session's end, holding all it kept
            # (the suite's libraries, its caches), beside the workers still running
            end_finished_worker(node)
        if node in self.retiring:
            self.retiring.discard(node)
            if not pending and (self.pending or self.solo):
                if self._replacement_pays():
                    self._replace(node)
                else:
                    self.replaced.append(
                        f"{node.gateway.id}: {format_size(self.model.baseline(node))} kept; ended, not "
                        f"replaced: the tests left take the other workers less than a fresh "
                        f"worker's start ({self.model.worker_start:.1f} s)")
        self.model.baselines.pop(node, None)
        pinned = self._pinned.pop(node, [])
        if not pending:
            self.pending[:0] = pinned
            self._fill_all()
            return None
        assert self.collection is not None
        crashitem = str(self.collection[pending.pop(0)])
        self.pending[:0] = [*pending, *pinned]
        # no filling here: xdist reports the crash next (requeue_alone), which may hold back the
        # dead test's siblings before another worker takes them; it fills after
        return crashitem

    def _died_collecting(self, node: WorkerController) -> None:
        """A worker died before its collection came, while others collect: the run goes on with
        them. Workers collect side by side, each importing every test module, and a suite whose
        modules build large data at import (falcon's: 900 MiB) kills them all together, and their
        replacements after them, until xdist gives up having run no test. Where none is left, xdist
        replaces it, and that one collects alone."""
        skip_next_replacement(self.config)
        self.numnodes = max(1, self.numnodes - 1)
        self.collection_deaths.append(str(node.gateway.id))
        reporter = self.config.pluginmanager.get_plugin("terminalreporter") if self.config else None
        if reporter is not None:
            reporter.write_line(f"testdock: {node.gateway.id} died collecting the tests beside other workers "
                                "(an OOM kill, most likely: collecting them holds much memory); xdist's "
                                f"replacement is not started, the run goes on with {len(self.node2pending)} "
                                "worker(s)")
        if self.collection_is_completed:
            self.schedule()

    def requeue_alone(self, nodeid: str) -> bool:
        """Re-run a test a worker died running, alone after the others; False the second time."""
        self.crashes[nodeid] += 1
        if self.crashes[nodeid] > 1 or self.collection is None:
            self._died_alone_in(nodeid)
            self._fill_all()
            return False
        self._run_alone([self._position(nodeid)])
        self._kept_with.setdefault(nodeid, f"function {family_keys(nodeid)[0]}")
        self._keep_family_alone(nodeid)
        self._fill_all()
        return True

    def _keep_family_alone(self, nodeid: str) -> None:
        """The pending tests most like one whose worker died, none of them measured, run alone at
        the end too, once (a death there fails them at once, as a second death does): its other
        parametrizations, and once two of a module's functions have killed workers, the module's
        other tests (measured ones too where the dead test had been measured). pandera's modin
        tests killed worker after worker, one a parametrization, every replacement paying the
        suite's heavy collection again."""
        function = family_keys(nodeid)[0]
        module = nodeid.split("::")[0]
        died = self._died_functions.setdefault(module, set())
        died.add(function)
        whole_module = len(died) >= 2
        if not whole_module and "[" not in nodeid:
            return
        # a test the history had measured, dead: its measurements miss what killed it (pandera's
        # modin tests grew 40 KiB each in pytest's process, their dask cluster's processes held the
        # rest), so its family's measurements do not clear them either
        trusted = nodeid not in self.model.expected
        siblings = [index for index in self.pending
                    if (self._nodeid(index).split("::")[0] == module if whole_module
                        else family_keys(self._nodeid(index))[0] == function)
                    and not (trusted and self._nodeid(index) in self.model.expected)]
        group = f"module {module}" if whole_module else f"function {function}"
        if whole_module:
            # its functions taken in turn at the end: a light one passing between two deaths
            # shows that the module's deaths are not all of it (see _died_alone_in)
            rank: Counter[str] = Counter()
            order = {}
            for index in siblings:
                key = family_keys(self._nodeid(index))[0]
                order[index] = (rank[key], index)
                rank[key] += 1
            siblings.sort(key=order.__getitem__)
        for index in siblings:
            self.crashes[self._nodeid(index)] += 1  # as if it had died beside the others already
            self._kept_with[self._nodeid(index)] = group
        why = ("of a module two of whose test functions killed their workers" if whole_module
               else "of the same test function as one whose worker died")
        self._run_alone(siblings, why, once=True)

    def _died_alone_in(self, nodeid: str) -> None:
        """A test kept for the end died there, alone: after ABANDON_AFTER of its function's tests
        died so, or of the module's tests kept with it, with none of them passing in between, the
        others kept for the end are not run."""
        function = f"function {family_keys(nodeid)[0]}"
        for group in dict.fromkeys((function, self._kept_with.get(nodeid, function))):
            self._died_alone[group] += 1
            if self._died_alone[group] >= ABANDON_AFTER:
                self._abandon(group)

    def _abandon(self, group: str) -> None:
        """The tests kept for the end with those that died there are not run: reported failed,
        with the reason, as a test that died alone is."""
        # kept for the end: waiting there, or put back among the pending by a worker's death
        waiting = [*self.solo, *(index for index in self.pending if index in self.alone_indices)]
        doomed = [index for index in waiting if self.crashes[self._nodeid(index)] >= 1
                  and group in (self._kept_with.get(self._nodeid(index)),
                                f"function {family_keys(self._nodeid(index))[0]}")]
        if not doomed:
            return
        gone = set(doomed)
        self.solo[:] = [index for index in self.solo if index not in gone]
        self.pending[:] = [index for index in self.pending if index not in gone]
        budget = format_size(self.model.budget)
        reason = (f"not run: {self._died_alone[group]} tests of the {group} needed more than the whole "
                  f"budget ({budget}), each alone on a fresh worker; this one, kept for the end "
                  f"with them, would cost a worker's start too. Give the phase more memory to run it")
        for index in doomed:
            nodeid = self._nodeid(index)
            self.abandoned.append(nodeid)
            path = nodeid.split("::")[0]
            report = pytest.TestReport(nodeid=nodeid, location=(path, None, path), keywords={},
                                       outcome="failed", longrepr=reason, when="call")
            self.config.hook.pytest_runtest_logreport(report=report)
        notes = self.config.stash.setdefault(CRASHES_KEY, [])
        notes.append(f"{len(doomed)} test(s) of the {group} not run: {self._died_alone[group]} tests "
                     f"kept for the end with them needed more than {budget} alone")

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self.pending or self.solo or any(self._pinned.values()):
            return False
        return all(not queue for queue in self.node2pending.values())

    @property
    def has_pending(self) -> bool:
        return bool(self.pending or self.solo or any(self.node2pending.values())
                    or any(self._pinned.values()))

    def _pick(self, node: WorkerController) -> int | None:
        """The next pending test for `node`: the first in the collection's order that fits
        beside what the other workers run now, else the first; it starts after `node`'s current
        test, so that one is not counted."""
        pinned = self._pinned.get(node)
        if pinned:
            return pinned.pop(0)  # its unit's next test: admitted, as any successor, in its turn
        if not self.pending:
            return None
        others, _ = self._in_use(exclude=node)
        # a test waiting in another worker's queue is about to run: count it too
        others += sum(self._growth(queue[0]) for other, queue in self.node2pending.items()
                      if other is not node and len(queue) == 1 and other not in self.shutdown_sent)
        learning = self._learning(node)
        lightest: tuple[int, int] | None = None  # (growth, position)
        scanned = 0
        skipped = 0
        for position, index in enumerate(self.pending):
            if learning and self.model.unmeasured_siblings(self._nodeid(index)) in learning:
                skipped += 1  # cheaper than a test weighed, but a family can be thousands long
                if skipped > SKIP_SCAN:
                    break
                continue
            scanned += 1
            if scanned > PICK_SCAN:  # a step's cost stays bounded on suites of 20,000 tests
                break
            growth = self._growth(index)
            if others + growth <= self.model.usable:
                return int(self.pending.pop(position))
            if lightest is None or growth < lightest[0]:
                lightest = (growth, position)
        if lightest is None:
            return None  # only siblings of a test being measured come next: they wait for it
        # none fits now: the lightest seen, which room is soonest made for
        return int(self.pending.pop(lightest[1]))

    def _learning(self, node: WorkerController) -> set[str]:
        """The families none of whose members was measured yet and one of which is in another
        worker's queue: their other members do not go to `node` until it has been measured
        (other tests do meanwhile). Behind a member in `node`'s own queue they may go: they run
        after it there, never beside it."""
        learning = set()
        for other, queue in self.node2pending.items():
            if other is node:
                continue
            for index in queue:
                family = self.model.unmeasured_siblings(self._nodeid(index))
                if family is not None:
                    learning.add(family)
        return learning

    def _next(self, node: WorkerController) -> int | None:
        if self.pending or self._pinned.get(node):
            return self._pick(node)
        _, running = self._in_use()
        queued = self._all_queued()
        if self.solo and running == 0 and not queued:
            return self._solo_for(node)
        return None

    def _solo_for(self, node: WorkerController) -> int | None:
        """The next test to run alone, for `node`; None where what the worker keeps leaves no room
        for it and a fresh worker keeps less: the worker is retired, and its replacement runs it
        (scikit-image's 600 MiB test, alone at the end beside a worker holding 300 MiB after 4,000
        tests and the controller's coverage data, was killed with it; on a fresh worker it passes).
        Where that is known before the end, the fresh worker started early (_start_keeper_early)."""
        if not self.solo or any(index in self.alone_indices for other, queue in self.node2pending.items()
                                if other is not node for index in queue):
            return None  # one worker at a time runs them: the others end (see _spare_for_solo)
        model = self.model
        baseline = model.baseline(node)
        if any(model.baseline(other) < baseline for other in self.node2pending
               if other is not node and other not in self.shutdown_sent and other not in self.retiring):
            return None  # a leaner worker runs them once idle (a fresh one started for them, often)
        needs = model.growth(self._nodeid(self.solo[0]))
        # where a fresh worker's memory does not leave room for it either, it has the better chance
        if baseline + needs > model.usable and baseline - model.fresh_baseline >= 32 * MiB:
            if node not in self.shutdown_sent:
                node.shutdown()  # a test queued on it runs first, as its last
                self.shutdown_sent.add(node)
                self.retiring.add(node)
            return None
        return self.solo.pop(0)

    def _spare_for_solo(self, node: WorkerController) -> bool:
        """Whether an idle worker can end while the tests that run alone are all that is left: one
        worker runs them, one at a time, and every other one holds memory they may need. The
        leanest idle worker stays (a busy one frees its memory when its test ends)."""
        keepers = [other for other, queue in self.node2pending.items()
                   if any(index in self.alone_indices for index in queue)]
        if keepers:
            return node not in keepers
        idle = [other for other in self.node2pending
                if not self.node2pending[other] and other not in self.shutdown_sent]
        leanest = min(idle, key=self.model.baseline, default=node)
        return node is not leanest

    def _fill_all(self) -> None:
        if self.solo:
            self._start_keeper_early()
        progress = True
        while progress:
            progress = False
            for node in list(self.node2pending):
                progress |= self._fill(node)

    def _fill(self, node: WorkerController) -> bool:
        """One step for one worker; True when something was sent."""
        if node.shutting_down or node in self.shutdown_sent:
            return False
        queue = self.node2pending[node]
        if len(queue) >= 2:
            return False
        if not queue:
            if node in self.retiring:
                node.shutdown()
                self.shutdown_sent.add(node)
                return False
            index = self._next(node)
            if index is None:
                if not self.pending and (not self.solo or self._spare_for_solo(node)):
                    node.shutdown()
                    self.shutdown_sent.add(node)
                return False
            self._pin_unit(node, index)
            self._send(node, [index])
            return True
        if not self._may_start(node, queue[0]):
            return False
        if self._retire_after(node, queue[0]):
            node.shutdown()  # the queued test runs as this worker's last
            self.shutdown_sent.add(node)
            return True
        # The successor only waits in the queue; a solo test queued this way still starts only
        # when nothing else runs (see _may_start).
        successor = self._pick(node) if self.pending or self._pinned.get(node) else self._solo_for(node)
        if successor is not None:
            self._pin_unit(node, successor)
            self._send(node, [successor] if successor in self.units
                       else self._batch(node, queue[0], successor))
        elif self.pending:
            return False  # what is left waits for a sibling's measurement; so does the queued test
        elif node not in self.shutdown_sent:
            node.shutdown()  # lets the queued test run
            self.shutdown_sent.add(node)
        return True

    def _batch(self, node: WorkerController, head: int, successor: int) -> list[int]:
        """`successor` and, where memory and the tests left allow, more after it: every test but
        the last of the batch is admitted with it, so each must fit beside what the others
        reserve, with room left for a test waiting elsewhere; only tests something measured
        speaks for (itself or its family), and a batch stays short near the end of the run."""
        size = min(MAX_BATCH, len(self.pending) // (4 * max(1, len(self.node2pending))))
        solo = self.solo_indices
        if size < 1 or head in solo or successor in solo or not self._batchable(successor):
            return [successor]
        others, _ = self._in_use(exclude=node)
        room = self.model.usable - others - self._blocked_growth(node)
        reserved = self._growth(head)
        seconds = self.model.duration(self._nodeid(successor))
        kept = self.model.retained.get(self._nodeid(head), 0)  # what the batch may leave behind
        batch = [successor]
        while len(batch) <= size and self.pending:
            candidate = self.pending[0]
            last = self._nodeid(batch[-1])  # admitted now, with the candidate waiting behind it
            admitted = max(reserved, self._growth(batch[-1]))
            seconds += self.model.duration(self._nodeid(candidate))
            kept += self.model.retained.get(last, 0)
            if (admitted + kept > room or seconds > BATCH_SECONDS or kept > BATCH_KEPT
                    or candidate in solo or candidate in self.units or not self._batchable(candidate)):
                break
            reserved = admitted
            batch.append(self.pending.pop(0))
        return batch

    def _pin_unit(self, node: WorkerController, index: int) -> None:
        """A unit's test (see units.py) sent to `node`: the unit's other pending tests go to that
        worker alone, one at a time, each admitted in its turn as any successor is."""
        unit = self.units.get(index)
        if unit is None or self._pinned.get(node):
            return
        members = set(unit) - {index} - self.alone_indices
        taken = [other for other in self.pending if other in members]
        if taken:
            chosen = set(taken)
            self.pending[:] = [other for other in self.pending if other not in chosen]
            self._pinned[node] = sorted(taken)

    def _batchable(self, index: int) -> bool:
        return self.model.informed(self._nodeid(index))

    def _send(self, node: WorkerController, indices: Sequence[int]) -> None:
        for index in indices:
            self._sent_order[index] = next(self._sends)
        if len(self.node2pending[node]) == 1:
            self._head_started[node] = time.monotonic()  # admitted by its successor: it starts
        self.node2pending[node].extend(indices)
        node.send_runtest_some(list(indices))
