"""--dist memory: the scheduler's decisions with fake workers, then real xdist runs (pytester)."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import psutil
import pytest

from testdock_pytest.parallel.model import MemoryModel, choose_workers, family_keys
from testdock_pytest.parallel.scheduler import MemoryScheduling

MiB = 2**20


class FakeNode:
    """Stands in for xdist's WorkerController: records what it was sent."""

    sends: ClassVar[list[int]] = []  # every node's send sizes, in order

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[int] = []
        self.batches: list[int] = []  # the size of each send
        self.shutting_down = False
        self.gateway = type("Gateway", (), {"id": name})()

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)
        self.batches.append(len(indices))
        FakeNode.sends.append(len(indices))

    def shutdown(self) -> None:
        self.shutting_down = True

    def __repr__(self) -> str:
        return self.name


class FakeConfig:
    """What the scheduler reads of pytest's config: the worker count, the chunk option, and a
    plugin manager without xdist's session (so no worker can be cloned)."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.pluginmanager = type("Manager", (), {"get_plugin": lambda self, name: None})()

    def getvalue(self, name: str) -> object:
        return self.getoption(name)

    def getoption(self, name: str) -> object:
        return {"tx": [f"{self.nodes}*popen"], "maxschedchunk": None}.get(name)


def _scheduler(expected: dict[str, tuple[int, float]], budget: int, nodes: int,
               collection: list[str], pytestconfig: pytest.Config) -> tuple[MemoryScheduling, list[FakeNode]]:
    model = MemoryModel(budget, 0.0, 0, expected, 10 * MiB)
    sched = MemoryScheduling(FakeConfig(nodes), None, model)
    fakes = [FakeNode(f"gw{i}") for i in range(nodes)]
    for node in fakes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    return sched, fakes


def _running(sched: MemoryScheduling) -> list[str]:
    assert sched.collection is not None
    return [sched.collection[i] for node in sched.node2pending
            if (i := sched._running(node)) is not None]


def _drive(sched: MemoryScheduling, budget: int,
           measured: Callable[[str], int] | None = None) -> list[list[str]]:
    """Complete running tests one at a time until all are done; return what ran together. With
    `measured`, each finished test reports that growth (its worker keeps 10 MiB)."""
    together: list[list[str]] = []
    for _ in range(1000):
        for ended in [node for node, queue in sched.node2pending.items() if node.shutting_down and not queue]:
            sched.remove_node(ended)  # an ended worker's process is gone
        running = _running(sched)
        if not running and sched.tests_finished:
            break
        together.append(running)
        usage = sum(sched._growth(i) for node in sched.node2pending
                    if (i := sched._running(node)) is not None)
        assert usage <= budget or len(running) == 1, (running, usage)
        # finish the running test of the first busy node
        node = next(n for n in sched.node2pending if sched._running(n) is not None)
        index = sched.node2pending[node][0]
        if measured is not None and sched.collection is not None:
            nodeid = sched.collection[index]
            sched.model.observe(node, nodeid, measured(nodeid), 10 * MiB)
        sched.mark_test_complete(node, index)
    else:
        pytest.fail("the scheduler never finished")
    return together


def test_heavy_tests_never_run_side_by_side(pytestconfig: pytest.Config) -> None:
    collection = [f"t::heavy{i}" for i in range(3)] + [f"t::light{i}" for i in range(6)]
    expected = {f"t::heavy{i}": (400 * MiB, 1.0) for i in range(3)}
    expected.update({f"t::light{i}": (10 * MiB, 0.5) for i in range(6)})
    sched, _ = _scheduler(expected, 600 * MiB, 3, collection, pytestconfig)
    together = _drive(sched, 600 * MiB)
    for running in together:
        assert sum(1 for name in running if "heavy" in name) <= 1, running
    assert any(len(running) > 1 for running in together)  # light tests do run in parallel
    ran = {name for running in together for name in running}
    assert ran == set(collection)


def test_light_known_tests_go_in_batches_and_heavy_ones_never_together(pytestconfig: pytest.Config) -> None:
    """Short tests each waiting for a round trip to the controller cost more than they take:
    light tests with a history go in batches; the budget still holds at every step."""
    collection = [f"t::heavy{i}" for i in range(4)] + [f"t::light{i}" for i in range(400)]
    expected = {f"t::heavy{i}": (600 * MiB, 0.002) for i in range(4)}
    expected.update({f"t::light{i}": (1 * MiB, 0.002) for i in range(400)})
    FakeNode.sends.clear()
    sched, _ = _scheduler(expected, 1000 * MiB, 2, collection, pytestconfig)
    together = _drive(sched, 1000 * MiB)
    for running in together:
        assert sum("heavy" in name for name in running) <= 1, running
    assert {name for running in together for name in running} == set(collection)
    sizes = FakeNode.sends
    assert max(sizes) > 10 and len(sizes) < 100, sizes  # 404 tests in far fewer sends
    assert sizes[-3:] == [1, 1, 1], sizes  # and one at a time near the end


def test_unknown_tests_are_sent_one_at_a_time(pytestconfig: pytest.Config) -> None:
    collection = [f"t{i}.py::test_x" for i in range(100)]  # every module unmeasured
    sched, nodes = _scheduler({}, 1000 * MiB, 2, collection, pytestconfig)
    _drive(sched, 1000 * MiB)
    assert {size for node in nodes for size in node.batches} == {1}


def test_a_test_larger_than_the_budget_runs_alone(pytestconfig: pytest.Config) -> None:
    collection = ["t::huge", "t::a", "t::b"]
    expected = {"t::huge": (900 * MiB, 1.0), "t::a": (10 * MiB, 0.1), "t::b": (10 * MiB, 0.1)}
    sched, _ = _scheduler(expected, 500 * MiB, 2, collection, pytestconfig)
    for running in _drive(sched, 500 * MiB):
        assert "t::huge" not in running or running == ["t::huge"]


@pytest.mark.parametrize("kept", [0, 200])
def test_a_test_that_fits_beside_no_other_worker_runs_last_with_the_others_ended(kept: int) -> None:
    """scikit-image: a 600 MiB test, known from the history, fits a 1 GiB budget only where no other
    worker holds its baseline beside it; it was killed with its worker in every run, then passed
    re-run alone on a fresh worker. It now runs alone at the end, the other worker ended first,
    and where the worker left keeps too much for it (`kept` MiB), on a fresh one."""
    collection = ["t::a", "t::heavy", *(f"t::light{i}" for i in range(6))]
    expected = {nodeid: (10 * MiB, 0.1) for nodeid in collection} | {"t::heavy": (750 * MiB, 1.0)}
    model = MemoryModel(1000 * MiB, 0.0, 0, expected, 64 * MiB, started=[100 * MiB], worker_start=5.0)
    sched, nodes, fresh = _two_workers_and_their_replacements(model, collection, (100 + kept) * MiB)
    heavy = collection.index("t::heavy")
    assert heavy not in sched.pending  # it runs once the others have
    together = _run_to_the_end(sched, fresh)
    assert together[-1] == ["t::heavy"] and all("t::heavy" not in running for running in together[:-1])
    runner = next(node for node in [*nodes, *fresh] if heavy in node.sent)
    assert (runner in fresh) == bool(kept), (runner, fresh)


def _two_workers_and_their_replacements(model: MemoryModel, collection: list[str], baselines: int
                                        ) -> tuple[MemoryScheduling, list[FakeNode], list[FakeNode]]:
    """A scheduler of two workers holding `baselines` each; the fresh workers it asks xdist for
    are listed (third), and join when _run_to_the_end adds them."""
    config = FakeConfig(2)
    sched = MemoryScheduling(config, None, model)
    fresh: list[FakeNode] = []

    class Session:
        def _clone_node(self, node: FakeNode) -> FakeNode:
            fresh.append(FakeNode(f"{node.name}-fresh"))  # ready a moment later
            return fresh[-1]

    config.pluginmanager = type("Manager", (), {
        "get_plugin": lambda self, name: Session() if name == "dsession" else None})()
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
        model.baselines[node] = baselines
    sched.schedule()
    return sched, nodes, fresh


def _run_to_the_end(sched: MemoryScheduling, fresh: list[FakeNode],
                    on_ended: Callable[[], None] | None = None) -> list[list[str]]:
    """Complete running tests one at a time, ended workers removed (`on_ended` called after each)
    and fresh ones joining, until all are done; return what ran together. A test run alone
    (`t::heavy`) runs with no other worker left."""
    assert sched.collection is not None
    together: list[list[str]] = []
    for _ in range(500):
        for ended in [node for node, queue in sched.node2pending.items() if node.shutting_down and not queue]:
            sched.remove_node(ended)  # an ended worker's process is gone
            if on_ended is not None:
                on_ended()
        for ready in [node for node in fresh if node not in sched.node2pending and not node.shutting_down]:
            sched.add_node(ready)
            sched.add_node_collection(ready, sched.collection)
            sched.check_schedule(ready)
        running = _running(sched)
        if not running:
            if sched.tests_finished:
                break
            continue
        together.append(running)
        if running == ["t::heavy"]:
            assert len(sched.node2pending) == 1  # the other worker ended before it started
        node = next(n for n in sched.node2pending if sched._running(n) is not None)
        sched.mark_test_complete(node, sched.node2pending[node][0])
    assert sched.tests_finished
    return together


def test_a_crashed_test_is_rerun_alone_once(pytestconfig: pytest.Config) -> None:
    collection = ["t::a", "t::b", "t::c", "t::d"]
    sched, nodes = _scheduler({}, 1000 * MiB, 2, collection, pytestconfig)
    victim = next(node for node in nodes if sched._running(node) is not None)
    crashed = sched.remove_node(victim)
    assert crashed is not None and sched.requeue_alone(crashed)
    together = _drive(sched, 1000 * MiB)
    assert [crashed] in together and together[-1] == [crashed]
    assert not sched.requeue_alone(crashed)  # the second death is final


def test_a_crashed_tests_unmeasured_parametrizations_run_alone_at_the_end_once(
        pytestconfig: pytest.Config) -> None:
    """pandera: each parametrization of a modin test killed its worker in turn, five in a row,
    every replacement collecting the heavy suite again. The first death sends its pending
    siblings to the end, each alone, where a death fails it at once."""
    matrix = [f"t.py::test_modin[{i}]" for i in range(5)]
    collection = ["t.py::test_a", *matrix, "t.py::test_b", "t.py::test_c"]
    sched, nodes = _scheduler({}, 1000 * MiB, 2, collection, pytestconfig)
    first = sched.collection.index(matrix[0]) if sched.collection else -1
    victim = next(node for node in nodes if first in sched.node2pending[node])
    while sched.node2pending[victim][0] != first:  # the worker's earlier tests end
        sched.mark_test_complete(victim, sched.node2pending[victim][0])
    crashed = sched.remove_node(victim)
    assert crashed == matrix[0] and sched.requeue_alone(crashed)
    together = _drive(sched, 1000 * MiB)
    alone = [running[0] for running in together if len(running) == 1 and running[0] in matrix]
    assert set(alone) == set(matrix)
    assert all(len(running) == 1 for running in together if set(running) & set(matrix))
    assert not sched.requeue_alone(matrix[3])  # a death alone is their last


def test_a_family_is_recognised_after_its_first_member() -> None:
    model = MemoryModel(4096 * MiB, 0.0, 0, {}, 64 * MiB)
    assert family_keys("t.py::C::test_f[2-x]") == ("t.py::C::test_f", "t.py::C", "t.py")
    assert family_keys("t.py::test_g") == ("t.py::test_g", "t.py")
    assert model.growth("t.py::test_f[1]") == 64 * MiB  # nothing known yet
    model.observe("gw0", "t.py::test_f[0]", 520 * MiB, 600 * MiB)
    assert model.growth("t.py::test_f[1]") == int(520 * MiB * 1.1)  # its sibling's measurement
    assert model.growth("t.py::test_light") == int(520 * MiB * 1.1)  # the module's typical test
    model.observe("gw0", "t.py::test_light", 1 * MiB, 600 * MiB)
    model.observe("gw0", "t.py::test_other", 1 * MiB, 600 * MiB)
    assert model.growth("t.py::test_new") == 64 * MiB  # never below the default for an unknown test
    assert model.growth("u.py::test_h[3]") == 64 * MiB  # another module: nothing known
    # numbered siblings, the same test written out by hand, are a family too
    assert family_keys("u.py::test_load_3") == ("u.py::test_load_3", "u.py::test_load_#", "u.py")
    assert family_keys("u.py::test_1") == ("u.py::test_1", "u.py")  # a bare number names nothing
    model.observe("gw0", "u.py::test_load_0", 480 * MiB, 600 * MiB)
    model.observe("gw0", "u.py::test_light_0", 1 * MiB, 600 * MiB)
    model.observe("gw0", "u.py::test_light_1", 1 * MiB, 600 * MiB)
    assert model.growth("u.py::test_load_7") == int(480 * MiB * 1.1)
    assert model.growth("u.py::test_light_9") == int(1 * MiB * 1.1)


def test_a_heavy_familys_members_never_overlap_even_before_one_was_measured(
        pytestconfig: pytest.Config) -> None:
    """No history: the family's first member runs beside other tests, and its siblings wait for
    its measurement; from it they are known to be heavy, and never overlap."""
    collection = [f"t::test_heavy[{i}]" for i in range(4)] + [f"t::light{i}" for i in range(4)]
    sched, _ = _scheduler({}, 700 * MiB, 2, collection, pytestconfig)
    together = _drive(sched, 700 * MiB, lambda nodeid: 500 * MiB if "heavy" in nodeid else 5 * MiB)
    for running in together:
        assert sum("heavy" in name for name in running) <= 1, running
    assert {name for running in together for name in running} == set(collection)


def test_a_family_left_alone_waits_for_its_first_measurement_then_runs_in_parallel(
        pytestconfig: pytest.Config) -> None:
    collection = [f"t::test_p[{i}]" for i in range(6)]
    sched, _ = _scheduler({}, 1000 * MiB, 2, collection, pytestconfig)
    together = _drive(sched, 1000 * MiB, lambda nodeid: 5 * MiB)
    assert len(together[0]) == 1  # one member first, alone
    assert any(len(running) == 2 for running in together)  # then side by side
    assert {name for running in together for name in running} == set(collection)


def test_the_controllers_growth_is_counted_in_the_budget(pytestconfig: pytest.Config) -> None:
    """The controller holds every report and, at the end, the workers' coverage data: what it
    grows by leaves less for the workers, as the run goes."""
    collection = [f"t::test_{name}" for name in ("a", "b", "c", "d")]
    expected = {nodeid: (300 * MiB, 1.0) for nodeid in collection}
    model = MemoryModel(1000 * MiB, 0.0, 0, expected, 10 * MiB)
    controller = [0]
    sched = MemoryScheduling(FakeConfig(2), None, model, lambda: controller[0])
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    assert len(_running(sched)) == 2  # 2 x 330 MiB fit in 1000 MiB
    controller[0] = 500 * MiB  # the controller has grown by 500 MiB
    node = next(n for n in nodes if sched._running(n) is not None)
    sched.mark_test_complete(node, sched.node2pending[node][0])
    assert model.usable == 500 * MiB
    assert len(_running(sched)) == 1  # no longer two side by side


@pytest.mark.parametrize(("own", "files", "retired"), [(300, 100, False), (400, 0, True)])
def test_the_libraries_pages_workers_share_are_counted_once(own: int, files: int, retired: bool) -> None:
    """Two workers that each hold 300 MiB of their own (150 MiB when they started) and map the
    same 100 MiB of libraries (one copy in memory, which the kernel can drop before it kills
    anything): a 250 MiB test fits under a 1 GiB budget beside them, 100 MiB counted once.
    Counted as two RSS of 400 MiB (the second case), it does not, and the idle worker is retired
    to make room: how the first run of a plotting suite replaced six workers that plain xdist
    kept without an OOM kill."""
    model = MemoryModel(1024 * MiB, 0.0, 0, {"t::test_big": (250 * MiB, 1.0)}, 10 * MiB)
    sched = MemoryScheduling(FakeConfig(2), None, model)
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, ["t::test_big"])
        model.observe(node, f"t::warm_up_{node.name}", 0, own * MiB, 150 * MiB, files=files * MiB)
    assert model.usable == (1024 - files) * MiB
    sched.collection = ["t::test_big"]
    # it starts now beside the other worker, or waits for that worker, retired, to go
    assert sched._may_start(nodes[0], 0) == (not retired)
    assert (nodes[1] in sched.shutdown_sent) == retired


def test_what_the_kernel_counts_in_the_container_holds_tests_back_too(pytestconfig: pytest.Config) -> None:
    """The model counts the workers it knows of; a worker on its way out saving its coverage
    data, or a test's child process, is in the container's memory all the same."""
    collection = [f"t::test_{name}" for name in "abcdef"]
    model = MemoryModel(1000 * MiB, 0.1, 0, {nodeid: (100 * MiB, 1.0) for nodeid in collection}, 10 * MiB)
    in_use: list[int | None] = [100 * MiB]
    sched = MemoryScheduling(FakeConfig(2), None, model, None, lambda: in_use[0])
    nodes = _two_workers(sched, collection)
    assert len(_running(sched)) == 2
    in_use[0] = 850 * MiB  # 850 + 110 > 900: no second test beside the one running
    time.sleep(0.03)  # past the 20 ms the reading is kept
    node = next(n for n in nodes if sched._running(n) is not None)
    sched.mark_test_complete(node, sched.node2pending[node][0])
    assert len(_running(sched)) == 1
    in_use[0] = None  # not read (no limited cgroup): the model alone decides
    time.sleep(0.03)
    node = next(n for n in nodes if sched._running(n) is not None)
    sched.mark_test_complete(node, sched.node2pending[node][0])
    assert len(_running(sched)) == 2


@pytest.mark.parametrize("kernel_count", [950, None])
def test_a_worker_keeping_what_leaves_no_room_by_the_kernels_count_is_replaced(
        kernel_count: int | None) -> None:
    """Two workers keep 400 MiB each (fresh ones hold 100): the model leaves room for the next
    5 MiB test, the kernel's count (950 MiB, over the 900 MiB ceiling) none, even once the running
    test ends. The worker whose test ends is replaced (seaborn's idled 26 s instead); where only
    the model counts, it is kept."""
    collection = [f"t::test_{i}" for i in range(20)]
    model = MemoryModel(1000 * MiB, 0.1, 0, {nodeid: (5 * MiB, 0.1) for nodeid in collection}, 10 * MiB,
                        started=[100 * MiB])
    sched = MemoryScheduling(FakeConfig(2), None, model, None,
                             lambda: None if kernel_count is None else kernel_count * MiB)
    gw0, gw1 = _two_workers(sched, collection)
    for node in (gw0, gw1):
        model.baselines[node] = 400 * MiB
    time.sleep(0.03)  # past the 20 ms a reading is kept
    sched.mark_test_complete(gw1, sched.node2pending[gw1][0])
    assert (gw1 in sched.retiring) == (kernel_count is not None)


def test_a_test_short_of_room_by_the_kernels_count_does_not_starve(pytestconfig: pytest.Config) -> None:
    """gw0's next test fits by the model but not by the kernel's count; gw1's light tests fit by
    both. gw1 admits no more of them while gw0's waits: once gw1's test ends, gw0's runs
    (scikit-image: a 233 MiB test waited 90 s while the other worker ran light tests)."""
    collection = [*(f"t::light{i}" for i in range(3)), "t::heavy", *(f"t::light{i}" for i in range(3, 30))]
    expected = {nodeid: (1 * MiB, 0.1) for nodeid in collection} | {"t::heavy": (200 * MiB, 1.0)}
    model = MemoryModel(1000 * MiB, 0.1, 0, expected, 10 * MiB)
    in_use: list[int | None] = [750 * MiB]  # 750 + 220 > 900 in fact; light tests fit
    sched = MemoryScheduling(FakeConfig(2), None, model, None, lambda: in_use[0])
    nodes = _two_workers(sched, collection)
    heavy = collection.index("t::heavy")
    light_done = 0
    for step in range(40):
        if heavy in _admitted_anywhere(sched):
            break
        time.sleep(0.025)  # past the 20 ms the reading is kept
        turn = [*nodes[step % 2:], *nodes[:step % 2]]  # each worker's tests end in turn
        ending = next((n for n in turn if sched._running(n) is not None), None)
        assert ending is not None, "nothing runs, nothing admitted: the run hangs"
        sched.mark_test_complete(ending, sched.node2pending[ending][0])
        light_done += 1
    assert heavy in _admitted_anywhere(sched)
    assert light_done <= 8, light_done  # those sent before it, then it, not every light test first


@pytest.mark.parametrize("x_seconds", [18.0, 0.3])
def test_a_test_sent_to_wait_behind_another_keeps_its_room_from_tests_that_outlast_its_wait(
        x_seconds: float, pytestconfig: pytest.Config) -> None:
    """gw0 runs a 5 s test with `t::y` (500 MiB) sent behind it; `t::x` (500 MiB) waits on gw1.
    An 18 s x does not start in y's room (gw0 would idle for all of x once its test ends: 18 s on
    scikit-image), and y, sent first, runs first. A 0.3 s x, which ends long before y can start,
    runs in its room meanwhile (backfilling: scikit-image's 1 s tests of 240 MiB idled their
    worker 5.5 s behind a 6 s test); y then waits only for x."""
    collection = ["t::first", "t::a1", "t::y", "t::x"]
    expected = {"t::first": (10 * MiB, 5.0), "t::a1": (10 * MiB, 0.1), "t::y": (500 * MiB, 0.3),
                "t::x": (500 * MiB, x_seconds)}
    sched, _ = _scheduler(expected, 1000 * MiB, 2, collection, pytestconfig)
    gw0, gw1 = list(sched.node2pending)
    index = collection.index
    assert sched.node2pending[gw0] == [index("t::first"), index("t::y")]
    assert sched.node2pending[gw1] == [index("t::a1"), index("t::x")]
    sched.mark_test_complete(gw1, index("t::a1"))
    backfilled = x_seconds < 5.0
    assert (index("t::x") in sched._admitted(gw1)) == backfilled
    sched.mark_test_complete(gw0, index("t::first"))
    assert (index("t::y") in sched._admitted(gw0)) != backfilled
    if backfilled:
        sched.mark_test_complete(gw1, index("t::x"))
        assert index("t::y") in sched._admitted(gw0)
    else:
        assert index("t::x") not in sched._admitted(gw1)


def _two_workers(sched: MemoryScheduling, collection: list[str]) -> list[FakeNode]:
    """Two workers that collected `collection`, and the schedule made."""
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    return nodes


def _admitted_anywhere(sched: MemoryScheduling) -> set[int]:
    return {index for node in sched.node2pending for index in sched._admitted(node)}


def test_a_fresh_worker_starts_when_the_retired_ones_memory_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retired worker's process holds its memory until it has exited: its replacement
    waits for that (the container's count), then starts; without a count it starts at once."""
    model = MemoryModel(1000 * MiB, 0.1, 150 * MiB, {}, 10 * MiB)  # a fresh process: 150 MiB
    readings = iter([800 * MiB, 780 * MiB, 300 * MiB])  # the old worker exits at the third reading
    started: list[float] = []
    sched = MemoryScheduling(FakeConfig(2), None, model, None, lambda: next(readings))
    monkeypatch.setattr("testdock_pytest.parallel.scheduler.start_replacement_worker",
                        lambda config, node: started.append(time.monotonic()))
    node = FakeNode("gw0")
    before = time.monotonic()
    sched._replace(node)
    assert len(started) == 1 and started[0] - before >= 0.04  # two waits of 20 ms
    assert next(readings, None) is None  # it started right after the reading that left room
    sched.memory_in_use = lambda: 950 * MiB  # never room: it starts after the timeout anyway
    before = time.monotonic()
    sched._wait_for_room(model.fresh_baseline, timeout=0.1)
    assert 0.1 <= time.monotonic() - before < 1.0


