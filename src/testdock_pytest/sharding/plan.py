"""Split a suite into N shards that finish together without running out of memory.

Each shard runs its tests on `workers` processes under one memory budget (a CI job, a pod). Its
expected wall time is the largest of three lower bounds: its test time spread over the workers,
its memory-time (growth x duration, summed) spread over the room the budget leaves for growth
(the scheduler serialises heavy tests rather than exceed the budget), and its longest unit. Units
(a test, or tests that must stay together) with a history are placed heaviest first on the shard
whose expected time stays lowest; units never measured are spread by a stable hash of their name,
so that a new test does not move the others. Everything is deterministic: the same node ids and
history give the same split in every process, on every machine.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MiB = 1 << 20
DEFAULT_BASELINE = 64 * MiB  # a worker's RSS between tests, when the history does not tell
CANDIDATES = 4  # shards compared for each unit: the least loaded ones


@dataclass(frozen=True)
class Capacity:
    """What one shard runs on: its workers and its memory budget (margin already taken off)."""

    workers: int = 1
    usable: int = 4 * 1024 * MiB
    baseline: int = DEFAULT_BASELINE

    @property
    def room(self) -> int:
        """Memory left for tests' growth with every worker at its baseline (at least one's worth)."""
        return max(self.usable - self.workers * self.baseline, self.usable - self.baseline, 1)


@dataclass(frozen=True)
class Unit:
    key: str  # the group's name, or the node id of a test that may go anywhere
    nodeids: tuple[str, ...]
    duration: float
    growth: int
    known: bool


@dataclass
class Shard:
    index: int
    nodeids: list[str] = field(default_factory=list)
    duration: float = 0.0
    memory_seconds: float = 0.0
    longest: float = 0.0
    top_growths: list[int] = field(default_factory=list)  # min-heap of the `workers` largest
    unmeasured: int = 0

    def expected_time(self, capacity: Capacity) -> float:
        return max(self.duration / capacity.workers, self.memory_seconds / capacity.room, self.longest)

    def time_with(self, unit: Unit, capacity: Capacity) -> float:
        return max((self.duration + unit.duration) / capacity.workers,
                   (self.memory_seconds + unit.growth * unit.duration) / capacity.room,
                   self.longest, unit.duration)

    def peak(self, capacity: Capacity) -> int:
        """The most this shard can hold at once: every worker at its baseline running one of the
        largest tests, capped at the budget (the scheduler does not start what would exceed it)."""
        workers = min(capacity.workers, max(1, len(self.nodeids)))
        return min(capacity.usable, workers * capacity.baseline + sum(self.top_growths))

    def add(self, unit: Unit, capacity: Capacity) -> None:
        self.nodeids.extend(unit.nodeids)
        self.duration += unit.duration
        self.memory_seconds += unit.growth * unit.duration
        self.longest = max(self.longest, unit.duration)
        if not unit.known:
            self.unmeasured += len(unit.nodeids)
        if len(self.top_growths) < capacity.workers:
            heapq.heappush(self.top_growths, unit.growth)
        elif unit.growth > self.top_growths[0]:
            heapq.heapreplace(self.top_growths, unit.growth)


@dataclass
class ShardPlan:
    shards: list[Shard]
    capacity: Capacity
    too_big: list[str] = field(default_factory=list)  # units that exceed the budget even alone

    def selected(self, index: int, order: Sequence[str]) -> list[str]:
        """The node ids of shard `index`, in the collection's order."""
        chosen = set(self.shards[index].nodeids)
        return [nodeid for nodeid in order if nodeid in chosen]

    def balance(self) -> float:
        """Largest expected shard time over the mean (1.0 is perfect)."""
        times = [shard.expected_time(self.capacity) for shard in self.shards]
        mean = sum(times) / len(times)
        return max(times) / mean if mean else 1.0


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def build_units(nodeids: Sequence[str], expected: Mapping[str, tuple[int, float]],
                groups: Mapping[str, str]) -> list[Unit]:
    """One unit per group (in the order its first test was collected) or ungrouped test. Tests
    without history count with the median measured duration (a few slow tests must not make every
    new test look slow) and no growth."""
    durations = sorted(expected[n][1] for n in nodeids if n in expected)
    fallback = durations[len(durations) // 2] if durations else 1.0
    members: dict[str, list[str]] = {}
    for nodeid in nodeids:
        members.setdefault(groups.get(nodeid, nodeid), []).append(nodeid)
    units = []
    for key, tests in members.items():
        known = [expected[n] for n in tests if n in expected]
        duration = sum(expected[n][1] if n in expected else fallback for n in tests)
        growth = max((growth for growth, _ in known), default=0)
        units.append(Unit(key, tuple(tests), duration, growth, bool(known)))
    return units


def plan_shards(nodeids: Sequence[str], expected: Mapping[str, tuple[int, float]], count: int,
                capacity: Capacity = Capacity(), groups: Mapping[str, str] | None = None) -> ShardPlan:
    """Split `nodeids` into `count` shards; `expected` is the history's (growth, seconds) per test
    and `groups` names the group of each test that must share a shard with others."""
    if count < 1:
        raise ValueError(f"the number of shards must be at least 1, not {count}")
    shards = [Shard(index) for index in range(count)]
    plan = ShardPlan(shards, capacity)
    units = build_units(nodeids, expected, groups or {})
    measured = []
    for unit in units:
        if unit.known:
            measured.append(unit)
        else:
            shards[stable_hash(unit.key) % count].add(unit, capacity)
        if capacity.baseline + unit.growth > capacity.usable:
            plan.too_big.append(unit.key)
    measured.sort(key=lambda unit: (-max(unit.duration / capacity.workers,
                                         unit.growth * unit.duration / capacity.room), unit.key))
    heap = [(shard.expected_time(capacity), shard.index) for shard in shards]
    heapq.heapify(heap)
    for unit in measured:
        candidates = [heapq.heappop(heap) for _ in range(min(CANDIDATES, len(heap)))]
        best = min(candidates, key=lambda entry: (shards[entry[1]].time_with(unit, capacity), entry))
        shards[best[1]].add(unit, capacity)
        for entry in candidates:
            index = entry[1]
            heapq.heappush(heap, (shards[index].expected_time(capacity), index) if entry is best else entry)
    return plan


def check_shard(shards: int, index: int) -> None:
    if shards < 1:
        raise ValueError(f"the number of shards must be at least 1, not {shards}")
    if not 0 <= index < shards:
        raise ValueError(f"shard index {index} is out of range: with {shards} shards it is 0 to {shards - 1}")


def plan_table(plan: ShardPlan, selected: int | None = None) -> list[str]:
    """The plan as lines of text: expected time and peak memory per shard."""
    from testdock_pytest.sizes import format_size

    capacity = plan.capacity
    lines = [f"{len(plan.shards)} shards, {capacity.workers} worker(s) each, "
             f"budget {format_size(capacity.usable)} after the margin; balance (max/mean) "
             f"{plan.balance():.3f}",
             f"{'shard':>5}  {'tests':>7}  {'unmeasured':>10}  {'expected time':>13}  {'peak memory':>11}"]
    for shard in plan.shards:
        mark = "  <- this shard" if shard.index == selected else ""
        seconds, peak = shard.expected_time(capacity), format_size(shard.peak(capacity))
        lines.append(f"{shard.index:>5}  {len(shard.nodeids):>7}  {shard.unmeasured:>10}  "
                     f"{seconds:>12.1f}s  {peak:>11}{mark}")
    for key in plan.too_big:
        lines.append(f"needs more than the budget even alone: {key}")
    return lines
