"""The controller's kept reports share what a test's reports have in common (real xdist runs)."""

from __future__ import annotations

import pytest

INSPECTING_CONFTEST = """
import pytest

def pytest_unconfigure(config):
    if hasattr(config, "workerinput"):
        return
    reports = [r for kept in config.pluginmanager.get_plugin("terminalreporter").stats.values()
               for r in kept if isinstance(r, pytest.TestReport)]
    by_test = {}
    for report in reports:
        by_test.setdefault(report.nodeid, []).append(report)
    shared = all(len({id(r.location) for r in kept}) == 1 and len({id(r.keywords) for r in kept}) == 1
                 for kept in by_test.values())
    common = len({id(r.when) for r in reports if r.when == "call"}) == 1
    print(f"\\nREPORTS {len(reports)} TESTS {len(by_test)} SHARED {shared} COMMON {common}")
"""


@pytest.mark.parametrize(("options", "shared"), [((), True), (("-p", "no:testdock-shared-reports"), False)])
def test_a_tests_reports_share_its_location_and_keywords_under_xdist(
        pytester: pytest.Pytester, options: tuple[str, ...], shared: bool) -> None:
    pytester.makeconftest(INSPECTING_CONFTEST)
    pytester.makepyfile(test_some="""
        import pytest

        @pytest.mark.parametrize("case", range(6))
        def test_case(case):
            print("output", case)
            assert case != 5
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-rA", "--junitxml=junit.xml", *options)
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines([f"REPORTS 18 TESTS 6 SHARED {shared} COMMON {shared}"])
    # what the reports say is unchanged: the summary's passes and failure, the JUnit file
    result.stdout.fnmatch_lines(["*Captured stdout call*", "output 5"])  # the failure's
    result.stdout.fnmatch_lines(["*Captured stdout call*", "output 0"])  # a pass's, under -rA
    result.stdout.fnmatch_lines(["*short test summary*", "PASSED test_some.py::test_case[[]*",
                                 "*FAILED test_some.py::test_case[[]5[]]*"])
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count("<testcase ") == 6 and 'name="test_case[5]"' in junit
