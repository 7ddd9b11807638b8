"""Prometheus metrics while a run lasts (served on 127.0.0.1) and monitoring/metrics.prom after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server, write_to_textfile

from testdock.monitor.sampler import MemoryStats


class RunMetrics:
    def __init__(self, phase: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["phase"]
        self._usage = Gauge("testdock_memory_usage_bytes", "Memory the phase's container uses",
                            labels, registry=self.registry).labels(phase)
        self._limit = Gauge("testdock_memory_limit_bytes", "The container's memory limit",
                            labels, registry=self.registry).labels(phase)
        self._peak = Gauge("testdock_memory_peak_bytes", "The highest memory use seen so far",
                           labels, registry=self.registry).labels(phase)
        self._done = Gauge("testdock_tests_done", "Tests finished", labels,
                           registry=self.registry).labels(phase)
        self._failed = Gauge("testdock_tests_failed", "Tests failed", labels,
                             registry=self.registry).labels(phase)
        self._running = Gauge("testdock_tests_running", "Tests running now", labels,
                              registry=self.registry).labels(phase)
        self._cpu = Gauge("testdock_cpu_percent", "CPU in use over the last sample (100 = one CPU)",
                          labels, registry=self.registry).labels(phase)
        self._cpu_seconds = Gauge("testdock_cpu_seconds", "CPU time the container used so far",
                                  labels, registry=self.registry).labels(phase)
        self._throttled = Gauge("testdock_cpu_throttled_seconds", "CPU time the quota held back so far",
                                labels, registry=self.registry).labels(phase)
        self._read = Gauge("testdock_storage_read_bytes", "Bytes read from storage so far",
                           labels, registry=self.registry).labels(phase)
        self._written = Gauge("testdock_storage_written_bytes", "Bytes written to storage so far",
                              labels, registry=self.registry).labels(phase)
        self._processes = Gauge("testdock_processes", "Processes in the container now",
                                labels, registry=self.registry).labels(phase)
        self._server: Any = None
        self._thread: Any = None

    def update(self, usage: int, limit: int | None, peak: int, done: int, failed: int,
               running: int) -> None:
        self._usage.set(usage)
        self._limit.set(limit or 0)
        self._peak.set(peak)
        self._done.set(done)
        self._failed.set(failed)
        self._running.set(running)

    def update_resources(self, stats: MemoryStats) -> None:
        """The CPU, storage and process gauges, from the last sample; untouched where the source
        does not read them."""
        last = stats.resources[-1] if stats.resources else None
        if last is None:
            return
        for gauge, value in ((self._cpu, last.cpu_percent), (self._cpu_seconds, stats.cpu_seconds),
                             (self._throttled, stats.throttled_seconds), (self._read, stats.read_bytes),
                             (self._written, stats.written_bytes), (self._processes, last.processes)):
            if value is not None:
                gauge.set(value)

    def serve(self, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)

    def close(self, textfile: Path | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if textfile is not None:
            textfile.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(textfile), self.registry)
