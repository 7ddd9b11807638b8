"""The memory budget a test run must stay under: the cgroup limit of this process, else the
user's --memory-budget, else physical memory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from testdock_pytest.sizes import parse_size

NO_LIMIT = 1 << 60


def _cgroup_paths(root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """This process's memory limit files, v2 and v1, own cgroup first."""
    paths: list[Path] = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        relative = path.lstrip("/")
        if hierarchy == "0" and controllers == "":
            paths.append(root / relative / "memory.max")
        elif "memory" in controllers.split(","):
            paths.append(root / "memory" / relative / "memory.limit_in_bytes")
    # inside a container the own cgroup is mounted at the root
    paths += [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    return paths


def cgroup_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of this process's cgroup, or None where there is none."""
    for path in _cgroup_paths(root):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        return None if value >= NO_LIMIT else value
    return None


def _stat(path: Path) -> dict[str, int]:
    values = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[name] = int(value)
    return values


def cgroup_memory_in_use(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """What this process's limited cgroup holds now that the kernel cannot just drop (anonymous
    memory and shared memory; page cache is reclaimed before anything is killed): what an OOM
    kill is decided on. None where no limit applies or the files cannot be read."""
    for path in _cgroup_paths(root):
        if not path.is_file():
            continue
        try:
            text = path.read_text().strip()
            if text == "max" or int(text) >= NO_LIMIT:
                return None
        except (OSError, ValueError):
            continue
        return unreclaimable_memory(path.with_name("memory.stat"))
    return None


def unreclaimable_memory(stat_file: Path) -> int | None:
    """From a cgroup's memory.stat (v1 or v2): its anonymous and shared memory, with its
    descendants'; None when the file cannot be read."""
    try:
        stat = _stat(stat_file)
    except (OSError, ValueError):
        return None
    if "total_rss" in stat:  # v1, with the hierarchy's totals
        return stat["total_rss"] + stat.get("total_shmem", 0)
    if "anon" in stat:  # v2
        return stat["anon"] + stat.get("shmem", 0)
    return None


def physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def find_budget(option: str | None) -> tuple[int | None, str]:
    """(bytes, where it came from)."""
    limit = cgroup_limit()
    if limit is not None:
        return limit, "cgroup memory limit"
    if option:
        return parse_size(option), "--memory-budget"
    physical = physical_memory()
    return physical, "physical memory" if physical else "unknown"


def configured_budget(config: Any) -> tuple[int | None, float]:
    """(the budget, the margin as a fraction) from pytest's options and ini."""
    option = config.getoption("memory_budget") or config.getini("memory_budget") or None
    budget, _ = find_budget(option)
    margin_text = str(config.getoption("testdock_margin") or config.getini("testdock_margin") or "10%")
    return budget, float(margin_text.rstrip("%")) / 100