def test_a_test_run_alone_waits_for_the_ended_workers_processes_to_be_gone() -> None:
    """The other worker has ended (it left the scheduler) but its process still holds 300 MiB:
    the test kept for the end waits for the container's count to come down to what the model
    counts (the worker left, the controller), then starts; once."""
    collection = ["t::heavy", "t::light"]
    expected = {"t::light": (10 * MiB, 0.1), "t::heavy": (700 * MiB, 1.0)}
    model = MemoryModel(1000 * MiB, 0.1, 50 * MiB, expected, 10 * MiB, started=[100 * MiB])
    readings = iter([600 * MiB, 600 * MiB, 600 * MiB, 200 * MiB])  # it exits at the fourth reading
    sched = MemoryScheduling(FakeConfig(2), None, model, None, lambda: next(readings, 200 * MiB))
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
        model.baselines[node] = 100 * MiB
    sched.schedule()
    heavy = collection.index("t::heavy")
    assert heavy in sched.alone_indices  # 770 MiB: no room beside another worker's 100
    for _ in range(10):
        for ended in [node for node, queue in sched.node2pending.items() if node.shutting_down and not queue]:
            sched.remove_node(ended)
        if any(heavy in sched._admitted(node) for node in sched.node2pending):
            break
        running = [node for node in sched.node2pending if sched._running(node) is not None]
        if running:
            sched.mark_test_complete(running[0], sched.node2pending[running[0]][0])
    assert any(heavy in sched._admitted(node) for node in sched.node2pending)
    assert next(readings, None) is None  # it waited for the reading that showed the process gone
    assert sched._waited_for_exits == {heavy}


