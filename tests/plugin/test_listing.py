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


def test_errors_only_the_stand_ins_cause_are_skipped_and_real_errors_still_fail(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's own constructor rejects a stand-in at import time of a test module (sample
    data built from a stubbed library): not verifiable here, skipped, named; a syntax error, an
    import of a project module that does not exist and a plain error at module level still fail."""
    pytester.makepyfile(
        geolib="""
            class GeoSeries:
                def __init__(self, data):
                    if not isinstance(data, list):
                        raise TypeError(f"Non geometry data passed to GeoSeries, received {type(data)}")
        """,
        test_sample_data="""
            import nosuch_frames as pd
            from geolib import GeoSeries

            SAMPLE = GeoSeries(pd.Series([1, 2]))

            def test_sample():
                pass
        """,
        test_stub_arithmetic="""
            import datetime

            import nosuch_frames as pd

            START = datetime.date.fromordinal(pd.Timestamp("2020-01-01").toordinal())

            def test_start():
                pass
        """,
        # a parametrize list computed from a stand-in, in a function's decorator (xarray's
        # `zip(np.roll(CASES, 1), CASES, strict=True)`), and the same list gone wrong for real
        test_decorated_stand_in="""
            import pytest
            import nosuch_numbers as np

            CASES = [1, 2, 3]

            @pytest.mark.parametrize(
                ("a", "b"),
                list(zip(np.roll(CASES, 1), CASES, strict=True)),
            )
            def test_pairs(a, b):
                pass
        """,
        test_decorated_real_error="""
            import pytest

            @pytest.mark.parametrize(("a", "b"), list(zip([1], [1, 2], strict=True)))
            def test_pairs(a, b):
                pass
        """,
        test_syntax="def test_(:\n    pass\n",
        test_missing_project_module="from geolib import GeoFrame\n\ndef test_f():\n    pass\n",
        test_real_error_beside_a_stub="""
            import nosuch_frames as pd

            RATIO = 1 / 0

            def test_r():
                pass
        """,
        test_fine="def test_fine():\n    pass\n",
    )
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs", "-rs")
    record = _record(result.outlines)
    assert sorted(record.errors) == ["test_decorated_real_error.py", "test_missing_project_module.py",
                                     "test_real_error_beside_a_stub.py", "test_syntax.py"]
    assert sorted(record.unverifiable) == ["test_decorated_stand_in.py", "test_sample_data.py",
                                           "test_stub_arithmetic.py"]
    assert "not verifiable with stand-ins for nosuch_frames, nosuch_numbers: TypeError: Non geometry " \
        "data passed" in record.unverifiable["test_sample_data.py"]
    assert record.nodeids == ["test_fine.py::test_fine"]
    assert result.ret == 2  # the real errors fail the collection
    assert "SKIPPED [1] test_sample_data.py" in result.stdout.str()


def test_a_collection_whose_only_errors_come_from_stand_ins_passes(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        geolib="def build(data):\n    if not isinstance(data, list):\n        raise ValueError('bad data')\n",
        test_sample="import nosuch_frames as pd\nfrom geolib import build\n\nDATA = build(pd.array([1]))\n",
        test_fine="def test_fine():\n    pass\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs")
    assert result.ret == 0, result.stdout.str()
    assert _record(result.outlines).unverifiable.keys() == {"test_sample.py"}
    # the summary says what passed unchecked (a CI collection stage's log shows it)
    output = result.stdout.str()
    assert "not verifiable with stand-ins, left to the real run: 1 file(s)" in output
    assert "  test_sample.py: " in output and "ValueError: bad data" in output


def test_classes_built_on_several_stand_ins_and_an_abc_and_a_class_statement_they_break(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        # two stand-ins among the bases of one class, beside a real ABC (scikit-learn's estimators,
        # imbalanced-learn's samplers): one metaclass for both, no conflict
        samplers="from abc import ABCMeta, abstractmethod\n"
                 "from nosuch_sk.base import BaseEstimator, OneToOneFeatureMixin\n\n\n"
                 "class SamplerMixin(metaclass=ABCMeta):\n    @abstractmethod\n    def fit(self): ...\n\n\n"
                 "class BaseSampler(SamplerMixin, OneToOneFeatureMixin, BaseEstimator):\n"
                 "    def fit(self):\n        return self\n",
        test_samplers="from samplers import BaseSampler\n\nSAMPLER = BaseSampler().fit()\n\n\n"
                      "def test_fit():\n    assert SAMPLER\n",
        # a metaclass of the project's that a stand-in base cannot satisfy: the class statement fails
        test_models="import nosuch_orm\n\n\nclass Strict(type):\n    pass\n\n\n"
                    "class Model(nosuch_orm.Base, metaclass=Strict):\n    pass\n\n\n"
                    "def test_model():\n    pass\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs")
    assert result.ret == 0, result.stdout.str()
    record = _record(result.outlines)
    assert record.nodeids == ["test_samplers.py::test_fit"]
    assert "not verifiable with stand-ins" in record.unverifiable["test_models.py"]
    assert "metaclass conflict" in record.unverifiable["test_models.py"]


def test_a_conftest_only_the_stand_ins_break_leaves_its_folder_to_the_real_run(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # the initial conftest (over every test) builds sample data with the project's code at import
    pytester.makepyfile(geolib="def build(data):\n    if not isinstance(data, list):\n"
                               "        raise ValueError('bad data')\n    return data\n")
    tests = pytester.mkpydir("tests")
    (tests / "conftest.py").write_text("import nosuch_frames as pd\nfrom geolib import build\n\n"
                                       "SAMPLE = build(pd.array([1]))\n")
    (tests / "test_a.py").write_text("def test_a():\n    pass\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs", "tests")
    assert result.ret == 0, result.stdout.str()  # not pytest's "ImportError while loading conftest"
    reason = _record(result.outlines).unverifiable["tests"]
    assert "not verifiable with stand-ins for nosuch_frames" in reason and "ValueError: bad data" in reason
    # a conftest broken for real still stops the run, as it stops the real one
    (tests / "conftest.py").write_text("import pytest\n\n@pytest.fixture\ndef broken(:\n    pass\n")
    broken = pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs", "tests")
    assert broken.ret == pytest.ExitCode.USAGE_ERROR and "SyntaxError" in broken.stderr.str()


def test_the_files_under_a_conftest_the_stand_ins_break_are_listed_with_their_real_ids(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic's tests/conftest.py builds models with the project's metaclass, which stand-ins
    for pydantic-core break: the folder is left to the real run, and its files' last real ids
    stood for none of them (0 of 11,254)."""
    pytester.makepyfile(frames="def array(values):\n    return list(values)\n",
                        geolib="def build(data):\n    if not isinstance(data, list):\n"
                               "        raise ValueError('bad data')\n    return data\n")
    tests = pytester.mkpydir("tests")
    (tests / "conftest.py").write_text("import frames\nfrom geolib import build\n\n"
                                       "SAMPLE = build(frames.array([1]))\n")
    (tests / "test_a.py").write_text("import pytest\n\n\n@pytest.mark.parametrize('n', [1, 2])\n"
                                     "def test_a(n):\n    pass\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.delenv("TESTDOCK_HISTORY", raising=False)
    real = _record(pytester.runpytest_subprocess("--collect-only", "-q", "tests").outlines)
    assert real.nodeids == ["tests/test_a.py::test_a[1]", "tests/test_a.py::test_a[2]"]
    (pytester.path / "frames.py").unlink()
    stubbed = _record(pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs",
                                                    "tests").outlines)
    assert "tests" in stubbed.unverifiable
    assert stubbed.nodeids == real.nodeids and stubbed.from_real_run == ["tests/test_a.py"]


