"""The memory plugin under pytester: accuracy, gathering across xdist workers, the report, the
history, the memory_limit marker and the terminal summary."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from testdock_pytest.memory.pertest import GC_SHARE

MiB = 2**20

ALLOCATING = """
import pytest

@pytest.mark.parametrize("mib", [20, 60, 120])
def test_allocate(mib):
    data = b"x" * (mib * 2**20)
    assert len(data) == mib * 2**20

def test_light():
    assert sum(range(100)) == 4950

KEPT = []

def test_keeps_memory():
    KEPT.append(b"k" * (30 * 2**20))
"""


def _report(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    report = json.loads((pytester.path / "test-results" / "memory.json").read_text())
    return {test["nodeid"]: test for test in report["tests"]}


@pytest.fixture
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for variable in ("TESTDOCK_RESULTS_DIR", "TESTDOCK_MEMORY_DIR", "TESTDOCK_HISTORY"):
        monkeypatch.delenv(variable, raising=False)
    return pytester


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_growth_is_measured_within_5_percent_or_2_mib(isolated: pytest.Pytester,
                                                       workers: list[str]) -> None:
    isolated.makepyfile(test_alloc=ALLOCATING)
    isolated.runpytest_subprocess(*workers).assert_outcomes(passed=5)
    tests = _report(isolated)
    assert len(tests) == 5
    for mib in (20, 60, 120):
        growth = int(str(tests[f"test_alloc.py::test_allocate[{mib}]"]["growth"]))
        assert abs(growth - mib * MiB) <= max(0.05 * mib * MiB, 2 * MiB), (mib, growth / MiB)
    assert int(str(tests["test_alloc.py::test_light"]["growth"])) < 2 * MiB
    kept = int(str(tests["test_alloc.py::test_keeps_memory"]["retained"]))
    assert abs(kept - 30 * MiB) <= 3 * MiB
    if workers:
        assert {str(test["worker"]) for test in tests.values()} <= {"gw0", "gw1"}


BUSY = """
import os, time

def test_burns_cpu():
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass

def test_writes_a_file(tmp_path):
    with open(tmp_path / "out.bin", "wb") as handle:
        handle.write(b"x" * (8 * 2**20))

def test_idle():
    time.sleep(0.2)
"""


def test_each_test_has_its_cpu_time_and_storage_bytes(isolated: pytest.Pytester) -> None:
    """For the stress report's tables of the tests that used the most CPU and I/O."""
    isolated.makepyfile(test_busy=BUSY)
    isolated.runpytest_subprocess().assert_outcomes(passed=3)
    tests = _report(isolated)
    burns, writes, idle = (tests[f"test_busy.py::test_{name}"]
                           for name in ("burns_cpu", "writes_a_file", "idle"))
    assert 0.28 <= float(str(burns["cpu"])) < 0.6
    assert float(str(idle["cpu"])) < 0.1
    assert int(str(burns["written_bytes"])) < MiB
    if _filesystem(isolated.path) == "tmpfs":  # memory, not storage: nothing reaches a disk
        assert int(str(writes["written_bytes"])) < MiB
    else:
        assert int(str(writes["written_bytes"])) >= 8 * MiB


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (the longest mount point above it)."""
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    above = [(point, kind) for point, kind in mounts if path.is_relative_to(point)]
    return max(above, key=lambda mount: len(mount[0]))[1]


def test_history_keeps_the_last_runs_and_summary_names_the_heaviest(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_alloc=ALLOCATING)
    isolated.makeini("[pytest]\ntestdock_history_runs = 2\n")
    for _ in range(3):
        result = isolated.runpytest_subprocess()
    result.assert_outcomes(passed=5)
    history = json.loads((isolated.path / ".testdock" / "memory-history.json").read_text())
    assert history["run"] == 3
    runs = history["tests"]["test_alloc.py::test_allocate[120]"]["runs"]
    assert len(runs) == 2
    output = result.stdout.str()
    assert "testdock memory" in output and "budget" in output
    top = output.split("top tests by peak growth:")[1].splitlines()[1]
    assert "test_allocate[120]" in top
    assert "leak suspects" in output and "test_keeps_memory" in output


@pytest.mark.parametrize("workers", [0, 2])
def test_what_measuring_cost_is_reported(isolated: pytest.Pytester, workers: int) -> None:
    """The plugin's own per-test time, the garbage collections it triggered (the 120 MiB test
    makes one) and the workers' start, summed over the processes, in memory.json and the summary."""
    isolated.makepyfile(test_alloc=ALLOCATING)
    result = isolated.runpytest_subprocess(*(["-n", str(workers)] if workers else []))
    result.assert_outcomes(passed=5)
    overhead = json.loads((isolated.path / "test-results" / "memory.json").read_text())["overhead"]
    assert 0 < overhead["measuring"] < 0.5  # 5 tests: milliseconds, not the tests' own time
    assert overhead["collections"] >= 1 and 0 < overhead["collecting"] <= overhead["measuring"]
    assert overhead["workers"] == workers and (overhead["worker_starts"] > 0) == bool(workers)
    summary = next(line for line in result.stdout.lines if line.startswith("measuring cost"))
    assert "of CPU over 5 tests" in summary and "garbage collection(s) it triggered" in summary
    assert ("worker(s) took" in summary) == bool(workers)


