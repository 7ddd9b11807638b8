"""Where memory readings of a container come from: its cgroup files on this host (cheap, read at
10 Hz or more), or the engine's stats stream (about 1 Hz) when the files are out of reach."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from testdock.monitor.resources import CgroupResources, Resources, from_engine_stats

CGROUP_ROOT = Path("/sys/fs/cgroup")
NO_LIMIT = 1 << 60  # cgroup v1 writes 9223372036854771712 for "no limit", v2 writes "max"


@dataclass(frozen=True)
class Reading:
    usage: int  # bytes in use, page cache that can be dropped at once excluded (as `docker stats`)
    limit: int | None  # None: no limit
    resources: Resources | None = None  # CPU, I/O and processes, where the source reads them


class MemorySource(Protocol):
    name: str

    def read(self) -> Reading | None: ...

    def close(self) -> None: ...


def read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    if text == "max":
        return NO_LIMIT
    try:
        return int(text)
    except ValueError:
        return None


def stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


@dataclass(frozen=True)
class CgroupFiles:
    usage: Path
    limit: Path
    stat: Path
    inactive_key: str
    events: Path  # where oom_kill is counted
    version: int


def cgroup_files(container_id: str, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
    """The memory files of a container's cgroup on this host (cgroupfs or systemd driver)."""
    for folder in (root / "memory" / "docker" / container_id,
                   root / "memory" / "system.slice" / f"docker-{container_id}.scope"):
        if (folder / "memory.usage_in_bytes").is_file():
            return CgroupFiles(folder / "memory.usage_in_bytes", folder / "memory.limit_in_bytes",
                               folder / "memory.stat", "total_inactive_file",
                               folder / "memory.oom_control", 1)
    for folder in (root / "system.slice" / f"docker-{container_id}.scope", root / "docker" / container_id):
        if (folder / "memory.current").is_file():
            return CgroupFiles(folder / "memory.current", folder / "memory.max", folder / "memory.stat",
                               "inactive_file", folder / "memory.events", 2)
    return None


class CgroupSource:
    """Readings from cgroup files (v1 or v2): memory, and with `resources` the rest."""

    def __init__(self, files: CgroupFiles, resources: CgroupResources | None = None) -> None:
        self.files = files
        self.resources = resources
        self.name = f"cgroup v{files.version}"
        self.last_oom_kills = 0  # kept from the last reading: the cgroup vanishes with the container

    def read(self) -> Reading | None:
        usage = read_int(self.files.usage)
        if usage is None:
            return None
        self.last_oom_kills = max(self.last_oom_kills, self.oom_kills())
        limit = read_int(self.files.limit)
        usage = max(0, usage - stat_value(self.files.stat, self.files.inactive_key))
        resources = self.resources.read() if self.resources is not None else None
        return Reading(usage, None if limit is None or limit >= NO_LIMIT else limit, resources)

    def oom_kills(self) -> int:
        return stat_value(self.files.events, "oom_kill")

    def close(self) -> None:
        pass


class StatsSource:
    """Readings from the engine's stats stream, for engines whose cgroups are not on this host."""

    name = "docker stats"

    def __init__(self, container: Any) -> None:
        self._latest: Reading | None = None
        self._stop = threading.Event()
        self._stream = container.stats(stream=True, decode=True)
        self._thread = threading.Thread(target=self._follow, name="testdock-stats", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for stats in self._stream:
                if self._stop.is_set():
                    return
                memory = stats.get("memory_stats") or {}
                if "usage" not in memory:
                    continue
                details = memory.get("stats") or {}
                cache = details.get("total_inactive_file", details.get("inactive_file", 0))
                limit = memory.get("limit")
                self._latest = Reading(max(0, int(memory["usage"]) - int(cache)),
                                       int(limit) if limit and int(limit) < NO_LIMIT else None,
                                       from_engine_stats(stats))
        except Exception:  # the stream ends with the container, in whatever way the SDK chooses
            return

    def read(self) -> Reading | None:
        return self._latest

    def close(self) -> None:
        self._stop.set()
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class ProcessTreeSource:
    """Readings for a process and its descendants (RSS summed), for runs without a container."""

    def __init__(self, pid: int, limit: int | None) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self._limit = limit
        self.name = "process tree (psutil)"

    def read(self) -> Reading | None:
        import psutil

        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return None
        total = 0
        cpu = 0.0
        read = written = 0
        for process in processes:
            try:
                total += process.memory_info().rss
                times = process.cpu_times()
                cpu += times.user + times.system
                counters = process.io_counters()
                read, written = read + counters.read_bytes, written + counters.write_bytes
            except (psutil.Error, AttributeError):  # io_counters: not on every platform
                continue
        return Reading(total, self._limit, Resources(cpu, None, read, written, len(processes)))

    def close(self) -> None:
        pass
