"""Per-test peak memory at almost no cost: on Linux the kernel keeps a process's peak RSS
(VmHWM) and resets it when "5" is written to /proc/self/clear_refs; elsewhere, or where that is
refused, a sampling thread watches the RSS."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
STATM = Path("/proc/self/statm")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _status_kib(field: str) -> int | None:
    try:
        with STATUS.open("rb") as handle:
            data = handle.read()
        start = data.index(field.encode()) + len(field)
        return int(data[start:data.index(b"kB", start)]) * 1024
    except (OSError, ValueError):
        return None


def current_rss() -> int:
    """This process's resident memory now, in bytes."""
    try:
        return int(STATM.read_text().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


class PeakMeter:
    """start() then peak(): the highest RSS in between."""

    def __init__(self, interval: float = 0.002) -> None:
        self.method = "vmhwm" if self._clear_refs_works() else "sampling"
        self._interval = interval
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled_peak = 0

    @staticmethod
    def _clear_refs_works() -> bool:
        if not sys.platform.startswith("linux"):
            return False
        try:
            CLEAR_REFS.write_text("5")
        except OSError:
            return False
        return _status_kib("VmHWM:") is not None

    def start(self) -> None:
        if self.method == "vmhwm":
            try:
                CLEAR_REFS.write_text("5")
                return
            except OSError:
                self.method = "sampling"
        self._sampled_peak = current_rss()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="testdock-peak", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self._sampled_peak = max(self._sampled_peak, current_rss())

    def peak(self) -> int:
        """The peak since start(); the meter keeps running until stop()."""
        if self.method == "vmhwm":
            value = _status_kib("VmHWM:")
            return value if value is not None else current_rss()
        return max(self._sampled_peak, current_rss())

    def stop(self) -> int:
        value = self.peak()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        return value
