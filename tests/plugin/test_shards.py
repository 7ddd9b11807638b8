"""Sharding under pytester: the shards cover the suite exactly once, groups stay together, xdist
workers agree, the history balances the split, and bad options are refused."""

from __future__ import annotations

import json
import re

import pytest

SUITE = {
    "test_plain": "\n".join(f"def test_{i}():\n    pass\n" for i in range(30)),
    "test_grouped": (
        "import pytest\n"
        "@pytest.fixture(scope='module')\n"
        "def database():\n    return object()\n"
        + "\n".join(f"def test_db_{i}(database):\n    pass\n" for i in range(6))),
    "test_marked": (
        "import pytest\n"
        + "\n".join(f"@pytest.mark.xdist_group('serial')\ndef test_serial_{i}():\n    pass\n"
                    for i in range(4))
        + "\n".join(f"def test_free_{i}():\n    pass\n" for i in range(6))),
}


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for variable in ("TESTDOCK_RESULTS_DIR", "TESTDOCK_HISTORY", "TESTDOCK_SHARDS", "TESTDOCK_SHARD_WORKERS",
                     "TESTDOCK_SHARD_INDEX", "JOB_COMPLETION_INDEX"):
        monkeypatch.delenv(variable, raising=False)
    pytester.makepyfile(**SUITE)
    pytester.makeini("[pytest]\nmarkers =\n    xdist_group: xdist's group marker\n")
    return pytester


def collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:xdist", *args)
    assert result.ret == 0, result.stdout.str()
    return [line for line in result.outlines if "::" in line and not line.startswith(" ")]


def test_shards_cover_the_suite_exactly_once_and_keep_groups_together(suite: pytest.Pytester) -> None:
    everything = collected(suite)
    assert len(everything) == 46
    shards = [collected(suite, "--testdock-shards", "3", "--testdock-shard-index", str(i)) for i in range(3)]
    assert sorted(n for shard in shards for n in shard) == sorted(everything)
    assert all(shards)
    for prefix in ("test_grouped.py::test_db_", "test_marked.py::test_serial_"):
        holders = [i for i, shard in enumerate(shards) if any(n.startswith(prefix) for n in shard)]
        assert len(holders) == 1, (prefix, holders)


def test_the_environment_selects_the_shard_as_kubernetes_does(suite: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    expected = collected(suite, "--testdock-shards", "2", "--testdock-shard-index", "1")
    monkeypatch.setenv("TESTDOCK_SHARDS", "2")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert collected(suite) == expected


def test_xdist_workers_agree_on_the_shard(suite: pytest.Pytester) -> None:
    alone = collected(suite, "--testdock-shards", "2", "--testdock-shard-index", "0")
    result = suite.runpytest_subprocess("-n", "2", "--testdock-shards", "2", "--testdock-shard-index", "0")
    result.assert_outcomes(passed=len(alone))


def test_the_history_balances_the_shards(suite: pytest.Pytester) -> None:
    slow = {f"test_plain.py::test_{i}": 10.0 for i in range(4)}
    fast = {nodeid: 0.01 for nodeid in collected(suite) if nodeid not in slow}
    history = {"version": 1, "run": 1, "tests": {
        nodeid: {"last_run": 1, "runs": [{"growth": 0, "peak": 50 * 2**20, "retained": 0,
                                          "duration": seconds, "outcome": "passed", "ts": 0}]}
        for nodeid, seconds in {**slow, **fast}.items()}}
    (suite.path / ".testdock").mkdir()
    (suite.path / ".testdock" / "memory-history.json").write_text(json.dumps(history))
    shards = [collected(suite, "--testdock-shards", "4", "--testdock-shard-index", str(i)) for i in range(4)]
    # each shard gets exactly one of the four 10-second tests
    assert [sum(n in slow for n in shard) for shard in shards] == [1, 1, 1, 1]


def test_the_plan_is_printed(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--collect-only", "-q", "-p", "no:xdist", "--testdock-shards", "3",
                                        "--testdock-shard-plan", "--memory-budget", "1g")
    assert result.ret == 0
    text = result.stdout.str()
    assert "testdock shard plan" in text
    rows = [line for line in result.outlines if re.match(r"^\s+[0-2]\s+\d+\s+\d+\s+[\d.]+s\s+", line)]
    assert len(rows) == 3
    assert sum(int(row.split()[1]) for row in rows) == 46


@pytest.mark.parametrize(("args", "message"), [
    (["--testdock-shards", "2"], "needs --testdock-shard-index"),
    (["--testdock-shards", "2", "--testdock-shard-index", "2"], "out of range"),
    (["--testdock-shard-index", "0"], "need --testdock-shards"),
])
def test_bad_shard_options_are_refused(suite: pytest.Pytester, args: list[str], message: str) -> None:
    result = suite.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_an_empty_shard_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("TESTDOCK_SHARDS", "TESTDOCK_SHARD_INDEX", "JOB_COMPLETION_INDEX",
                     "TESTDOCK_SHARD_WORKERS"):
        monkeypatch.delenv(variable, raising=False)
    pytester.makepyfile(test_one="def test_only():\n    pass\n")
    codes = [pytester.runpytest_subprocess("-p", "no:xdist", "--testdock-shards", "3",
                                           "--testdock-shard-index", str(i)).ret for i in range(3)]
    assert codes == [0, 0, 0]



def test_a_documents_examples_stay_in_one_shard(suite: pytest.Pytester) -> None:
    """Sybil's examples of one document share its namespace, in order (parsel's docs/usage.rst)."""
    from tests.plugin.test_scheduler import SYBIL_LIKE_CONFTEST

    suite.makeconftest(SYBIL_LIKE_CONFTEST)
    (suite.path / "usage.rst").write_text("a document\n")
    shards = [collected(suite, "--testdock-shards", "3", "--testdock-shard-index", str(i)) for i in range(3)]
    holders = [i for i, shard in enumerate(shards) if any(n.startswith("usage.rst::") for n in shard)]
    assert len(holders) == 1, shards
    assert sum(n.startswith("usage.rst::") for shard in shards for n in shard) == 12
