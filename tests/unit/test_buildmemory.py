"""Builds that cannot OOM: the history of build peaks, the gate that starts builds while their
memory fits, the schedule that retries a build killed for memory alone, and the cgroup files the
peaks and kills are read from (cgroup v1 and v2, in a folder made to look like them)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from testdock.engine import buildmemory
from testdock.engine.buildmemory import BuildKitMemory, MemoryGate
from testdock.engine.builds import ImageResult, _schedule

MiB = 2**20
GiB = 2**30


def test_the_history_keeps_the_last_peaks_and_expects_the_largest(tmp_path: Path) -> None:
    assert buildmemory.load(tmp_path) == {}
    for peak in (300, 500, 400, 350, 320, 310):
        buildmemory.record(tmp_path, "execution", peak * MiB)
    history = buildmemory.load(tmp_path)
    assert len(history["execution"]) == buildmemory.KEEP  # the first (300) is forgotten
    assert buildmemory.expected_peak(history, "execution") == 500 * MiB
    assert buildmemory.expected_peak(history, "collection") is None
    (tmp_path / buildmemory.MEMORY_FILE).write_text("not json")
    assert buildmemory.load(tmp_path) == {}


def test_the_gate_starts_builds_while_they_fit_and_always_one() -> None:
    peaks = {"execution": 600 * MiB, "backend": 500 * MiB, "collection": 200 * MiB}
    gate = MemoryGate(1000 * MiB, peaks.__getitem__)  # 900 MiB usable after the margin
    assert gate.may_start("execution")
    gate.started("execution")
    assert not gate.may_start("backend")  # 600 + 500 > 900
    assert gate.may_start("collection")  # 600 + 200 <= 900
    gate.started("collection")
    gate.ended("execution")
    assert gate.may_start("backend")
    huge = MemoryGate(100 * MiB, lambda phase: 5 * GiB)
    assert huge.may_start("execution")  # nothing runs: it starts, whatever its size


def test_a_build_too_big_even_alone_is_told_before_it_starts() -> None:
    history = {"execution": [3 * GiB], "collection": [100 * MiB]}
    warnings = buildmemory.too_big_alone(["execution", "collection", "stress"], history, 2 * GiB)
    assert len(warnings) == 1
    assert "execution image's build took up to 3.0 GiB" in warnings[0] and "2.0 GiB" in warnings[0]


class FakeRun:
    """What _schedule uses of a build run: builds that take their time and report a peak; the
    ones named in `kill` are killed for memory when something else builds beside them."""

    def __init__(self, tmp_path: Path, memory: str | None, kill: set[str]) -> None:
        self.root = tmp_path
        self.settings = SimpleNamespace(build=SimpleNamespace(memory=memory))
        self.client = SimpleNamespace(info=lambda: {"NCPU": 8})
        self.options = SimpleNamespace(no_cache=True)
        self.results: dict[str, ImageResult] = {}
        self.processes = SimpleNamespace(stop_all=lambda: None)
        self.listener = SimpleNamespace(note=self.notes_append, state=lambda *args: None)
        self.notes: list[str] = []
        self.kill = kill
        self.running: set[str] = set()
        self.most_at_once = 0
        self.order: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def waits(self, chosen: list[str]) -> dict[str, tuple[str, str | None]]:
        return {"stress": ("execution", "stress-tools")} if {"execution", "stress"} <= set(chosen) else {}

    def notes_append(self, text: str) -> None:
        self.notes.append(text)

    def build(self, phase: str, retry: bool = False) -> ImageResult:
        with self._lock:
            self.running.add(phase)
            self.most_at_once = max(self.most_at_once, len(self.running))
            beside = len(self.running) > 1
            self.order.append((phase, retry))
        time.sleep(0.05)
        with self._lock:
            self.running.discard(phase)
        killed = phase in self.kill and (beside or not retry)
        return ImageResult(phase, phase, (phase,), 0.05, "failed" if killed else "built",
                           oom_step="[deps 3/7] RUN pip install" if killed else "", retried=retry)

    def skipped(self, phase: str, reason: str) -> ImageResult:
        return ImageResult(phase, phase, (phase,), 0.0, "skipped", error_tail=(reason,))

    def build_early_stage(self, phase: str) -> None:
        pass

    def output(self, phase: str, text: str) -> None:
        pass


def test_auto_runs_only_the_builds_that_fit_together(tmp_path: Path) -> None:
    for phase in ("execution", "backend", "collection"):
        buildmemory.record(tmp_path, phase, 400 * MiB)
    run: Any = FakeRun(tmp_path, "1g", set())  # 900 MiB usable: two builds of 400 MiB at once
    _schedule(run, ["collection", "execution", "backend"], "auto")
    assert run.most_at_once == 2
    assert all(result.ok for result in run.results.values()) and len(run.results) == 3
    assert any("--parallel auto" in note and "execution 400.0 MiB" in note for note in run.notes)
    roomy: Any = FakeRun(tmp_path, "4g", set())
    _schedule(roomy, ["collection", "execution", "backend"], "auto")
    assert roomy.most_at_once == 3
    fixed: Any = FakeRun(tmp_path, "1g", set())  # a number is that many, memory or not
    _schedule(fixed, ["collection", "execution", "backend"], 3)
    assert fixed.most_at_once == 3


def test_a_build_killed_for_memory_is_retried_alone_once_then_its_dependant_builds(tmp_path: Path) -> None:
    run: Any = FakeRun(tmp_path, "8g", {"execution"})  # killed when it builds beside another
    _schedule(run, ["collection", "execution", "stress"], "auto")
    assert run.results["execution"].ok and run.results["execution"].retried
    assert run.order[-2:] == [("execution", True), ("stress", False)]  # again alone, then stress on it
    assert run.results["stress"].ok
    hopeless: Any = FakeRun(tmp_path, "8g", {"backend"})
    hopeless.build = lambda phase, retry=False: ImageResult(
        phase, phase, (phase,), 0.0, "failed", oom_step="[deps 3/7] RUN x", retried=retry)
    _schedule(hopeless, ["backend"], "auto")
    assert hopeless.results["backend"].retried and not hopeless.results["backend"].ok  # once, no more


def fake_buildkit(root: Path, version: int) -> Path:
    """A cgroup tree laid out as the engine's (cgroupfs) with BuildKit's cgroup in it."""
    if version == 2:
        (root / "cgroup.controllers").write_text("cpu memory pids\n")
        folder = root / "docker" / "buildkit"
    else:
        folder = root / "memory" / "docker" / "buildkit"
    folder.mkdir(parents=True)
    return folder


def write_stat(folder: Path, version: int, anon: int, cache: int = 900 * MiB) -> None:
    # the page cache ("total_cache", "file") is not counted: the kernel reclaims it first
    if version == 1:
        folder.joinpath("memory.stat").write_text(
            f"cache 0\nrss 0\ntotal_cache {cache}\ntotal_rss {anon - 10 * MiB}\ntotal_shmem {10 * MiB}\n")
    else:
        folder.joinpath("memory.stat").write_text(f"anon {anon - 10 * MiB}\nfile {cache}\nshmem {10 * MiB}\n")


@pytest.mark.parametrize("version", [1, 2])
def test_buildkits_cgroup_is_found_and_read(tmp_path: Path, version: int) -> None:
    assert buildmemory.buildkit_cgroup(tmp_path) is None  # no memory cgroups here: nothing to read
    folder = fake_buildkit(tmp_path, version)
    assert buildmemory.buildkit_cgroup(tmp_path) == (folder, version)
    memory = BuildKitMemory(folder, version)
    folder.rename(folder.with_name("later"))  # a fresh engine makes it with its first build step
    assert buildmemory.buildkit_cgroup(tmp_path) == (folder, version)
    assert memory.in_use() is None and memory.begin()[1] == 0 and memory.end((0, 0)) == (None, 0)
    memory.close()
    folder.with_name("later").rename(folder)
    write_stat(folder, version, 700 * MiB)
    assert memory.in_use() == 700 * MiB
    assert memory.limit() is None  # no file, or no limit
    if version == 1:
        (folder / "memory.limit_in_bytes").write_text(f"{1 << 63}\n")
        assert memory.limit() is None
        (folder / "memory.limit_in_bytes").write_text(f"{900 * MiB}\n")
        (folder / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    else:
        (folder / "memory.max").write_text("max\n")
        assert memory.limit() is None
        (folder / "memory.max").write_text(f"{900 * MiB}\n")
        (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert memory.limit() == 900 * MiB
    assert buildmemory.available_memory(memory) == 900 * MiB  # less than this machine's
    assert memory.oom_kills() == 2


def test_each_build_gets_the_most_seen_while_it_ran(tmp_path: Path) -> None:
    folder = fake_buildkit(tmp_path, 2)
    memory = BuildKitMemory(folder, 2, interval=0.01)
    write_stat(folder, 2, 100 * MiB)
    first = memory.begin()
    time.sleep(0.1)
    write_stat(folder, 2, 450 * MiB)
    time.sleep(0.1)
    write_stat(folder, 2, 120 * MiB)
    time.sleep(0.1)
    second = memory.begin()  # begins after the 450 MiB moment
    assert memory.end(first) == (450 * MiB, 0)
    (folder / "memory.events").write_text("oom_kill 1\n")
    write_stat(folder, 2, 300 * MiB)
    time.sleep(0.1)
    assert memory.end(second) == (300 * MiB, 1)  # the kill came while it ran
    memory.close()