def test_a_worker_that_has_not_reported_yet_holds_what_fresh_workers_hold() -> None:
    """A worker's start (the suite's libraries, its collection) is when it grows the most: one
    that has not reported counts as what workers held at their first test (recent runs, then
    this one), not as the controller, which imports none of it."""
    model = MemoryModel(1000 * MiB, 0.0, 60 * MiB, {}, 10 * MiB, started=[300 * MiB])
    assert model.baseline("gw0") == 300 * MiB == model.fresh_baseline
    model.observe("gw0", "t.py::test_a", 5 * MiB, 420 * MiB, start=410 * MiB)
    assert model.started == [300 * MiB, 410 * MiB] and model.baseline("gw1") == 410 * MiB
    assert model.retained["t.py::test_a"] == 10 * MiB  # from its worker's start, not the controller's
    model.observe("gw0", "t.py::test_b", 5 * MiB, 430 * MiB, start=425 * MiB)  # not its first
    assert model.started == [300 * MiB, 410 * MiB] and model.retained["t.py::test_b"] == 10 * MiB
    unknown = MemoryModel(1000 * MiB, 0.0, 60 * MiB, {}, 10 * MiB)  # nothing measured yet
    assert unknown.baseline("gw0") == 60 * MiB


def test_a_replacement_still_starting_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between its start and its first word a replacement is not one of the scheduler's workers,
    and it is importing and collecting the suite: tests admitted beside it then must leave room
    for what fresh workers hold."""
    collection = [f"t::test_{name}" for name in "abcd"]
    model = MemoryModel(1000 * MiB, 0.0, 50 * MiB, {nodeid: (300 * MiB, 1.0) for nodeid in collection},
                        10 * MiB, started=[400 * MiB])
    monkeypatch.setattr("testdock_pytest.parallel.scheduler.start_replacement_worker",
                        lambda config, node: None)
    sched = MemoryScheduling(FakeConfig(2), None, model)
    busy, waiting = FakeNode("gw0"), FakeNode("gw1")
    for node in (busy, waiting):
        sched.add_node(node)
        model.baselines[node] = 60 * MiB
    sched.collection = collection
    sched.node2pending[busy][:] = [0, 1]  # runs test_a (330 MiB reserved)
    sched.node2pending[waiting][:] = [2]
    # 60 + 60 + 330 + 330 = 780 fit in 950 usable: without a replacement starting, it may start
    assert sched._may_start(waiting, 2)
    sched._replace(FakeNode("gw2"))
    assert sched.starting == 1
    time.sleep(0.03)
    assert not sched._may_start(waiting, 2)  # + 400 for the replacement: 1180
    fresh = FakeNode("gw3")
    sched.add_node(fresh)  # ready: a worker of its own from now on, holding what fresh ones do
    assert sched.starting == 0 and sched.model.baseline(fresh) == 400 * MiB
    assert not sched._may_start(waiting, 2)


def test_workers_are_started_only_where_they_save_more_than_they_cost() -> None:
    def model(expected: dict[str, tuple[int, float]]) -> MemoryModel:
        return MemoryModel(1024 * MiB, 0.0, 100 * MiB, expected, 64 * MiB)

    first, reason = choose_workers(model({}), 4)
    assert first == 4 and "no history" in reason  # nothing known: as many as allowed
    fat = model({})
    fat.started = [350 * MiB]  # workers held 350 MiB at their first test: two fit in 1 GiB, not four
    assert choose_workers(fat, 4)[0] == 2
    short = {f"t::test_{i}": (5 * MiB, 0.02) for i in range(30)}  # 0.6 s in all
    assert choose_workers(model(short), 4)[0] == 0  # serial, in pytest's own process
    long = {f"t::test_{i}": (5 * MiB, 0.5) for i in range(30)}
    assert choose_workers(model(long), 4)[0] == 4
    # a test that may not fit in the budget: never in pytest's own process (its OOM kill would
    # end the run), even where the suite is short
    heavy = {**short, "t::test_heavy": (1000 * MiB, 0.1)}
    assert choose_workers(model(heavy), 4)[0] >= 1
    assert choose_workers(model(long), 1)[0] == 0  # one worker would only cost its start
    assert choose_workers(model(heavy), 1)[0] == 1  # except where the run must survive an OOM kill
    # a worker's start as the history measured it: 15 s of tests save 11 s on 4 CPUs, which a
    # worker that takes 12 s to start (a suite whose collection is slow) does not repay
    slow_start = model(long)
    slow_start.worker_start = 12.0
    count, reason = choose_workers(slow_start, 4)
    assert count == 0 and "cost 12.0s to start (measured)" in reason


def test_a_history_whose_last_run_was_killed_never_plans_a_serial_run() -> None:
    """pandera: its runs killed before their end, the next recovered 1,717 measurements (the
    tests that killed the workers have none) and planned a serial run, in pytest's own process,
    which the first of those tests would end."""
    short = {f"t::test_{i}": (5 * MiB, 0.02) for i in range(30)}
    model = MemoryModel(1024 * MiB, 0.0, 100 * MiB, short, 64 * MiB)
    assert choose_workers(model, 1)[0] == 0
    model.unfinished = True
    count, reason = choose_workers(model, 1)
    assert count == 1 and "the last run ended before its end" in reason


def test_sub_millisecond_suites_run_serially_once_handing_tests_out_is_measured_to_cost_more() -> None:
    """xdist sends each test's reports to the controller, which handles them on the same CPUs:
    on 27,000 tests of half a millisecond that costs more than two workers save."""
    def model(tests: int, seconds: float, dispatch: float | None) -> MemoryModel:
        expected = {f"t{i // 100}.py::test_{i}": (0, seconds) for i in range(tests)}
        return MemoryModel(4096 * MiB, 0.0, 60 * MiB, expected, 64 * MiB, worker_start=1.0,
                           dispatch_cost=dispatch)
    assert choose_workers(model(2000, 0.01, 0.001), 2)[0] == 2  # 20 s of tests: 9 s saved
    count, reason = choose_workers(model(2000, 0.01, 0.012), 2)  # handing out costs 24 s
    assert count == 0 and "handing them out costs 24.0s, measured" in reason
    assert choose_workers(model(27000, 0.0005, None), 2)[0] == 0  # the assumed cost: serial too


@pytest.mark.parametrize(("started", "killed", "serial"), [
    (100, frozenset(), True),  # light: serial, where workers cost more than they save
    (900, frozenset(), False),  # falcon: 900 MiB of test data at import, beside a 200 MiB test
    (100, frozenset({"t0.py::test_heavy"}), False),  # a test that killed its worker twice
])
def test_a_serial_plan_needs_the_suites_own_memory_and_no_test_that_killed_its_worker(
        started: int, killed: frozenset[str], serial: bool) -> None:
    """falcon's second run went serial by its history (its tests are fast) and pytest itself was
    OOM-killed, the run lost: in one process the tests run beside the suite's imports and
    collection (900 MiB there), and its heaviest tests, which killed their workers, had no
    measurement to weigh."""
    expected = {f"t{i // 100}.py::test_{i}": (200 * MiB if i == 0 else 0, 0.001) for i in range(500)}
    model = MemoryModel(1024 * MiB, 0.1, 60 * MiB, expected, 64 * MiB, worker_start=2.0,
                        dispatch_cost=0.01, started=[started * MiB], killed=killed)
    count, reason = choose_workers(model, 2)
    assert (count == 0) == serial, reason


def test_what_a_serial_run_costs_around_its_tests_counts_against_it() -> None:
    """werkzeug: 948 tests took 9.8 s of their own; with workers the run took 12.8 s, the next,
    serial by the plan, 16.7 s: pytest's own work around each test (7 ms there) was not weighed."""
    def model(serial_cost: float | None) -> MemoryModel:
        expected = {f"t{i // 100}.py::test_{i}": (0, 9.8 / 948) for i in range(948)}
        return MemoryModel(4096 * MiB, 0.0, 60 * MiB, expected, 64 * MiB, worker_start=2.5,
                           dispatch_cost=0.0117, dispatch_samples=3, serial_cost=serial_cost)
    count, reason = choose_workers(model(None), 2)  # before serial runs measured it
    assert count == 0 and "(+0.0s around them in one process)" in reason
    assert choose_workers(model(0.0073), 2)[0] == 2


