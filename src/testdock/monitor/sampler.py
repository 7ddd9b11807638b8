"""Sample a container's memory in a thread, write every sample to monitoring/memory.csv as it
goes (a killed run keeps them), and keep the figures the summary needs."""

from __future__ import annotations

import csv
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from testdock.monitor.resources import Resources
from testdock.monitor.sources import MemorySource
from testdock.monitor.tests_running import ProgressFollower
from testdock.safepaths import open_for_writing

CSV_COLUMNS = ("time", "elapsed_s", "usage_bytes", "limit_bytes", "running_tests", "cpu_percent",
               "throttled_percent", "read_bytes", "written_bytes", "processes")
HIGH_WATER = 0.9


@dataclass(frozen=True)
class ResourceSample:
    """Beside memory, at one sample: CPU in use over the last interval (100 = one CPU busy), the
    share of it the CPU quota held back, storage bytes so far, processes now."""

    elapsed: float
    cpu_percent: float | None
    throttled_percent: float | None
    read_bytes: int | None
    written_bytes: int | None
    processes: int | None


@dataclass
class MemoryStats:
    samples: int = 0
    peak: int = 0
    peak_elapsed: float = 0.0
    peak_tests: list[str] = field(default_factory=list)
    limit: int | None = None
    seconds_above_90: float = 0.0
    duration: float = 0.0
    series: list[tuple[float, int, str]] = field(default_factory=list)  # elapsed, usage, running
    resources: list[ResourceSample] = field(default_factory=list)  # where the source reads them
    cpu_seconds: float | None = None  # since the container started
    peak_cpu_percent: float = 0.0
    peak_cpu_tests: list[str] = field(default_factory=list)
    throttled_seconds: float | None = None
    read_bytes: int | None = None
    written_bytes: int | None = None
    peak_processes: int | None = None

    @property
    def headroom(self) -> int | None:
        return None if self.limit is None else self.limit - self.peak


