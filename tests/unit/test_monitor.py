"""Monitoring pieces without Docker: cgroup files, progress following, sampling, plot, metrics,
and the JUnit file written for killed runs."""

from __future__ import annotations

import json
import os
import time
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from testdock.monitor.junit import junit_from_progress
from testdock.monitor.metrics import RunMetrics
from testdock.monitor.plot import plot_memory
from testdock.monitor.resources import Resources
from testdock.monitor.sampler import MemorySampler
from testdock.monitor.session import MonitoringFiles, MonitoringSession
from testdock.monitor.sources import CgroupSource, Reading, cgroup_files
from testdock.monitor.tests_running import ProgressFollower
from testdock.ports import free_port

MiB = 2**20


def _v1(root: Path, container: str, usage: int, limit: int, inactive: int) -> Path:
    folder = root / "memory" / "docker" / container
    folder.mkdir(parents=True)
    (folder / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (folder / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (folder / "memory.stat").write_text(f"cache 5\ntotal_inactive_file {inactive}\n")
    (folder / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    return folder


def test_cgroup_v1_reading_excludes_inactive_page_cache(tmp_path: Path) -> None:
    _v1(tmp_path, "abc", usage=300 * MiB, limit=1024 * MiB, inactive=20 * MiB)
    files = cgroup_files("abc", tmp_path)
    assert files is not None and files.version == 1
    source = CgroupSource(files)
    assert source.read() == Reading(280 * MiB, 1024 * MiB)
    assert source.oom_kills() == 2


def test_cgroup_v1_no_limit_and_v2_files(tmp_path: Path) -> None:
    _v1(tmp_path, "nolimit", usage=MiB, limit=9223372036854771712, inactive=0)
    files = cgroup_files("nolimit", tmp_path)
    assert files is not None
    assert CgroupSource(files).read() == Reading(MiB, None)
    folder = tmp_path / "system.slice" / "docker-v2id.scope"
    folder.mkdir(parents=True)
    (folder / "memory.current").write_text("1000\n")
    (folder / "memory.max").write_text("max\n")
    (folder / "memory.stat").write_text("anon 900\ninactive_file 100\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    files = cgroup_files("v2id", tmp_path)
    assert files is not None and files.version == 2
    source = CgroupSource(files)
    assert source.read() == Reading(900, None)
    assert source.oom_kills() == 1
    assert cgroup_files("missing", tmp_path) is None


def _event(handle: object, **event: object) -> None:
    handle.write(json.dumps({"ts": time.time(), **event}) + "\n")  # type: ignore[attr-defined]


def test_progress_follower_tracks_running_done_failed_and_waits_for_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    follower = ProgressFollower(path)
    follower.poll()  # no file yet: nothing happens
    with path.open("w") as handle:
        _event(handle, event="start", nodeid="t.py::a")
        _event(handle, event="start", nodeid="t.py::b")
        _event(handle, event="finish", nodeid="t.py::a", outcome="failed")
        handle.write('{"event": "start", "nodeid": "t.py::c"')  # half a line
    follower.poll()
    assert follower.current() == ["t.py::b"]
    assert (follower.done, follower.failed) == (1, 1)
    with path.open("a") as handle:
        handle.write(', "ts": 1}\n')
    follower.poll()
    assert follower.current() == ["t.py::b", "t.py::c"] or follower.current() == ["t.py::c", "t.py::b"]
    assert follower.last_started == "t.py::c"


class _Ramp:
    """A memory source that climbs to a peak and falls (our own protocol, no Docker involved)."""

    name = "ramp"

    def __init__(self, values: list[int], limit: int) -> None:
        self.values = values
        self.limit = limit
        self.index = 0

    def read(self) -> Reading | None:
        value = self.values[min(self.index, len(self.values) - 1)]
        self.index += 1
        return Reading(value, self.limit)

    def close(self) -> None:
        pass


def test_sampler_writes_csv_and_finds_peak_test_and_time_above_90(tmp_path: Path) -> None:
    progress = tmp_path / "progress.jsonl"
    with progress.open("w") as handle:
        _event(handle, event="start", nodeid="t.py::heavy")
    follower = ProgressFollower(progress)
    values = [100 * MiB, 500 * MiB, 950 * MiB, 960 * MiB, 200 * MiB]
    sampler = MemorySampler(_Ramp(values, 1000 * MiB), tmp_path / "memory.csv", follower, interval=0.01)
    for _ in values:
        sampler.sample_once()
        time.sleep(0.01)
    stats = sampler.stop()
    assert stats.peak == 960 * MiB and stats.peak_tests == ["t.py::heavy"]
    assert stats.headroom == 40 * MiB
    assert 0.005 < stats.seconds_above_90 < 0.2
    rows = (tmp_path / "memory.csv").read_text().splitlines()
    assert rows[0] == ("time,elapsed_s,usage_bytes,limit_bytes,running_tests,cpu_percent,"
                       "throttled_percent,read_bytes,written_bytes,processes")
    assert len(rows) == 1 + len(values)
    assert rows[3].endswith(f",{950 * MiB},{1000 * MiB},t.py::heavy,,,,,")  # no resources read


def test_a_limit_that_reads_as_gone_at_the_end_is_still_the_limit(tmp_path: Path) -> None:
    """The last sample, as the container goes, finds its cgroup's limit file gone: the run had a
    limit all along, and the summary's headroom must say so."""
    source = _Ramp([100 * MiB, 300 * MiB, 3 * MiB], 1000 * MiB)
    sampler = MemorySampler(source, tmp_path / "memory.csv", None, interval=0.01)
    sampler.sample_once()
    sampler.sample_once()
    source.limit = None  # type: ignore[assignment]
    sampler.sample_once()
    stats = sampler.stop()
    assert stats.limit == 1000 * MiB and stats.headroom == 700 * MiB


class _OneBusyCpu:
    """A source whose CPU counter runs with the clock: one CPU busy all the time."""

    name = "busy"

    def __init__(self) -> None:
        self.started = time.monotonic()

    def read(self) -> Reading | None:
        return Reading(MiB, None, Resources(cpu_seconds=time.monotonic() - self.started))

    def close(self) -> None:
        pass


class _SlowFollower(ProgressFollower):
    """Following the progress file takes long every other sample (a big file's new lines)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.polls = 0

    def poll(self) -> None:
        self.polls += 1
        time.sleep(0.15 if self.polls % 2 else 0.0)
        super().poll()


def test_the_cpu_rate_is_over_the_readings_own_interval(tmp_path: Path) -> None:
    """aiohttp's run said "peak 2975% of a CPU" on a 2-CPU machine: the interval was timed after
    the progress file was followed, not when the counter was read."""
    progress = tmp_path / "progress.jsonl"
    progress.write_text("")
    sampler = MemorySampler(_OneBusyCpu(), tmp_path / "memory.csv", _SlowFollower(progress), interval=0.01)
    for _ in range(6):
        sampler.sample_once()
    stats = sampler.stop()
    assert 90 <= stats.peak_cpu_percent <= 115


class _JumpingCounter(_OneBusyCpu):
    """A counter read late: ten CPU seconds between two readings 10 ms apart."""

    def read(self) -> Reading | None:
        self.calls = getattr(self, "calls", 0) + 1
        return Reading(MiB, None, Resources(cpu_seconds=10.0 * self.calls))


def test_the_cpu_rate_never_exceeds_all_the_cpus(tmp_path: Path) -> None:
    sampler = MemorySampler(_JumpingCounter(), tmp_path / "memory.csv", None, interval=0.01)
    for _ in range(3):
        sampler.sample_once()
        time.sleep(0.01)
    assert sampler.stop().peak_cpu_percent == 100.0 * (os.cpu_count() or 1)


def test_sampler_thread_samples_at_10_hz_or_more(tmp_path: Path) -> None:
    sampler = MemorySampler(_Ramp([MiB], 10 * MiB), tmp_path / "memory.csv", None, interval=0.05).start()
    time.sleep(1.0)
    stats = sampler.stop()
    assert stats.samples >= 10


def test_plot_is_a_png(tmp_path: Path) -> None:
    sampler = MemorySampler(_Ramp([MiB, 5 * MiB, 2 * MiB], 10 * MiB), tmp_path / "m.csv", None)
    for _ in range(3):
        sampler.sample_once()
    path = plot_memory(sampler.stop(), tmp_path / "memory-profile.png", "test")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_are_served_while_the_run_lasts_and_written_after(tmp_path: Path) -> None:
    metrics = RunMetrics("execution")
    port = free_port()
    metrics.serve(port)
    metrics.update(300 * MiB, 1024 * MiB, 400 * MiB, done=5, failed=1, running=2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'testdock_memory_usage_bytes{phase="execution"} 3.145728e+08' in text
    assert 'testdock_tests_failed{phase="execution"} 1.0' in text
    metrics.close(tmp_path / "metrics.prom")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    assert 'testdock_tests_done{phase="execution"} 5.0' in (tmp_path / "metrics.prom").read_text()


def test_a_monitoring_session_samples_serves_writes_and_plots_what_every_run_kind_needs(
        tmp_path: Path) -> None:
    progress = tmp_path / "progress.jsonl"
    with progress.open("w") as handle:
        _event(handle, event="start", nodeid="t.py::heavy")
    port = free_port()
    files = MonitoringFiles(tmp_path / "memory.csv", tmp_path / "memory-profile.png", "a run",
                            tmp_path / "metrics.prom")
    session = MonitoringSession(_Ramp([100 * MiB, 700 * MiB, 300 * MiB], 1000 * MiB), files,
                                ProgressFollower(progress), 0.02, "execution", port).start()
    time.sleep(0.3)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert 'testdock_tests_running{phase="execution"} 1.0' in response.read().decode()
    stats = session.stop()
    assert stats.peak == 700 * MiB and stats.peak_tests == ["t.py::heavy"]
    assert session.finish() == files.plot
    assert files.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = files.metrics.read_text() if files.metrics else ""
    assert f'testdock_memory_peak_bytes{{phase="execution"}} {float(700 * MiB):e}' in written
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    # without a phase for Prometheus (the backend app, the load test): the CSV and the plot only
    quiet = MonitoringFiles(tmp_path / "app.csv", tmp_path / "app.png", "the app")
    with MonitoringSession(_Ramp([MiB], 10 * MiB), quiet, None, 0.02) as app:
        time.sleep(0.1)
    assert app.plot == quiet.plot and quiet.csv.read_text().count("\n") > 1


def test_junit_from_progress_keeps_finished_tests_and_the_killed_one(tmp_path: Path) -> None:
    progress = tmp_path / "p.jsonl"
    with progress.open("w") as handle:
        _event(handle, event="start", nodeid="tests/test_a.py::test_ok")
        _event(handle, event="finish", nodeid="tests/test_a.py::test_ok", outcome="passed")
        _event(handle, event="start", nodeid="tests/test_a.py::test_bad")
        _event(handle, event="finish", nodeid="tests/test_a.py::test_bad", outcome="failed")
        _event(handle, event="start", nodeid="tests/test_b.py::test_huge")
    count = junit_from_progress(progress, tmp_path / "junit.xml", ["tests/test_b.py::test_huge"], "OOM")
    assert count == 3
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot()[0]
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("errors") == "1"
    names = [case.get("name") for case in suite]
    assert names == ["test_ok", "test_bad", "test_huge"]
    assert suite[2][0].tag == "error" and suite[2][0].get("message") == "OOM"


def test_collect_output_is_read_from_the_plugins_record() -> None:
    from testdock.run.collect import differences, parse_output
    from testdock_pytest.contract import CollectionRecord

    record = CollectionRecord(
        nodeids=["tests/test_a.py::test_one", "tests/test_a.py::test_two[1-x]"],
        errors=["tests/test_b.py"], error_frames={"tests/test_b.py": ["tests/test_b.py"]},
        stubbed=["numpy", "pandas"], left_missing=["scipy", "statsmodels"],
        predicted=["t.py::test_p: parametrized from np.arange()"])
    output = "\n".join([  # whatever pytest printed around it is not read
        "<Dir app>", "  <Module tests/test_a.py>", "tests/test_z.py::not_a_listing_line",
        record.line(), "ERROR tests/test_c.py - not the record's",
        'TESTDOCK-COLLECT {"code": 2, "seconds": 0.25, "rss": 35000000}'])
    collection = parse_output("collection", "img:tag", output)
    assert collection.nodeids == record.nodeids and collection.errors == ["tests/test_b.py"]
    assert collection.error_frames == {"tests/test_b.py": ["tests/test_b.py"]}
    assert collection.stubbed == ["numpy", "pandas"]
    assert collection.left_missing == ["scipy", "statsmodels"]
    assert collection.predicted == ["t.py::test_p: parametrized from np.arange()"]
    assert (collection.exit_code, collection.seconds, collection.peak_rss) == (2, 0.25, 35000000)
    execution = parse_output("execution", "img:tag", CollectionRecord(
        nodeids=["tests/test_a.py::test_one", "tests/test_c.py::test_x"]).line())
    assert differences(collection, execution) == (["tests/test_a.py::test_two[1-x]"],
                                                  ["tests/test_c.py::test_x"])


def test_a_record_from_a_newer_plugin_is_one_clear_error() -> None:
    import pytest

    from testdock.errors import BadInput
    from testdock.run.collect import parse_output
    from testdock_pytest.contract import VERSION, CollectionRecord

    with pytest.raises(BadInput, match="upgrade testdock, or rebuild the image"):
        parse_output("collection", "img:tag", CollectionRecord(version=VERSION + 1).line())


def test_without_a_record_pytests_own_listing_is_read() -> None:
    from testdock.run.collect import parse_output

    output = "\n".join([
        "tests/test_a.py::test_one", "tests/test_a.py::test_two[1-x]", "",
        "ERROR tests/test_b.py - ModuleNotFoundError: No module named 'x'",
        "2 tests collected, 1 error in 0.10s"])
    collection = parse_output("collection", "img:tag", output)
    assert collection.nodeids == ["tests/test_a.py::test_one", "tests/test_a.py::test_two[1-x]"]
    assert collection.errors == ["tests/test_b.py"]


def test_read_only_failures_are_counted_from_junit(tmp_path: Path) -> None:
    from testdock.run.phase import read_only_failures

    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuite><testcase name="a"><failure message="OSError: [Errno 30] Read-only file '
                     'system: \'/app/x\'"/></testcase><testcase name="b"><failure message="boom"/></testcase>'
                     '<testcase name="c"/></testsuite>')
    assert read_only_failures(junit) == 1
    assert read_only_failures(tmp_path / "missing.xml") == 0


def test_collect_output_keeps_the_projects_frames_of_each_error() -> None:
    from testdock.run.collect import parse_output

    output = "\n".join([  # pytest's own output, as from an image without the plugin
        "==================================== ERRORS ====================================",
        "_________________________ ERROR collecting pkg/maps.py _________________________",
        "pkg/maps.py:14: in <module>", "    seismic = Interpolated(", "<string>:6: in __init__",
        "pkg/_interpolated.py:74: in __post_init__",
        "/opt/venv/lib/python3.11/site-packages/numpy/core.py:3: in f",
        "E   ValueError: lengths differ",
        "=========================== short test summary info ============================",
        "pkg/other.py:1: in <module>"])
    collection = parse_output("collection", "img:tag", output)
    assert collection.error_frames == {"pkg/maps.py": ["pkg/maps.py", "pkg/_interpolated.py"]}


def test_a_refused_write_in_the_output_of_a_failed_read_only_run_gets_the_hint() -> None:
    from testdock.run.phase import RunResult, summary_lines

    def hint(**fields: object) -> bool:
        result = RunResult("execution", "img", 3, False, 2**30, **fields)  # type: ignore[arg-type]
        return any("read_only = false" in line for line in summary_lines(result))

    assert hint(refused_writes=True, read_only=True)
    assert not hint(refused_writes=True, read_only=False)  # already writable: something else
    assert not hint(refused_writes=False, read_only=True)
    passed = RunResult("execution", "img", 0, False, 2**30, refused_writes=True, read_only=True)
    assert not any("read_only" in line for line in summary_lines(passed))


def test_tests_whose_ids_change_between_collections_are_left_out_of_the_comparison() -> None:
    from testdock.run.collect import Collection, differences, unstable_tests

    stamp = "tests/test_dates.py::TestParse::test_invalid[{}]"
    collection = Collection("collection", "img", 0, nodeids=[stamp.format("00:58:01"), "t.py::test_a",
                                                             "t.py::test_b[1]"])
    collection.unstable = [stamp.format("00:58:01"), stamp.format("00:58:03")]
    execution = Collection("execution", "img", 0, nodeids=[stamp.format("00:58:02"), "t.py::test_a"])

    assert unstable_tests(collection) == ["tests/test_dates.py::TestParse::test_invalid"]
    assert differences(collection, execution) == (["t.py::test_b[1]"], [])


def test_only_tests_found_both_times_under_other_ids_are_unstable() -> None:
    from testdock.run.collect import changed_ids

    first = ["t.py::test_time[00:01]", "t.py::test_a", "u.py::test_flaky_file", "t.py::test_p[1]"]
    second = ["t.py::test_time[00:02]", "t.py::test_a", "t.py::test_p[1]", "t.py::test_new"]

    # u.py missing from one run (a file that failed once) and test_new are no instability
    assert changed_ids(first, second) == ["t.py::test_time[00:01]", "t.py::test_time[00:02]"]
    assert changed_ids(first, []) == []


def test_the_summary_names_the_plot_where_it_is_from_the_project() -> None:
    from testdock.monitor.sampler import MemoryStats
    from testdock.run.phase import RunResult, summary_lines

    stats = MemoryStats(samples=10, duration=1.0, peak=2**28, limit=2**30)
    result = RunResult("execution", "img", 0, False, 2**30, stats=stats,
                       plot=Path("/project/monitoring/memory-profile.png"))
    assert "plot in monitoring/memory-profile.png" in "\n".join(summary_lines(result))


def test_the_plot_process_runs_only_on_idle_cpu_time_until_the_run_waits_for_it() -> None:
    import os
    import subprocess
    import sys

    from testdock.monitor.plot import idle_priority, normal_priority

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        idle_priority(child.pid)
        assert os.sched_getscheduler(child.pid) == os.SCHED_IDLE
        normal_priority(child.pid)
        assert os.sched_getscheduler(child.pid) == os.SCHED_OTHER
    finally:
        child.kill()
        child.wait()


def test_the_plot_keeps_the_limit_when_the_last_row_lost_it(tmp_path: Path) -> None:
    from testdock.monitor.plot import stats_from_csv

    csv_path = tmp_path / "memory.csv"
    csv_path.write_text("time,elapsed_s,usage_bytes,limit_bytes,running_tests\n"
                        f"t,0.0,{100 * MiB},{1024 * MiB},a\nt,0.1,{300 * MiB},{1024 * MiB},b\n"
                        f"t,0.2,{3 * MiB},,\n")
    stats = stats_from_csv(csv_path)
    assert stats.limit == 1024 * MiB and stats.peak == 300 * MiB and stats.peak_tests == ["b"]


class _Container:
    """A container whose removal fails the first `failures` times (an engine busy or gone)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def remove(self, force: bool = False) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("engine busy")


def test_a_removal_that_failed_in_the_background_is_tried_again_and_its_error_told() -> None:
    from testdock.run.phase import ContainerRemoval

    once = _Container(failures=1)
    ContainerRemoval(once).wait()
    assert once.calls == 2  # tried again in the foreground, which worked
    always = _Container(failures=5)
    with pytest.raises(RuntimeError, match="engine busy"):
        ContainerRemoval(always).wait()
    fine = _Container(failures=0)
    ContainerRemoval(fine).wait()
    assert fine.calls == 1


class _Switch:
    """A memory source at `before` until switched, then at `after`."""

    name = "switch"

    def __init__(self, before: int, after: int) -> None:
        self.value, self.after = before, after

    def switch(self) -> None:
        self.value = self.after

    def read(self) -> Reading | None:
        return Reading(self.value, 1000 * MiB)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("after", "late_seconds", "drawings"), [
    (100 * MiB, None, 1),  # the end as sampled when pytest printed its summary: drawn then
    (900 * MiB, None, 2),  # a higher peak after it: drawn again
    (100 * MiB, 0.05, 2),  # the run went on long after it (a nested run's summary): drawn again
])
def test_the_plot_drawn_at_pytests_summary_stands_unless_more_came_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: int, late_seconds: float | None,
        drawings: int) -> None:
    import testdock.monitor.session as session_module
    from testdock.monitor.plot import PlotRenderer

    requests: list[Path] = []

    class Counted(PlotRenderer):
        def request(self, csv_path: Path, path: Path, title: str) -> None:
            requests.append(csv_path)
            super().request(csv_path, path, title)

    monkeypatch.setattr(session_module, "PlotRenderer", Counted)
    if late_seconds is not None:
        monkeypatch.setattr(session_module, "EARLY_DRAWING_SECONDS", late_seconds)
    source = _Switch(100 * MiB, after)
    files = MonitoringFiles(tmp_path / "memory.csv", tmp_path / "memory-profile.png", "a run")
    session = MonitoringSession(source, files, None, 0.02).start()
    time.sleep(0.2)
    session.draw_early()
    source.switch()
    time.sleep(0.3)
    assert session.finish() == files.plot and files.plot.read_bytes()[:4] == b"\x89PNG"
    assert len(requests) == drawings


def test_a_collection_that_stopped_before_collecting_says_why() -> None:
    """scrapy's collection image: pytest-twisted failed to load (exit 3, no id, no error listed),
    and `collect --compare` printed nothing more than the exit code."""
    from testdock.run.collect import parse_output, stopped_before_collecting

    output = ('Error while loading plugin "pytest11".\n'
              "/opt/venv/lib/python3.11/site-packages/pytest_twisted/__init__.py:13: in <module>\n"
              "    from twisted.internet import defer, error\n"
              "E   ModuleNotFoundError: No module named 'twisted'\n"
              'TESTDOCK-COLLECT {"code": 3, "seconds": 0.2, "rss": 1}\n')
    stopped = parse_output("collection", "img", output)
    assert stopped.exit_code == 3
    assert stopped_before_collecting(stopped) == "ModuleNotFoundError: No module named 'twisted'"
    usage = parse_output("collection", "img", 'ERROR: usage: pytest\nTESTDOCK-COLLECT {"code": 4, '
                                              '"seconds": 0.1, "rss": 1}\n')
    assert stopped_before_collecting(usage) == "ERROR: usage: pytest"
    collected = parse_output("collection", "img", 't.py::test_a\nTESTDOCK-COLLECT {"code": 0, '
                                                  '"seconds": 0.1, "rss": 1}\n')
    assert stopped_before_collecting(collected) is None
