import json
import random
import subprocess
import sys

import pytest

from testdock_pytest.memory.history import TS, TestMemory, dispatch_cost, merge_histories, run_dispatch_cost
from testdock_pytest.sharding.plan import Capacity, MiB, check_shard, plan_shards, plan_table


def synthetic(count: int, seed: int = 7) -> tuple[list[str], dict[str, tuple[int, float]]]:
    rng = random.Random(seed)
    nodeids = [f"tests/test_m{i // 50}.py::test_{i}" for i in range(count)]
    expected = {}
    for nodeid in nodeids:
        duration = rng.lognormvariate(-2.0, 1.2)
        growth = int(rng.paretovariate(1.6) * 4 * MiB)
        expected[nodeid] = (min(growth, 900 * MiB), duration)
    return nodeids, expected


def test_every_test_lands_in_exactly_one_shard() -> None:
    nodeids, expected = synthetic(2000)
    plan = plan_shards(nodeids, expected, 5, Capacity(workers=2))
    placed = [nodeid for shard in plan.shards for nodeid in shard.nodeids]
    assert sorted(placed) == sorted(nodeids)
    assert len(placed) == len(set(placed))


def test_shards_are_balanced_on_duration() -> None:
    nodeids, expected = synthetic(10_000)
    plan = plan_shards(nodeids, expected, 8, Capacity(workers=2))
    assert plan.balance() <= 1.05
    sums = [sum(expected[n][1] for n in shard.nodeids) for shard in plan.shards]
    assert max(sums) / (sum(sums) / len(sums)) <= 1.05


def test_memory_heavy_tests_are_spread_over_the_shards() -> None:
    # 8 tests that each take most of the budget, with 4 shards: 2 per shard, never 3 on one
    nodeids = [f"t.py::heavy_{i}" for i in range(8)] + [f"t.py::light_{i}" for i in range(400)]
    expected = {n: ((700 * MiB, 1.0) if "heavy" in n else (1 * MiB, 0.1)) for n in nodeids}
    plan = plan_shards(nodeids, expected, 4, Capacity(workers=2, usable=1024 * MiB, baseline=50 * MiB))
    heavy_per_shard = [sum("heavy" in n for n in shard.nodeids) for shard in plan.shards]
    assert heavy_per_shard == [2, 2, 2, 2]
    assert all(shard.peak(plan.capacity) <= plan.capacity.usable for shard in plan.shards)


def test_memory_time_counts_in_the_expected_time() -> None:
    capacity = Capacity(workers=4, usable=1000 * MiB, baseline=0)
    nodeids = ["t.py::big", *[f"t.py::small_{i}" for i in range(3)]]
    expected = {"t.py::big": (900 * MiB, 10.0), **{n: (0, 10.0) for n in nodeids[1:]}}
    plan = plan_shards(nodeids, expected, 1, capacity)
    # four 10 s tests on four workers take 10 s; one big test's memory-time (9 s) changes nothing
    assert plan.shards[0].expected_time(capacity) == pytest.approx(10.0)
    # four big ones cannot run side by side: 4 x 900 MiB x 10 s over 1000 MiB of room
    heavy = {n: (900 * MiB, 10.0) for n in nodeids}
    assert plan_shards(nodeids, heavy, 1, capacity).shards[0].expected_time(capacity) == pytest.approx(36.0)


def test_groups_stay_together() -> None:
    nodeids, expected = synthetic(3000)
    groups = {n: f"module:{n.split('::')[0]}" for n in nodeids[:600]}
    groups.update({n: "xdist_group:db" for n in nodeids[2900:]})
    plan = plan_shards(nodeids, expected, 6, Capacity(workers=2), groups)
    home: dict[str, set[int]] = {}
    for shard in plan.shards:
        for nodeid in shard.nodeids:
            if nodeid in groups:
                home.setdefault(groups[nodeid], set()).add(shard.index)
    assert home and all(len(shards) == 1 for shards in home.values())


def test_tests_without_history_are_spread_by_a_stable_hash() -> None:
    nodeids = [f"t.py::new_{i}" for i in range(1000)]
    plan = plan_shards(nodeids, {}, 4)
    sizes = [len(shard.nodeids) for shard in plan.shards]
    assert min(sizes) > 200  # roughly even
    where = {n: s.index for s in plan.shards for n in s.nodeids}
    # adding a test does not move the others
    later = plan_shards([*nodeids, "t.py::newest"], {}, 4)
    assert all(where[n] == s.index for s in later.shards for n in s.nodeids if n in where)
    assert all(shard.unmeasured == len(shard.nodeids) for shard in plan.shards)