class MemorySampler:
    def __init__(self, source: MemorySource, csv_path: Path, progress: ProgressFollower | None,
                 interval: float = 0.05,
                 on_sample: Callable[[int, MemoryStats], None] | None = None) -> None:
        self.on_sample = on_sample
        self.source = source
        self.progress = progress
        self.interval = interval
        self.stats = MemoryStats()
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        # never through a link: the folder is mounted into the container being sampled
        self._handle = os.fdopen(open_for_writing(csv_path), "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(CSV_COLUMNS)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._previous: tuple[float, Resources] | None = None  # for the rates over an interval
        self._all_cpus = 100.0 * (os.cpu_count() or 1)  # the highest CPU rate there is, in percent
        self._thread = threading.Thread(target=self._loop, name="testdock-sampler", daemon=True)

    def start(self) -> MemorySampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def sample_once(self) -> None:
        reading = self.source.read()
        # the reading's own time: following the progress file can take a while, and the CPU rate
        # over an interval timed after it came out at 2,975% of a CPU on a 2-CPU machine
        elapsed = time.monotonic() - self._started
        if self.progress is not None:
            self.progress.poll()
        if reading is None:
            return
        running = self.progress.current() if self.progress is not None else []
        label = " | ".join(running)
        with self._lock:
            stats = self.stats
            if stats.samples and stats.limit and reading.usage >= HIGH_WATER * stats.limit:
                stats.seconds_above_90 += elapsed - stats.duration
            stats.samples += 1
            # a limit read as gone (the cgroup torn down at the end) is not "unlimited"
            stats.limit = reading.limit if reading.limit is not None else stats.limit
            stats.duration = elapsed
            if reading.usage > stats.peak:
                stats.peak, stats.peak_elapsed, stats.peak_tests = reading.usage, elapsed, running
            stats.series.append((elapsed, reading.usage, label))
            resources = self._resources(elapsed, reading.resources, running)
            self._writer.writerow((datetime.now(UTC).isoformat(timespec="milliseconds"),
                                   f"{elapsed:.3f}", reading.usage, reading.limit or "", label,
                                   *_cells(resources)))
            if stats.samples % 10 == 0:
                self._handle.flush()
        if self.on_sample is not None:
            self.on_sample(reading.usage, self.stats)

    def _resources(self, elapsed: float, resources: Resources | None,
                   running: list[str]) -> ResourceSample | None:
        """The sample's CPU, I/O and process figures, into the stats too (under the lock)."""
        if resources is None:
            return None
        stats = self.stats
        cpu = throttled = None
        if self._previous is not None:
            before_time, before = self._previous
            cpu = _percent(resources.cpu_seconds, before.cpu_seconds, elapsed - before_time)
            # the counters are read a few milliseconds apart from the clock: never more than all
            # the CPUs (50 ms intervals made 226% of 2 CPUs)
            cpu = None if cpu is None else min(cpu, self._all_cpus)
            throttled = _percent(resources.throttled_seconds, before.throttled_seconds, elapsed - before_time)
        self._previous = (elapsed, resources)
        if cpu is not None and cpu > stats.peak_cpu_percent:
            stats.peak_cpu_percent, stats.peak_cpu_tests = cpu, running
        # counters since the container started; a cgroup read as gone at the end keeps the last
        stats.cpu_seconds = _latest(resources.cpu_seconds, stats.cpu_seconds)
        stats.throttled_seconds = _latest(resources.throttled_seconds, stats.throttled_seconds)
        if resources.read_bytes is not None:
            stats.read_bytes = resources.read_bytes
        if resources.written_bytes is not None:
            stats.written_bytes = resources.written_bytes
        if resources.processes is not None:
            stats.peak_processes = max(stats.peak_processes or 0, resources.processes)
        sample = ResourceSample(elapsed, cpu, throttled, resources.read_bytes, resources.written_bytes,
                                resources.processes)
        stats.resources.append(sample)
        return sample

    def _loop(self) -> None:
        next_time = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            next_time += self.interval
            self._stop.wait(max(0.0, next_time - time.monotonic()))

    def flush(self) -> tuple[int, int, float]:
        """Write what was sampled so far to the CSV; (samples, peak, seconds) so far."""
        with self._lock:
            self._handle.flush()
            return self.stats.samples, self.stats.peak, self.stats.duration

    def stop(self) -> MemoryStats:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.source.close()
        with self._lock:
            self._handle.flush()
            self._handle.close()
        return self.stats


def _percent(now: float | None, before: float | None, interval: float) -> float | None:
    """Seconds of a counter per second of the interval, in percent (100: one CPU)."""
    if now is None or before is None or interval <= 0:
        return None
    return max(0.0, (now - before) / interval * 100)


def _latest(value: float | None, previous: float | None) -> float | None:
    return value if value is not None else previous


def _cells(sample: ResourceSample | None) -> tuple[str, ...]:
    """The CSV cells of a sample's resources (empty where not known)."""
    if sample is None:
        return ("",) * 5

    def cell(value: float | None, digits: int = 0) -> str:
        return "" if value is None else (f"{value:.{digits}f}" if digits else str(int(value)))

    return (cell(sample.cpu_percent, 1), cell(sample.throttled_percent, 1), cell(sample.read_bytes),
            cell(sample.written_bytes), cell(sample.processes))


def resources_line(stats: MemoryStats) -> str | None:
    """`CPU 12.3s (peak 198% of a CPU, during t.py::x), throttled 0.0s; storage read 1.0 MiB,
    written 20.0 MiB; up to 3 processes`, from what the source read; None when it read none."""
    from testdock_pytest.sizes import format_size

    parts = []
    if stats.cpu_seconds is not None:
        cpu = f"CPU {stats.cpu_seconds:.1f}s (peak {stats.peak_cpu_percent:.0f}% of a CPU"
        if stats.peak_cpu_tests:
            cpu += f", during {stats.peak_cpu_tests[0]}"
        cpu += ")"
        if stats.throttled_seconds is not None:
            cpu += f", throttled {stats.throttled_seconds:.1f}s"
        parts.append(cpu)
    if stats.read_bytes is not None and stats.written_bytes is not None:
        parts.append(f"storage read {format_size(stats.read_bytes)}, "
                     f"written {format_size(stats.written_bytes)}")
    if stats.peak_processes is not None:
        parts.append(f"up to {stats.peak_processes} process{'es' if stats.peak_processes != 1 else ''}")
    return "; ".join(parts) if parts else None
