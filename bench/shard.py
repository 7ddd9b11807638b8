"""Sharding benchmark (issue 8): recorded histories of 1k, 10k and 100k synthetic tests with skewed
durations and memory, split into shards by testdock, by pytest-split (its two algorithms, run
from the installed package) and by hashing. Every shard is then simulated on its workers under
its memory budget, as `--dist memory` runs it (a test starts only when it fits), and as plain
`-n W` runs it (tests start whenever a worker is free, memory or not).

    python bench/shard.py
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_split.algorithms import Algorithms

from testdock_pytest.sharding.plan import Capacity, plan_shards, stable_hash

MiB = 1 << 20
SIZES = (1_000, 10_000, 100_000)
SHARDS = 8
CAPACITY = Capacity(workers=4, usable=int(2048 * MiB * 0.9), baseline=80 * MiB)
LOOKAHEAD = 64  # pending tests the simulated scheduler looks at for one that fits


@dataclass(frozen=True)
class Item:  # what pytest-split reads of a test item
    nodeid: str


def synthetic(count: int, seed: int) -> tuple[list[str], dict[str, tuple[int, float]], dict[str, str]]:
    """Skewed suites: durations log-normal (a long tail of slow tests), memory Pareto, and 5% of
    data-heavy tests that take 0.3 to 1.2 GiB for longer; 5% of tests in module groups of 10."""
    rng = random.Random(seed)
    nodeids = [f"tests/test_{i // 40:05d}.py::test_{i}" for i in range(count)]
    expected: dict[str, tuple[int, float]] = {}
    for nodeid in nodeids:
        if rng.random() < 0.05:
            expected[nodeid] = (int(rng.uniform(300, 1200) * MiB), rng.lognormvariate(0.0, 0.8))
        else:
            expected[nodeid] = (int(min(rng.paretovariate(1.5), 60) * 2 * MiB), rng.lognormvariate(-2.5, 1.5))
    grouped = [n for n in nodeids if stable_hash(n) % 100 < 5]
    groups = {nodeid: f"group-{index // 10}" for index, nodeid in enumerate(grouped)}
    return nodeids, expected, groups


Split = Callable[[list[str], dict[str, tuple[int, float]], dict[str, str]], list[list[str]]]


def testdock_split(nodeids: list[str], expected: dict[str, tuple[int, float]],
                   groups: dict[str, str]) -> list[list[str]]:
    return [shard.nodeids for shard in plan_shards(nodeids, expected, SHARDS, CAPACITY, groups).shards]


def pytest_split(algorithm: str) -> Split:
    def split(nodeids: list[str], expected: dict[str, tuple[int, float]],
              groups: dict[str, str]) -> list[list[str]]:
        durations = {nodeid: seconds for nodeid, (_, seconds) in expected.items()}
        result = Algorithms[algorithm].value(SHARDS, [Item(n) for n in nodeids], durations)
        return [[item.nodeid for item in group.selected] for group in result]
    return split


def hash_split(nodeids: list[str], expected: dict[str, tuple[int, float]],
               groups: dict[str, str]) -> list[list[str]]:
    shards: list[list[str]] = [[] for _ in range(SHARDS)]
    for nodeid in nodeids:
        shards[stable_hash(groups.get(nodeid, nodeid)) % SHARDS].append(nodeid)
    return shards


def jobs(shard: Sequence[str], expected: dict[str, tuple[int, float]],
         groups: dict[str, str]) -> list[tuple[int, float]]:
    """(growth, seconds) per job: a group runs on one worker, one test after the other."""
    merged: dict[str, tuple[int, float]] = {}
    for nodeid in shard:
        growth, seconds = expected[nodeid]
        key = groups.get(nodeid, nodeid)
        previous = merged.get(key, (0, 0.0))
        merged[key] = (max(previous[0], growth), previous[1] + seconds)
    return list(merged.values())


def simulate(work: list[tuple[int, float]], memory_aware: bool) -> tuple[float, int]:
    """(wall time, peak memory) of one shard on CAPACITY.workers workers."""
    pending = list(work)
    running: list[tuple[float, int]] = []  # (finish time, growth)
    now, in_use = 0.0, 0
    fixed = CAPACITY.workers * CAPACITY.baseline
    peak = fixed
    while pending or running:
        while pending and len(running) < CAPACITY.workers:
            choice = 0
            if memory_aware:
                window = range(min(LOOKAHEAD, len(pending)))
                fits = [i for i in window if fixed + in_use + pending[i][0] <= CAPACITY.usable]
                if not fits and running:
                    break
                choice = fits[0] if fits else 0
            growth, seconds = pending.pop(choice)
            heapq.heappush(running, (now + seconds, growth))
            in_use += growth
            peak = max(peak, fixed + in_use)
        now, growth = heapq.heappop(running)
        in_use -= growth
    return now, peak


def ratio(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return max(values) / mean if mean else 1.0


def main() -> None:
    methods: list[tuple[str, Split]] = [
        ("testdock", testdock_split),
        ("pytest-split least_duration", pytest_split("least_duration")),
        ("pytest-split duration_based_chunks", pytest_split("duration_based_chunks")),
        ("hash", hash_split),
    ]
    budget = CAPACITY.usable / MiB
    print(f"{SHARDS} shards, {CAPACITY.workers} workers each, usable budget {budget:.0f} MiB per shard, "
          f"worker baseline {CAPACITY.baseline // MiB} MiB")
    print(f"{'tests':>7}  {'split':<36}{'plan s':>8}{'sum max/mean':>14}{'--dist memory':>15}"
          f"{'max/mean':>10}{'over budget':>12}{'-n W max/mean':>15}{'OOM shards':>12}{'groups split':>14}")
    for count in SIZES:
        nodeids, expected, groups = synthetic(count, seed=count)
        for name, split in methods:
            started = time.perf_counter()
            shards = split(nodeids, expected, groups)
            planning = time.perf_counter() - started
            assert sorted(n for shard in shards for n in shard) == sorted(nodeids)
            sums = [sum(expected[n][1] for n in shard) for shard in shards]
            aware = [simulate(jobs(shard, expected, groups), True) for shard in shards]
            naive = [simulate(jobs(shard, expected, groups), False) for shard in shards]
            over = sum(peak > CAPACITY.usable for _, peak in aware)
            oom = sum(peak > CAPACITY.usable for _, peak in naive)
            homes: dict[str, set[int]] = {}
            for index, shard in enumerate(shards):
                for nodeid in shard:
                    if nodeid in groups:
                        homes.setdefault(groups[nodeid], set()).add(index)
            broken = sum(len(h) > 1 for h in homes.values())
            wall = max(t for t, _ in aware)
            print(f"{count:>7}  {name:<36}{planning:>8.3f}{ratio(sums):>14.3f}{wall:>14.0f}s"
                  f"{ratio([t for t, _ in aware]):>10.3f}{over:>9}/{SHARDS}"
                  f"{ratio([t for t, _ in naive]):>15.3f}{oom:>9}/{SHARDS}{broken:>14}")
    print("sum max/mean: the largest shard's summed test time over the mean; --dist memory: the slowest "
          "shard's simulated wall time and max/mean under the memory-aware scheduler (over budget: shards "
          "whose peak exceeded the budget); -n W: the same without memory awareness (OOM shards: shards "
          "whose concurrent memory exceeded the budget); groups split: groups spread over several shards")
    print("targets: testdock max/mean <= 1.05 at 10k tests; planning 100k tests < 2 s")


if __name__ == "__main__":
    main()
