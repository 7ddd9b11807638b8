"""The memory history's file: its compact format, the older format read, one read per change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testdock_pytest.memory.history import (
    ALONE_KEEP,
    ALONE_KEY,
    DURATION,
    GROWTH,
    HISTORY_VERSION,
    RUN_FIELDS,
    TestMemory,
    alone_tests,
    expectations,
    load_history,
    merge_histories,
    read_records,
    remember_alone,
    update_history,
)

MiB = 2**20


def run_fields(run: list[Any]) -> dict[str, Any]:
    """A run of a test's history entry, its fields by name."""
    return dict(zip(RUN_FIELDS, run, strict=False))


def record(nodeid: str, growth: int, duration: float = 0.01) -> TestMemory:
    return TestMemory(nodeid, "gw0", 100 * MiB, 100 * MiB + growth, 0, duration, "passed")


def test_a_run_is_kept_as_a_list_of_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    update_history(path, [record("t.py::test_a", 5 * MiB, 0.25)], keep=5)
    saved = json.loads(path.read_text())
    assert saved["version"] == HISTORY_VERSION
    (run,) = saved["tests"]["t.py::test_a"]["runs"]
    assert run[GROWTH] == 5 * MiB and run[DURATION] == 0.25
    assert run_fields(run)["outcome"] == "passed"
    assert expectations(saved)[0]["t.py::test_a"] == (5 * MiB, 0.25)


def test_the_compact_format_is_about_half_the_older_ones_size(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    records = [record(f"tests/test_version.py::test_parse[1.{i}.0]", i * 1024, 0.0004) for i in range(2000)]
    for _ in range(5):
        update_history(path, records, keep=5)
    compact = len(path.read_bytes())
    older = json.dumps({"version": 1, "tests": {nodeid: {"last_run": entry["last_run"], "runs": [
        run_fields(run) for run in entry["runs"]]} for nodeid, entry in load_history(path)["tests"].items()}},
        separators=(",", ":"))
    assert compact < 0.6 * len(older), (compact, len(older))


def test_a_version_1_history_is_read_and_carried_on(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"version": 1, "run": 7, "worker_start": [2.5], "tests": {"t.py::test_a": {
        "last_run": 7, "runs": [{"growth": 3 * MiB, "peak": 9 * MiB, "retained": 0, "duration": 0.5,
                                 "outcome": "passed", "ts": 1}]}}}))
    assert expectations(load_history(path))[0] == {"t.py::test_a": (3 * MiB, 0.5)}
    history = update_history(path, [record("t.py::test_a", 1 * MiB, 1.5)], keep=5)
    assert history["run"] == 8 and history["worker_start"] == [2.5]
    assert expectations(history)[0] == {"t.py::test_a": (3 * MiB, 1.0)}


def test_an_unknown_version_or_a_broken_file_is_an_empty_history(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"version": 99, "run": 3, "tests": {"t.py::test_a": {}}}))
    assert load_history(path)["tests"] == {}
    path.write_text("{cut sho")
    assert load_history(path) == {"version": HISTORY_VERSION, "run": 0, "tests": {}}


def test_records_are_read_whole_and_a_line_cut_short_by_a_killed_worker_is_skipped(tmp_path: Path) -> None:
    whole = [f'["t.py::test_{i}","gw0",{i},{i + 10},0,0.001,"passed",0.0,0,0]' for i in range(3)]
    (tmp_path / "gw0.jsonl").write_text("\n".join([*whole, '{"startup": 1.5, "worker": "gw0"}']) + "\n")
    # gw1 died writing its second record: the line ends mid-array
    (tmp_path / "gw1.jsonl").write_text('["t.py::test_x","gw1",1,2,0,0.5,"failed",0.1,0,0]\n'
                                        '["t.py::test_y","gw1",1\n')
    records, startups, overhead = read_records(tmp_path)
    assert [r.nodeid for r in records] == ["t.py::test_0", "t.py::test_1", "t.py::test_2", "t.py::test_x"]
    assert records[1].peak == 11 and records[3].outcome == "failed"
    assert startups == {"gw0": 1.5} and overhead.workers == 1


def test_tests_that_passed_alone_are_kept_once_each_the_most_recent_first_to_go(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    remember_alone(path, ["a.py::t1", "a.py::t2"])
    remember_alone(path, ["a.py::t2", "b.py::t3"])
    history = load_history(path)
    assert history[ALONE_KEY] == ["a.py::t1", "a.py::t2", "b.py::t3"]
    assert alone_tests(history) == {"a.py::t1", "a.py::t2", "b.py::t3"}
    remember_alone(path, [f"c.py::t{n}" for n in range(ALONE_KEEP)])
    assert "a.py::t1" not in alone_tests(load_history(path))  # bounded: the oldest go
    # shards' histories keep what each found
    assert alone_tests(merge_histories([{"alone": ["x"]}, {"alone": ["y"]}])) == {"x", "y"}