def test_a_workers_collection_is_not_counted_against_it_before_a_serial_run_measured_its_own() -> None:
    """python-dateutil: 3 s of tests; its workers took 1.75 s each to start, 1 s of it collecting
    the suite, which a run in one process pays as well. Weighed against the whole start, its
    second run went serial (9.1 s against 8.8 s with workers)."""
    def model(collection: float | None, serial_cost: float | None = None) -> MemoryModel:
        expected = {f"t{i // 100}.py::test_{i}": (0, 3.0 / 1500) for i in range(1500)}
        return MemoryModel(4096 * MiB, 0.0, 60 * MiB, expected, 64 * MiB, worker_start=1.75,
                           worker_collection=collection, dispatch_cost=0.0001, dispatch_samples=1,
                           serial_cost=serial_cost)
    assert choose_workers(model(None), 2)[0] == 0  # 1.4 s saved against a 1.75 s start
    count, reason = choose_workers(model(1.0), 2)  # against 0.75 s beyond the collection
    assert count == 2, reason
    # once a serial run measured what it pays around its tests (its collection included), the
    # whole start is weighed against that
    assert choose_workers(model(1.0, serial_cost=0.0), 2)[0] == 0


def test_a_long_suite_goes_serial_only_once_several_runs_with_workers_said_so() -> None:
    """DRF: its one run with workers shared the machine with image builds, measured handing out
    at 70 ms a test, and every later run was serial: 116 s where two workers save up to 55 s."""
    def model(samples: int) -> MemoryModel:
        expected = {f"t{i // 100}.py::test_{i}": (0, 0.075) for i in range(1500)}  # 112 s
        return MemoryModel(4096 * MiB, 0.0, 60 * MiB, expected, 64 * MiB, worker_start=3.8,
                           dispatch_cost=0.072, dispatch_samples=samples)
    count, reason = choose_workers(model(1), 2)
    assert count == 2 and "serial by the 1 run(s) with workers so far" in reason and "up to 56s" in reason
    assert choose_workers(model(3), 2)[0] == 0  # three runs agree: serial
    # where workers could save little, one run's word stands
    short = MemoryModel(4096 * MiB, 0.0, 60 * MiB, {f"t::test_{i}": (0, 0.01) for i in range(2000)},
                        64 * MiB, worker_start=1.0, dispatch_cost=0.012, dispatch_samples=1)
    assert choose_workers(short, 2)[0] == 0


def test_a_test_that_does_not_fit_beside_idle_workers_memory_waits_for_them_to_be_replaced(
        pytestconfig: pytest.Config) -> None:
    """Two workers keep 400 MiB each; a 300 MiB test does not fit beside both in 1 GiB: the idle
    one is replaced by a fresh worker first, instead of an OOM kill."""
    collection = ["t::light", "t::heavy"]
    expected = {"t::light": (10 * MiB, 5.0), "t::heavy": (300 * MiB, 0.1)}
    model = MemoryModel(1024 * MiB, 0.0, 50 * MiB, expected, 64 * MiB)
    config = FakeConfig(2)
    sched = MemoryScheduling(config, None, model)
    fresh: list[FakeNode] = []

    class Session:
        def _clone_node(self, node: FakeNode) -> FakeNode:
            clone = FakeNode(f"{node.name}-fresh")
            fresh.append(clone)
            sched.add_node(clone)
            sched.add_node_collection(clone, collection)
            return clone

    config.pluginmanager = type("Manager", (), {"get_plugin": lambda self, name: Session()})()
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    for node in nodes:
        model.baselines[node] = 450 * MiB  # 400 MiB kept above a fresh worker's 50
    sched.schedule()
    heavy = collection.index("t::heavy")
    holder = next(node for node in nodes if heavy in sched.node2pending[node])
    other = next(node for node in nodes if node is not holder)
    # the light test finishes on the other worker: nothing runs, and the heavy test waits for
    # that worker (which keeps 400 MiB) to go, rather than start beside its memory
    for index in list(sched.node2pending[other]):
        sched.mark_test_complete(other, index)
    assert other.shutting_down and sched._running(holder) is None
    sched.remove_node(other)
    assert sched._running(holder) == heavy  # now it fits


