"""Per-test peak memory at almost no cost: on Linux the kernel keeps a process's peak RSS
(VmHWM) and resets it when "5" is written to /proc/self/clear_refs; elsewhere, or where that is
refused, a sampling thread watches the RSS."""

from __future__ import annotations

import functools
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
STATM = Path("/proc/self/statm")
SCHEDSTAT = Path("/proc/thread-self/schedstat")
IO = Path("/proc/self/io")
STAT = Path("/proc/self/stat")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _ProcFile:
    """A /proc/self file kept open and read again from its start: a test costs three or four
    reads, and an open and close each would cost as much again. Reopened after a fork (the open
    file would go on describing the parent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self, flags: int) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, flags)
            self._pid = os.getpid()
        return self._fd

    def read(self) -> bytes:
        return os.pread(self._descriptor(os.O_RDONLY), 8192, 0)

    def write(self, data: bytes) -> None:
        os.write(self._descriptor(os.O_WRONLY), data)


_STATUS = _ProcFile(STATUS)
_STATM = _ProcFile(STATM)
_CLEAR_REFS = _ProcFile(CLEAR_REFS)
_SCHEDSTAT = _ProcFile(SCHEDSTAT)
_IO = _ProcFile(IO)


def storage_bytes() -> tuple[int, int]:
    """(read, written) bytes this process moved to and from storage so far (the kernel's
    /proc/self/io, writes counted when pages are dirtied); (0, 0) where the kernel does not say."""
    try:
        data = _IO.read()
        read = data.index(b"\nread_bytes:") + 12
        written = data.index(b"\nwrite_bytes:") + 13
        return int(data[read:data.index(b"\n", read)]), int(data[written:data.index(b"\n", written)])
    except (OSError, ValueError):
        return 0, 0


def cpu_wait() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (the kernel's schedstat): a
    test's duration less this is what it would take on a machine not shared with other workers.
    0.0 where the kernel does not say."""
    try:
        return int(_SCHEDSTAT.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def process_age() -> float | None:
    """Seconds since this process started (the kernel's start time, so the interpreter's and the
    imports' time counts); None where that is not known."""
    try:
        fields = STAT.read_bytes().rsplit(b")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time since boot
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _status_kib(field: str) -> int | None:
    try:
        data = _STATUS.read()
        start = data.index(field.encode()) + len(field)
        return int(data[start:data.index(b"kB", start)]) * 1024
    except (OSError, ValueError):
        return None


def current_rss() -> int:
    """This process's resident memory now, in bytes."""
    try:
        return int(_STATM.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def private_and_file_memory() -> tuple[int, int]:
    """This process's resident memory in two parts, in bytes: what it alone holds (its anonymous
    memory: what it allocated) and what is backed by files (shared libraries, mapped files) or
    shared memory. The kernel keeps one copy of a file's pages for every process mapping it, and
    can drop them before it kills a process: workers that import the same libraries share them.
    (current_rss(), 0) where the kernel does not say."""
    try:
        fields = _STATM.read().split()
        resident, shared = int(fields[1]) * PAGE, int(fields[2]) * PAGE
        return resident - shared, shared
    except (OSError, ValueError, IndexError):
        return current_rss(), 0


def private_memory() -> int:
    """What this process alone holds (see private_and_file_memory)."""
    return private_and_file_memory()[0]


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
            _CLEAR_REFS.write(b"5")
        except OSError:
            return False
        return _status_kib("VmHWM:") is not None

    def start(self) -> None:
        if self.method == "vmhwm":
            try:
                _CLEAR_REFS.write(b"5")
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


@functools.cache  # looked up at the first use: ctypes is not imported by processes never needing it
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to give back this way
        return None


def release_memory() -> None:
    """Collect the garbage, then have glibc's allocator give its free pages back to the kernel.
    What Python frees through malloc (buffers, arrays, extension modules' allocations) stays in
    the process's RSS otherwise, scattered through the heap: a plotting suite's worker held
    hundreds of MiB of such free memory, which the memory-aware scheduler counted as kept and
    replaced workers for."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


Reading = tuple[int, int, int, int, int]  # peak RSS, RSS, CPU wait (ns), storage read, written


class Probe:
    """The readings a test's measuring takes, one Python call each end: under a tracer (coverage,
    which with per-test contexts calls back into Python at every function call) each call and
    line in between costs as much as the reading itself, so the /proc files are read inline
    here. Where the fast way is refused, the functions above (and a sampling PeakMeter) do it."""

    def __init__(self) -> None:
        self.meter = PeakMeter()
        self._pid = 0
        self._files: tuple[int, int, int, int, int] | None = None
        # of the resident memory at the last start() and read(), what is backed by files or
        # shared (see private_and_file_memory); 0 where the fast way is refused
        self.files_at_start = self.files_now = 0

    @property
    def method(self) -> str:
        return self.meter.method

    def _open(self) -> tuple[int, int, int, int, int] | None:
        self._pid = os.getpid()
        try:
            self._files = (os.open(STATM, os.O_RDONLY), os.open(STATUS, os.O_RDONLY),
                           os.open(SCHEDSTAT, os.O_RDONLY), os.open(IO, os.O_RDONLY),
                           os.open(CLEAR_REFS, os.O_WRONLY))
        except OSError:
            self._files = None
        return self._files

    def start(self) -> tuple[int, int, int, int]:
        """(RSS, CPU wait in ns, storage read, written) now, and the peak reset."""
        files = self._files if self._pid == os.getpid() else self._open()
        if files is not None and self.meter.method == "vmhwm":
            try:
                os.write(files[4], b"5")
                io = os.pread(files[3], 512, 0)
                read = io.index(b"\nread_bytes:") + 12
                written = io.index(b"\nwrite_bytes:") + 13
                statm = os.pread(files[0], 128, 0).split()
                self.files_at_start = int(statm[2]) * PAGE
                return (int(statm[1]) * PAGE, int(os.pread(files[2], 128, 0).split()[1]),
                        int(io[read:io.index(b"\n", read)]), int(io[written:io.index(b"\n", written)]))
            except (OSError, ValueError, IndexError):
                self._files = None
        self.meter.start()
        self.files_at_start = 0
        return current_rss(), int(cpu_wait() * 1e9), *storage_bytes()

    def read(self) -> Reading:
        """(peak since start, RSS, CPU wait in ns, storage read, written) now."""
        files = self._files if self._pid == os.getpid() else None
        if files is not None and self.meter.method == "vmhwm":
            try:
                status = os.pread(files[1], 8192, 0)
                hwm = status.index(b"VmHWM:") + 6
                io = os.pread(files[3], 512, 0)
                read = io.index(b"\nread_bytes:") + 12
                written = io.index(b"\nwrite_bytes:") + 13
                statm = os.pread(files[0], 128, 0).split()
                self.files_now = int(statm[2]) * PAGE
                return (int(status[hwm:status.index(b"kB", hwm)]) * 1024, int(statm[1]) * PAGE,
                        int(os.pread(files[2], 128, 0).split()[1]),
                        int(io[read:io.index(b"\n", read)]), int(io[written:io.index(b"\n", written)]))
            except (OSError, ValueError, IndexError):
                self._files = None
        self.files_now = 0
        return self.meter.peak(), current_rss(), int(cpu_wait() * 1e9), *storage_bytes()

    def stop(self) -> None:
        if self.meter.method != "vmhwm":
            self.meter.stop()