def test_the_collections_measuring_triggers_stay_within_their_share(isolated: pytest.Pytester) -> None:
    """Every test grows the process by 20 MiB on a heap of a million objects (a full collection
    costs milliseconds there): collecting after each would cost more than the tests; the plugin
    collects within its share (GC_SHARE) of the process's time."""
    isolated.makepyfile(test_heavy_heap="""
        import pytest

        HEAP = [[index] for index in range(1_000_000)]

        @pytest.mark.parametrize("number", range(40))
        def test_grows(number):
            test_grows.kept = b"x" * (20 * 2**20)
    """)
    started = time.monotonic()
    result = isolated.runpytest_subprocess("-p", "no:cacheprovider")
    wall = time.monotonic() - started
    result.assert_outcomes(passed=40)
    overhead = json.loads((isolated.path / "test-results" / "memory.json").read_text())["overhead"]
    assert 1 <= overhead["collections"] < 40
    # the share, and the one collection that went over it (on a busy machine one takes longer)
    one = overhead["collecting"] / overhead["collections"]
    assert overhead["collecting"] <= GC_SHARE * wall + one


def test_a_collection_the_heap_makes_too_costly_for_the_share_is_not_triggered(
        isolated: pytest.Pytester) -> None:
    """Tests that each keep 2 MiB (enough to collect the garbage before measuring what they kept,
    within the share) on a heap of three million objects: the interpreter's own full collections
    while the module built it took a tenth of a second or more each, far over the share a run of
    a few seconds allows. The plugin knows that cost and triggers none (with the 10 ms guess it
    used before it had collected itself, it triggered one of 0.2 s)."""
    isolated.makepyfile(test_big_heap="""
        import time
        import pytest

        HEAP = [[index] for index in range(3_000_000)]
        KEPT = []

        @pytest.mark.parametrize("number", range(12))
        def test_keeps(number):
            KEPT.append(b"x" * (2 * 2**20))
            time.sleep(0.2)
    """)
    result = isolated.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)
    overhead = json.loads((isolated.path / "test-results" / "memory.json").read_text())["overhead"]
    assert overhead["collections"] == 0