def test_the_fresh_worker_for_a_test_kept_for_the_end_starts_while_the_others_finish() -> None:
    """Both workers keep too much for the heavy test kept for the end; a fresh worker would not.
    It starts once the tests left take the workers no longer than its start, while they run
    them, not after them; it is started once, and it runs the heavy test."""
    collection = ["t::heavy", *(f"t::light{i}" for i in range(40))]
    expected = {nodeid: (10 * MiB, 1.0) for nodeid in collection} | {"t::heavy": (750 * MiB, 1.0)}
    model = MemoryModel(1000 * MiB, 0.0, 0, expected, 64 * MiB, started=[100 * MiB], worker_start=5.0)
    # 400 + 825 > 1000: neither worker keeps room for it
    sched, _, fresh = _two_workers_and_their_replacements(model, collection, 400 * MiB)
    assert collection.index("t::heavy") in sched.solo
    pending_when_started: list[int] = []

    def ended() -> None:
        if fresh and not pending_when_started:
            pending_when_started.append(len(sched.pending))

    _run_to_the_end(sched, fresh, ended)
    assert len(fresh) == 1, (fresh, sched.replaced)
    assert pending_when_started and 0 < pending_when_started[0] <= 10  # 10 s of tests: two starts' worth
    assert collection.index("t::heavy") in fresh[0].sent


@pytest.mark.parametrize(("seconds_left", "replaced"), [(4.0, False), (60.0, True)])
def test_a_retired_worker_is_replaced_only_where_the_tests_left_outlast_a_fresh_workers_start(
        seconds_left: float, replaced: bool) -> None:
    """A fresh worker joins after its start (10 s here): with 4 s of tests left, the other
    worker finishes them sooner alone; with 60 s left, the fresh worker saves more than it costs."""
    collection = ["t::first", *[f"t::left{i}" for i in range(8)]]
    expected = {nodeid: (10 * MiB, seconds_left / 8) for nodeid in collection}
    model = MemoryModel(1024 * MiB, 0.0, 50 * MiB, expected, 64 * MiB, worker_start=10.0)
    config = FakeConfig(2)
    sched = MemoryScheduling(config, None, model)
    fresh: list[FakeNode] = []

    class Session:
        def _clone_node(self, node: FakeNode) -> FakeNode:
            fresh.append(FakeNode(f"{node.name}-fresh"))
            return fresh[-1]

    config.pluginmanager = type("Manager", (), {"get_plugin": lambda self, name: Session()})()
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    retired = nodes[0]
    for index in list(sched.node2pending[retired]):
        sched.pending.append(index)  # back to the pending tests: the worker is idle
    sched.node2pending[retired].clear()
    sched.retiring.add(retired)
    sched.remove_node(retired)
    assert bool(fresh) == replaced
    assert ("not replaced" in " ".join(sched.replaced)) != replaced
    assert len(sched.replaced) == 1


HEAVY_SUITE = """
import os, time, pytest

@pytest.mark.parametrize("i", range(6))
def test_light(i):
    time.sleep(0.1)

@pytest.mark.parametrize("mib", [250, 300, 350])
def test_heavy(mib):
    data = b"x" * (mib * 2**20)
    time.sleep(0.4)
"""


def _intervals(results: Path) -> dict[str, tuple[float, float]]:
    events = [json.loads(line) for line in (results / "testdock-progress.jsonl").read_text().splitlines()]
    starts = {e["nodeid"]: e["ts"] for e in events if e["event"] == "start"}
    return {e["nodeid"]: (starts[e["nodeid"]], e["ts"]) for e in events if e["event"] == "finish"}


def test_with_history_heavy_tests_do_not_overlap(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("TESTDOCK_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pytester.makepyfile(test_suite=HEAVY_SUITE)
    args = ["-n", "2", "--dist", "memory", "--memory-budget", "600m", "-p", "no:randomly"]
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=9)  # learns the history
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=9)
    assert "testdock --dist memory: budget 600.0 MiB" in result.stdout.str()
    assert "9 tests with history" in result.stdout.str()
    heavy = sorted(v for k, v in _intervals(tmp_path).items() if "heavy" in k)
    for (_, end), (start, _) in itertools.pairwise(heavy):
        assert start >= end - 0.05, heavy  # one finishes before the next starts


@pytest.mark.parametrize(("dying", "replacement"), [(("gw0",), False), (("gw0", "gw1"), True)])
def test_a_worker_that_dies_collecting_beside_others_is_not_replaced(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dying: tuple[str, ...],
        replacement: bool) -> None:
    """falcon: its test modules build 900 MiB of data at import; two workers collecting side by
    side in 1 GiB were killed together, then their replacements, until xdist gave up with no test
    run. A worker that dies collecting beside others is not replaced: they go on. Where none is
    left, its replacement collects alone."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pytester.makepyfile(test_heavy_import=f"""
        import os, time
        if os.environ.get("PYTEST_XDIST_WORKER") in {dying!r}:
            time.sleep(2)  # the others are well into their collection by then
            os._exit(1)  # as the kernel's OOM kill ends a worker collecting

        def test_one():
            pass

        def test_two():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    # the first to die (either, where both do) is not replaced
    assert re.search(r"gw[01] died collecting the tests beside other workers", output), output
    assert ("gw2" in output) == replacement, output  # the replacement of the last one to die


def test_a_worker_death_is_recovered_by_rerunning_alone(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    marker = pytester.path / "died-once"
    pytester.makepyfile(test_crash=f"""
        import os, signal
        from pathlib import Path

        def test_before():
            pass

        def test_dies_once():
            marker = Path({str(marker)!r})
            if not marker.exists():
                marker.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)

        def test_after():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    assert result.parseoutcomes() == {"passed": 3, "rerun": 1}
    assert "test_dies_once: its worker died; re-run alone after the others" in result.stdout.str()


def test_a_test_that_always_kills_its_worker_fails_with_the_reason(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    # five of them: ten worker deaths, more than xdist allows two workers by default (falcon's run
    # ended after its fifth heavy test, with the tests left unrun)
    pytester.makepyfile(test_crash="""
        import os, signal, pytest

        def test_ok():
            pass

        @pytest.mark.parametrize("i", range(5))
        def test_always_dies(i):
            os.kill(os.getpid(), signal.SIGKILL)

        def test_last():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "--memory-budget", "1g")
    outcomes = result.parseoutcomes()
    # the first death sends the pending parametrizations to the end, each alone, once: the ones
    # already queued on a worker die beside the others first (one or two), the rest once
    assert outcomes.pop("rerun") <= 2 and outcomes == {"passed": 2, "failed": 5}, result.stdout.str()
    assert "of the same test function as one whose worker died run alone" in result.stdout.str()
    assert "it needs more than 1.0 GiB" in result.stdout.str()
    assert "maximum crashed workers" not in result.stdout.str()
    # after three of them died alone, the last ones kept with them were not run
    assert "not run: 3 tests of the function test_crash.py::test_always_dies" in result.stdout.str()
    # remembered, those that died alone: a later run's plan never puts them in pytest's own process
    history = json.loads((pytester.path / ".testdock" / "memory-history.json").read_text())
    killed = [f"test_crash.py::test_always_dies[{i}]" for i in range(5)]
    assert len(history["killed"]) >= 3 and set(history["killed"]) <= set(killed)
    # the next run runs them alone at the end, once: one death each, not two
    again = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "--memory-budget", "1g")
    outcomes = again.parseoutcomes()
    outcomes.pop("rerun", None)
    assert outcomes == {"passed": 2, "failed": 5}, again.stdout.str()
    assert "whose worker died twice in an earlier run run alone" in again.stdout.str()


