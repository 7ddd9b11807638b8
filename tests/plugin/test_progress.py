"""The progress file the runner watches: one event a line, written by the controller only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SUITE = """
import pytest

def test_one():
    pass

def test_two():
    assert False

@pytest.mark.parametrize("n", [1, 2])
def test_three(n):
    pass
"""


def _events(folder: Path) -> list[dict[str, object]]:
    lines = (folder / "testdock-progress.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_progress_events(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path, workers: list[str]) -> None:
    results = tmp_path / "results"
    monkeypatch.setenv("TESTDOCK_RESULTS_DIR", str(results))
    pytester.makepyfile(SUITE)
    outcome = pytester.runpytest_subprocess(*workers)
    outcome.assert_outcomes(passed=3, failed=1)
    events = _events(results)
    assert events[0]["event"] == "session_start"
    assert events[-1] == {**events[-1], "event": "session_finish", "exitstatus": 1}
    starts = [str(e["nodeid"]) for e in events if e["event"] == "start"]
    finishes = {str(e["nodeid"]): e["outcome"] for e in events if e["event"] == "finish"}
    assert sorted(starts) == sorted(finishes)  # once each: workers write nothing themselves
    assert len(starts) == 4
    assert finishes["test_progress_events.py::test_two"] == "failed"
    assert finishes["test_progress_events.py::test_one"] == "passed"
    assert all(isinstance(e["ts"], float) for e in events)


AWKWARD_IDS = """
import pytest

@pytest.mark.parametrize("text", ['quote"d', "back\\\\slash", "tab\\there", "caf\u00e9 \u2603", "{brace}"])
def test_awkward(text):
    pass

def test_caf\u00e9():  # a test name pytest does not escape
    pass
"""


def test_awkward_node_ids_are_written_as_valid_json_with_the_exact_ids(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    results = tmp_path / "results"
    monkeypatch.setenv("TESTDOCK_RESULTS_DIR", str(results))
    pytester.makepyfile(AWKWARD_IDS)
    outcome = pytester.runpytest_subprocess("--collect-only", "-q")
    expected = {line for line in outcome.outlines if "::" in line}
    monkeypatch.setenv("TESTDOCK_RESULTS_DIR", str(results))
    pytester.runpytest_subprocess().assert_outcomes(passed=6)
    events = _events(results)
    assert {str(e["nodeid"]) for e in events if e["event"] == "start"} == expected
    assert {str(e["nodeid"]) for e in events if e["event"] == "finish"} == expected
    assert len(expected) == 6 and any("\u00e9" in nodeid for nodeid in expected)


def test_nothing_written_without_the_env_variable(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTDOCK_RESULTS_DIR", raising=False)
    pytester.makepyfile(SUITE)
    pytester.runpytest_subprocess().assert_outcomes(passed=3, failed=1)
    assert not list(pytester.path.rglob("testdock-progress.jsonl"))


def test_an_unwritable_results_folder_warns_and_never_stops_the_tests(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv("TESTDOCK_RESULTS_DIR", str(blocked / "results"))
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess("-W", "default")
    result.assert_outcomes(passed=3, failed=1)
    assert "testdock: no progress events" in result.stdout.str()