def test_a_tests_duration_leaves_out_the_time_it_waited_for_a_cpu(isolated: pytest.Pytester) -> None:
    """Another process hogs the one CPU the test may use: the test spins for 0.4 s of CPU time
    over about twice that on the clock; the history keeps what it takes on its own."""
    isolated.makepyfile(test_spin="""
        import os, subprocess, sys, time

        def test_spins():
            cpu = min(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpu})
            hog = subprocess.Popen([sys.executable, "-c",
                                    f"import os; os.sched_setaffinity(0, {{{cpu}}})\\nwhile True: pass"])
            try:
                time.sleep(0.2)
                started, spent = time.perf_counter(), time.thread_time()
                while time.thread_time() - spent < 0.4:
                    pass
                assert time.perf_counter() - started > 0.6  # it did wait for the CPU
            finally:
                hog.kill()
                hog.wait()
    """)
    isolated.runpytest_subprocess().assert_outcomes(passed=1)
    duration = float(str(_report(isolated)["test_spin.py::test_spins"]["duration"]))
    assert 0.4 <= duration < 0.85, duration  # its own 0.4 s of CPU, its 0.2 s sleep, no waiting


def test_renamed_tests_are_forgotten_in_time_and_do_not_break_the_history(isolated: pytest.Pytester) -> None:
    history_file = isolated.path / ".testdock" / "memory-history.json"
    history_file.parent.mkdir()
    history_file.write_text(json.dumps({"version": 1, "run": 100, "tests": {
        "test_gone.py::test_old": {"runs": [{"growth": 1, "peak": 1, "retained": 0, "duration": 0.1,
                                             "outcome": "passed", "ts": 0}], "last_run": 10}}}))
    isolated.makepyfile(test_alloc=ALLOCATING)
    isolated.runpytest_subprocess().assert_outcomes(passed=5)
    history = json.loads(history_file.read_text())
    assert "test_gone.py::test_old" not in history["tests"]
    assert history["run"] == 101
    history_file.write_text("{not json")
    isolated.runpytest_subprocess().assert_outcomes(passed=5)
    assert json.loads(history_file.read_text())["run"] == 1


def test_memory_limit_marker_fails_the_test_with_its_own_section(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_limit="""
        import pytest

        @pytest.mark.memory_limit("50 MiB")
        def test_over():
            data = b"x" * (120 * 2**20)

        @pytest.mark.memory_limit("200 MiB")
        def test_under():
            data = b"x" * (60 * 2**20)
    """)
    result = isolated.runpytest_subprocess("-rA")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    assert "memory limit exceeded" in output and "its limit is 50.0 MiB" in output
    assert "testdock memory" in output


def test_budget_comes_from_the_option_when_no_cgroup_limit(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_one="def test_one():\n    pass\n")
    result = isolated.runpytest_subprocess("--memory-budget", "3g")
    report = json.loads((isolated.path / "test-results" / "memory.json").read_text())
    assert report["budget"] == 3 * 2**30 and report["budget_source"] == "--memory-budget"
    assert "budget 3.0 GiB (--memory-budget)" in result.stdout.str()


def test_measuring_can_be_turned_off(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_one="def test_one():\n    pass\n")
    isolated.runpytest_subprocess("--no-testdock-memory").assert_outcomes(passed=1)
    assert not (isolated.path / "test-results" / "memory.json").exists()


def test_leak_check_tells_a_leak_from_a_cache(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_leaky="""
        KEPT = []
        CACHE = {}

        def test_leaks():
            KEPT.append(b"k" * (6 * 2**20))

        def test_caches_once():
            CACHE.setdefault("big", b"c" * (8 * 2**20))
    """)
    result = isolated.runpytest_subprocess("--testdock-leaks", "--testdock-leak-runs", "3")
    result.assert_outcomes(passed=2)
    section = result.stdout.str().split("leak check (3 more runs each", 1)[1].splitlines()
    leak_line = next(line for line in section if line.endswith("test_leaky.py::test_leaks"))
    cache_line = next(line for line in section if line.endswith("::test_caches_once"))
    assert "LEAKS" in leak_line and leak_line.count("6.0 MiB") == 3
    assert "no leak confirmed" in cache_line
    report = json.loads((isolated.path / "test-results" / "memory.json").read_text())
    assert len(report["leak_checks"]["test_leaky.py::test_leaks"]) == 3


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_awkward_node_ids_reach_the_report_and_the_history_unchanged(isolated: pytest.Pytester,
                                                                    workers: list[str]) -> None:
    isolated.makepyfile(test_awkward='''
import pytest

@pytest.mark.parametrize("text", ['quote"d', "back\\\\slash", "{brace}", "comma,colon:"])
def test_awkward(text):
    pass

def test_caf\u00e9():
    pass
''')
    listed = isolated.runpytest_subprocess("--collect-only", "-q").outlines
    expected = {line for line in listed if "::" in line}
    isolated.runpytest_subprocess(*workers).assert_outcomes(passed=5)
    assert set(_report(isolated)) == expected and len(expected) == 5
    history = json.loads((isolated.path / ".testdock" / "memory-history.json").read_text())
    assert set(history["tests"]) == expected


