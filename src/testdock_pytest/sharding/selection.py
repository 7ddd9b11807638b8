"""pytest's side of sharding: `--testdock-shards N --testdock-shard-index I` keeps shard I's tests
and deselects the rest; `--testdock-shard-plan` prints every shard's expected time and memory.

Under xdist every worker collects and splits on its own; the split being deterministic, they all
keep the same tests, as xdist requires.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import pytest

from testdock_pytest.memory import budget as budgets
from testdock_pytest.memory.history import GROWTH, PEAK, load_history
from testdock_pytest.memory.pertest import history_path
from testdock_pytest.parallel.units import group_name, unit_key
from testdock_pytest.sharding.plan import (
    DEFAULT_BASELINE,
    Capacity,
    ShardPlan,
    check_shard,
    plan_shards,
    plan_table,
)

SHARED_SCOPES = ("module", "class", "package")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("testdock")
    group.addoption("--testdock-shards", type=int, metavar="N",
                    help="Split the suite into N shards balanced on recorded duration and memory "
                         "(default: $TESTDOCK_SHARDS).")
    group.addoption("--testdock-shard-index", type=int, metavar="I",
                    help="Run shard I, counted from 0 (default: $TESTDOCK_SHARD_INDEX, else "
                         "$JOB_COMPLETION_INDEX as Kubernetes sets it).")
    group.addoption("--testdock-shard-workers", type=int, metavar="W",
                    help="Processes each shard runs its tests on, for planning (default: "
                         "$TESTDOCK_SHARD_WORKERS, else 1; the same in every shard).")
    group.addoption("--testdock-shard-plan", action="store_true", default=False,
                    help="Print every shard's expected time and peak memory after collection.")


def _from_environment(value: int | None, *names: str) -> int | None:
    if value is not None:
        return value
    for name in names:
        text = os.environ.get(name, "").strip()
        if text:
            try:
                return int(text)
            except ValueError:
                raise pytest.UsageError(f"${name} must be a whole number, not {text!r}") from None
    return None


def register(config: pytest.Config) -> None:
    shards = _from_environment(config.getoption("testdock_shards"), "TESTDOCK_SHARDS")
    if shards is None:
        if config.getoption("testdock_shard_index") is not None or config.getoption("testdock_shard_plan"):
            raise pytest.UsageError("--testdock-shard-index and --testdock-shard-plan need "
                                    "--testdock-shards N")
        return
    index = _from_environment(config.getoption("testdock_shard_index"),
                              "TESTDOCK_SHARD_INDEX", "JOB_COMPLETION_INDEX")
    plan_only = bool(config.getoption("testdock_shard_plan"))
    if index is None and not plan_only:
        raise pytest.UsageError("--testdock-shards needs --testdock-shard-index I (or "
                                "--testdock-shard-plan to only see the plan)")
    try:
        check_shard(shards, index if index is not None else 0)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    config.pluginmanager.register(ShardPlugin(config, shards, index, plan_only), "testdock-shards")


def _workers(config: pytest.Config) -> int:
    """The workers the split plans with: given, never read off this machine (`-n auto` differs
    between CI runners, and every shard must compute the same split)."""
    chosen = _from_environment(config.getoption("testdock_shard_workers"), "TESTDOCK_SHARD_WORKERS")
    return max(1, int(chosen)) if chosen else 1


def capacity(config: pytest.Config, history: dict[str, Any]) -> Capacity:
    budget, margin = budgets.configured_budget(config)
    # a worker's RSS when its test started: the lowest seen is what a fresh worker holds
    starts = [int(run[PEAK]) - int(run[GROWTH]) for entry in history.get("tests", {}).values()
              for run in entry.get("runs", [])]
    baseline = min((start for start in starts if start > 0), default=DEFAULT_BASELINE)
    return Capacity(_workers(config), int((budget or 4 * 2**30) * (1 - margin)), baseline)


class _ProjectFixtures:
    """Whether a fixture is the project's own (in conftest or test files under the root), not a
    plugin's: a plugin's module-scoped fixture (anyio_backend, say) must not glue modules together."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._known: dict[int, bool] = {}

    def __call__(self, fixturedef: Any) -> bool:
        key = id(fixturedef.func)
        if key not in self._known:
            try:
                source = inspect.getsourcefile(fixturedef.func)
            except TypeError:
                source = None
            self._known[key] = bool(source) and Path(str(source)).resolve().is_relative_to(self.root) \
                and "site-packages" not in str(source)
        return self._known[key]


def group_of(item: pytest.Item, is_project_fixture: Any) -> str | None:
    """The name of the group `item` must share a shard with, or None when it may go anywhere."""
    name = group_name(item)
    if name is not None:
        return f"xdist_group:{name}"
    # a document's examples (Sybil), a notebook's cells: one namespace, in order (see units)
    document = unit_key(item.nodeid, None)
    if document is not None:
        return document
    info = getattr(item, "_fixtureinfo", None)
    scopes: set[str] = set()
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        if definitions and is_project_fixture(definitions[-1]):
            scopes.add(str(getattr(definitions[-1], "scope", "function")))
    module = item.nodeid.split("::")[0]
    if "package" in scopes:
        return f"package:{module.rpartition('/')[0]}"
    if "module" in scopes:
        return f"module:{module}"
    if "class" in scopes and getattr(item, "cls", None) is not None:
        return f"class:{item.nodeid.rpartition('::')[0]}"
    return None


class ShardPlugin:
    def __init__(self, config: pytest.Config, shards: int, index: int | None, plan_only: bool) -> None:
        self.config = config
        self.shards = shards
        self.index = index
        self.plan_only = plan_only
        self.plan: ShardPlan | None = None

    @pytest.hookimpl(trylast=True)  # after -k, -m and the rest have deselected theirs
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        history = load_history(history_path(config))
        from testdock_pytest.memory.history import expectations

        expected, _ = expectations(history)
        is_project_fixture = _ProjectFixtures(config.rootpath.resolve())
        groups = {item.nodeid: group for item in items
                  if (group := group_of(item, is_project_fixture)) is not None}
        self.plan = plan_shards([item.nodeid for item in items], expected, self.shards,
                                capacity(config, history), groups)
        if self.index is None:
            return
        kept = set(self.plan.shards[self.index].nodeids)
        deselected = [item for item in items if item.nodeid not in kept]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item.nodeid in kept]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # a shard the split left empty (few tests, many shards) has passed, not failed
        empty = self.plan is not None and self.index is not None and not self.plan.shards[self.index].nodeids
        if empty and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK

    def pytest_report_header(self, config: pytest.Config) -> str:
        which = f"shard {self.index} of {self.shards}" if self.index is not None else f"{self.shards} shards"
        return f"testdock: {which}, split on the memory history"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.plan is None or not (self.plan_only or self.config.getoption("testdock_shard_plan")):
            return
        terminalreporter.section("testdock shard plan")
        for line in plan_table(self.plan, self.index):
            terminalreporter.line(line)
