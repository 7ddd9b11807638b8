"""The plugin's record of what a collection found, which `testdock collect` and `testdock shard`
read: versioned JSON, the same whatever the project's addopts do to pytest's output."""

from __future__ import annotations

import pytest

from testdock_pytest.contract import COLLECTION_PREFIX, VERSION, CollectionRecord


def _record(lines: list[str]) -> CollectionRecord:
    (line,) = [line for line in lines if line.startswith(COLLECTION_PREFIX)]
    return CollectionRecord.from_line(line)


def test_the_record_survives_verbose_coloured_addopts(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\naddopts = -v -rN --color=yes\n")
    pytester.makepyfile(test_a="""
        import pytest

        @pytest.mark.parametrize("x", [1, 2])
        def test_one(x):
            pass
    """, test_broken="import helper_of_mine\n", helper_of_mine="import nosuch_module_anywhere\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    record = _record(result.outlines)
    assert record.version == VERSION
    assert record.nodeids == ["test_a.py::test_one[1]", "test_a.py::test_one[2]"]
    assert record.errors == ["test_broken.py"]
    # the project's own files in the error's traceback, for the install hint
    assert record.error_frames == {"test_broken.py": ["test_broken.py", "helper_of_mine.py"]}
    assert not any(line.startswith("test_a.py::") for line in result.outlines)  # pytest's listing is a tree


def test_the_record_says_what_the_stubs_did(pytester: pytest.Pytester,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_s="""
        import nosuch_numeric as nn
        import pytest

        @pytest.mark.parametrize("x", nn.arange(3))
        def test_p(x):
            pass
    """)
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs")
    record = _record(result.outlines)
    assert record.stubbed == ["nosuch_numeric"]
    assert len(record.predicted) == 1 and record.predicted[0].startswith("test_s.py::test_p: ")


def test_no_record_unless_asked(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_a="def test_one():\n    pass\n")
    monkeypatch.delenv("TESTDOCK_LIST_COLLECTED", raising=False)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert COLLECTION_PREFIX.strip() not in result.stdout.str()


def test_a_newer_record_is_refused_rather_than_misread() -> None:
    from testdock_pytest.contract import NewerContract

    line = CollectionRecord(nodeids=["t.py::a"], version=VERSION + 1).line()
    with pytest.raises(NewerContract, match="this testdock reads up to"):
        CollectionRecord.from_line(line)
    assert CollectionRecord.from_line(CollectionRecord(nodeids=["t.py::a"]).line()).nodeids == ["t.py::a"]
