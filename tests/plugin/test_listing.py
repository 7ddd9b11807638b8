"""The plugin's own listing of what a collection found, which `testdock collect` and `testdock
shard` read: the same whatever the project's addopts do to pytest's output."""

from __future__ import annotations

import pytest


def test_listing_survives_verbose_coloured_addopts(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\naddopts = -v -rN --color=yes\n")
    pytester.makepyfile(test_a="""
        import pytest

        @pytest.mark.parametrize("x", [1, 2])
        def test_one(x):
            pass
    """, test_broken="import nosuch_module_anywhere\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    lines = result.outlines
    assert [line for line in lines if line.startswith("TESTDOCK-NODEID ")] == [
        "TESTDOCK-NODEID test_a.py::test_one[1]", "TESTDOCK-NODEID test_a.py::test_one[2]"]
    assert [line for line in lines if line.startswith("TESTDOCK-ERROR ")] == ["TESTDOCK-ERROR test_broken.py"]
    assert not any(line.startswith("test_a.py::") for line in lines)  # pytest's own listing is a tree here


def test_no_listing_unless_asked(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_a="def test_one():\n    pass\n")
    monkeypatch.delenv("TESTDOCK_LIST_COLLECTED", raising=False)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert "TESTDOCK-NODEID" not in result.stdout.str()