def test_unchanged_files_list_the_last_real_collections_ids(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A parametrize list computed from a dependency: the stand-ins give 0 ids, the real run 3.
    Once a real collection recorded them, a stubbed collection lists the real ids for the file
    while it is unchanged; edited, the file's own (stubbed) ids again."""
    import json

    pytester.makepyfile(
        fakedep="KINDS = ['a', 'b', 'c']\n",
        test_kinds="import fakedep\nimport pytest\n\n\n@pytest.mark.parametrize('kind', fakedep.KINDS)\n"
                   "def test_kind(kind):\n    pass\n",
        test_plain="def test_plain():\n    pass\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    monkeypatch.delenv("TESTDOCK_HISTORY", raising=False)
    real = _record(pytester.runpytest_subprocess("--collect-only", "-q", "-k", "plain").outlines)
    assert len(real.nodeids) == 1  # -k deselects, but the record keeps every collected id
    kept = json.loads((pytester.path / ".testdock" / "collected-ids.json").read_text())
    assert kept["files"]["test_kinds.py"]["ids"] == [f"test_kinds.py::test_kind[{k}]" for k in "abc"]
    # now the dependency is missing and stood in for: its list is empty
    (pytester.path / "fakedep.py").unlink()
    stubbed = _record(pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs",
                                                    "-p", "no:cacheprovider").outlines)
    kinds = [f"test_kinds.py::test_kind[{k}]" for k in "abc"]
    assert stubbed.nodeids == [*kinds, "test_plain.py::test_plain"]
    assert stubbed.from_real_run == ["test_kinds.py"]
    test_kinds = pytester.path / "test_kinds.py"
    test_kinds.write_text(test_kinds.read_text() + "\n# edited\n")
    edited = _record(pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs").outlines)
    assert edited.from_real_run == [] and "test_kinds.py::test_kind[a]" not in edited.nodeids


def test_a_file_the_stand_ins_find_no_test_in_is_listed_with_the_real_ids(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Test classes deriving from a dependency's test suite (`pandas.tests.extension.base`): with
    the dependency stood in for, they hold no test at all, and the file no id."""
    pytester.makepyfile(
        fakesuite="class BaseTests:\n    def test_one(self):\n        pass\n\n"
                  "    def test_two(self):\n        pass\n",
        test_ext="import fakesuite\n\n\nclass TestMine(fakesuite.BaseTests):\n    pass\n",
        test_plain="def test_plain():\n    pass\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    monkeypatch.delenv("TESTDOCK_HISTORY", raising=False)
    real = _record(pytester.runpytest_subprocess("--collect-only", "-q").outlines)
    assert real.nodeids[:2] == ["test_ext.py::TestMine::test_one", "test_ext.py::TestMine::test_two"]
    (pytester.path / "fakesuite.py").unlink()
    stubbed = _record(pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs").outlines)
    assert stubbed.nodeids == real.nodeids and stubbed.from_real_run == ["test_ext.py"]
    # only the files this collection went through: not those outside what it was asked for
    only_plain = _record(pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs",
                                                       "test_plain.py").outlines)
    assert only_plain.nodeids == ["test_plain.py::test_plain"]


def test_the_real_ids_of_an_unchanged_file_leave_out_what_the_projects_m_deselects(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp's addopts `-m "not dev_mode and not autobahn and not internal"`: the real run
    records every id of a file (a run with `-k` must not shorten it) and which its -m deselected;
    a stubbed collection with the same -m lists the file's real ids less those."""
    pytester.makeini('[pytest]\naddopts = -m "not internal"\nmarkers =\n    internal: benchmarks\n')
    pytester.makepyfile(
        fakedep="KINDS = ['a', 'b', 'c']\n",
        test_kinds="import fakedep\nimport pytest\n\n\n@pytest.mark.parametrize('kind', fakedep.KINDS)\n"
                   "def test_kind(kind):\n    pass\n\n\n"
                   "@pytest.mark.internal\ndef test_benchmark():\n    pass\n")
    monkeypatch.setenv("TESTDOCK_LIST_COLLECTED", "1")
    monkeypatch.delenv("TESTDOCK_HISTORY", raising=False)
    real = _record(pytester.runpytest_subprocess("--collect-only", "-q").outlines)
    kinds = [f"test_kinds.py::test_kind[{k}]" for k in "abc"]
    assert real.nodeids == kinds
    (pytester.path / "fakedep.py").unlink()
    stubbed = _record(pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs").outlines)
    assert stubbed.nodeids == kinds and stubbed.from_real_run == ["test_kinds.py"]
    # another selection than the real run's: what this collection deselected goes (here, by -k)
    (pytester.path / "test_kinds.py").write_text((pytester.path / "test_kinds.py").read_text()
                                                 .replace("@pytest.mark.internal\n", ""))
    (pytester.path / "fakedep.py").write_text("KINDS = ['a', 'b', 'c']\n")
    assert _record(pytester.runpytest_subprocess("--collect-only", "-q", "-k", "test_")
                   .outlines).nodeids == [*kinds, "test_kinds.py::test_benchmark"]
    (pytester.path / "fakedep.py").unlink()
    other = _record(pytester.runpytest_subprocess("--collect-only", "-q", "--testdock-stubs",
                                                  "-k", "not benchmark").outlines)
    assert other.nodeids == kinds and other.from_real_run == ["test_kinds.py"]
