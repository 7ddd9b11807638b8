"""Prometheus metrics while a run lasts (served on 127.0.0.1) and monitoring/metrics.prom after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server, write_to_textfile


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
