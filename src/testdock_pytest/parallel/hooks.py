"""The xdist side of the plugin: `--dist memory`, `-n auto` from the budget, and recovery of tests
whose worker died. Loaded only where xdist is installed."""

from __future__ import annotations

import contextlib
import os
import random
from typing import Any

import pytest

from testdock_pytest import sizes
from testdock_pytest.memory import budget as budgets
from testdock_pytest.memory.history import (
    alone_tests,
    dispatch_cost,
    dispatch_samples,
    expectations,
    killed_tests,
    load_history,
    remember_killed,
    serial_cost,
    unfinished,
    worker_collection,
    worker_memory,
    worker_start,
)
from testdock_pytest.memory.measure import private_and_file_memory, private_memory
from testdock_pytest.memory.pertest import CRASHES_KEY, history_path, recover_unfinished
from testdock_pytest.parallel import oomscore, orphans, sharedreports, units
from testdock_pytest.parallel.model import MemoryModel, choose_workers, conservative_default, describe
from testdock_pytest.parallel.xdist_internals import MEMORY_DIST

MODEL_KEY = pytest.StashKey[MemoryModel]()
WORKERS_KEY = pytest.StashKey[str]()
HASH_SEED_KEY = pytest.StashKey[str]()
HASH_SEED = "PYTHONHASHSEED"


def build_model(config: pytest.Config) -> MemoryModel:
    budget, margin = budgets.configured_budget(config)
    recover_unfinished(config)  # a killed run's measurements inform this run's plan
    history = load_history(history_path(config))
    expected, retained = expectations(history)
    max_rss_text = config.getoption("max_worker_rss") or config.getini("max_worker_rss") or None
    max_rss = sizes.parse_size(max_rss_text) if max_rss_text else None
    private, files = private_and_file_memory()
    return MemoryModel(budget or 4 * 2**30, margin, private, expected,
                       conservative_default(expected), retained=retained, max_worker_rss=max_rss,
                       worker_start=worker_start(history), worker_collection=worker_collection(history),
                       started=worker_memory(history),
                       dispatch_cost=dispatch_cost(history), dispatch_samples=dispatch_samples(history),
                       serial_cost=serial_cost(history), shared_files=files, alone=alone_tests(history),
                       killed=killed_tests(history), unfinished=unfinished(history))


def uses_memory_dist(config: pytest.Config) -> bool:
    return bool(config.getoption("dist", None) == MEMORY_DIST)


# before xdist's own (the CPU count): the plugins' load order, entry points all, is not fixed
@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if not uses_memory_dist(config):
        return None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    model = build_model(config)
    workers, reason = choose_workers(model, cpus)
    if workers:
        # the scheduler's: a big suite's history read once. Not kept for a serial run: its
        # hundreds of thousands of objects would make every full garbage collection walk them
        config.stash[MODEL_KEY] = model
    elif not config.option.continue_on_collection_errors:
        # with workers, a module that fails to collect does not stop the run (xdist runs what
        # was collected); run serially by this plan, the suite keeps that outcome: a run that
        # went serial once its history said so must not end at the error, having run nothing
        config.option.continue_on_collection_errors = True
        reason += "; a collection error does not stop the run, as with workers"
    config.stash[WORKERS_KEY] = f"testdock -n auto: {reason}"
    return workers


def workers_choice(config: pytest.Config) -> str | None:
    """What `-n auto` chose and why, for the report's header."""
    return config.stash.get(WORKERS_KEY, None)


# what xdist itself warns about at configuration when pytest-cov (before 6) adds rsync folders for
# its workers: with `filterwarnings = error` (aio-libs' projects), the run ends in an INTERNALERROR
# before a test runs, for workers the project did not ask for
_XDIST_CONFIG_WARNINGS = ("ignore:The --rsyncdir command line argument:DeprecationWarning",)


def quiet_xdist_config_warnings(config: pytest.Config) -> None:
    """Where testdock chose the workers (`--dist memory`), xdist's own deprecation warnings at
    configuration are not the project's to fail on: plain pytest, without workers, has none. (A
    worker's options say `--dist no`: a worker runs because its controller passed this check; a
    serial plan turned `--dist memory` into `no`, and pytest-cov took the run for a distributed
    one all the same.)"""
    if uses_memory_dist(config) or WORKERS_KEY in config.stash or hasattr(config, "workerinput"):
        for line in _XDIST_CONFIG_WARNINGS:
            config.addinivalue_line("filterwarnings", line)


