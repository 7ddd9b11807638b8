"""Builds that cannot OOM: the memory of BuildKit's steps is sampled while images build (the
engine's `docker/buildkit` cgroup, read from this machine's /sys/fs/cgroup), each build's peak
kept per phase in .testdock/build-memory.json; with `--parallel auto` a build starts only when
the expected peaks of those running and its own fit the memory available (the machine's, or
less where the engine's BuildKit cgroup has a limit); a build the kernel killed for memory is
named with its step and retried alone, once.

A build's peak is the most BuildKit's steps held while it ran: exact for a build that ran
alone, more than its own beside others (the history errs on the safe side, and builds that ran
alone next time correct it). What counts is the memory the kernel cannot take back (anonymous
and shared memory): the page cache that steps' writes leave is reclaimed before anything is
killed. Where the engine runs elsewhere (a remote DOCKER_HOST) or its cgroups are not found,
nothing is measured and unknown builds are expected to take UNKNOWN_PEAK.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from testdock.monitor.sources import NO_LIMIT, read_int, stat_value
from testdock.safepaths import write_atomically
from testdock_pytest.memory.budget import unreclaimable_memory
from testdock_pytest.sizes import format_size

MEMORY_FILE = Path(".testdock") / "build-memory.json"
UNKNOWN_PEAK = 1 << 30  # what a build never measured is expected to take
KEEP = 5  # peaks kept per phase; the largest is expected
MARGIN = 0.1  # of the available memory, left to everything else
CGROUP_ROOT = Path("/sys/fs/cgroup")
SAMPLE_INTERVAL = 0.05


# -- the history --------------------------------------------------------------------------------
def load(root: Path) -> dict[str, list[int]]:
    try:
        data = json.loads((root / MEMORY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(phase): [int(peak) for peak in peaks if isinstance(peak, int)]
            for phase, peaks in data.items() if isinstance(peaks, list)}


_RECORDING = threading.Lock()  # builds end in their own threads: one reads and writes at a time


def record(root: Path, phase: str, peak: int) -> None:
    """Keep the build's peak (the last KEEP per phase); a history that cannot be written is
    skipped, never a failed build."""
    with _RECORDING:
        history = load(root)
        history[phase] = [*history.get(phase, []), peak][-KEEP:]
        with contextlib.suppress(OSError):
            write_atomically(root / MEMORY_FILE, json.dumps(history, indent=1))


def expected_peak(history: dict[str, list[int]], phase: str) -> int | None:
    peaks = history.get(phase)
    return max(peaks) if peaks else None


def available_memory(buildkit: BuildKitMemory | None = None) -> int:
    """What the builds can have: the machine's available memory (free, and caches it can drop),
    or what the engine's BuildKit cgroup's limit leaves, if that is less."""
    available = int(psutil.virtual_memory().available)
    limit = buildkit.limit() if buildkit is not None else None
    if limit is not None:
        available = min(available, limit)
    return available


# -- admission ------------------------------------------------------------------------------------
@dataclass
class MemoryGate:
    """Which builds may start: while the expected peaks of those running and the next one's fit
    the memory (less the margin); one always may when none runs, so nothing waits forever."""

    memory: int
    expected: Callable[[str], int]
    running: dict[str, int] = field(default_factory=dict)

    @property
    def room(self) -> int:
        return int(self.memory * (1 - MARGIN)) - sum(self.running.values())

    def may_start(self, phase: str) -> bool:
        return not self.running or self.expected(phase) <= self.room

    def started(self, key: str, expected: int | None = None) -> None:
        self.running[key] = self.expected(key) if expected is None else expected

    def ended(self, phase: str) -> None:
        self.running.pop(phase, None)


def too_big_alone(phases: Iterable[str], history: dict[str, list[int]], memory: int) -> list[str]:
    """A warning for each build whose last peaks exceed the memory it can have even alone."""
    warnings = []
    for phase in phases:
        peak = expected_peak(history, phase)
        if peak is not None and peak > memory * (1 - MARGIN):
            warnings.append(f"testdock: warning: the {phase} image's build took up to {format_size(peak)} "
                            f"in recent builds, and builds have {format_size(memory)} here: it may be "
                            "killed for memory (OOM) even alone; free memory, or build on a larger machine")
    return warnings


def most_at_once(cpus: int) -> int:
    """Builds at once at most: one per CPU, and never fewer than 3 (builds wait on the network
    and the disk as much as on a CPU: three on two CPUs finish sooner than two)."""
    return max(3, cpus)


def parallel_plan(phases: list[str], history: dict[str, list[int]], memory: int, cpus: int) -> str:
    """One line on what --parallel auto will do."""
    known = {phase: expected_peak(history, phase) for phase in phases}
    told = ", ".join(f"{phase} {format_size(peak) if peak else 'not measured yet'}"
                     for phase, peak in known.items())
    return (f"testdock: --parallel auto: builds start while their memory fits {format_size(memory)} "
            f"available (up to {most_at_once(cpus)} at once); recent peaks: {told}")


# -- measuring ------------------------------------------------------------------------------------
def buildkit_cgroup(root: Path = CGROUP_ROOT) -> tuple[Path, int] | None:
    """Where the engine's BuildKit runs its steps (the cgroupfs layout, v1 or v2), and the cgroup
    version; None where this machine has no memory cgroups to read. The folder itself appears
    with a fresh engine's first build step: until then, and where the engine puts its steps
    elsewhere (systemd-managed cgroups), nothing is read there and nothing is measured."""
    if (root / "cgroup.controllers").is_file():
        return root / "docker" / "buildkit", 2
    if (root / "memory").is_dir():
        return root / "memory" / "docker" / "buildkit", 1
    return None


class BuildKitMemory:
    """Samples the memory of BuildKit's steps while builds run; each build's peak is the most
    seen between its begin() and end()."""

    def __init__(self, folder: Path, version: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.folder = folder
        self.version = version
        self.interval = interval
        self._peaks: dict[int, int] = {}  # open builds: the most seen since each began
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def in_use(self) -> int | None:
        """Anonymous and shared memory of all BuildKit's steps now."""
        return unreclaimable_memory(self.folder / "memory.stat")

    def limit(self) -> int | None:
        """The cgroup's memory limit, None when it has none."""
        value = read_int(self.folder / ("memory.limit_in_bytes" if self.version == 1 else "memory.max"))
        return value if value is not None and value < NO_LIMIT else None

    def oom_kills(self) -> int:
        """Processes of BuildKit's steps the kernel killed for memory, so far."""
        return stat_value(self.folder / ("memory.oom_control" if self.version == 1 else "memory.events"),
                          "oom_kill")

    def begin(self) -> tuple[int, int]:
        """A build starts: its token and the OOM kills so far."""
        with self._lock:
            token, self._next = self._next, self._next + 1
            self._peaks[token] = self.in_use() or 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._sample, daemon=True)
                self._thread.start()
        return token, self.oom_kills()

    def end(self, begun: tuple[int, int]) -> tuple[int | None, int]:
        """The build is over: the most BuildKit's steps held while it ran, and the OOM kills
        since it began (beside other builds, some may be theirs: the failing step's exit code
        tells whose)."""
        token, kills_before = begun
        last = self.in_use()
        with self._lock:
            peak = max(self._peaks.pop(token, 0), last or 0)
        return peak or None, max(0, self.oom_kills() - kills_before)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            usage = self.in_use()
            if usage is None:
                continue
            with self._lock:
                for token, peak in self._peaks.items():
                    self._peaks[token] = max(peak, usage)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
