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

from testdock.monitor.sources import MemorySource
from testdock.monitor.tests_running import ProgressFollower
from testdock.safepaths import open_for_writing

CSV_COLUMNS = ("time", "elapsed_s", "usage_bytes", "limit_bytes", "running_tests")
HIGH_WATER = 0.9


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
        self._thread = threading.Thread(target=self._loop, name="testdock-sampler", daemon=True)

    def start(self) -> MemorySampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def sample_once(self) -> None:
        reading = self.source.read()
        if self.progress is not None:
            self.progress.poll()
        if reading is None:
            return
        elapsed = time.monotonic() - self._started
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
            self._writer.writerow((datetime.now(UTC).isoformat(timespec="milliseconds"),
                                   f"{elapsed:.3f}", reading.usage, reading.limit or "", label))
            if stats.samples % 10 == 0:
                self._handle.flush()
        if self.on_sample is not None:
            self.on_sample(reading.usage, self.stats)

    def _loop(self) -> None:
        next_time = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            next_time += self.interval
            self._stop.wait(max(0.0, next_time - time.monotonic()))

    def stop(self) -> MemoryStats:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.source.close()
        with self._lock:
            self._handle.flush()
            self._handle.close()
        return self.stats