def same_hash_seed_for_workers(config: pytest.Config) -> None:
    """xdist runs only when every worker collected the same tests in the same order; a suite that
    parametrizes over a set (`zoneinfo.available_timezones()`) collects in each process's own
    string-hash order, and the run stops at "Different tests were collected". Where testdock's
    plugin runs with workers and the hash seed is not fixed already, the workers get one seed,
    drawn for this run (so runs still differ from each other, as serial runs do)."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return
    if os.environ.get(HASH_SEED):
        return
    seed = str(random.SystemRandom().randint(1, 4294967295))
    os.environ[HASH_SEED] = seed  # the workers' processes inherit it: they start after configure
    config.stash[HASH_SEED_KEY] = seed

    def forget() -> None:
        os.environ.pop(HASH_SEED, None)

    config.add_cleanup(forget)


# worker deaths --dist memory recovers from, beyond xdist's default allowance of 4 a worker
EXTRA_RESTARTS = 32


def allow_worker_restarts(config: pytest.Config) -> None:
    """--dist memory re-runs a test whose worker died once, alone: each such test may end two
    workers, and xdist's allowance (4 a worker, for crash loops at collection) ended falcon's run
    after its fifth heavy test. Raised by EXTRA_RESTARTS where the user did not set
    --max-worker-restart; a test that dies twice is failed, never run a third time."""
    if hasattr(config, "workerinput") or not uses_memory_dist(config):
        return
    if config.getoption("maxworkerrestart", None) is None:
        workers = config.getoption("numprocesses", None)
        count = workers if isinstance(workers, int) else os.cpu_count() or 1
        config.option.maxworkerrestart = str(4 * count + EXTRA_RESTARTS)


def hash_seed_line(config: pytest.Config) -> str | None:
    seed = config.stash.get(HASH_SEED_KEY, None)
    return None if seed is None else (f"testdock: {HASH_SEED}={seed} for every worker (their collections "
                                      "must match; set it yourself to repeat a run's order)")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if not uses_memory_dist(config):
        return None
    model = config.stash.get(MODEL_KEY, None) or build_model(config)
    config.stash[MODEL_KEY] = model
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(describe(model))
    from testdock_pytest.parallel.scheduler import MemoryScheduling  # xdist's machinery: here only

    return MemoryScheduling(config, log, model, private_memory, budgets.cgroup_memory_in_use,
                            units.project_dist_mode(config.getini("addopts")))


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    from testdock_pytest.parallel.scheduler import MemoryScheduling  # a distributed run's controller

    if not isinstance(sched, MemoryScheduling):
        return
    budget = sizes.format_size(sched.model.budget)
    notes = sched.config.stash.setdefault(CRASHES_KEY, [])
    if sched.requeue_alone(crashitem):
        report.outcome = "rerun"  # type: ignore[assignment]
        report.longrepr = (f"{report.longrepr}; testdock re-runs it alone, with the whole budget, "
                           "after the other tests")
        notes.append(f"{crashitem}: its worker died; re-run alone after the others")
    else:
        report.longrepr = (f"{report.longrepr} again, alone with the whole budget ({budget}): it needs "
                           f"more than {budget} (an OOM kill, most likely)")
        notes.append(f"{crashitem}: its worker died again, running alone: it needs more than {budget}")


def recovery_summary(terminalreporter: Any, config: pytest.Config) -> None:
    notes = [*config.stash.get(CRASHES_KEY, [])] if CRASHES_KEY in config.stash else []
    session = config.pluginmanager.get_plugin("dsession")
    sched = getattr(session, "sched", None)
    if sched is not None and isinstance(getattr(sched, "model", None), MemoryModel):  # testdock's
        notes += [f"worker {line}" for line in sched.replaced]
    if notes:
        terminalreporter.section("testdock recovery")
        for note in notes:
            terminalreporter.line(note)


Status = tuple[str, str, tuple[str, dict[str, bool]]]


class ControllerHooks:
    """The hooks a test's reports pass through on the controller of a run with workers; not
    registered elsewhere, where they would cost a call per report for nothing (a suite of
    sub-millisecond tests under coverage feels each)."""

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The tests whose worker died twice, kept in the history once, at the end."""
        sched = getattr(session.config.pluginmanager.get_plugin("dsession"), "sched", None)
        killed = [nodeid for nodeid, deaths in getattr(sched, "crashes", {}).items() if deaths > 1]
        if killed:
            with contextlib.suppress(OSError):
                remember_killed(history_path(session.config), killed)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        orphans.pass_folder(node.config, node)
        units.pass_groups_folder(node.config, node)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """A crashed worker's processes end with it (see orphans)."""
        if error is not None and (left := orphans.end_left_processes(node.config, node)):
            node.config.stash.setdefault(CRASHES_KEY, []).append(
                f"worker {node.gateway.id} died; {left} process(es) its tests started outlived it: ended")

    def pytest_report_teststatus(self, report: pytest.TestReport) -> Status | None:
        if report.outcome == "rerun":  # type: ignore[comparison-overlap]
            return "rerun", "R", ("RERUN", {"yellow": True})
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Each finished test tells the model its worker's RSS and its growth."""
        node = getattr(report, "node", None)
        rss = getattr(report, "testdock_rss", None)
        if node is None or rss is None or report.when != "teardown":
            return
        config = node.config if hasattr(node, "config") else None
        model = config.stash.get(MODEL_KEY, None) if config is not None else None
        if model is not None:
            before = getattr(report, "testdock_before", None)
            model.observe(node, report.nodeid, int(getattr(report, "testdock_growth", 0)), int(rss),
                          None if before is None else int(before), int(getattr(report, "testdock_files", 0)))


def register_controller_hooks(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        oomscore.volunteer()
        orphans.lead_own_group(config)
        units.register_groups_writer(config)
        return
    if not config.getoption("numprocesses", None):
        return
    if uses_memory_dist(config):
        orphans.make_folder(config)
        units.make_groups_folder(config)
    config.pluginmanager.register(ControllerHooks(), "testdock-controller")
    sharedreports.register(config)