def test_a_module_whose_tests_all_kill_their_workers_costs_a_few_deaths_not_one_each(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """pandera's modin tests (a dask cluster each, in 1 GiB): every function of the module killed
    its worker, each replacement collecting the heavy suite again. Two functions dead: the
    module's other tests go to the end, each alone, once; three dead alone: the rest of them are
    not run, reported failed with the reason."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pytester.makepyfile(test_heavy="""
        import os, signal, pytest

        @pytest.mark.parametrize("i", range(8))
        def test_first(i):
            os.kill(os.getpid(), signal.SIGKILL)

        @pytest.mark.parametrize("i", range(8))
        def test_second(i):
            os.kill(os.getpid(), signal.SIGKILL)

        @pytest.mark.parametrize("i", range(8))
        def test_third(i):
            os.kill(os.getpid(), signal.SIGKILL)

        @pytest.mark.parametrize("i", range(8))
        def test_light(i):
            pass
    """, test_other="def test_other():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "--memory-budget", "1g",
                                           "-p", "no:randomly")
    output = result.stdout.str()
    outcomes = result.parseoutcomes()
    # the module's light tests, kept for the end with the killers, pass there: never "not run"
    assert outcomes["failed"] == 24 and outcomes["passed"] == 9, output
    assert output.count("node down") <= 16, output  # 24 without this: one death each, or more
    assert "of a module two of whose test functions killed their workers" in output, output
    assert "needed more than the whole budget (1.0 GiB), each alone" in output, output


def test_auto_workers_follow_the_budget_and_never_exceed_the_cpus(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    small = pytester.runpytest_subprocess("-n", "auto", "--dist", "memory", "--memory-budget", "120m")
    small.assert_outcomes(passed=1)
    assert "created: 1/1 worker" in small.stdout.str()
    (pytester.path / ".testdock" / "memory-history.json").unlink()  # a first run again
    large = pytester.runpytest_subprocess("-n", "auto", "--dist", "memory", "--memory-budget", "64g")
    cpus = len(os.sched_getaffinity(0))
    assert f"created: {cpus}/{cpus} worker" in large.stdout.str()
    history = json.loads((pytester.path / ".testdock" / "memory-history.json").read_text())
    assert len(history["worker_start"]) == cpus and all(0 < start < 60 for start in history["worker_start"])
    # of which their collection of the suite, which a serial run pays too
    assert len(history["worker_collection"]) == cpus
    assert all(0 < seconds < start for seconds, start in zip(history["worker_collection"],
                                                             history["worker_start"], strict=True))
    # and what each held then (pytest, its plugins, the collection: tens of MiB)
    assert len(history["worker_memory"]) == cpus
    assert all(10 * MiB < rss < 500 * MiB for rss in history["worker_memory"])
    # and what handing the tests out cost beyond them (one test: the workers' wait for it)
    assert len(history["dispatch_cost"]) == 1 and history["dispatch_cost"][0] > 0
    # with the history of a suite this short, workers would cost more than they save
    serial = pytester.runpytest_subprocess("-n", "auto", "--dist", "memory", "--memory-budget", "64g")
    serial.assert_outcomes(passed=1)
    assert "testdock -n auto: serial: the tests took" in serial.stdout.str()
    assert "to start (measured)" in serial.stdout.str()
    assert "created:" not in serial.stdout.str()
    # and what the serial run cost around its tests, for the next plan
    history = json.loads((pytester.path / ".testdock" / "memory-history.json").read_text())
    assert len(history["serial_cost"]) == 1 and history["serial_cost"][0] > 0
    assert len(history["dispatch_cost"]) == 1  # a serial run measures no distribution


def test_a_serial_plan_runs_past_a_collection_error_as_workers_do(pytester: pytest.Pytester) -> None:
    """With workers, a module that fails to collect does not stop the others' tests (xdist runs
    what was collected); the second run, serial by its plan, must not end at the error having
    run nothing (python-dateutil under pytest 9: a deprecation turned error in one module)."""
    pytester.makepyfile(test_one="def test_one():\n    pass\n", test_broken="import not_installed_anywhere\n")
    first = pytester.runpytest_subprocess("-n", "auto", "--dist", "memory", "--memory-budget", "64g")
    assert first.parseoutcomes() == {"passed": 1, "errors": 1}
    second = pytester.runpytest_subprocess("-n", "auto", "--dist", "memory", "--memory-budget", "64g")
    assert "testdock -n auto: serial: the tests took" in second.stdout.str()
    assert second.parseoutcomes() == {"passed": 1, "errors": 1}
    assert second.ret == pytest.ExitCode.TESTS_FAILED


def test_a_worker_that_keeps_memory_is_replaced_before_the_next_heavy_test(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    monkeypatch.delenv("TESTDOCK_RESULTS_DIR", raising=False)
    pytester.makepyfile(test_keep="""
        import time

        KEPT = []

        def test_keeps_300_mib():
            KEPT.append(b"k" * (300 * 2**20))
            time.sleep(2)  # by far the longest: scheduled first, however busy the machine

        def test_needs_350_mib():
            data = b"x" * (350 * 2**20)
    """)
    args = ["-n", "1", "--dist", "memory", "--memory-budget", "700m", "-p", "no:randomly"]
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=2)  # learns what each keeps
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2)
    assert "replaced by a fresh worker" in result.stdout.str()
    workers = {test["nodeid"].split("::")[1]: test["worker"] for test in
               json.loads((pytester.path / "test-results" / "memory.json").read_text())["tests"]}
    assert workers["test_keeps_300_mib"] != workers["test_needs_350_mib"]


def test_max_worker_rss_replaces_workers_above_it(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    monkeypatch.delenv("TESTDOCK_RESULTS_DIR", raising=False)
    pytester.makepyfile(test_keep="""
        KEPT = []

        def test_a():
            KEPT.append(b"k" * (100 * 2**20))

        def test_b():
            pass

        def test_c():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "1", "--dist", "memory", "--max-worker-rss", "80m",
                                           "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert "replaced by a fresh worker" in result.stdout.str()


