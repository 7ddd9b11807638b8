from __future__ import annotations

from pathlib import Path

import pytest

import testdock_pytest.memory.budget as budget
from testdock_pytest import sizes


def test_cgroup_v1_limit_inside_a_container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("1073741824\n")
    monkeypatch.setattr(budget, "_cgroup_paths", lambda root=tmp_path: [
        tmp_path / "memory.max", tmp_path / "memory" / "memory.limit_in_bytes"])
    assert budget.cgroup_limit(tmp_path) == 2**30
    assert budget.find_budget("4g") == (2**30, "cgroup memory limit")


@pytest.mark.parametrize("text", ["9223372036854771712", "max"])
def test_no_limit_values_are_recognised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    (tmp_path / "memory.max").write_text(text + "\n")
    monkeypatch.setattr(budget, "_cgroup_paths", lambda root=tmp_path: [tmp_path / "memory.max"])
    assert budget.cgroup_limit(tmp_path) is None
    assert budget.find_budget("4g") == (4 * 2**30, "--memory-budget")
    monkeypatch.setattr(budget, "physical_memory", lambda: 8 * 2**30)
    assert budget.find_budget(None) == (8 * 2**30, "physical memory")


def test_memory_in_use_is_what_the_kernel_cannot_drop(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Anonymous and shared memory, not the page cache: what an OOM kill is decided on."""
    v1, v2 = tmp_path / "memory", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    (v1 / "memory.limit_in_bytes").write_text("1073741824\n")
    (v1 / "memory.stat").write_text("cache 5\nrss 7\ntotal_cache 300\ntotal_rss 500\ntotal_shmem 20\n")
    (v2 / "memory.max").write_text("1073741824\n")
    (v2 / "memory.stat").write_text("anon 400\nfile 900\nshmem 10\n")
    monkeypatch.setattr(budget, "_cgroup_paths", lambda root=tmp_path: [v1 / "memory.limit_in_bytes"])
    assert budget.cgroup_memory_in_use(tmp_path) == 520
    monkeypatch.setattr(budget, "_cgroup_paths", lambda root=tmp_path: [v2 / "memory.max"])
    assert budget.cgroup_memory_in_use(tmp_path) == 410
    (v2 / "memory.max").write_text("max\n")  # no limit: nothing to keep under
    assert budget.cgroup_memory_in_use(tmp_path) is None


def test_sizes() -> None:
    assert sizes.parse_size("300 MiB") == 300 * 2**20
    assert sizes.parse_size("1g") == 2**30
    with pytest.raises(ValueError):
        sizes.parse_size("a lot")