def test_the_split_is_the_same_in_another_process_whatever_its_hash_seed() -> None:
    nodeids, expected = synthetic(500)
    groups = {n: "g" for n in nodeids[:20]}
    local = [shard.nodeids for shard in plan_shards(nodeids, expected, 3, Capacity(workers=2), groups).shards]
    program = (
        "import json, sys\n"
        "from testdock_pytest.sharding.plan import Capacity, plan_shards\n"
        "data = json.load(sys.stdin)\n"
        "expected = {k: tuple(v) for k, v in data['expected'].items()}\n"
        "plan = plan_shards(data['nodeids'], expected, 3, Capacity(workers=2), data['groups'])\n"
        "print(json.dumps([s.nodeids for s in plan.shards]))\n")
    payload = json.dumps({"nodeids": nodeids, "expected": expected, "groups": groups})
    for seed in ("1", "2"):
        output = subprocess.run([sys.executable, "-c", program], input=payload, capture_output=True,
                                text=True, check=True, env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
        assert json.loads(output) == local


def test_a_test_larger_than_the_budget_is_named() -> None:
    plan = plan_shards(["t.py::huge", "t.py::ok"], {"t.py::huge": (2048 * MiB, 1.0), "t.py::ok": (0, 1.0)}, 2,
                       Capacity(workers=1, usable=1024 * MiB))
    assert plan.too_big == ["t.py::huge"]
    assert any("t.py::huge" in line for line in plan_table(plan))


def test_selected_keeps_the_collection_order() -> None:
    nodeids, expected = synthetic(300)
    plan = plan_shards(nodeids, expected, 3)
    chosen = plan.selected(1, nodeids)
    assert chosen == [n for n in nodeids if n in set(plan.shards[1].nodeids)]


@pytest.mark.parametrize(("shards", "index"), [(0, 0), (3, 3), (3, -1)])
def test_bad_shard_numbers_are_refused(shards: int, index: int) -> None:
    with pytest.raises(ValueError, match="shard"):
        check_shard(shards, index)


def test_plan_table_marks_the_selected_shard() -> None:
    nodeids, expected = synthetic(100)
    lines = plan_table(plan_shards(nodeids, expected, 2, Capacity(workers=2)), selected=1)
    assert lines[0].startswith("2 shards, 2 worker(s) each")
    assert lines[-1].endswith("<- this shard") and lines[-1].split()[0] == "1"


def test_merged_history_keeps_each_tests_latest_entry() -> None:
    def run(ts: int) -> list[object]:
        return [0, 0, 0, 0.1, "passed", ts]

    base = {"a": {"last_run": 3, "runs": [run(1)]}, "b": {"last_run": 3, "runs": [run(1)]}}
    shard0 = {"version": 2, "run": 4, "tests": {**base, "a": {"last_run": 4, "runs": [run(1), run(9)]}}}
    shard1 = {"version": 2, "run": 4, "tests": {**base, "b": {"last_run": 4, "runs": [run(1), run(8)]},
                                                "c": {"last_run": 4, "runs": [run(8)]}}}
    merged = merge_histories([shard0, shard1])
    assert merged["run"] == 4
    assert merged["tests"]["a"]["runs"][-1][TS] == 9
    assert merged["tests"]["b"]["runs"][-1][TS] == 8
    assert set(merged["tests"]) == {"a", "b", "c"}


def test_merged_history_keeps_every_shards_worker_figures() -> None:
    shard0 = {"version": 1, "run": 4, "tests": {}, "worker_start": [1.5], "worker_memory": [300]}
    shard1 = {"version": 1, "run": 4, "tests": {}, "worker_memory": [310, 320], "dispatch_cost": [0.002],
              "worker_collection": [0.8]}
    merged = merge_histories([shard0, shard1])
    assert merged["worker_start"] == [1.5] and merged["worker_memory"] == [300, 310, 320]
    assert merged["worker_collection"] == [0.8]
    assert merged["dispatch_cost"] == [0.002]
    assert "worker_start" not in merge_histories([shard1])


def test_what_handing_a_test_to_workers_cost_is_what_the_workers_time_did_not_go_to() -> None:
    records = [TestMemory(f"t::test_{i}", "gw0", 0, 0, 0, 0.5, "passed") for i in range(10)]
    # 2 workers for 4 s: 8 s, of which the tests took 5 and the workers' starts 1
    assert run_dispatch_cost(4.0, 2, records, 1.0) == pytest.approx(0.2)
    assert run_dispatch_cost(2.0, 2, records, 0.0) == 0.0  # never below nothing
    assert dispatch_cost({"dispatch_cost": [0.3, 0.001, 0.002]}) == 0.002  # the median
    assert dispatch_cost({}) is None
