"""The system resources of a container beside its memory, from the same cgroup: CPU time and CPU
throttling, bytes read from and written to storage, and the number of processes.

cgroup v2 has them all in the container's folder (`cpu.stat`, `io.stat`, `pids.current`). cgroup
v1 splits them over hierarchies (`cpuacct`, `cpu`, `pids`), and its block I/O counters miss the
buffered writes a test makes (the kernel's flusher writes them back, outside the container's
cgroup): there, storage bytes are summed over the container's processes from `/proc/PID/io`,
which counts them when the process dirties the pages; a process that has ended keeps the count it
had when last seen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")


@dataclass(frozen=True)
class Resources:
    """Counters since the container started (seconds, bytes) and the processes now; None where
    the source does not say."""

    cpu_seconds: float | None = None
    throttled_seconds: float | None = None
    read_bytes: int | None = None
    written_bytes: int | None = None
    processes: int | None = None


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, ValueError):
        return None


def _keyed(text: str | None, key: str) -> int | None:
    """The value of `key` in a `key value` per line file (cpu.stat, /proc/PID/io's `key: value`)."""
    if text is None:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.rstrip(":") == key:
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def _int(path: Path) -> int | None:
    text = _text(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def io_stat_bytes(text: str | None) -> tuple[int, int] | None:
    """(read, written) bytes summed over the devices of a cgroup v2 `io.stat`."""
    if text is None:
        return None
    read = written = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                written += int(value)
    return read, written


class ProcessIO:
    """Storage bytes of a set of processes over time: each process's `/proc/PID/io` counters,
    the last values of those that ended kept in the sum."""

    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self._last: dict[int, tuple[int, int]] = {}

    def totals(self, pids: list[int]) -> tuple[int, int]:
        for pid in pids:
            text = _text(self.proc / str(pid) / "io")
            read, written = _keyed(text, "read_bytes"), _keyed(text, "write_bytes")
            if read is not None and written is not None:
                self._last[pid] = (read, written)
        return (sum(read for read, _ in self._last.values()),
                sum(written for _, written in self._last.values()))

    @property
    def seen(self) -> bool:
        return bool(self._last)


def _pids(path: Path) -> list[int]:
    text = _text(path)
    return [int(line) for line in text.split()] if text else []


class CgroupResources:
    """The resources of one container, read from its cgroup folders (v1 or v2)."""

    def __init__(self, container_id: str, version: int, root: Path = CGROUP_ROOT, proc: Path = PROC) -> None:
        self.version = version
        self._io = ProcessIO(proc)
        self._cpu_usage: Path | None = None  # v1's own file; v2 has it in cpu.stat
        self._io_stat: Path | None = None  # v2's; v1 sums /proc/PID/io
        if version == 2:
            folder = next((folder for folder in (root / "system.slice" / f"docker-{container_id}.scope",
                                                 root / "docker" / container_id) if folder.is_dir()),
                          root / "docker" / container_id)
            self._cpu_stat = folder / "cpu.stat"
            self._io_stat = folder / "io.stat"
            self._pids = folder / "pids.current"
            self._procs = folder / "cgroup.procs"
            return

        def v1(controller: str, file: str) -> Path:
            for folder in (root / controller / "docker" / container_id,
                           root / controller / "system.slice" / f"docker-{container_id}.scope"):
                if (folder / file).is_file():
                    return folder / file
            return root / controller / "docker" / container_id / file

        usages = tuple(v1(controller, "cpuacct.usage") for controller in ("cpuacct", "cpu,cpuacct", "cpu"))
        self._cpu_usage = next((path for path in usages if path.is_file()), usages[0])
        self._cpu_stat = next((path for path in (v1("cpu", "cpu.stat"), v1("cpu,cpuacct", "cpu.stat"))
                               if path.is_file()), v1("cpu", "cpu.stat"))
        self._pids = v1("pids", "pids.current")
        self._procs = v1("memory", "cgroup.procs")

    def read(self) -> Resources:
        cpu_stat = _text(self._cpu_stat)
        if self._cpu_usage is not None:  # v1: nanoseconds
            usage = _int(self._cpu_usage)
            cpu = usage / 1e9 if usage is not None else None
            throttled_ns = _keyed(cpu_stat, "throttled_time")
            throttled = throttled_ns / 1e9 if throttled_ns is not None else None
        else:  # v2: microseconds
            usage = _keyed(cpu_stat, "usage_usec")
            cpu = usage / 1e6 if usage is not None else None
            throttled_us = _keyed(cpu_stat, "throttled_usec")
            throttled = throttled_us / 1e6 if throttled_us is not None else None
        pids = _pids(self._procs)
        io = io_stat_bytes(_text(self._io_stat)) if self._io_stat is not None else None
        if io is None or io == (0, 0):  # v1, or a v2 kernel that does not attribute writeback
            io = self._io.totals(pids) if pids or self._io.seen else None
        # processes, not threads: the pids controller counts every task (a worker's threads too)
        processes = len(pids) if pids else _int(self._pids)
        return Resources(cpu, throttled, io[0] if io else None, io[1] if io else None, processes)


def from_engine_stats(stats: dict[str, object]) -> Resources:
    """The same figures from one entry of the engine's stats stream (`docker stats`), for
    engines whose cgroups are not on this host."""
    cpu_stats = stats.get("cpu_stats")
    cpu = throttled = None
    if isinstance(cpu_stats, dict):
        usage = (cpu_stats.get("cpu_usage") or {}).get("total_usage")
        cpu = int(usage) / 1e9 if usage is not None else None
        throttling = (cpu_stats.get("throttling_data") or {}).get("throttled_time")
        throttled = int(throttling) / 1e9 if throttling is not None else None
    read = written = None
    blkio = stats.get("blkio_stats")
    entries = blkio.get("io_service_bytes_recursive") if isinstance(blkio, dict) else None
    if isinstance(entries, list):
        read = sum(int(e.get("value", 0)) for e in entries if str(e.get("op", "")).lower() == "read")
        written = sum(int(e.get("value", 0)) for e in entries if str(e.get("op", "")).lower() == "write")
    pids_stats = stats.get("pids_stats")
    current = pids_stats.get("current") if isinstance(pids_stats, dict) else None
    return Resources(cpu, throttled, read, written, int(current) if current is not None else None)
