"""CPU, I/O and processes beside memory: read from cgroup v1 and v2 folders (a fake tree here), from
the engine's stats, and turned into rates and totals by the sampler."""

from __future__ import annotations

import time
from pathlib import Path

from testdock.monitor.resources import CgroupResources, Resources, from_engine_stats, io_stat_bytes
from testdock.monitor.sampler import MemorySampler
from testdock.monitor.sources import Reading
from testdock.monitor.tests_running import ProgressFollower
from tests.conftest import write_tree

MiB = 2**20




def test_cgroup_v2_has_cpu_throttling_io_and_processes_in_one_folder(tmp_path: Path) -> None:
    write_tree(tmp_path / "cg", {
        "system.slice/docker-abc.scope/cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nnr_throttled 3\n"
                                                  "throttled_usec 400000\n",
        "system.slice/docker-abc.scope/io.stat": "8:0 rbytes=4096 wbytes=1048576 rios=1 wios=4\n"
                                                 "8:16 rbytes=0 wbytes=1048576 rios=0 wios=2\n",
        "system.slice/docker-abc.scope/pids.current": "7\n",
        "system.slice/docker-abc.scope/cgroup.procs": "",
    })
    resources = CgroupResources("abc", 2, tmp_path / "cg", tmp_path / "proc").read()
    assert resources == Resources(2.5, 0.4, 4096, 2 * MiB, 7)


def test_cgroup_v1_sums_storage_bytes_over_the_processes_and_keeps_those_that_ended(tmp_path: Path) -> None:
    """v1's block I/O counters miss buffered writes: /proc/PID/io counts them per process."""
    write_tree(tmp_path / "cg", {
        "cpuacct/docker/abc/cpuacct.usage": "1500000000\n",
        "cpu/docker/abc/cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 250000000\n",
        "pids/docker/abc/pids.current": "2\n",
        "memory/docker/abc/cgroup.procs": "11\n12\n",
    })
    write_tree(tmp_path / "proc", {"11/io": "rchar: 100\nwchar: 900\nread_bytes: 4096\nwrite_bytes: 8192\n",
                               "12/io": "rchar: 1\nwchar: 2\nread_bytes: 0\nwrite_bytes: 1048576\n"})
    reader = CgroupResources("abc", 1, tmp_path / "cg", tmp_path / "proc")
    assert reader.read() == Resources(1.5, 0.25, 4096, 8192 + MiB, 2)
    # process 12 ends: what it wrote stays counted
    (tmp_path / "cg" / "memory/docker/abc/cgroup.procs").write_text("11\n")
    (tmp_path / "proc" / "12" / "io").unlink()
    assert reader.read().written_bytes == 8192 + MiB


def test_a_container_gone_reads_as_unknown_not_as_zero(tmp_path: Path) -> None:
    assert CgroupResources("gone", 1, tmp_path, tmp_path).read() == Resources()
    assert io_stat_bytes(None) is None


def test_the_engines_stats_give_the_same_figures() -> None:
    stats = {"cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000},
                           "throttling_data": {"throttled_time": 500_000_000}},
             "blkio_stats": {"io_service_bytes_recursive": [
                 {"major": 8, "op": "Read", "value": 10}, {"major": 8, "op": "Write", "value": 20},
                 {"major": 8, "op": "Total", "value": 30}]},
             "pids_stats": {"current": 4}}
    assert from_engine_stats(stats) == Resources(3.0, 0.5, 10, 20, 4)
    assert from_engine_stats({}) == Resources()


class _Busy:
    """A container burning one CPU and writing 1 MiB per reading."""

    name = "busy"

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.readings = 0

    def read(self) -> Reading:
        self.readings += 1
        cpu = time.monotonic() - self.started
        return Reading(100 * MiB, 1024 * MiB, Resources(cpu, 0.0, 0, self.readings * MiB, 3))

    def close(self) -> None:
        pass


def test_the_sampler_turns_counters_into_cpu_percent_and_totals(tmp_path: Path) -> None:
    progress = tmp_path / "progress.jsonl"
    progress.write_text('{"event": "start", "nodeid": "t.py::burns", "ts": 1}\n')
    sampler = MemorySampler(_Busy(), tmp_path / "memory.csv", ProgressFollower(progress), interval=0.02)
    for _ in range(5):
        sampler.sample_once()
        time.sleep(0.02)
    stats = sampler.stop()
    assert 70 < stats.peak_cpu_percent < 130 and stats.peak_cpu_tests == ["t.py::burns"]
    assert stats.written_bytes == 5 * MiB and stats.read_bytes == 0 and stats.peak_processes == 3
    assert stats.cpu_seconds is not None and stats.cpu_seconds > 0.05
    assert [sample.cpu_percent is None for sample in stats.resources] == [True] + [False] * 4
    rows = (tmp_path / "memory.csv").read_text().splitlines()
    assert rows[1].endswith(f"burns,,,0,{MiB},3")  # no rate yet at the first sample
    cells = rows[2].split(",")
    assert 70 < float(cells[5]) < 130 and cells[6:] == ["0.0", "0", str(2 * MiB), "3"]