def test_a_run_killed_before_its_end_leaves_its_measurements_to_the_next(isolated: pytest.Pytester) -> None:
    """The controller killed (the OOM killer, a CI job's time-out) before it wrote the history:
    the next run adds what the dead one measured before it plans, and removes its records."""
    isolated.makepyfile(test_dies="""
        import os, signal, time

        def test_allocates():
            block = bytearray(24 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])
            time.sleep(0.3)  # past the records' flush interval: this test's record is written

        def test_checks():
            time.sleep(0.3)

        def test_kills_the_run():
            if not os.path.exists("second"):
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    history_file = isolated.path / ".testdock" / "memory-history.json"
    killed = isolated.runpytest_subprocess()
    assert killed.ret == -signal.SIGKILL
    assert not history_file.exists()
    assert len(list((isolated.path / ".testdock" / "runs").iterdir())) == 1
    (isolated.path / "second").touch()
    result = isolated.runpytest_subprocess()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["testdock: the history has 2 more test measurement(s), recovered from*"])
    tests = json.loads(history_file.read_text())["tests"]
    assert len(tests["test_dies.py::test_allocates"]["runs"]) == 2  # the dead run's and this one's
    assert tests["test_dies.py::test_allocates"]["runs"][0][0] >= 20 * MiB
    assert len(tests["test_dies.py::test_kills_the_run"]["runs"]) == 1
    assert list((isolated.path / ".testdock" / "runs").iterdir()) == []


def test_a_killed_runs_measurements_inform_the_next_runs_plan(isolated: pytest.Pytester) -> None:
    """`-n auto` and the scheduler read the history before the memory plugin starts: the dead
    run's measurements are added before they do (pandera's run after a killed one planned with
    "no history yet" though it recovered 96 measurements)."""
    isolated.makepyfile(test_dies="""
        import os, signal, time

        def test_1_quick():
            time.sleep(0.3)  # past the records' flush interval: this test's record is written

        def test_2_kills_the_run():
            if not os.path.exists("second"):
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = isolated.runpytest_subprocess("-p", "no:randomly")
    assert killed.ret == -signal.SIGKILL
    (isolated.path / "second").touch()
    result = isolated.runpytest_subprocess("-n", "auto", "--dist", "memory", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    assert "the history has 1 more test measurement(s), recovered" in output, output
    assert "no history yet" not in output, output
    history_file = isolated.path / ".testdock" / "memory-history.json"
    assert json.loads(history_file.read_text())["unfinished"] is False  # this run finished


def test_records_pending_while_a_long_test_runs_are_written_before_it_ends(isolated: pytest.Pytester) -> None:
    """The quick test's record waits for the next flush; the run is killed in a long test: the
    records' own thread has written it meanwhile, and the next run recovers it."""
    isolated.makepyfile(test_long="""
        import os, signal, time

        def test_1_first():
            time.sleep(0.3)  # past the flush interval: this record is written at once

        def test_2_quick():
            pass  # within the interval: pending

        def test_3_long_and_killed():
            time.sleep(1.5)
            if not os.path.exists("second"):
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert isolated.runpytest_subprocess().ret == -signal.SIGKILL
    (isolated.path / "second").touch()
    result = isolated.runpytest_subprocess()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["testdock: the history has 2 more test measurement(s), recovered from*"])