def test_a_retired_workers_process_ends_before_its_replacement_runs(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """xdist ends its workers' processes with the session: a retired one would hold what it kept
    beside its replacement. Its process is gone (or a zombie, which holds no memory) by the time
    the replacement runs a test."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    monkeypatch.delenv("TESTDOCK_RESULTS_DIR", raising=False)
    pytester.makepyfile(test_keep="""
        import os, pathlib, time

        KEPT = []
        PIDS = pathlib.Path("pids")

        def test_a():
            KEPT.append(b"k" * (100 * 2**20))
            PIDS.write_text(str(os.getpid()))

        def test_b():  # admitted with test_a, before its report: on the same worker
            pass

        def test_c():
            retired = int(PIDS.read_text())
            assert retired != os.getpid()  # a fresh worker
            status = pathlib.Path(f"/proc/{retired}/status")
            deadline = time.monotonic() + 10
            while status.exists() and "State:\tZ" not in status.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not status.exists() or "State:\tZ" in status.read_text()
    """)
    result = pytester.runpytest_subprocess("-n", "1", "--dist", "memory", "--max-worker-rss", "80m",
                                           "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert "replaced by a fresh worker" in result.stdout.str()


SET_PARAMETRIZED = """
import psutil
import pytest

@pytest.mark.parametrize("name", {f"zone-{index}" for index in range(40)})
def test_zone(name):
    pass
"""


def test_workers_collect_a_set_in_one_order(pytester: pytest.Pytester,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A parametrization over a set is collected in each process's own string-hash order: xdist
    stops at "Different tests were collected" unless the workers share one hash seed."""
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    pytester.makepyfile(test_zones=SET_PARAMETRIZED)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    result.assert_outcomes(passed=40)
    assert "PYTHONHASHSEED=" in result.stdout.str() and "for every worker" in result.stdout.str()
    plain = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:testdock")
    assert "Different tests were collected" in plain.stdout.str() + plain.stderr.str()


def test_a_hash_seed_the_user_set_is_kept(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "123")
    pytester.makepyfile(test_zones=SET_PARAMETRIZED)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    result.assert_outcomes(passed=40)
    assert "PYTHONHASHSEED=" not in result.stdout.str()


def _count_growths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the model's growth estimates, as the scheduler asks for them."""
    asked = [0]
    growth = MemoryModel.growth

    def counted(model: MemoryModel, nodeid: str) -> int:
        asked[0] += 1
        return growth(model, nodeid)

    monkeypatch.setattr(MemoryModel, "growth", counted)
    return asked


@pytest.mark.parametrize("history", [False, True])
def test_a_scheduling_step_looks_at_a_bounded_number_of_tests(pytestconfig: pytest.Config,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              history: bool) -> None:
    """A step (a finished test, the next one picked) must not walk every pending test: on a suite
    of 8,000 a walk per step made the controller spend 52 s of CPU, on 20,000 minutes."""
    tests = 4000
    collection = [f"t{i // 50}.py::test_{i}x" for i in range(tests)]
    expected = {nodeid: (1 * MiB, 0.001) for nodeid in collection} if history else {}
    sched, _ = _scheduler(expected, 2048 * MiB, 2, collection, pytestconfig)
    asked = _count_growths(monkeypatch)
    finished = 0
    while not sched.tests_finished and finished < 2 * tests:
        node = next(n for n in sched.node2pending if sched.node2pending[n]
                    and (len(sched.node2pending[n]) > 1 or n.shutting_down))
        index = sched.node2pending[node][0]
        sched.model.observe(node, collection[index], 1 * MiB, 100 * MiB)
        sched.mark_test_complete(node, index)
        finished += 1
    assert finished == tests
    assert asked[0] < 40 * tests, asked[0]  # a walk per step would be ~tests * tests / 2


def test_the_lightest_pending_test_is_not_walked_for_at_every_step(pytestconfig: pytest.Config,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a worker that keeps memory is replaced asks for the lightest pending test after
    every test while the next one does not fit: on scikit-image's 8,000 tests with history, 26
    million growths, a minute of the controller's CPU beside the workers. It is walked again
    only once the pending tests or what was learnt changed by a twentieth (or a second passed),
    and it never misses a lighter test that was learnt."""
    tests = 4000
    collection = [f"t{i // 50}.py::test_{i}x" for i in range(tests)]
    expected = {nodeid: ((i % 7 + 2) * MiB, 0.001) for i, nodeid in enumerate(collection)}
    sched, fakes = _scheduler(expected, 2048 * MiB, 2, collection, pytestconfig)
    asked = _count_growths(monkeypatch)
    lightest = []
    for _ in range(2000):
        lightest.append(sched._lightest_pending())
        sched.pending.pop()
    assert set(lightest) == {int(2 * MiB * 1.1)}
    assert asked[0] < 30 * tests, asked[0]  # a walk per step would be ~3 million
    sched.model.observe(fakes[0], sched.collection[sched.pending[-1]], 0, 100 * MiB)  # type: ignore[index]
    for _ in range(100):
        sched.model.observe(fakes[0], "t0.py::test_0x", 2 * MiB, 100 * MiB)
    assert sched._lightest_pending() == 0  # what was learnt counts


def test_each_worker_runs_its_tests_in_the_collections_order(pytestconfig: pytest.Config) -> None:
    """Even where the history says the last tests take longest: suites depend on their order more
    often than they say (a cached result a later test clears), as in plain xdist's runs."""
    collection = [f"t.py::test_{i}" for i in range(40)]
    expected = {nodeid: (1 * MiB, 0.01 * (i + 1)) for i, nodeid in enumerate(collection)}
    sched, fakes = _scheduler(expected, 1000 * MiB, 2, collection, pytestconfig)
    _drive(sched, 1000 * MiB)
    assert sorted(index for node in fakes for index in node.sent) == list(range(40))
    for node in fakes:
        assert node.sent == sorted(node.sent), node.sent


def test_a_large_familys_heaviest_and_typical_growth_are_kept_not_walked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run of a suite with thousands of tests per module learns one member per step and
    asks for the family's growth at every step: a walk over the family each time made a first
    run of 27,000 tests spend 7 s of its controller in max()."""
    from testdock_pytest.parallel import model as model_module

    sorts = [0]

    def counted_sorted(values: list[int]) -> list[int]:
        sorts[0] += 1
        return sorted(values)

    monkeypatch.setattr(model_module, "sorted", counted_sorted, raising=False)
    model = MemoryModel(4096 * MiB, 0.0, 0, {}, 1 * MiB)
    members = 5000
    for i in range(members):
        growth = 300 * MiB if i == 2500 else (i % 7 + 1) * MiB
        model.observe("gw0", f"t.py::test_f[{i}]", growth, 100 * MiB)
        model.observe("gw0", f"t.py::test_g{i}x", (i % 7 + 1) * MiB, 100 * MiB)
        model.growth(f"t.py::test_f[{members}]")
        model.growth("t.py::test_unseen")
        if i == 2500:  # the heaviest member counts at once
            assert model.growth(f"t.py::test_f[{members}]") == int(300 * MiB * 1.1)
    assert sorts[0] < 200, sorts[0]  # the median is redone as the family grows by a tenth
    assert model.growth("t.py::test_unseen") == int(4 * MiB * 1.1)  # the module's median member



def test_the_history_is_read_once_for_the_plan_and_the_scheduler(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """-n auto's plan and --dist memory's scheduler share one model: a big suite's history (12 MB
    for 27,000 tests) is read once, not twice."""
    from testdock_pytest.memory.history import load_history
    from testdock_pytest.parallel import hooks

    reads: list[Path] = []
    original = load_history

    def counted(path: Path) -> dict[str, object]:
        reads.append(path)
        return original(path)

    monkeypatch.setattr(hooks, "load_history", counted)
    config = pytester.parseconfigure("-p", "xdist", "-n", "auto", "--dist", "memory",
                                     "--memory-budget", "64g")
    workers = hooks.pytest_xdist_auto_num_workers(config)  # as xdist's pytest_cmdline_main asks
    assert workers is not None and workers >= 1 and len(reads) == 1
    config.option.numprocesses, config.option.tx = workers, ["popen"] * workers
    scheduler = hooks.pytest_xdist_make_scheduler(config, log=None)
    assert isinstance(scheduler.model, MemoryModel) and len(reads) == 1


def test_failures_that_pass_alone_are_named_at_the_end_of_a_run_with_workers(
        pytester: pytest.Pytester) -> None:
    """anyio's `test_nonexistent_main_module` reads `__main__.__file__`, which an xdist worker's
    `__main__` lacks: it fails under workers and passes in one process. The run still fails; the
    summary names that test, and not the one that fails anyway."""
    pytester.makepyfile(test_mixed="""
        import __main__

        def test_reads_main_file():
            assert hasattr(__main__, "__file__")

        def test_always_fails():
            assert False

        def test_passes():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    assert result.parseoutcomes() == {"failed": 2, "passed": 1}
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    section = output.split("failed beside other tests, passed alone")[1].split("short test summary")[0]
    assert "1 of the 2 failed test(s) pass when run again alone" in section
    assert "  test_mixed.py::test_reads_main_file" in section
    assert "test_always_fails" not in section
    # nothing of the re-run reaches the run's own results, and it can be turned off
    assert not (pytester.path / "junit.xml").exists()
    quiet = pytester.runpytest_subprocess("-n", "2", "--no-testdock-recheck", "-p", "no:randomly")
    assert "pass when run again alone" not in quiet.stdout.str()


BESIDE_EACH_OTHER = """
    import time
    from pathlib import Path

    def _alone(me, other):
        here = Path(me)
        here.write_text("x")
        seen = False
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # the whole time: each sees the other, when beside
            seen = seen or Path(other).exists()
            time.sleep(0.05)
        here.unlink()
        assert not seen, "ran beside the other"

    def test_first():
        _alone("first.here", "second.here")

    def test_second():
        _alone("second.here", "first.here")
"""


def test_tests_that_passed_alone_run_alone_in_later_runs(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """pexpect's socket tests bind one port: beside each other under workers they fail, alone
    they pass. The recheck names them and the history keeps them: the next run with workers runs
    them alone, after the others, and passes as plain `pytest` does."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pytester.makepyfile(test_shared=BESIDE_EACH_OTHER)
    first = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    assert first.parseoutcomes()["failed"] == 2, first.stdout.str()[-3000:]
    assert "2 of the 2 failed test(s) pass when run again alone" in first.stdout.str()

    second = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")

    assert second.parseoutcomes() == {"passed": 2}, second.stdout.str()[-3000:]
    assert "testdock: 2 test(s) that failed beside others in an earlier run and passed alone run " \
           "alone" in second.stdout.str()


def test_ids_made_of_values_each_worker_makes_anew_do_not_stop_the_run(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """marshmallow's `[17:31:47 2026-12-03]`: plain xdist stops at "Different tests were
    collected" when two workers collect a second apart; the process id stands for the clock."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pytester.makepyfile(test_made="""
        import os, pytest

        @pytest.mark.parametrize("made", [os.getpid(), 1])
        def test_made_at_collection(made):
            assert made

        def test_plain():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert "1 test id(s) differ between the workers' collections" in result.stdout.str()
    assert "Different tests were collected" not in result.stdout.str()


def test_collections_that_differ_in_their_tests_still_stop_the_run(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pytester.makepyfile(test_made="""
        import os, pytest

        FEWER = os.environ.get("PYTEST_XDIST_WORKER") == "gw1"

        @pytest.mark.parametrize("made", range(2 if FEWER else 3))
        def test_made_at_collection(made):
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    assert "Different tests were collected" in result.stdout.str()
    assert result.ret != 0


@pytest.mark.parametrize(("other", "same"), [
    (["t.py::a[1]", "t.py::b"], True),
    (["t.py::a[2]", "t.py::b"], True),
    (["t.py::c[1]", "t.py::b"], False),  # another test at that place
    (["t.py::a", "t.py::b"], False),
    (["t.py::a[1]"], False),
    (["t.py::b", "t.py::a[1]"], False),  # the same tests, another order
])
def test_same_tests_compares_all_but_parametrization_ids(other: list[str], same: bool) -> None:
    from testdock_pytest.parallel.scheduler import same_tests

    assert same_tests(["t.py::a[1]", "t.py::b"], other) is same
    # parametrized over a set of classes: the same ids, in each process's own order
    assert not same_tests(["t.py::a[A]", "t.py::a[B]"], ["t.py::a[B]", "t.py::a[A]"])


def test_xdists_own_configuration_warnings_do_not_end_a_run_testdock_gave_workers(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """frozenlist: `filterwarnings = error`, and pytest-cov before 6 adds rsync folders for xdist's
    workers, which xdist warns about while configuring: an INTERNALERROR before any test ran,
    where plain pytest, without workers, passes. An rsyncdirs line stands for pytest-cov here.
    With workers, and with the serial plan the history makes next."""
    monkeypatch.setenv("TESTDOCK_MEMORY_DIR", str(tmp_path / "history"))
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\nrsyncdirs = .\n")
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    assert pytester.runpytest_subprocess("-n", "2", "-p", "no:testdock").ret == pytest.ExitCode.INTERNAL_ERROR
    pytester.runpytest_subprocess("-n", "2", "--dist", "memory").assert_outcomes(passed=1)
    plans = []
    for _ in range(2):
        result = pytester.runpytest_subprocess("-n", "auto", "--dist", "memory")
        result.assert_outcomes(passed=1)
        plans.append(next(line for line in result.outlines if line.startswith("testdock -n auto: ")))
    assert plans[-1].startswith("testdock -n auto: serial"), plans


def test_the_processes_a_crashed_worker_started_end_with_it(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlglot: its executor tests' multiprocessing pools outlived their OOM-killed workers,
    holding 400 MiB, and 33 fresh workers were killed in a row beside them."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pids = pytester.path / "children"
    pytester.makepyfile(test_pool=f"""
        import os, signal, subprocess, sys
        from pathlib import Path

        def test_starts_a_process_and_dies():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            with Path({str(pids)!r}).open("a") as file:
                file.write(f"{{child.pid}}\\n")
            os.kill(os.getpid(), signal.SIGKILL)

        def test_other():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "--memory-budget", "1g")

    assert result.parseoutcomes() == {"passed": 1, "failed": 1, "rerun": 1}, result.stdout.str()
    assert re.search(r"worker gw\d died; 1 process\(es\) its tests started outlived it: ended",
                     result.stdout.str())
    children = [int(line) for line in pids.read_text().split()]
    assert len(children) == 2
    assert not any(_alive(pid) for pid in children)


def test_workers_die_with_a_killed_controller(pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers lead their own process groups (above), so a terminal's or a runner's signal to the
    controller's group no longer reaches them: a controller killed outright takes them with it."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pids = pytester.path / "workers"
    pytester.makepyfile(test_slow=f"""
        import os, time
        from pathlib import Path

        def test_a():
            with Path({str(pids)!r}).open("a") as file:
                file.write(f"{{os.getpid()}}\\n")
            time.sleep(60)

        def test_b():
            test_a()
    """)
    controller = subprocess.Popen([sys.executable, "-m", "pytest", "-n", "2", "--dist", "memory",
                                   "--memory-budget", "1g", "-p", "no:cacheprovider"], cwd=pytester.path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
            time.sleep(0.1)
        workers = [int(line) for line in pids.read_text().split()]
        assert len(workers) == 2
    finally:
        controller.kill()
        controller.wait()
    # execnet ends a worker whose controller is gone: after 5 s of waiting for its test, a SIGINT,
    # and os._exit 10 s later if that did not end it (slower on a loaded machine)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    alive = [pid for pid in workers if _alive(pid)]
    for pid in alive:
        os.kill(pid, 9)
    assert alive == []


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("dist", ["memory", "load"])
def test_the_kernel_takes_a_worker_or_its_child_before_the_controller(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dist: str) -> None:
    """At the memory limit the kernel kills the process it scores highest: the workers and what
    they start volunteer, the controller keeps the score it was given (xarray's controller was
    killed at 56% of its first run in 1 GiB, ending it)."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pytester.makepyfile(test_scores="""
        import subprocess, sys
        from pathlib import Path

        def test_worker_and_child():
            assert Path("/proc/self/oom_score_adj").read_text().strip() == "1000"
            child = subprocess.run([sys.executable, "-c",
                                    "print(open('/proc/self/oom_score_adj').read().strip())"],
                                   capture_output=True, text=True, check=True)
            assert child.stdout.strip() == "1000"
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", dist, "--memory-budget", "1g",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # where the controller runs the tests itself (serially), its score stays as it was
    serial = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    serial.assert_outcomes(failed=1)


def test_a_documents_items_go_to_one_worker_in_their_order(pytestconfig: pytest.Config) -> None:
    """parsel's docs/usage.rst (Sybil): each example reads what the ones before it defined; handed
    out one by one to two workers, 21 failed with NameError. A non-Python file's items go to one
    worker together, in order; the other tests are still spread."""
    document = [f"docs/usage.rst::line:{line},column:1" for line in range(10, 40, 3)]
    collection = ["t.py::test_a", *document, *(f"t.py::test_{i}" for i in range(8))]
    expected = {nodeid: (1 * MiB, 0.01) for nodeid in collection}
    sched, nodes = _scheduler(expected, 1000 * MiB, 2, collection, pytestconfig)
    _drive(sched, 1000 * MiB)
    holders = [node for node in nodes if any(collection[i] in document for i in node.sent)]
    assert len(holders) == 1
    sent = [collection[i] for i in holders[0].sent if collection[i] in document]
    assert sent == document
    assert all(node.sent for node in nodes)  # the other worker ran the other tests meanwhile


def test_a_units_tests_are_admitted_one_at_a_time_within_the_budget(pytestconfig: pytest.Config) -> None:
    """A unit goes to one worker, but each of its tests starts only when it fits, as any other:
    sent whole, a document of five 600 MiB examples was admitted at once beside a 600 MiB test."""
    document = [f"doc.rst::line:{i}" for i in range(5)]
    collection = ["t.py::heavy0", "t.py::light0", *document]
    expected = {nodeid: (600 * MiB, 0.1) for nodeid in ["t.py::heavy0", *document]}
    expected["t.py::light0"] = (1 * MiB, 0.1)
    sched, nodes = _scheduler(expected, 1000 * MiB, 2, collection, pytestconfig)
    for _ in range(200):
        admitted = [index for node in sched.node2pending for index in sched._admitted(node)]
        growth = sum(sched._growth(index) for index in admitted)
        assert growth <= 1000 * MiB or len(admitted) == 1, [collection[i] for i in admitted]
        busy = [node for node in sched.node2pending if sched._running(node) is not None]
        if not busy:
            if sched.tests_finished:
                break
            continue
        sched.mark_test_complete(busy[0], sched.node2pending[busy[0]][0])
    holders = {node.name for node in nodes for index in node.sent if collection[index] in document}
    assert len(holders) == 1
    assert [collection[i] for node in nodes for i in node.sent if collection[i] in document] == document


@pytest.mark.parametrize(("mode", "together"), [
    ("loadfile", [["a.py::test_1", "a.py::T::test_2", "a.py::T::test_3"], ["b.py::test_1", "b.py::test_2"]]),
    ("loadscope", [["a.py::T::test_2", "a.py::T::test_3"], ["b.py::test_1", "b.py::test_2"]]),
    ("load", []),
])
def test_the_projects_own_dist_mode_keeps_its_tests_together(mode: str, together: list[list[str]],
                                                            pytestconfig: pytest.Config) -> None:
    collection = ["a.py::test_1", "a.py::T::test_2", "a.py::T::test_3", "b.py::test_1", "b.py::test_2"]
    from testdock_pytest.parallel import units

    found = units.units(collection, units.project_dist_mode(["-ra", "--dist", mode]))
    groups = sorted({tuple(collection[i] for i in unit) for unit in found.values()})
    assert [list(group) for group in groups] == together
    assert units.project_dist_mode(["--dist=loadfile", "-x"]) == "loadfile"
    # documents and notebooks share a namespace; a data-driven suite's cases stand alone
    assert units.unit_key("docs/usage.rst::line:16,column:1", None) == "file:docs/usage.rst"
    assert units.unit_key("notebooks/intro.ipynb::Cell 3", None) == "file:notebooks/intro.ipynb"
    assert units.unit_key("tests/cases.yaml::case one", None) is None
    assert units.project_dist_mode(["-x"]) is None


SYBIL_LIKE_CONFTEST = """
    import os
    import pytest

    class Example(pytest.Item):
        def __init__(self, *, number, **kwargs):
            super().__init__(**kwargs)
            self.number = number

        def runtest(self):
            # each example needs the ones before it, in this process (one namespace a document)
            namespace = self.parent.namespace
            assert namespace == list(range(self.number)), (os.getpid(), namespace)
            namespace.append(self.number)

    class Document(pytest.File):
        namespace = []

        def collect(self):
            for number in range(12):
                yield Example.from_parent(self, name=f"line:{number}", number=number)

    def pytest_collect_file(file_path, parent):
        if file_path.suffix == ".rst":
            return Document.from_parent(parent, path=file_path)
"""


def test_a_documents_examples_pass_under_two_workers(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    pytester.makeconftest(SYBIL_LIKE_CONFTEST)
    (pytester.path / "usage.rst").write_text("a document\n")
    pytester.makepyfile(test_other="""
        import time, pytest

        @pytest.mark.parametrize("n", range(10))
        def test_other(n):
            time.sleep(0.02)
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    result.assert_outcomes(passed=22)
    assert "the tests of 1 unit(s) each run on one worker, in their order" in result.stdout.str()


def test_an_xdist_groups_tests_run_on_one_worker(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """What xdist's --dist loadgroup promises a project's @pytest.mark.xdist_group (tests that
    share a port or a file), --dist memory keeps."""
    monkeypatch.delenv("TESTDOCK_MEMORY_DIR", raising=False)
    monkeypatch.setenv("WHERE_RAN", str(tmp_path))
    pytester.makeini("[pytest]\nmarkers =\n    xdist_group: xdist's group marker\n")
    pytester.makepyfile(test_groups="""
        import os, pathlib, time, pytest

        def _note(name):
            time.sleep(0.02)
            (pathlib.Path(os.environ["WHERE_RAN"]) / name).write_text(os.environ["PYTEST_XDIST_WORKER"])

        @pytest.mark.parametrize("n", range(8))
        @pytest.mark.xdist_group("port")
        def test_grouped(n):
            _note(f"grouped-{n}")

        @pytest.mark.parametrize("n", range(10))
        def test_free(n):
            _note(f"free-{n}")
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "memory", "-p", "no:randomly")
    result.assert_outcomes(passed=18)
    grouped = {path.read_text() for path in tmp_path.glob("grouped-*")}
    free = {path.read_text() for path in tmp_path.glob("free-*")}
    assert len(grouped) == 1, grouped
    assert len(free) == 2, free  # the others still spread
